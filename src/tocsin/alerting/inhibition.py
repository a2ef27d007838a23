"""Inhibition: an open alert that explains others keeps them quiet. One incident pages once.

Built-in rules (SEMANTICS.md), over alerts of the same service:

(a) a ``down`` alert inhibits every alert whose alertname is not ``down``
    (latency, error rate, a failed deploy: symptoms of the outage);
(b) an alert inhibits alerts of lower severity.

Both are one strict order: ``(not down, severity rank)``. An alert inhibits
another of its service when it comes strictly first, so ``down`` wins over
(b) when they disagree (a P2 down inhibits a P1 latency alert, and not the
other way round), two alerts of equal rank never inhibit each other, and no
alert inhibits itself.

Rules from the config (``inhibit:``) work like Alertmanager's: an open alert
matching ``source`` inhibits an alert matching ``target`` when both have the
same value (or both lack) each label in ``equal``. As in Alertmanager, an alert
matching both sides of a rule is not inhibited by one that does too, and
across all rules a pair that would inhibit each other cancels out: two alerts
never silence each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from tocsin.alerting.model import Severity
from tocsin.alerting.silences import Matchers, matches

Labels = Mapping[str, str]
DOWN = "down"


class InhibitRule(BaseModel):
    """One entry of ``inhibit:``: ``source`` alerts mute ``target`` alerts sharing ``equal``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Matchers
    target: Matchers
    equal: tuple[str, ...] = ()

    def inhibits(self, source: Labels, target: Labels) -> bool:
        """True when the open alert ``source`` mutes the alert ``target`` under this rule."""
        if not (matches(self.target, target) and matches(self.source, source)):
            return False
        if any(source.get(name) != target.get(name) for name in self.equal):
            return False
        # An alert on both sides may not be muted by another on both sides (itself included).
        both = matches(self.source, target) and matches(self.target, source)
        return not both


def builtin_inhibits(source: Labels, source_severity: Severity,
                     target: Labels, target_severity: Severity) -> bool:
    """The built-in rules: same service, and ``source`` strictly first in (not down, rank)."""
    service = source.get("service")
    if not service or service != target.get("service"):
        return False
    if _same_alert(source, target):
        return False
    return _order(source, source_severity) < _order(target, target_severity)


def _order(labels: Labels, severity: Severity) -> tuple[bool, int]:
    return labels.get("alertname") != DOWN, severity.rank


def _same_alert(a: Labels, b: Labels) -> bool:
    fingerprint = a.get("fingerprint")
    return fingerprint is not None and fingerprint == b.get("fingerprint")


def _mutes(source: Labels, source_severity: Severity, target: Labels,
           target_severity: Severity, rules: Sequence[InhibitRule], builtin: bool) -> bool:
    if _same_alert(source, target):
        return False
    if builtin and builtin_inhibits(source, source_severity, target, target_severity):
        return True
    return any(rule.inhibits(source, target) for rule in rules)


def inhibitor(
    labels: Labels, severity: Severity, open_alerts: Iterable[tuple[Labels, Severity]],
    rules: Sequence[InhibitRule] = (), *, builtin: bool = True,
) -> Labels | None:
    """The labels of the first open alert that inhibits this one, or None.

    ``open_alerts`` are the firing or acknowledged alerts (labels as from
    :func:`tocsin.alerting.silences.alert_labels`, with their severity); the
    alert itself may be among them and is skipped.
    """
    for other, other_severity in open_alerts:
        if not _mutes(other, other_severity, labels, severity, rules, builtin):
            continue
        if _mutes(labels, severity, other, other_severity, rules, builtin):
            continue  # they would mute each other: neither does
        return other
    return None


def inhibited(
    labels: Labels, severity: Severity, open_alerts: Iterable[tuple[Labels, Severity]],
    rules: Sequence[InhibitRule] = (), *, builtin: bool = True,
) -> bool:
    """True when an open alert inhibits the alert with ``labels`` and ``severity``."""
    return inhibitor(labels, severity, open_alerts, rules, builtin=builtin) is not None
