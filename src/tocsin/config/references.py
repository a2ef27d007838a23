"""Names one section uses that another must define, and names that must be unique.

- every channel a policy names (``channels``, ``escalation``) is a key of ``channels:``;
- no two alert rules of one check share a fingerprint (``<check>:<metric>``);
- every platform a service or check names is a key of ``platforms:``, and a
  ``deploy`` check has a platform service (its own, or its service's);
- no two heartbeats share a token (nor is one written into the file:
  :func:`literal_secret_issues`);
- every database a ``metric`` check names (``database:``) is a key of ``databases:``;
- every remediation an alert rule names (``remediate:``) is a policy under
  ``remediation:``, and one whose action is ``platform.*`` is named only on a
  check with a platform service.

Like :mod:`tocsin.config.resolve`, these run on the interpolated data so that
they report alongside schema errors.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tocsin.alerting.conditions import parse_condition
from tocsin.config.durations import parse_duration
from tocsin.config.issues import ConfigIssue, KeyPath, did_you_mean, format_key_path, line_of
from tocsin.config.resolve import check_name, raw_checks
from tocsin.remediation.policy import MODE_KEY, PLATFORM_ACTION_PREFIX

_SEVERITIES = ("P1", "P2", "P3", "P4")
_CHANNEL_LISTS = ("channels", "escalation")


def reference_issues(data: Any, file: str, lines: Mapping[KeyPath, int]) -> list[ConfigIssue]:
    """Unknown channels in policies, and rules of one check with the same fingerprint."""
    if not isinstance(data, Mapping):
        return []
    issues: list[ConfigIssue] = []

    def issue(path: KeyPath, message: str) -> None:
        issues.append(ConfigIssue(file, format_key_path(path), line_of(path, lines), message))

    _policy_channels(data, issue)
    _channel_fallbacks(data, issue)
    _duplicate_fingerprints(data, issue, lines)
    _platform_references(data, issue)
    _remediation_references(data, issue)
    _metric_databases(data, issue)
    _heartbeat_tokens(data, issue)
    _slo_references(data, issue)
    _report_channels(data, issue)
    return issues


def literal_secret_issues(data: Any, substituted: Collection[KeyPath], file: str,
                          lines: Mapping[KeyPath, int]) -> list[ConfigIssue]:
    """A heartbeat's or the push API's token written into the file, not taken from the environment.

    Each is the only credential its URL has: it belongs with the other secrets,
    in the environment (``token: ${BACKUP_PING_TOKEN}``) or a ``*_FILE``.
    """
    issues = []
    web = data.get("web") if isinstance(data, Mapping) else None
    if isinstance(web, Mapping) and isinstance(web.get("push_token"), str) \
            and ("web", "push_token") not in substituted:
        issues.append(ConfigIssue(
            file, "web.push_token", line_of(("web", "push_token"), lines),
            "the push token is a secret: take it from the environment, e.g. "
            "`push_token: ${TOCSIN_PUSH_TOKEN}` (or TOCSIN_PUSH_TOKEN_FILE), not the config file"))
    for _service, path, check in raw_checks(data):
        if check.get("type") == "heartbeat" and isinstance(check.get("token"), str) \
                and (*path, "token") not in substituted:
            key: KeyPath = (*path, "token")
            issues.append(ConfigIssue(
                file, format_key_path(key), line_of(key, lines),
                "the token is a secret: take it from the environment, e.g. "
                "`token: ${BACKUP_PING_TOKEN}` (or BACKUP_PING_TOKEN_FILE), not the config file"))
    return issues


def _heartbeat_tokens(data: Mapping[str, Any], issue: Any) -> None:
    """Two heartbeats with one token would take each other's pings."""
    owners: dict[str, str] = {}
    for service, path, check in raw_checks(data):
        token = check.get("token")
        if check.get("type") != "heartbeat" or not isinstance(token, str) or not token:
            continue
        name = check_name(service, check)
        if token in owners:
            issue((*path, "token"), f"heartbeat {name!r} has the same token as "
                                    f"{owners[token]!r}: each heartbeat needs its own")
        else:
            owners[token] = name


