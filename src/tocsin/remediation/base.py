"""The remediation-action interface: what an action is told, what it answers, how it fails.

An :class:`Action` is one configured way of fixing a service (restart it on its
platform, roll it back, run a fixer script, call a webhook). The orchestrator
(policy: confirmed alerts only, attempt budget, verification, audit log) builds
an :class:`ActionRequest` from a confirmed :class:`~tocsin.alerting.model.Alert`
and awaits :meth:`Action.act`, which answers an :class:`ActionOutcome` or raises
:class:`RemediationError`. An action acts once: it never retries and never
verifies — both are the policy's job.

Exceptions::

    RemediationError(message, permanent=..., retry_after=...)   root of this layer
    │   .permanent=True    acting again cannot help: the platform refused the key
    │                      (401/403), the service is unknown (404), nothing to roll
    │                      back to, the program cannot be started, a webhook 4xx
    │   .permanent=False   a failed attempt that may succeed later: rate limited
    │                      (429, ``retry_after`` set), 5xx, timeouts (the action's
    │                      ``timeout`` bounds every attempt), a fixer script that
    │                      exited non-zero
    │   .retry_after       seconds before the target takes calls again, if known
    │
    └── nothing else: PlatformError, aiohttp, OSError and TimeoutError are
        translated at each action's boundary (:func:`platform_error` for platforms).

Messages name the action and the service, never an API key, a webhook URL, a
header value or a secret ``env`` value.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from tocsin.alerting.model import Alert, Severity
from tocsin.config.durations import Duration
from tocsin.platforms.base import Platform, PlatformError

DEFAULT_TIMEOUT = 60.0
"""Seconds one attempt of an action may take before it is abandoned (and its process killed)."""


class RemediationError(Exception):
    """An action failed; ``permanent`` says whether acting again can help."""

    def __init__(self, message: str, *, permanent: bool,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (f"RemediationError({self.message!r}, permanent={self.permanent}, "
                f"retry_after={self.retry_after})")


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("a timeout must be longer than zero, e.g. 30s")
    return seconds


class ActionConfig(BaseModel):
    """Keys every action accepts; each action extends it with ``action: Literal[...]``.

    ``timeout`` bounds one whole attempt (every platform call, the program's run).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str
    timeout: Annotated[Duration, AfterValidator(_positive)] = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class PlatformHandle:
    """The service an action acts on: the shared platform client and the service's id.

    The orchestrator resolves it with ``PlatformClients.client(target)`` and
    ``target.service_id`` from the service's :class:`~tocsin.platforms.PlatformTarget`.
    """

    client: Platform
    service_id: str


@dataclass(frozen=True)
class ActionRequest:
    """What an action is told about the confirmed alert it answers."""

    fingerprint: str
    check: str
    service: str | None
    severity: Severity
    summary: str = ""
    message: str = ""
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    platform: PlatformHandle | None = None  # None: the service is on no configured platform

    @classmethod
    def from_alert(cls, alert: Alert, platform: PlatformHandle | None = None) -> ActionRequest:
        """The request for ``alert``, acting through ``platform`` if the service has one."""
        return cls(fingerprint=alert.fingerprint, check=alert.check, service=alert.service,
                   severity=alert.severity, summary=alert.summary, message=alert.message,
                   value=alert.value, labels=dict(alert.labels), platform=platform)

    @property
    def who(self) -> str:
        """The service (or, without one, the check) for messages."""
        return f"service {self.service}" if self.service else f"check {self.check}"


@dataclass(frozen=True)
class ActionOutcome:
    """An accepted action: ``detail`` is the target's answer (capped), ``data`` what it made.

    ``data`` holds identifiers for the audit log and verification, e.g.
    ``{"deploy_id": "dep-…"}``. Accepted means the target took the action, not
    that the service recovered: the policy verifies that after a delay.
    """

    accepted: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


C = TypeVar("C", bound=ActionConfig)


class Action(ABC, Generic[C]):
    """One configured action; subclasses set ``name``, ``config_model`` and :meth:`attempt`.

    Call :meth:`act`: it bounds :meth:`attempt` by ``config.timeout`` (a
    cancelled attempt cleans up after itself, e.g. kills its process group)
    and turns the overrun into a transient :class:`RemediationError`.
    """

    name: ClassVar[str]
    config_model: ClassVar[builtins.type[ActionConfig]]

    def __init__(self, config: C) -> None:
        self.config = config

    async def act(self, request: ActionRequest) -> ActionOutcome:
        """Act once on ``request``; the outcome, or RemediationError."""
        timeout = self.config.timeout
        try:
            async with asyncio.timeout(timeout):
                return await self.attempt(request)
        except TimeoutError:
            raise RemediationError(f"{self.name} for {request.who}: timed out after "
                                   f"{timeout:g} s", permanent=False) from None

    @abstractmethod
    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        """Do the action once, unbounded (``act`` bounds it); raise only RemediationError."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def platform_error(action: str, request: ActionRequest, error: PlatformError) -> RemediationError:
    """``error`` as a RemediationError naming the action; the client's text never holds the key."""
    return RemediationError(f"{action} for {request.who}: {error.message}",
                            permanent=error.permanent, retry_after=error.retry_after)
