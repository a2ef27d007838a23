"""Names one section uses that another must define, and names that must be unique.

- every channel a policy names (``channels``, ``escalation``) is a key of ``channels:``;
- no two alert rules of one check share a fingerprint (``<check>:<metric>``);
- every platform a service or check names is a key of ``platforms:``, and a
  ``deploy`` check has a platform service (its own, or its service's);
- every remediation an alert rule names (``remediate:``) is a policy under
  ``remediation:``, and one whose action is ``platform.*`` is named only on a
  check with a platform service.

Like :mod:`tocsin.config.resolve`, these run on the interpolated data so that
they report alongside schema errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tocsin.alerting.conditions import parse_condition
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
    return issues


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


def _remediation_hint(name: str, known: Sequence[str]) -> str:
    return did_you_mean(
        name, known, none="no remediations are configured: add it under `remediation:`",
        otherwise="configured remediations")