def _policy_channels(data: Mapping[str, Any], issue: Any) -> None:
    policies = data.get("policies")
    if not isinstance(policies, Mapping):
        return
    channels = data.get("channels")
    known = sorted(str(name) for name in channels) if isinstance(channels, Mapping) else []
    for severity in _SEVERITIES:
        policy = policies.get(severity)
        if not isinstance(policy, Mapping):
            continue
        for key in _CHANNEL_LISTS:
            names = policy.get(key)
            if not isinstance(names, list):
                continue
            for index, name in enumerate(names):
                if isinstance(name, str) and name not in known:
                    issue(("policies", severity, key, index),
                          f"unknown channel {name!r}{_channel_hint(name, known)}")


def _channel_fallbacks(data: Mapping[str, Any], issue: Any) -> None:
    """A fallback names a channel; an email channel without addresses must be a fallback."""
    channels = data.get("channels")
    if not isinstance(channels, Mapping):
        return
    known = sorted(str(name) for name in channels)
    stands_in_for: dict[str, list[Mapping[str, Any]]] = {}
    for name, channel in channels.items():
        if not isinstance(channel, Mapping):
            continue
        fallback = channel.get("fallback")
        if fallback is None:
            continue
        if fallback not in channels:
            issue(("channels", name, "fallback"),
                  f"unknown channel {fallback!r}{_channel_hint(str(fallback), known)}")
        elif fallback == name:
            issue(("channels", name, "fallback"), "a channel cannot be its own fallback")
        else:
            stands_in_for.setdefault(str(fallback), []).append(channel)
    for name, channel in channels.items():
        if not isinstance(channel, Mapping) or channel.get("type") != "smtp":
            continue
        for key in ("from", "to"):
            if channel.get(key):
                continue
            if not any(other.get(key) for other in stands_in_for.get(str(name), [])):
                issue(("channels", name),
                      f"missing key {key!r} (it may be left out only on the fallback of "
                      f"a channel that has it)")


def _channel_hint(name: str, known: Sequence[str]) -> str:
    return did_you_mean(name, known, none="no channels are configured: add it under `channels:`",
                        otherwise="configured channels")


def _duplicate_fingerprints(data: Mapping[str, Any], issue: Any,
                            lines: Mapping[KeyPath, int]) -> None:
    for service, check_path, check in raw_checks(data):
        if not isinstance(check.get("alerts"), list):
            continue
        name = check_name(service, check)
        seen: dict[str, KeyPath] = {}
        for position, rule in enumerate(check["alerts"]):
            path: KeyPath = (*check_path, "alerts", position)
            metric = _metric(rule)
            if metric is None:
                continue  # the schema reports what is wrong with it
            labels = rule.get("labels")
            if isinstance(labels, Mapping) and labels:
                metric += "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"
            fingerprint = f"{name}:{metric}"
            if fingerprint in seen:
                earlier = line_of(seen[fingerprint], lines)
                issue(path, f"a second alert with fingerprint {fingerprint!r} (also on line "
                            f"{earlier}): give one of them a distinct `name:`")
            else:
                seen[fingerprint] = path


def _metric(rule: Any) -> str | None:
    if not isinstance(rule, Mapping):
        return None
    name = rule.get("name")
    if isinstance(name, str) and name:
        return name
    try:
        return parse_condition(rule.get("when")).metric
    except ValueError:
        return None


# Check types that act on a platform service: they need one, from the check or its service.
_PLATFORM_CHECK_TYPES = frozenset({"deploy"})


def _platform_references(data: Mapping[str, Any], issue: Any) -> None:
    """A service's or a check's platform is a key of ``platforms:``; a deploy check has one."""
    platforms = data.get("platforms")
    known = sorted(str(name) for name in platforms) if isinstance(platforms, Mapping) else []
    services = data.get("services")
    if not isinstance(services, Mapping):
        return
    for service_name, service in services.items():
        if not isinstance(service, Mapping):
            continue
        own = service.get("platform")
        service_platform = own if isinstance(own, Mapping) else {}
        name = service_platform.get("name")
        if isinstance(name, str) and name not in known:
            issue(("services", service_name, "platform", "name"),
                  f"unknown platform {name!r}{_platform_hint(name, known)}")
        checks = service.get("checks")
        for index, check in enumerate(checks if isinstance(checks, list) else []):
            if not isinstance(check, Mapping) or check.get("type") not in _PLATFORM_CHECK_TYPES:
                continue
            path: KeyPath = ("services", service_name, "checks", index)
            platform = check.get("platform")
            if isinstance(platform, str) and platform not in known:
                issue((*path, "platform"),
                      f"unknown platform {platform!r}{_platform_hint(platform, known)}")
            if not (platform or service_platform.get("name")) or not (
                    check.get("service_id") or service_platform.get("service_id")):
                issue(path, f"a {check.get('type')} check needs a platform service: set "
                            f"`platform: {{name, service_id}}` on service {service_name!r}, "
                            "or `platform:` and `service_id:` on the check")


