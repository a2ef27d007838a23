"""Checks resolved against their service and the defaults, and the rules across checks.

The rules run on the interpolated data, not on validated models, so that they
report alongside schema errors instead of after them: a user fixing a config
sees every mistake in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tocsin.config.durations import parse_duration
from tocsin.config.issues import ConfigIssue, KeyPath, format_key_path, line_of
from tocsin.config.model import PlannedCheckConfig, TocsinConfig, check_interval, check_timeout
from tocsin.probes.base import CheckSpec

_TIMING_RULES: dict[str, Callable[[float], float]] = {
    "interval": check_interval,
    "timeout": check_timeout,
}


def check_name(service: str, check: Mapping[str, Any]) -> str:
    """A check's ``name``, or ``service:type`` when it has none."""
    name = check.get("name")
    return name if isinstance(name, str) and name else f"{service}:{check.get('type')}"


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
        if name not in first_use:
            first_use[name] = path
            continue
        earlier = f"line {line_of(first_use[name], lines)}"
        if check.get("name"):
            issue((*path, "name"), f"duplicate check name {name!r} (also used on {earlier})")
        else:
            issue(path, f"a second {check.get('type')!r} check in service {service!r}: "
                        f"give it a distinct `name:` ({name!r} is already taken on {earlier})")
    return issues


def resolve_checks(config: TocsinConfig) -> tuple[tuple[CheckSpec[Any], ...], tuple[str, ...]]:
    """Every check of every service as a :class:`CheckSpec`, and the names of planned ones."""
    specs: list[CheckSpec[Any]] = []
    skipped: list[str] = []
    for service_name, service in config.services.items():
        for check in service.checks:
            spec = CheckSpec(
                name=check_name(service_name, {"name": check.name, "type": check.type}),
                service=service_name,
                service_url=service.url,
                interval=check.interval if check.interval is not None
                else config.defaults.interval,
                timeout=check.timeout if check.timeout is not None else config.defaults.timeout,
                config=check,
            )
            specs.append(spec)
            if isinstance(check, PlannedCheckConfig):
                skipped.append(spec.name)
    return tuple(specs), tuple(skipped)


def raw_checks(data: Any) -> Iterator[tuple[str, KeyPath, Mapping[str, Any]]]:
    """(service, key path, check) for every check mapping in unvalidated config data."""
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

