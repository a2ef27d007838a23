"""Checks resolved against their service and the defaults, and the rules across checks.

The rules run on the interpolated data, not on validated models, so that they
report alongside schema errors instead of after them: a user fixing a config
sees every mistake in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tocsin.config.durations import parse_duration
from tocsin.config.issues import ConfigIssue, KeyPath, format_key_path, line_of
from tocsin.config.model import (
    Defaults,
    PlannedCheckConfig,
    Service,
    TocsinConfig,
    check_interval,
    check_timeout,
)
from tocsin.platforms.base import PlatformTarget
from tocsin.probes.base import CheckConfig, CheckSpec
from tocsin.probes.system import DEFAULT_DISK_PATH
from tocsin.slo.model import IndicatorKind, SLOConfig
from tocsin.slo.probe import INDICATOR_CHECK_TYPES, slo_spec

_TIMING_RULES: dict[str, Callable[[float], float]] = {
    "interval": check_interval,
    "timeout": check_timeout,
}


MAX_CHECK_NAME = 200  # the store keeps names in VARCHAR(255) columns, with room for prefixes

HOST = "host"
"""The prefix of the names of ``host:`` checks, which belong to no service."""


def check_name(service: str | None, check: Mapping[str, Any]) -> str:
    """A check's ``name``, or ``service:type`` when it has none.

    A ``host:`` check (``service`` None) is named for what it watches:
    ``host:cpu``, ``host:disk:/``, ``host:process:nginx``.
    """
    name = check.get("name")
    if isinstance(name, str) and name:
        return name
    if service is not None:
        return f"{service}:{check.get('type')}"
    metric = check.get("metric")
    if metric == "disk":
        subject = check.get("path") or DEFAULT_DISK_PATH
    else:
        subject = check.get("process") or check.get("match") or check.get("pidfile")
    return f"{HOST}:{metric}:{subject}" if subject else f"{HOST}:{metric}"


def rule_issues(data: Any, file: str, lines: Mapping[KeyPath, int]) -> list[ConfigIssue]:
    """Per-check timing limits and unique check names."""
    issues: list[ConfigIssue] = []

    def issue(path: KeyPath, message: str) -> None:
        issues.append(ConfigIssue(file, format_key_path(path), line_of(path, lines), message))

    first_use: dict[str, KeyPath] = {}
    for service, path, check in raw_checks(data):
        for key, rule in _TIMING_RULES.items():
            if key not in check:
                continue
            try:
                seconds = parse_duration(check[key])
            except ValueError:
                continue  # a value that does not parse is the schema's to report
            try:
                rule(seconds)
            except ValueError as error:
                issue((*path, key), str(error))
        name = check_name(service, check)
        if len(name) > MAX_CHECK_NAME:
            issue((*path, "name") if check.get("name") else path,
                  f"the check name is {len(name)} characters long; at most {MAX_CHECK_NAME}")
        if name not in first_use:
            first_use[name] = path
            continue
        earlier = f"line {line_of(first_use[name], lines)}"
        if check.get("name"):
            issue((*path, "name"), f"duplicate check name {name!r} (also used on {earlier})")
        else:
            where = f"in service {service!r}" if service is not None else f"under `{HOST}:`"
            issue(path, f"a second {check.get('type')!r} check {where}: "
                        f"give it a distinct `name:` ({name!r} is already taken on {earlier})")
    return issues


def resolve_checks(config: TocsinConfig) -> tuple[tuple[CheckSpec[Any], ...], tuple[str, ...]]:
    """Every check (services, ``host:``, ``databases:``, one per SLO) as a spec; planned names."""
    defaults = config.defaults
    specs: list[CheckSpec[Any]] = []
    skipped: list[str] = []
    for service_name, service in config.services.items():
        for check in service.checks:
            name = check_name(service_name, {"name": check.name, "type": check.type})
            spec = _spec(name, service_name, service.url, check, defaults)
            specs.append(replace(spec, platform=platform_target(config, service, check)))
            if isinstance(check, PlannedCheckConfig):
                skipped.append(name)
    for host_check in config.host:
        # Host checks belong to no service: a full disk does not explain a busy CPU,
        # so neither inhibits the other, and each opens its own incident.
        name = check_name(None, host_check.model_dump(include=_HOST_NAME_KEYS))
        specs.append(_spec(name, None, None, host_check, defaults))
    for database, database_check in config.databases.items():
        # A database is its own service: `demo:database`, its alerts `demo:database:down`.
        name = check_name(database, {"name": database_check.name, "type": "database"})
        specs.append(_spec(name, database, None, database_check, defaults))
    for slo in config.slos:
        measured = slo_checks(slo, specs)
        if slo.parsed_indicator.kind is IndicatorKind.ERROR_RATE:
            specs = [_with_error_bound(spec, slo) if spec.name in measured else spec
                     for spec in specs]
        specs.append(slo_spec(slo, measured))
    return tuple(specs), tuple(skipped)


def _with_error_bound(spec: CheckSpec[Any], slo: SLOConfig) -> CheckSpec[Any]:
    """An ``error_rate < X%`` SLO counts the runs that passed: its checks fail a run above X.

    A check that sets no ``expect.error_rate`` gets the SLO's bound (one that sets
    another is a config error, see :mod:`tocsin.config.references`).
    """
    config = spec.config
    expect = getattr(config, "expect", None)
    bound = slo.parsed_indicator.threshold
    if expect is None or getattr(expect, "error_rate", 0) is not None or bound is None:
        return spec
    updated = config.model_copy(update={
        "expect": expect.model_copy(update={"error_rate": bound / 100})})
    return replace(spec, config=updated)


def slo_checks(slo: SLOConfig, specs: Sequence[CheckSpec[Any]]) -> list[str]:
    """The checks an SLO measures: those it names, else its service's checks of the right type."""
    if slo.checks is not None:
        return list(slo.checks)
    types = INDICATOR_CHECK_TYPES[slo.parsed_indicator.kind]
    return [spec.name for spec in specs if spec.service == slo.service and spec.type in types]


