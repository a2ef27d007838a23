"""The schema of ``tocsin.yaml``: pydantic models, every one refusing unknown keys.

Check configs come from the probe registry: each registered probe contributes
its ``config_model`` to a union discriminated on ``type``, and the types the
product brief names but no probe implements yet validate loosely as
:class:`PlannedCheckConfig`. :func:`config_model` builds the model with that
union on first use (and again when a probe registers later), so importing this
module never depends on which probe modules were imported before it. The
static :class:`TocsinConfig` types every check as the base ``CheckConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    create_model,
    field_validator,
    model_validator,
)

from tocsin.alerting.inhibition import InhibitRule
from tocsin.alerting.policies import Policies
from tocsin.alerting.silences import MaintenanceWindow
from tocsin.config.durations import Duration, format_duration
from tocsin.platforms.base import PlatformConfig
from tocsin.probes.base import CheckConfig
from tocsin.probes.database import DatabaseCheckConfig
from tocsin.probes.system import SystemCheckConfig
from tocsin.remediation.policy import RemediationSettings
from tocsin.reports.settings import ReportsSettings
from tocsin.slo.model import SLOConfig

PLANNED_TAG = "planned"
"""The union tag (it appears in pydantic error locations) of :class:`PlannedCheckConfig`."""

_STORAGE_SCHEMES = ("sqlite://", "postgresql://")


def check_interval(seconds: float) -> float:
    """Refuse intervals under a second: sub-second polling is a load test, not monitoring."""
    if seconds < 1:
        raise ValueError(f"an interval must be at least 1s, not {format_duration(seconds)}")
    return seconds


def check_timeout(seconds: float) -> float:
    """Refuse zero and negative timeouts: a probe without a deadline can hang forever."""
    if seconds <= 0:
        raise ValueError("a timeout must be longer than zero, e.g. 10s")
    return seconds


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Section):
    """Values a check takes when it does not set its own."""

    interval: Annotated[Duration, AfterValidator(check_interval)] = 60.0
    timeout: Annotated[Duration, AfterValidator(check_timeout)] = 10.0


class SchedulerSettings(_Section):
    """How checks are run."""

    concurrency: int = Field(default=1000, ge=1)
    jitter: bool = True  # spread checks with equal intervals over the interval
    # Results held in memory while the store is slow or down; beyond it the oldest are dropped.
    store_buffer: int = Field(default=100_000, ge=1000)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("a retention period must be longer than zero, e.g. 14d")
    return seconds


class RetentionSettings(_Section):
    """How long history is kept: raw results, then 5-minute, then hourly and daily rollups.

    Alerts, incidents, deliveries, deploys and the remediation audit log are kept forever.
    """

    raw: Annotated[Duration, AfterValidator(_positive)] = 14 * 86400.0
    rollups_5m: Annotated[Duration, AfterValidator(_positive)] = 90 * 86400.0
    rollups_1h: Annotated[Duration, AfterValidator(_positive)] = 730 * 86400.0

    @model_validator(mode="after")
    def _coarser_tiers_last_longer(self) -> RetentionSettings:
        if not self.raw <= self.rollups_5m:
            raise ValueError(f"rollups_5m ({format_duration(self.rollups_5m)}) must be at "
                             f"least raw ({format_duration(self.raw)})")
        if not self.rollups_5m <= self.rollups_1h:
            raise ValueError(f"rollups_1h ({format_duration(self.rollups_1h)}) must be at "
                             f"least rollups_5m ({format_duration(self.rollups_5m)})")
        return self


class WebSettings(_Section):
    """The dashboard and API server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port
    enabled: bool = True
    # The bearer token of POST /api/v1/metrics; set it from the environment
    # (${TOCSIN_PUSH_TOKEN}). Without it, pushing metrics is off.
    push_token: str | None = Field(default=None, repr=False)

    @field_validator("push_token")
    @classmethod
    def _push_token_or_off(cls, token: str | None) -> str | None:
        return token or None  # `${TOCSIN_PUSH_TOKEN:-}` unset: pushing is off


