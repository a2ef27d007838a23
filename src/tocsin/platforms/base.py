"""The platform interface: what Tocsin asks of a hosting platform (Render, …).

A :class:`Platform` is a client of one configured platform (one API key). The
``deploy`` check reads deploys with it; remediation actions (restart, rollback,
redeploy) act with it. Every method returns parsed models or raises
:class:`PlatformError`; what the platform sent is parsed into :class:`Deploy`
and :class:`PlatformService` at the client's edge.

Exceptions::

    PlatformError(message, permanent=..., retry_after=...)   root of this layer
    │   .permanent=True    retrying cannot help: the key is refused (401/403), the
    │                      service is unknown (404), no key is configured, the
    │                      request itself is refused (400, 409, …)
    │   .permanent=False   try later: rate limited (429, ``retry_after`` set), 5xx,
    │                      timeout, connection refused, a malformed answer
    │   .retry_after       seconds until the platform takes calls again, if known
    │
    └── nothing else: each client maps aiohttp, OSError, TimeoutError, JSON and
        validation errors onto PlatformError at its boundary.

Messages name the platform and the service, never the API key.
"""

from __future__ import annotations

import builtins
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, model_validator
from pydantic.alias_generators import to_camel

from tocsin.config.durations import Duration


class PlatformError(Exception):
    """A platform call failed; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (f"PlatformError({self.message!r}, permanent={self.permanent}, "
                f"retry_after={self.retry_after})")


class DeployStatus(enum.Enum):
    """Where a deploy is; ``UNKNOWN`` stands for a value this Tocsin does not know."""

    CREATED = "created"
    QUEUED = "queued"
    BUILD_IN_PROGRESS = "build_in_progress"
    UPDATE_IN_PROGRESS = "update_in_progress"
    PRE_DEPLOY_IN_PROGRESS = "pre_deploy_in_progress"
    LIVE = "live"
    DEACTIVATED = "deactivated"
    BUILD_FAILED = "build_failed"
    UPDATE_FAILED = "update_failed"
    PRE_DEPLOY_FAILED = "pre_deploy_failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def failed(self) -> bool:
        return self in _FAILED

    @property
    def in_progress(self) -> bool:
        return self in _IN_PROGRESS


_FAILED = frozenset({DeployStatus.BUILD_FAILED, DeployStatus.UPDATE_FAILED,
                     DeployStatus.PRE_DEPLOY_FAILED, DeployStatus.CANCELED})
_FINISHED = _FAILED | {DeployStatus.LIVE, DeployStatus.DEACTIVATED}
_IN_PROGRESS = frozenset({DeployStatus.CREATED, DeployStatus.QUEUED,
                          DeployStatus.BUILD_IN_PROGRESS, DeployStatus.UPDATE_IN_PROGRESS,
                          DeployStatus.PRE_DEPLOY_IN_PROGRESS})
_STATUS_VALUES = {status.value for status in DeployStatus} - {DeployStatus.UNKNOWN.value}


class _Wire(BaseModel):
    """A platform's JSON object: camelCase keys, unknown keys ignored (APIs add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel,
                              populate_by_name=True)


class Commit(_Wire):
    """The commit a deploy built."""

    id: str
    message: str | None = None
    created_at: datetime | None = None


class Deploy(_Wire):
    """One deploy of a service. ``status_text`` keeps the status as sent, known or not."""

    id: str
    status: DeployStatus
    status_text: str = ""
    trigger: str | None = None
    commit: Commit | None = None  # None for an image deploy
    image: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None  # None while it runs

    @model_validator(mode="before")
    @classmethod
    def _unknown_status(cls, data: Any) -> Any:
        # A status added after this release is reported as unknown, not refused.
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            text = data["status"]
            status = text if text in _STATUS_VALUES else DeployStatus.UNKNOWN.value
            data = {**data, "status": status, "statusText": text}
        return data


class PlatformService(_Wire):
    """A service as the platform describes it."""

    id: str
    name: str
    type: str | None = None
    suspended: str | None = None  # "suspended" | "not_suspended"
    dashboard_url: str | None = None


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("a timeout must be longer than zero, e.g. 10s")
    return seconds


class PlatformConfig(BaseModel):
    """Keys every platform type accepts; each platform extends it with its own.

    ``timeout`` bounds one API call (a check is also bounded by its own timeout).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    api_key: SecretStr = SecretStr("")  # empty: not configured, every call fails permanently
    timeout: Annotated[Duration, AfterValidator(_positive)] = 10.0


class Platform(ABC):
    """A client of one configured platform; subclasses set ``type`` and ``config_model``.

    ``name`` is the platform's key under ``platforms:``. One client is shared by
    every check of the platform, so that rate limits (per API key) are kept together.
    """

    type: ClassVar[str]
    display_name: ClassVar[str]
    config_model: ClassVar[builtins.type[PlatformConfig]]

    def __init__(self, name: str, config: PlatformConfig) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    async def latest_deploys(self, service_id: str, limit: int = 5) -> list[Deploy]:
        """The ``limit`` newest deploys of the service, newest first."""

    @abstractmethod
    async def deploy(self, service_id: str, deploy_id: str) -> Deploy:
        """One deploy of the service."""

    @abstractmethod
    async def restart(self, service_id: str) -> None:
        """Restart the service's running instances, without a new deploy."""

    @abstractmethod
    async def trigger_deploy(self, service_id: str, *, clear_cache: bool = False) -> Deploy | None:
        """Start a new deploy of the latest commit; the deploy, or None if it cannot be found."""

    @abstractmethod
    async def rollback(self, service_id: str, deploy_id: str) -> Deploy:
        """Deploy again what ``deploy_id`` built; the new deploy."""

    @abstractmethod
    async def service(self, service_id: str) -> PlatformService:
        """The service's description."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the client may be used again afterwards (it reconnects)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


@dataclass(frozen=True, slots=True)
class PlatformTarget:
    """A service on a platform, resolved from the config: which client, which service.

    ``platform`` is the key under ``platforms:``; ``config`` its validated config.
    """

    platform: str
    config: PlatformConfig
    service_id: str
