"""The action registry and the config union the config loader builds on."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from tocsin.remediation import Action, action_config_union, action_types
from tocsin.remediation.command import CommandAction, CommandConfig
from tocsin.remediation.platform_actions import RedeployConfig, RollbackConfig


def test_every_action_registers_itself() -> None:
    assert set(action_types()) == {"platform.restart", "platform.rollback",
                                   "platform.redeploy", "command", "webhook"}
    assert all(issubclass(action, Action) for action in action_types().values())


def test_the_union_picks_the_model_by_action() -> None:
    adapter: TypeAdapter[object] = TypeAdapter(action_config_union())
    rollback, redeploy, command = (adapter.validate_python(item) for item in [
        {"action": "platform.rollback", "timeout": "2m"},
        {"action": "platform.redeploy", "clear_cache": True},
        {"action": "command", "argv": ["/opt/fix.sh"]},
    ])
    assert isinstance(rollback, RollbackConfig) and rollback.timeout == 120.0
    assert isinstance(redeploy, RedeployConfig) and redeploy.clear_cache
    assert isinstance(command, CommandConfig) and command.timeout == 60.0
    assert action_types()["command"] is CommandAction


@pytest.mark.parametrize("bad", [{"action": "platform.reboot"}, {"action": "command"},
                                 {"action": "platform.restart", "service": "x"}])
def test_unknown_actions_and_keys_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(action_config_union()).validate_python(bad)