def _platform_hint(name: str, known: Sequence[str]) -> str:
    return did_you_mean(
        name, known, none="no platforms are configured: add it under `platforms:`",
        otherwise="configured platforms")


def _remediation_references(data: Mapping[str, Any], issue: Any) -> None:
    """A rule's ``remediate:`` names a policy; a platform action needs a platform service."""
    section = data.get("remediation")
    policies = ({str(name): policy for name, policy in section.items() if name != MODE_KEY}
                if isinstance(section, Mapping) else {})
    known = sorted(policies)
    services = data.get("services")
    for service, check_path, check in raw_checks(data):
        rules = check.get("alerts")
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            name = rule.get("remediate") if isinstance(rule, Mapping) else None
            if not isinstance(name, str):
                continue
            path: KeyPath = (*check_path, "alerts", index, "remediate")
            if name not in policies:
                issue(path, f"unknown remediation {name!r}{_remediation_hint(name, known)}")
                continue
            policy = policies[name]
            action = policy.get("action") if isinstance(policy, Mapping) else None
            if not (isinstance(action, str) and action.startswith(PLATFORM_ACTION_PREFIX)):
                continue
            body = services.get(service) if isinstance(services, Mapping) and service else None
            if not _has_platform_service(body, check):
                where = f"service {service!r}" if service is not None else "a host check"
                issue(path, f"remediation {name!r} runs {action}, but {where} has no platform: "
                            "set `platform: {name, service_id}` on the service")


def _has_platform_service(service: Any, check: Mapping[str, Any]) -> bool:
    own = service.get("platform") if isinstance(service, Mapping) else None
    service_platform = own if isinstance(own, Mapping) else {}
    return bool((check.get("platform") or service_platform.get("name"))
                and (check.get("service_id") or service_platform.get("service_id")))


def _metric_databases(data: Mapping[str, Any], issue: Any) -> None:
    """A metric check's ``database:`` is a key of the top-level ``databases:``."""
    databases = data.get("databases")
    known = sorted(str(name) for name in databases) if isinstance(databases, Mapping) else []
    for _service, path, check in raw_checks(data):
        name = check.get("database")
        if check.get("type") == "metric" and isinstance(name, str) and name not in known:
            issue((*path, "database"), f"unknown database {name!r}" + did_you_mean(
                name, known, none="no databases are configured: add it under `databases:`",
                otherwise="configured databases"))


def _remediation_hint(name: str, known: Sequence[str]) -> str:
    return did_you_mean(
        name, known, none="no remediations are configured: add it under `remediation:`",
        otherwise="configured remediations")


_SLO_CHECK_TYPES = {"availability": "http", "latency": "http", "error_rate": "error_rate"}
_DAY = 86400.0
_RETENTION_DEFAULTS = {"raw": 14 * _DAY, "rollups_5m": 90 * _DAY, "rollups_1h": 730 * _DAY}


def _slo_references(data: Mapping[str, Any], issue: Any) -> None:
    """An SLO names a service and checks that exist and can measure its indicator, and its
    window fits in the retention of the rollups it reads."""
    slos = data.get("slos")
    if not isinstance(slos, list):
        return
    services = data.get("services")
    service_names = sorted(str(n) for n in services) if isinstance(services, Mapping) else []
    checks = {check_name(service, check): (service, check)
              for service, _path, check in raw_checks(data)}
    seen: set[str] = set()
    for index, slo in enumerate(slos):
        if not isinstance(slo, Mapping):
            continue
        path: KeyPath = ("slos", index)
        name = slo.get("name")
        if isinstance(name, str):
            if name in seen:
                issue((*path, "name"), f"duplicate SLO name {name!r}")
            seen.add(name)
        service = slo.get("service")
        if isinstance(service, str) and service != "*" and service not in service_names:
            issue((*path, "service"), f"unknown service {service!r}"
                                      f"{did_you_mean(service, service_names, none='no services')}")
            continue
        kind = _indicator_kind(slo.get("indicator"))
        named = slo.get("checks")
        if isinstance(named, list):
            for position, check in enumerate(named):
                if isinstance(check, str) and check not in checks:
                    issue((*path, "checks", position), f"unknown check {check!r}"
                                                       f"{did_you_mean(check, sorted(checks))}")
            used = [c for c in named if isinstance(c, str) and c in checks]
        elif kind in _SLO_CHECK_TYPES and isinstance(service, str):
            wanted = _SLO_CHECK_TYPES[kind]
            used = [c for c, (owner, body) in checks.items()
                    if owner == service and body.get("type") == wanted]
            if not used:
                issue((*path, "indicator"),
                      f"service {service!r} has no {wanted} check to measure {kind}: add one, "
                      "or name the checks with `checks:`")
        else:
            used = []
        if kind == "error_rate":
            _error_rate_bounds(slo, used, checks, path, issue)
        _slo_retention(data, slo, kind, path, issue)