class StatusPageSettings(_Section):
    """The public status page at /status and the SVG badges."""

    title: str = Field(default="Status", min_length=1, max_length=200)
    # A local image file (served by Tocsin at /status/logo) or a path on this server
    # (/static/...): the Content-Security-Policy allows no image from another origin.
    logo: str | None = None
    services: list[str] | None = None  # the services shown, in order; None: all of them
    public: bool = True  # False: the status page and badges need a dashboard login

    @field_validator("logo")
    @classmethod
    def _logo_is_local(cls, logo: str | None) -> str | None:
        if logo and urlsplit(logo).scheme in ("http", "https"):
            raise ValueError("logo must be a file path or a path on this server (/static/...): "
                             "the Content-Security-Policy blocks images from other origins")
        return logo or None


MIN_ACK_SECRET_LENGTH = 16


class AlertingSettings(_Section):
    """Links in notifications, and how acknowledgement links are signed."""

    # The dashboard URL notifications link to; by default the web server's own address.
    base_url: str | None = None
    # Signs the ack links in notifications; set it from the environment
    # (${TOCSIN_ACK_SECRET}). Without it, notifications carry no ack link.
    ack_secret: str | None = Field(default=None, repr=False)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http:// or https:// URL, "
                             "e.g. https://tocsin.example.com")
        return url.rstrip("/")

    @field_validator("ack_secret")
    @classmethod
    def _ack_secret_is_long(cls, secret: str | None) -> str | None:
        if not secret:
            return None  # `${TOCSIN_ACK_SECRET:-}` unset: no ack links
        if len(secret) < MIN_ACK_SECRET_LENGTH:
            # Never repeat the secret, not even its length.
            raise ValueError(f"ack_secret is too short: use at least {MIN_ACK_SECRET_LENGTH} "
                             "random characters, e.g. from `openssl rand -hex 32`")
        return secret


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


def _database_entries(value: Any) -> Any:
    """``databases: {name: {url: …}}``: each entry is a check whose ``type`` goes without saying."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return value
    return {name: {"type": "database", **entry} if isinstance(entry, Mapping) else entry
            for name, entry in value.items()}


class PlannedCheckConfig(CheckConfig):
    """A check of a type the brief names but no probe implements yet; kept, not run."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ServicePlatform(_Section):
    """Where a service runs: a key of ``platforms:`` and the platform's id of the service."""

    name: str = Field(min_length=1)
    service_id: str = Field(min_length=1)


def _none_as_empty_mapping(value: Any) -> Any:
    return {} if value is None else value


class Service(_Section):
    """One monitored service: its base URL, platform and checks."""

    url: str | None = None
    platform: ServicePlatform | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # Statically the base class; config_model() substitutes the union of check types.
    checks: list[CheckConfig] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            if "://" not in url:
                raise ValueError("URL without scheme: write it in full, "
                                 "e.g. https://api.example.com or http://127.0.0.1:8001")
            raise ValueError("a service URL must start with http:// or https:// and name a host")
        return url.rstrip("/")