def platform_target(config: TocsinConfig, service: Service,
                    check: CheckConfig) -> PlatformTarget | None:
    """The platform service a check watches: its own platform and service_id, else its service's.

    Only checks that act on a platform (``deploy``) have the two keys; for the
    others the service's platform is passed on as it is. None when either part
    is missing (:func:`~tocsin.config.references.reference_issues` reports it
    for a check that needs one) or the platform is not configured.
    """
    own_platform, own_service_id = (getattr(check, "platform", None),
                                    getattr(check, "service_id", None))
    platform = own_platform if isinstance(own_platform, str) else None
    service_id = own_service_id if isinstance(own_service_id, str) else None
    if service.platform is not None:
        platform = platform or service.platform.name
        service_id = service_id or service.platform.service_id
    if platform is None or service_id is None or platform not in config.platforms:
        return None
    return PlatformTarget(platform, config.platforms[platform], service_id)


_HOST_NAME_KEYS = {"name", "metric", "path", "process", "match", "pidfile"}


def _spec(name: str, service: str | None, url: str | None, check: CheckConfig,
          defaults: Defaults) -> CheckSpec[Any]:
    return CheckSpec(
        name=name,
        service=service,
        service_url=url,
        interval=check.interval if check.interval is not None else defaults.interval,
        timeout=check.timeout if check.timeout is not None else defaults.timeout,
        config=check,
    )


def raw_checks(data: Any) -> Iterator[tuple[str | None, KeyPath, Mapping[str, Any]]]:
    """(service, key path, check) for every check mapping in unvalidated config data.

    Checks under ``host:`` come after those of services, with service None; then
    each entry of ``databases:``, with its name as service and its type filled in.
    """
    yield from _service_checks(data)
    host = data.get(HOST) if isinstance(data, Mapping) else None
    if isinstance(host, list):
        for index, check in enumerate(host):
            if isinstance(check, Mapping):
                yield None, (HOST, index), check
    databases = data.get("databases") if isinstance(data, Mapping) else None
    if isinstance(databases, Mapping):
        for database, entry in databases.items():
            if isinstance(entry, Mapping):
                yield str(database), ("databases", database), {"type": "database", **entry}


def _service_checks(data: Any) -> Iterator[tuple[str, KeyPath, Mapping[str, Any]]]:
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return
    for service, body in services.items():
        checks = body.get("checks") if isinstance(body, Mapping) else None
        if not isinstance(checks, list):
            continue
        for index, check in enumerate(checks):
            if isinstance(check, Mapping):
                yield str(service), ("services", service, "checks", index), check