def _indicator_kind(indicator: object) -> str | None:
    if not isinstance(indicator, str):
        return None
    text = indicator.strip()
    if text.startswith("latency_p"):
        return "latency"
    if text.startswith("error_rate"):
        return "error_rate"
    return text


def _error_rate_bounds(slo: Mapping[str, Any], used: Sequence[str],
                       checks: Mapping[str, tuple[str | None, Mapping[str, Any]]],
                       path: KeyPath, issue: Any) -> None:
    """An error-rate SLO counts the runs of its checks that passed: each check must fail a run
    above the SLO's bound, so an ``expect.error_rate`` it sets has to be that bound (one it
    does not set is filled in by :func:`tocsin.config.resolve.resolve_checks`)."""
    bound = str(slo.get("indicator", "")).partition("<")[2].strip().replace(" ", "")
    for check in used:
        body = checks[check][1]
        expect = body.get("expect")
        given = expect.get("error_rate") if isinstance(expect, Mapping) else None
        if given is not None and str(given).replace(" ", "") != bound:
            issue((*path, "indicator"),
                  f"check {check!r} fails its runs above {given}, but the SLO counts runs "
                  f"under {bound}: set `expect: {{error_rate: {bound}}}` on it, or leave it "
                  "out and the SLO sets it")


def _slo_retention(data: Mapping[str, Any], slo: Mapping[str, Any], kind: str | None,
                   path: KeyPath, issue: Any) -> None:
    try:
        window = 31 * _DAY if slo.get("calendar") == "month" else parse_duration(
            slo.get("window", "30d"))
    except ValueError:
        return  # the schema reports it
    tier = "rollups_5m" if kind == "latency" else "rollups_1h"
    retention = data.get("retention")
    kept = retention.get(tier) if isinstance(retention, Mapping) else None
    try:
        seconds = parse_duration(kept) if kept is not None else _RETENTION_DEFAULTS[tier]
    except ValueError:
        return
    if window > seconds:
        issue((*path, "calendar" if slo.get("calendar") == "month" else "window"),
              f"the window ({window / _DAY:g}d) is longer than the history it reads "
              f"is kept: retention.{tier} is {seconds / _DAY:g}d; raise it or shorten "
              "the window")


_DOCUMENT_CHANNELS = frozenset({"smtp", "sendgrid", "recording"})


def _report_channels(data: Mapping[str, Any], issue: Any) -> None:
    reports = data.get("reports")
    sla = reports.get("sla") if isinstance(reports, Mapping) else None
    names = sla.get("channels") if isinstance(sla, Mapping) else None
    if not isinstance(names, list):
        return
    channels = data.get("channels")
    known = sorted(str(n) for n in channels) if isinstance(channels, Mapping) else []
    for index, name in enumerate(names):
        if isinstance(name, str) and name not in known:
            issue(("reports", "sla", "channels", index),
                  f"unknown channel {name!r}{did_you_mean(name, known, none='no channels')}")
            continue
        body = channels.get(name) if isinstance(channels, Mapping) else None
        kind = body.get("type") if isinstance(body, Mapping) else None
        if isinstance(name, str) and kind not in _DOCUMENT_CHANNELS:
            issue(("reports", "sla", "channels", index),
                  f"channel {name!r} ({kind}) cannot carry the report's document: use an "
                  f"email channel ({', '.join(sorted(_DOCUMENT_CHANNELS - {'recording'}))})")
