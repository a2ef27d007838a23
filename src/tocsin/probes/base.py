"""The probe interface: one small class per check type.

A probe receives its resolved :class:`CheckSpec` once and is asked to
:meth:`Probe.run` at every interval. ``run`` never raises for anything the
target does (refusal, timeout, garbage, a 1 GiB body): it returns a
:class:`CheckResult` whose status says what happened. An exception escaping
``run`` is a bug in the probe; the scheduler records it as an error result
and keeps going.

Exceptions::

    ProbeError            root of this layer (configuration the probe refuses at build time)
"""

from __future__ import annotations

import builtins
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from tocsin.alerting.rules import AlertRule
from tocsin.config.durations import Duration

if TYPE_CHECKING:
    from tocsin.platforms.base import PlatformTarget
    from tocsin.probes.context import ProbeContext


class ProbeError(Exception):
    """A probe cannot be built from its configuration."""


class CheckStatus(enum.Enum):
    """What one run of a check found."""

    OK = "ok"
    FAILING = "failing"  # the target answered, but a condition is not met
    ERROR = "error"  # the target could not be probed (refused, timeout, garbage)

    @property
    def is_ok(self) -> bool:
        return self is CheckStatus.OK


@dataclass(slots=True)
class CheckResult:
    """One run of one check.

    ``values`` holds the numbers rules compare (``response_time`` in ms, …);
    ``timings`` the phase durations in ms the probe could measure
    (``connect``, ``first_byte``); ``code`` a protocol status (HTTP status,
    exit code) when there is one; ``details`` anything else worth keeping.
    """

    check: str
    status: CheckStatus
    started_at: float  # wall clock, seconds since the epoch
    latency_ms: float | None = None
    message: str = ""
    code: int | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    # What else the probe found, JSON-serialisable and kept with the result: the
    # deploy seen, the endpoints that failed, the sub-checks of a /health answer.
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, check: str, started_at: float, message: str,
              latency_ms: float | None = None) -> CheckResult:
        return cls(check=check, status=CheckStatus.ERROR, started_at=started_at,
                   latency_ms=latency_ms, message=message)


class CheckConfig(BaseModel):
    """Keys every check type accepts; each probe extends it with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    alerts: list[AlertRule] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


C = TypeVar("C", bound=CheckConfig)


@dataclass(frozen=True, slots=True)
class CheckSpec(Generic[C]):
    """A check resolved against its service and the defaults: what a probe runs."""

    name: str
    service: str | None
    service_url: str | None
    interval: float  # seconds
    timeout: float  # seconds
    config: C
    # The platform service the check watches (a deploy check), resolved from the
    # service's `platform:` and the `platforms:` section; None for most checks.
    platform: PlatformTarget | None = None

    @property
    def type(self) -> str:
        return self.config.type


class Probe(ABC, Generic[C]):
    """Base of every probe. Subclasses set ``type`` and ``config_model``."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[CheckConfig]]

    def __init__(self, spec: CheckSpec[C], context: ProbeContext) -> None:
        self.spec = spec
        self.context = context

    @abstractmethod
    async def run(self) -> CheckResult:
        """Probe the target once; return a result, never raise for target faults."""

    def new_result(self, status: CheckStatus, started_at: float, **fields: Any) -> CheckResult:
        return CheckResult(check=self.spec.name, status=status, started_at=started_at, **fields)


def wall_clock() -> float:
    return time.time()
