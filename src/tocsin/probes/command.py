"""The ``command`` check: run a Nagios-compatible plugin and read its verdict.

``argv`` runs directly, without a shell, in a clean environment (``PATH``,
``HOME`` and ``LANG`` from Tocsin's own, plus the configured ``env``), in its
own session; stdout and stderr are read together and capped at
``output_cap`` bytes while read (the rest drained and counted), and at the
check timeout the whole process group is killed (:mod:`tocsin.process`).

The exit code is the verdict (the Nagios plugin API):

- 0 OK → OK;
- 1 WARNING, 2 CRITICAL → FAILING, ``values["nagios_state"]`` 1 or 2;
- 3 UNKNOWN → ERROR (the plugin could not check);
- anything else (``exit 137``: killed by SIGKILL), a program that cannot start,
  or one still running at the timeout (``timed out after 10s``) → ERROR.

``values["nagios_state"]`` is set (0–3) whenever the exit code is a Nagios
state. The first output line ``TEXT | PERFDATA`` gives the message (``TEXT``,
without a leading ``OK:``/``WARNING -``… state word) and values: every
perfdata item, named by its label and converted to ms or bytes
(:mod:`tocsin.probes.perfdata`), so ``load1 > 4`` or ``time > 2s`` can alert
on it. ``details``: ``nagios_state`` by name, ``output`` (the first 4000
characters), perfdata items that were ``U`` or did not parse, and
``output_truncated`` when the cap cut it.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from time import perf_counter
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from tocsin.config.durations import Size
from tocsin.probes.base import CheckConfig, CheckResult, CheckSpec, CheckStatus, Probe, wall_clock
from tocsin.probes.context import ProbeContext
from tocsin.probes.perfdata import parse
from tocsin.probes.registry import register
from tocsin.process import (
    check_argv,
    check_env,
    clean_environment,
    finish_program,
    start_program,
)

DEFAULT_OUTPUT_CAP = 64 * 1024
DETAIL_CHARS = 4000
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
RESERVED_VALUES = frozenset({"nagios_state"})
_STATE_PREFIX = re.compile(r"(?:OK|WARNING|CRITICAL|UNKNOWN)\s*(?::|-)\s*", re.IGNORECASE)


class CommandCheckConfig(CheckConfig):
    """A ``command`` check: ``argv`` (program and arguments), extra ``env``, ``output_cap``."""

    # env values may be secrets: a refusal never repeats what was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["command"]
    argv: Annotated[list[str], Field(min_length=1)]
    env: dict[str, SecretStr] = Field(default_factory=dict)
    output_cap: Annotated[Size, Field(ge=1024)] = DEFAULT_OUTPUT_CAP

    @field_validator("argv")
    @classmethod
    def _program_is_named(cls, argv: list[str]) -> list[str]:
        return check_argv(argv, "[/usr/lib/nagios/plugins/check_disk, -w, 10%]")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_env(env)
        return env


def _seconds(timeout: float) -> str:
    return f"{timeout:g}s"


@register
class CommandProbe(Probe[CommandCheckConfig]):
    """Run a plugin once; its exit code is the status, its output the message and values."""

    type: ClassVar[str] = "command"
    config_model: ClassVar[builtins.type[CheckConfig]] = CommandCheckConfig

    def __init__(self, spec: CheckSpec[CommandCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        self._argv = list(config.argv)
        self._env = clean_environment(
            {name: value.get_secret_value() for name, value in config.env.items()})
        self._timeout = spec.timeout
        self._cap = config.output_cap

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        program = self._argv[0]
        try:
            process = await start_program(self._argv, self._env)
        except OSError as error:
            return CheckResult.error(
                self.spec.name, started_at,
                f"cannot run {program}: {error.strerror or type(error).__name__}")
        try:
            async with asyncio.timeout(self._timeout):
                finished = await finish_program(process, self._cap)
        except TimeoutError:
            return CheckResult.error(
                self.spec.name, started_at, f"{program} timed out after "
                f"{_seconds(self._timeout)} (killed)", latency_ms=(perf_counter() - start) * 1000)
        latency_ms = (perf_counter() - start) * 1000
        code = finished.code
        if code < 0:  # killed by a signal: report it as a shell would (128 + signal)
            code = 128 - code
        output = finished.output
        plugin = parse(output.kept.decode("utf-8", errors="replace"))
        text = _STATE_PREFIX.sub("", plugin.text, count=1) if _STATE_PREFIX.match(
            plugin.text) else plugin.text
        values: dict[str, float] = {}
        details: dict[str, Any] = {"output": output.text()[:DETAIL_CHARS]}
        if output.truncated:
            details["output_truncated"] = True
        state = STATES.get(code)
        if state is not None:
            values["nagios_state"] = code
            details["nagios_state"] = state
        for name, value in plugin.values().items():
            if name in RESERVED_VALUES:
                plugin.malformed.append(f"{name}: name reserved by Tocsin")
            else:
                values[name] = value
        if plugin.unknown:
            details["perfdata_unknown"] = plugin.unknown
        if plugin.malformed:
            details["perfdata_malformed"] = plugin.malformed
        if code == 0:
            status, message = CheckStatus.OK, text
        elif code in (1, 2):
            status, message = CheckStatus.FAILING, text or str(state)
        elif code == 3:
            status, message = CheckStatus.ERROR, text or "UNKNOWN"
        else:
            how = f"exit {code}"
            if finished.code < 0:
                how += f" (killed by signal {-finished.code})"
            status, message = CheckStatus.ERROR, f"{how}: {text}" if text else how
        return self.new_result(status, started_at, latency_ms=latency_ms, message=message,
                               code=code, values=values, details=details)
