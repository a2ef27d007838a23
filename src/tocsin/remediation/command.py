"""``action: command``: run a fixer program, without a shell, in a clean environment.

``argv`` is executed directly (``asyncio.create_subprocess_exec``): no shell,
so nothing in an alert's text can inject a command. The program sees only
``PATH``, ``HOME`` and ``LANG`` (from Tocsin's own environment, when set), the
configured ``env``, and the alert::

    TOCSIN_ALERT_FINGERPRINT  TOCSIN_ALERT_SERVICE  TOCSIN_ALERT_CHECK
    TOCSIN_ALERT_SEVERITY (P1…P4)  TOCSIN_ALERT_SUMMARY  TOCSIN_ALERT_MESSAGE
    TOCSIN_ALERT_VALUE (empty when none)

Nothing else of Tocsin's environment (API keys, database passwords) leaks in.

stdout and stderr are read together, incrementally: the first ``output_cap``
bytes are kept (then ``… (truncated)``), the rest drained and counted, so a
program printing gigabytes costs no memory and cannot block on a full pipe.

- exit 0: accepted, ``detail`` the output;
- exit non-zero: a transient RemediationError with the code and the output's
  tail. A failing fixer is a failed *attempt*: the policy's attempt budget
  decides whether to run it again, then escalates;
- cannot start (not found, not executable): permanent;
- over ``timeout``: the program runs in its own session, and its whole process
  group (children included) is killed with SIGKILL. A program that leaves a
  background child holding its output open is waited for too (until the
  timeout): redirect a daemon's output (``>/dev/null 2>&1 &``).

Values of ``env`` entries whose names look secret (``*_TOKEN``, ``*_KEY``, …)
are masked in the output Tocsin keeps.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from tocsin.config.durations import Size
from tocsin.config.secrets import Redactor, looks_secret
from tocsin.process import (
    check_argv,
    check_env,
    clean_environment,
    finish_program,
    start_program,
)
from tocsin.remediation.base import (
    Action,
    ActionConfig,
    ActionOutcome,
    ActionRequest,
    RemediationError,
)
from tocsin.remediation.registry import register

DEFAULT_OUTPUT_CAP = 64 * 1024


class CommandConfig(ActionConfig):
    """``action: command``: ``argv`` (program and arguments), extra ``env``, ``output_cap``."""

    # The URL, header and env values are secrets: a refusal never repeats what was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    action: Literal["command"]
    argv: Annotated[list[str], Field(min_length=1)]
    env: dict[str, SecretStr] = Field(default_factory=dict)
    output_cap: Annotated[Size, Field(ge=1024)] = DEFAULT_OUTPUT_CAP

    @field_validator("argv")
    @classmethod
    def _program_is_named(cls, argv: list[str]) -> list[str]:
        return check_argv(argv, "[/opt/fix/restart.sh, --hard]")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_env(env, reserved_prefix="TOCSIN_ALERT_")
        return env


def alert_environment(request: ActionRequest) -> dict[str, str]:
    """The ``TOCSIN_ALERT_*`` variables describing ``request``'s alert."""
    value = "" if request.value is None else f"{request.value:g}"
    return {
        "TOCSIN_ALERT_FINGERPRINT": request.fingerprint,
        "TOCSIN_ALERT_SERVICE": request.service or "",
        "TOCSIN_ALERT_CHECK": request.check,
        "TOCSIN_ALERT_SEVERITY": request.severity.value,
        "TOCSIN_ALERT_SUMMARY": request.summary,
        "TOCSIN_ALERT_MESSAGE": request.message,
        "TOCSIN_ALERT_VALUE": value,
    }


def action_environment(extra: Mapping[str, str], request: ActionRequest,
                       parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The clean environment (see :func:`tocsin.process.clean_environment`), then the alert."""
    env = clean_environment(extra, parent)
    env.update({name: text.replace("\x00", "") for name, text in
                alert_environment(request).items()})
    return env


@register
class CommandAction(Action[CommandConfig]):
    """Run ``argv``; exit 0 is accepted, anything else a failed attempt."""

    name: ClassVar[str] = "command"
    config_model: ClassVar[builtins.type[ActionConfig]] = CommandConfig

    def __init__(self, config: CommandConfig) -> None:
        super().__init__(config)
        self._redactor = Redactor(value.get_secret_value() for name, value in config.env.items()
                                  if looks_secret(name))

    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        extra = {name: value.get_secret_value() for name, value in self.config.env.items()}
        program = self.config.argv[0]
        try:
            process = await start_program(self.config.argv, action_environment(extra, request))
        except OSError as error:
            raise RemediationError(f"{self.name} for {request.who}: cannot run {program}: "
                                   f"{error.strerror or type(error).__name__}",
                                   permanent=True) from None
        finished = await finish_program(process, self.config.output_cap)
        code, output = finished.code, finished.output
        text = self._redactor.redact(output.text())
        if code == 0:
            return ActionOutcome(True, text, {"exit_code": 0, "output_bytes": output.total})
        tail = self._redactor.redact(output.tail.decode("utf-8", errors="replace"))
        how = (f"killed by signal {-code}" if code < 0 else f"exited with code {code}")
        message = f"{self.name} for {request.who}: {program} {how}"
        if tail.strip():
            message += f"; output ends: {tail.strip()}"
        raise RemediationError(message, permanent=False)
