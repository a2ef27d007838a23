"""Read a health document in an ``http`` answer, so a result says *which* dependency fails.

Understood shapes (status words case-insensitive)::

    tocsin.health        {"status": "degraded", "checks": {"cache": {"status": "unhealthy",
                                                                     "message": "timed out"}}}
    IETF health+json     {"status": "warn", "checks": {"db:responseTime": [{"status": "warn",
                                                                           "output": "slow"}]}}
    Spring Boot          {"status": "DOWN", "components": {"db": {"status": "DOWN",
                                                                  "details": {"error": "…"}}}}
    plain                {"status": "ok", "checks": {"db": "ok", "cache": "degraded"}}

A body counts as a health document when its media type is JSON
(``application/json`` or any ``application/…+json``, such as
``application/health+json``), it is at most :data:`HEALTH_BODY_LIMIT` bytes,
its ``status`` is a word below, and it has a ``checks`` (or Spring's
``components``/``details``) object; ``application/health+json`` may omit the
checks. Anything else is ``None``: the check is judged as before.

Everything taken from the body is cut short, as the target may lie or ramble.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

HEALTH_BODY_LIMIT = 64 * 1024
MAX_FAILING = 10
_NAME_LIMIT = 80
_MESSAGE_LIMIT = 160


class HealthState(enum.Enum):
    """A health document's verdict, whatever words it used."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


_WORDS = {
    "healthy": HealthState.HEALTHY, "ok": HealthState.HEALTHY, "pass": HealthState.HEALTHY,
    "up": HealthState.HEALTHY,
    "degraded": HealthState.DEGRADED, "warn": HealthState.DEGRADED,
    "warning": HealthState.DEGRADED,
    "unhealthy": HealthState.UNHEALTHY, "fail": HealthState.UNHEALTHY,
    "down": HealthState.UNHEALTHY, "error": HealthState.UNHEALTHY,
    "out_of_service": HealthState.UNHEALTHY,
}
_CHECK_KEYS = ("checks", "components", "details")
_MESSAGE_KEYS = ("message", "output", "error")


@dataclass(frozen=True, slots=True)
class FailingCheck:
    """A sub-check the document reports as not healthy."""

    name: str
    state: HealthState
    message: str

    def describe(self) -> str:
        return f"{self.name} — {self.message}" if self.message else self.name


@dataclass(frozen=True, slots=True)
class HealthDocument:
    """What a health answer says: its verdict and the sub-checks that are not healthy."""

    state: HealthState
    failing: tuple[FailingCheck, ...]
    more_failing: int = 0  # failing sub-checks beyond MAX_FAILING, counted, not listed

    def details(self) -> dict[str, Any]:
        """The JSON kept in ``CheckResult.details["health"]``."""
        entry: dict[str, Any] = {
            "status": self.state.value,
            "failing": [{"name": check.name, "status": check.state.value,
                         "message": check.message} for check in self.failing],
        }
        if self.more_failing:
            entry["more_failing"] = self.more_failing
        return entry

    def summary(self) -> str:
        """``degraded: cache — timed out after 2 s; search — status 500``."""
        parts = [check.describe() for check in self.failing]
        if self.more_failing:
            parts.append(f"{self.more_failing} more")
        return f"{self.state.value}: {'; '.join(parts)}" if parts else self.state.value


def is_json_media(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, ``…+json``)."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json"))


def read_health(content_type: str | None, body: bytes) -> HealthDocument | None:
    """The health document in ``body``, or None when it is not one.

    The bytes go to the JSON parser as they are: JSON is UTF-8 (RFC 8259), and
    ``json.loads`` also recognises UTF-16/32, so no charset is looked up.
    """
    if not body or len(body) > HEALTH_BODY_LIMIT or not is_json_media(content_type):
        return None
    if b'"status"' not in body:  # a JSON API answer, not a health document: skip the parse
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    state = _state(document.get("status"))
    if state is None:
        return None
    checks = next((document[key] for key in _CHECK_KEYS if isinstance(document.get(key), dict)),
                  None)
    if checks is None:
        if "health+json" not in (content_type or "").lower():
            return None
        checks = {}
    failing = [check for name, entry in checks.items()
               if (check := _failing(str(name), entry)) is not None]
    return HealthDocument(state, tuple(failing[:MAX_FAILING]),
                          max(0, len(failing) - MAX_FAILING))


def _state(word: object) -> HealthState | None:
    return _WORDS.get(word.lower()) if isinstance(word, str) else None


def _failing(name: str, entry: object) -> FailingCheck | None:
    """The sub-check ``name`` if it is not healthy; unknown or healthy entries give None."""
    if isinstance(entry, dict):
        state = _state(entry.get("status"))
    elif isinstance(entry, str):
        state = _state(entry)
    elif isinstance(entry, bool):
        state = None if entry else HealthState.UNHEALTHY
    elif isinstance(entry, list):  # IETF: one object per component of the check
        return _worst(name, [item for item in entry if isinstance(item, dict)])
    else:
        return None
    if state is None or state is HealthState.HEALTHY:
        return None
    message = _message(entry) if isinstance(entry, dict) else ""
    return FailingCheck(_cut(name, _NAME_LIMIT), state, message)


def _worst(name: str, items: list[dict[str, Any]]) -> FailingCheck | None:
    rank = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}
    worst: FailingCheck | None = None
    for item in items:
        check = _failing(name, item)
        if check is not None and (worst is None or rank[check.state] > rank[worst.state]):
            worst = check
    return worst


def _message(entry: dict[str, Any]) -> str:
    details = entry.get("details")
    sources = [entry, details] if isinstance(details, dict) else [entry]
    for source in sources:
        for key in _MESSAGE_KEYS:
            text = source.get(key)
            if isinstance(text, str) and text.strip():
                return _cut(" ".join(text.split()), _MESSAGE_LIMIT)
    return ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
