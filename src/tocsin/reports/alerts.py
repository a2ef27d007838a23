"""The alert review: which rules make noise, and which are acted on (``tocsin report alerts``).

Per rule (a check's alert, by fingerprint) over the period, from the lifecycle
events and the remediation audit log:

- ``fired``: times it started firing (an unack does not count);
- ``acked`` and the median time from firing to the ack;
- ``unacted``: firings that resolved with nobody acknowledging them;
- ``short``: firings that resolved within :data:`SHORT_FIRING` — likely noise;
- ``flapping``: whether it is damped as flapping now;
- ``remediations``: what ran for it, by action and outcome.

Noisiest first: most firings, then most never acted on.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tocsin.alerting.model import AlertEvent, AlertState
from tocsin.store.base import Store

SHORT_FIRING = 300.0
PAGE = 5000


@dataclass
class RuleReview:
    fingerprint: str
    check: str
    rule: str
    severity: str
    fired: int = 0
    acked: int = 0
    unacted: int = 0
    short: int = 0
    flapping: bool = False
    ack_delays: list[float] = field(default_factory=list)
    remediations: Counter[str] = field(default_factory=Counter)

    @property
    def median_ack_s(self) -> float | None:
        return statistics.median(self.ack_delays) if self.ack_delays else None

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "check": self.check, "rule": self.rule,
                "severity": self.severity, "fired": self.fired, "acked": self.acked,
                "median_ack_s": self.median_ack_s, "unacted": self.unacted,
                "short": self.short, "flapping": self.flapping,
                "remediations": dict(self.remediations)}


def events_since(store: Store, since: float, until: float) -> list[AlertEvent]:
    """Every lifecycle event in ``[since, until)``, oldest first, read page by page."""
    found: list[AlertEvent] = []
    seen: set[tuple[str, float, str]] = set()
    cursor = since
    while True:
        page = store.alert_events(since=cursor, limit=PAGE)
        fresh = [e for e in page if (e.fingerprint, e.at, e.to_state.value) not in seen
                 and e.at < until]
        for event in fresh:
            seen.add((event.fingerprint, event.at, event.to_state.value))
        found.extend(fresh)
        if len(page) < PAGE or not fresh:
            return found
        cursor = page[-1].at


def review_alerts(store: Store, since: float, until: float) -> list[RuleReview]:
    alerts = {alert.fingerprint: alert for alert in store.load_alerts()}
    reviews: dict[str, RuleReview] = {}

    def review(fingerprint: str, severity: str) -> RuleReview:
        found = reviews.get(fingerprint)
        if found is None:
            alert = alerts.get(fingerprint)
            check, _, metric = fingerprint.partition(":")
            found = reviews[fingerprint] = RuleReview(
                fingerprint, alert.check if alert else check, alert.rule if alert else metric,
                alert.severity.value if alert else severity,
                flapping=bool(alert and alert.flapping))
        return found

    fired_at: dict[str, float] = {}
    acked_since_fire: set[str] = set()
    for event in events_since(store, since, until):
        entry = review(event.fingerprint, event.severity.value)
        key = event.fingerprint
        if event.to_state is AlertState.FIRING and event.from_state is not AlertState.ACKNOWLEDGED:
            entry.fired += 1
            fired_at[key] = event.at
            acked_since_fire.discard(key)
        elif event.to_state is AlertState.ACKNOWLEDGED:
            entry.acked += 1
            acked_since_fire.add(key)
            if key in fired_at:
                entry.ack_delays.append(event.at - fired_at[key])
        elif event.to_state is AlertState.RESOLVED and key in fired_at:
            if key not in acked_since_fire:
                entry.unacted += 1
            if event.at - fired_at.pop(key) <= SHORT_FIRING:
                entry.short += 1
    attempts, _ = store.list_attempts(since=since, limit=100_000)
    for attempt in attempts:
        if attempt.started_at < until and attempt.fingerprint in alerts:
            alert = alerts[attempt.fingerprint]
            entry = review(attempt.fingerprint, alert.severity.value)
            entry.remediations[f"{attempt.action} {attempt.state.value}"] += 1
    return sorted(reviews.values(), key=lambda r: (-r.fired, -r.unacted, r.fingerprint))


def render_alert_review(reviews: list[RuleReview], since_text: str) -> str:
    """A plain-text table for the terminal."""
    if not reviews:
        return f"No alert fired in the last {since_text}.\n"
    header = (f"{'rule':<48} {'sev':<3} {'fired':>5} {'acked':>5} {'ack p50':>8} "
              f"{'unacted':>7} {'<5m':>4} {'flap':>4}  remediations")
    lines = [f"Alert review, last {since_text} (noisiest first)", "", header, "-" * len(header)]
    for r in reviews:
        median = r.median_ack_s
        ack = "—" if median is None else (f"{median / 60:.0f}m" if median >= 60
                                          else f"{median:.0f}s")
        remediations = ", ".join(f"{k} ×{n}" for k, n in sorted(r.remediations.items())) or "—"
        lines.append(f"{r.fingerprint[:48]:<48} {r.severity:<3} {r.fired:>5} {r.acked:>5} "
                     f"{ack:>8} {r.unacted:>7} {r.short:>4} {'yes' if r.flapping else '':>4}  "
                     f"{remediations}")
    return "\n".join(lines) + "\n"
