"""The `remediation:` section and the `remediate:` names alert rules give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tocsin.config import EXAMPLE_CONFIG_PATH, ConfigIssue, load_config, load_config_text
from tocsin.remediation.policy import RemediationMode

Issues = Callable[..., list[ConfigIssue]]
FIXTURES = Path(__file__).parent / "fixtures"

PLATFORM = "platforms:\n  render: {type: render, api_key: k}\n"
BACKEND = """\
services:
  backend:
    url: http://127.0.0.1:8001
    platform: {name: render, service_id: srv-1}
    checks:
      - {type: http, path: /health, alerts: [{when: down, severity: P1, remediate: restrat}]}
"""


def only(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, [str(issue) for issue in issues]
    return issues[0]


def test_policies_sit_beside_the_mode_with_defaults() -> None:
    text = """\
remediation:
  mode: passive
  restart: {action: platform.restart}
  cache: {action: command, argv: [/usr/bin/clear-cache], timeout: 30s, cooldown: 10m}
"""
    settings = load_config_text(text, env={}).config.remediation
    assert settings.mode is RemediationMode.PASSIVE
    assert sorted(settings.policies) == ["cache", "restart"]
    restart = settings.policies["restart"]
    assert (restart.verify_after, restart.max_attempts, restart.per, restart.cooldown) == (
        30.0, 3, 3600.0, 0.0)
    assert restart.during_silence is False
    assert restart.acts_on_platform
    cache = settings.policies["cache"]
    assert cache.cooldown == 600.0
    assert cache.action_options == {"argv": ["/usr/bin/clear-cache"], "timeout": "30s"}


def test_no_remediation_section_is_active_with_no_policies() -> None:
    for text in ("", "remediation:\n"):
        settings = load_config_text(text, env={}).config.remediation
        assert settings.mode is RemediationMode.ACTIVE
        assert settings.policies == {}


def test_unknown_remediate_name_suggests_the_right_one(issues_of: Issues) -> None:
    text = PLATFORM + BACKEND + "remediation:\n  restart: {action: platform.restart}\n"
    issue = only(issues_of(text))
    assert str(issue) == (
        "tocsin.yaml:8: services.backend.checks[0].alerts[0].remediate: "
        "unknown remediation 'restrat' (did you mean 'restart'?)")


def test_remediate_without_a_remediation_section_says_where_to_add_it(
        issues_of: Issues) -> None:
    issue = only(issues_of(PLATFORM + BACKEND))
    assert "no remediations are configured: add it under `remediation:`" in issue.message


def test_unknown_action_name_is_refused_with_a_suggestion(issues_of: Issues) -> None:
    issue = only(issues_of("remediation:\n  restart: {action: platform.restrat}\n"))
    assert issue.path == "remediation.restart.action"
    assert issue.line == 2
    assert issue.message == "unknown action 'platform.restrat' (did you mean 'platform.restart'?)"


def test_platform_action_on_a_service_without_a_platform_is_refused_at_the_rule(
        issues_of: Issues) -> None:
    text = """\
services:
  worker:
    url: http://127.0.0.1:8002
    checks:
      - type: http
        alerts:
          - {when: down, severity: P1, remediate: restart}
remediation:
  restart: {action: platform.restart}
"""
    issue = only(issues_of(text))
    assert issue.path == "services.worker.checks[0].alerts[0].remediate"
    assert issue.line == 7
    assert "service 'worker' has no platform" in issue.message


def test_a_command_action_needs_no_platform() -> None:
    text = """\
services:
  worker:
    url: http://127.0.0.1:8002
    checks: [{type: http, alerts: [{when: down, severity: P1, remediate: kick}]}]
remediation:
  kick: {action: command, argv: [/bin/true]}
"""
    assert load_config_text(text, env={}).config.remediation.policies["kick"].action == "command"


def test_bad_durations_and_budgets_are_refused(issues_of: Issues) -> None:
    text = """\
remediation:
  restart: {action: platform.restart, verify_after: 30 seconds, per: 0s, max_attempts: 0}
  rollback: {action: platform.rollback, cooldown: 5}
"""
    found = {issue.path: issue.message for issue in issues_of(text)}
    assert "invalid duration '30 seconds'" in found["remediation.restart.verify_after"]
    assert found["remediation.restart.per"] == "per must be longer than zero, e.g. 1h"
    assert "greater than or equal to 1" in found["remediation.restart.max_attempts"]
    assert "write 5s, not 5" in found["remediation.rollback.cooldown"]


def test_a_policy_must_name_its_action(issues_of: Issues) -> None:
    issue = only(issues_of("remediation:\n  restart: {verify_after: 30s}\n"))
    assert (issue.path, issue.message) == ("remediation.restart.action",
                                           "missing required key 'action'")


def test_example_configs_type_their_remediation() -> None:
    example = load_config(EXAMPLE_CONFIG_PATH, env={}).config.remediation
    env = {"RENDER_API_KEY": "k" * 8, "COMPANY_KEY": "c" * 8, "SENDGRID_API_KEY": "s" * 8,
           "ALERT_EMAIL": "a@example.com", "SMTP_HOST": "127.0.0.1", "SMTP_USER": "u",
           "SMTP_PASSWORD": "p" * 8, "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    product = load_config(FIXTURES / "product_example.yaml", env=env).config.remediation
    for settings in (example, product):
        assert settings.mode is RemediationMode.ACTIVE
        restart, rollback = settings.policies["restart"], settings.policies["rollback"]
        assert (restart.action, restart.verify_after, restart.max_attempts) == (
            "platform.restart", 30.0, 3)
        assert (rollback.action, rollback.verify_after, rollback.max_attempts, rollback.per) == (
            "platform.rollback", 120.0, 1, 3600.0)


def test_an_action_option_with_a_typo_is_refused_with_its_line() -> None:
    from tocsin.config import ConfigError, load_config_text

    text = "remediation:\n  fix: {action: command, argvv: [/bin/true]}\n"
    try:
        load_config_text(text, "t.yaml", env={})
    except ConfigError as error:
        messages = [str(issue) for issue in error.issues]
    else:
        raise AssertionError("accepted a typo")
    assert any(m.startswith("t.yaml:2: remediation.fix") and "argvv" in m for m in messages), \
        messages
    loaded = load_config_text("remediation:\n  fix: {action: command, argv: [/bin/true]}\n",
                              "t.yaml", env={})
    assert loaded.config.remediation.policies["fix"].action_config.action == "command"