class TocsinConfig(_Section):
    """The whole of ``tocsin.yaml``."""

    storage: str = "sqlite:///tocsin.db"
    retention: Annotated[RetentionSettings, BeforeValidator(_none_as_empty_mapping)] = Field(
        default_factory=RetentionSettings)
    defaults: Defaults = Field(default_factory=Defaults)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    status_page: StatusPageSettings = Field(default_factory=StatusPageSettings)
    services: dict[str, Service] = Field(default_factory=dict)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    policies: Policies = Field(default_factory=Policies)
    inhibit: Annotated[list[InhibitRule], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list)
    maintenance: Annotated[list[MaintenanceWindow], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list)
    # Checks of the host Tocsin runs on, named host:<metric>[:<path or process>].
    host: Annotated[list[SystemCheckConfig], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list)

    # Databases to check, by name: each is one `database` check of service <name>.
    databases: Annotated[dict[str, DatabaseCheckConfig], BeforeValidator(_database_entries)] = (
        Field(default_factory=dict))

    # Sections later issues give a schema; accepted as written until then. Policies
    # may name only channels that are keys of `channels` (tocsin.config.references).
    # Hosting platforms by name (typed in config_model(): one model per platform type).
    platforms: Annotated[dict[str, PlatformConfig], BeforeValidator(_none_as_empty_mapping)] = (
        Field(default_factory=dict))
    channels: dict[str, Any] = Field(default_factory=dict)  # typed in config_model()
    # Named fixes that alert rules name in `remediate:` (tocsin.config.references).
    remediation: Annotated[RemediationSettings, BeforeValidator(_none_as_empty_mapping)] = (
        Field(default_factory=RemediationSettings))
    # Service level objectives, each evaluated by an internal `slo:<name>` check.
    slos: Annotated[list[SLOConfig], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list)
    reports: Annotated[ReportsSettings, BeforeValidator(_none_as_empty_mapping)] = Field(
        default_factory=ReportsSettings)
    silences: Any = None
    heartbeats: Any = None
    metrics: Any = None

    @property
    def base_url(self) -> str:
        """Where notifications link to: ``alerting.base_url``, else the web server's address."""
        if self.alerting.base_url is not None:
            return self.alerting.base_url
        host = self.web.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"  # a wildcard bind is no address to link to
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.web.port}"

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, storage: str) -> str:
        # The URL may hold a password: the message must not repeat it.
        if not storage.startswith(_STORAGE_SCHEMES):
            raise ValueError("storage must be a sqlite:// or postgresql:// URL, "
                             "e.g. sqlite:///tocsin.db")
        return storage


_models: dict[frozenset[str], type[TocsinConfig]] = {}


def config_model() -> type[TocsinConfig]:
    """A subclass of :class:`TocsinConfig` whose checks are the registered check types.

    Built on first use and again when a probe registers later, so it never
    depends on which probe modules were imported before this one.
    """
    from tocsin.channels.registry import channel_config_union, channel_types
    from tocsin.platforms.registry import platform_config_union, platform_types
    from tocsin.probes.registry import probe_types

    registered = (frozenset(probe_types()) | {f"channel:{name}" for name in channel_types()}
                  | {f"platform:{name}" for name in platform_types()})
    model = _models.get(registered)
    if model is None:
        checks: Any = list[check_union()]  # type: ignore[misc]
        service: Any = create_model("Service", __base__=Service, __module__=__name__,
                                    checks=(checks, Field(default_factory=list)))
        services: Any = dict[str, service]
        channels: Any = Annotated[dict[str, channel_config_union()],  # type: ignore[misc]
                                  BeforeValidator(_none_as_empty)]
        platforms: Any = Annotated[dict[str, platform_config_union()],  # type: ignore[misc]
                                   BeforeValidator(_none_as_empty_mapping)]
        model = create_model("TocsinConfig", __base__=TocsinConfig, __module__=__name__,
                             services=(services, Field(default_factory=dict)),
                             channels=(channels, Field(default_factory=dict)),
                             platforms=(platforms, Field(default_factory=dict)))
        _models[registered] = model
    return model


def check_models() -> dict[str, type[CheckConfig]]:
    """Union tag → config model: one tag per registered type, plus :data:`PLANNED_TAG`."""
    from tocsin.probes.registry import probe_types

    models = {name: probe.config_model for name, probe in sorted(probe_types().items())}
    models[PLANNED_TAG] = PlannedCheckConfig
    return models


def known_check_types() -> list[str]:
    """Every check type a config may name: registered and planned."""
    from tocsin.probes.registry import PLANNED_TYPES, probe_types

    return sorted(set(probe_types()) | PLANNED_TYPES)


def check_union() -> Any:
    """The discriminated union of every check config model, tagged by ``type``."""
    models = check_models()
    members = tuple(Annotated[model, Tag(tag)] for tag, model in models.items())
    return Annotated[Union[members], Discriminator(_check_tag)]  # noqa: UP007


def _check_tag(value: Any) -> str | None:
    from tocsin.probes.registry import PLANNED_TYPES, probe_types

    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    if kind in probe_types():
        return kind
    return PLANNED_TAG if kind in PLANNED_TYPES else None
