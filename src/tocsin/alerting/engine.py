"""The alert engine: results in, alert transitions and notifications out.

``observe(result)`` evaluates the check's rules and steps each alert through
its lifecycle; ``tick()`` does what time alone decides (repeats, escalation,
ack timeouts, grouped updates, digests, silences that ended). Both are
synchronous and read time only from the injected clock, so every rule of
SEMANTICS.md is a unit test with a fake clock.

Routing, for an alert that becomes firing:

1. silenced (a silence or maintenance window matches) or inhibited (a
   firing root alert of the same service) → recorded, not notified;
2. flapping → held; one "flapping" notice instead;
3. a digest policy → kept for the next digest;
4. otherwise it joins its service's open incident: a new incident pages at
   once; a later alert of a lower or equal severity is held for
   ``group_interval`` and goes out with the others as one update.

Every change is handed to ``persist`` as one :class:`AlertingBatch`, which the
store writes in one transaction (alerts, events, incidents, outbox entries).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tocsin.alerting import lifecycle, notices
from tocsin.alerting.clock import Clock
from tocsin.alerting.digests import DigestBook
from tocsin.alerting.inhibition import DOWN, InhibitRule, inhibited
from tocsin.alerting.model import (
    Alert,
    AlertEvent,
    AlertSnapshot,
    AlertState,
    Delivery,
    Incident,
    NotificationKind,
    Severity,
    Silence,
)
from tocsin.alerting.policies import Policies, Policy
from tocsin.alerting.rules import AlertRule
from tocsin.alerting.silences import (
    MaintenanceWindow,
    active_silence,
    alert_labels,
    alert_metric,
)
from tocsin.probes import CheckResult, CheckSpec

log = logging.getLogger(__name__)


@dataclass
class AlertingBatch:
    """What one observe/tick changed, to persist in one transaction."""

    alerts: list[Alert] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.events or self.incidents or self.deliveries)


@dataclass(frozen=True)
class BoundRule:
    """A rule attached to its check."""

    rule: AlertRule
    spec: CheckSpec[Any]
    fingerprint: str
    labels: dict[str, str]


@dataclass
class _Group:
    """Alerts waiting to go out together as one incident update."""

    incident: Incident
    alerts: dict[str, Alert] = field(default_factory=dict)
    flush_at: float = 0.0


@dataclass(frozen=True)
class EngineSettings:
    """The alerting parts of the config the engine needs."""

    policies: Policies
    channels: tuple[str, ...]
    inhibit: tuple[InhibitRule, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    base_url: str | None = None
    ack_link: Callable[[str], str] | None = None  # fingerprint → signed ack URL
    ack_channels: tuple[str, ...] = ()  # channels told of acknowledgements (PagerDuty)


Persist = Callable[[AlertingBatch], None]
Recheck = Callable[[str, float], None]  # check name, delay in seconds
OnFiring = Callable[[Alert, AlertRule], None]  # an alert of a rule with `remediate:` fired


class AlertEngine:
    """Owns every alert's state while the process runs; the store keeps a copy."""

    def __init__(self, settings: EngineSettings, clock: Clock, persist: Persist,
                 recheck: Recheck | None = None, on_firing: OnFiring | None = None) -> None:
        self.clock = clock
        self.persist = persist
        self.recheck = recheck
        self.on_firing = on_firing  # the remediator's entry point, if remediation is configured
        self.alerts: dict[str, Alert] = {}
        self.incidents: dict[str, Incident] = {}  # open incidents by group (service or check)
        self.silences: dict[str, Silence] = {}
        self._groups: dict[str, _Group] = {}
        self._digests = DigestBook()
        self._sequence = itertools.count(1)
        self._rules: dict[str, list[BoundRule]] = {}
        self._service_first: dict[str, tuple[bool, int]] = {}  # see _inhibited_by_builtin
        self.settings = settings
        self.configure(settings, ())

    # -- configuration and restore -------------------------------------------------

    def configure(self, settings: EngineSettings, checks: Iterable[CheckSpec[Any]]) -> None:
        """Adopt (new) settings and the rules of ``checks``; alert states are kept."""
        self.settings = settings
        self._rules = {}
        for spec in checks:
            bound = []
            for rule in spec.config.alerts:
                labels = {**rule.labels}
                bound.append(BoundRule(rule, spec, rule.fingerprint(spec.name), labels))
            if bound:
                self._rules[spec.name] = bound
        self._digests.schedule(settings.policies, self.clock.now())

    def restore(self, alerts: Iterable[Alert], incidents: Iterable[Incident],
                silences: Iterable[Silence] = ()) -> None:
        """Take back the state a previous process persisted: no re-page, no lost resolution."""
        for alert in alerts:
            self.alerts[alert.fingerprint] = alert
        for incident in incidents:
            if incident.closed_at is None:
                self.incidents[incident.service] = incident
        for silence in silences:
            self.silences[silence.id] = silence
        self._service_first.clear()

    def restore_digests(self, events: Iterable[AlertEvent]) -> None:
        """Refill the digests a previous process was collecting, from the alert history."""
        self._digests.restore(events, self.alerts, self.settings.policies, self.clock.now(),
                              self._snapshot)

    # -- results ----------------------------------------------------------------------

    def observe(self, result: CheckResult) -> None:
        """Evaluate the rules of ``result``'s check and route what changed."""
        rules = self._rules.get(result.check)
        if not rules:
            return
        now = self.clock.now()
        batch = AlertingBatch()
        for bound in rules:
            self._observe_rule(bound, result, now, batch)
        if batch:
            self.persist(batch)

    def _observe_rule(self, bound: BoundRule, result: CheckResult, now: float,
                      batch: AlertingBatch) -> None:
        rule, spec = bound.rule, bound.spec
        outcome = rule.condition.evaluate(result)
        alert = self.alerts.get(bound.fingerprint) or Alert(
            fingerprint=bound.fingerprint, check=spec.name, service=spec.service,
            rule=rule.condition.text, severity=rule.severity, labels=dict(bound.labels),
            runbook=rule.runbook,
        )
        alert.severity = rule.severity
        alert.runbook = rule.runbook
        was_flapping = alert.flapping
        step = lifecycle.step(
            alert, outcome.held, now, confirm=rule.effective_confirm, for_s=rule.for_,
            recover=rule.recover, value=outcome.value, message=result.message,
        )
        alert = step.alert
        if outcome.held is not None:
            alert.summary = rule.render_summary(spec, alert, outcome)
            alert.description = rule.render_description(spec, alert, outcome)
        self.alerts[alert.fingerprint] = alert
        if step.wants_recheck and self.recheck is not None:
            self.recheck(spec.name, rule.retry_interval)
        if step.event is None and was_flapping == alert.flapping:
            if alert.state.is_open or step.alert.state is AlertState.PENDING:
                batch.alerts.append(alert)  # keep value/message/counters current
            return
        if step.event is not None:
            batch.events.append(step.event)
            if alert.service is not None:
                self._service_first.pop(alert.service, None)
        batch.alerts.append(alert)
        if alert.flapping and not was_flapping and alert.state.is_open:
            self._notify_flapping(alert, now, batch)
        elif step.event is not None and step.event.to_state is AlertState.FIRING:
            self._route_firing(alert, now, batch)
            if rule.remediate is not None and self.on_firing is not None:
                try:
                    self.on_firing(alert.copy(), rule)
                except Exception:  # remediation must never cost the alert its routing
                    log.exception("remediation hook failed for %s", alert.fingerprint)
        elif step.event is not None and step.event.to_state is AlertState.RESOLVED:
            self._route_resolved(alert, now, batch)
        elif was_flapping and not alert.flapping and alert.state.is_open and not alert.notified:
            self._route_firing(alert, now, batch)

    # -- routing ------------------------------------------------------------------------

    def _suppressed(self, alert: Alert, now: float) -> bool:
        """Set and return the alert's silenced and inhibited flags."""
        settings = self.settings
        labels = alert_labels(alert) if (
            self.silences or settings.maintenance or settings.inhibit) else None
        alert.silenced = labels is not None and (
            active_silence(self.silences.values(), labels, now) is not None
            or any(window.matches(labels) and window.active(now)
                   for window in settings.maintenance)
        )
        alert.inhibited = self._inhibited_by_builtin(alert)
        if not alert.inhibited and settings.inhibit and labels is not None:
            others = [(alert_labels(other), other.severity) for other in self.alerts.values()
                      if other.state.is_open and other.fingerprint != alert.fingerprint]
            alert.inhibited = inhibited(labels, alert.severity, others, settings.inhibit,
                                        builtin=False)
        return alert.silenced or alert.inhibited

    def _inhibited_by_builtin(self, alert: Alert) -> bool:
        """A firing down alert, or a more severe one, of the same service mutes this one.

        Ordered as (not down, severity rank): an alert is muted when another open
        alert of its service orders strictly first, so two equals never mute each
        other. The minimum per service is cached and recomputed only after an alert
        of that service opened or closed.
        """
        if alert.service is None:
            return False
        best = self._service_first.get(alert.service)
        if best is None:
            orders = [_inhibit_order(a) for a in self.alerts.values()
                      if a.service == alert.service and a.state.is_open]
            best = min(orders, default=(True, 99))
            self._service_first[alert.service] = best
        return best < _inhibit_order(alert)

    def _group_key(self, alert: Alert) -> str:
        return alert.service if alert.service is not None else f"check:{alert.check}"

    def _route_firing(self, alert: Alert, now: float, batch: AlertingBatch) -> None:
        if self._suppressed(alert, now) or alert.flapping:
            return
        policy = self.settings.policies.for_severity(alert.severity)
        if policy.digest is not None:
            self._digests.hold(alert.severity, self._snapshot(alert))
            alert.notified += 1
            alert.last_notified_at = now
            return
        key = self._group_key(alert)
        incident = self.incidents.get(key)
        if incident is None or alert.severity.outranks(incident.severity):
            if incident is None:
                incident = Incident(id=self._new_id("inc", now), service=key, opened_at=now,
                                    severity=alert.severity)
                self.incidents[key] = incident
            incident.severity = alert.severity
            incident.paged_at = now
            batch.incidents.append(incident)
            group = self._groups.pop(key, None)
            joining = [alert, *(group.alerts.values() if group else ())]
            self._send(NotificationKind.FIRING, joining, incident, now, batch)
            return
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(
                incident, flush_at=now + self.settings.policies.group_interval)
        alert.incident_id = incident.id
        group.alerts[alert.fingerprint] = alert

    def _route_resolved(self, alert: Alert, now: float, batch: AlertingBatch) -> None:
        key = self._group_key(alert)
        group = self._groups.get(key)
        if group is not None:
            group.alerts.pop(alert.fingerprint, None)
        policy = self.settings.policies.for_severity(alert.severity)
        if alert.notified and policy.digest is not None:
            self._digests.hold(alert.severity, self._snapshot(alert))
        elif alert.notified and policy.notify_resolved:
            incident = self.incidents.get(key)
            self._send(NotificationKind.RESOLVED, [alert], incident, now, batch,
                       escalated=alert.escalated)
        self._close_incident_if_done(key, now, batch)

    def _close_incident_if_done(self, key: str, now: float, batch: AlertingBatch) -> None:
        incident = self.incidents.get(key)
        if incident is None:
            return
        if any(a.state.is_open and self._group_key(a) == key for a in self.alerts.values()):
            return
        incident.closed_at = now
        batch.incidents.append(incident)
        del self.incidents[key]
        self._groups.pop(key, None)

    def _notify_flapping(self, alert: Alert, now: float, batch: AlertingBatch) -> None:
        if self._suppressed(alert, now):
            return
        self._send(NotificationKind.FLAPPING, [alert], self.incidents.get(self._group_key(alert)),
                   now, batch)

    # -- time -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Repeats, escalations, ack timeouts, grouped updates and digests that are due."""
        now = self.clock.now()
        batch = AlertingBatch()
        for key, group in list(self._groups.items()):
            if group.flush_at <= now:
                del self._groups[key]
                still = [a for a in group.alerts.values() if a.state.is_open]
                if still:
                    self._send(NotificationKind.UPDATE, still, group.incident, now, batch)
        repeats: dict[str, list[Alert]] = {}
        for alert in list(self.alerts.values()):
            if not alert.state.is_open:
                continue
            policy = self.settings.policies.for_severity(alert.severity)
            if alert.state is AlertState.ACKNOWLEDGED:
                if alert.acked_at is not None and now - alert.acked_at >= policy.ack_timeout:
                    reopened = self._reopen(alert, now, "acknowledgement timed out", batch)
                    repeats.setdefault(self._group_key(alert), []).append(reopened)
                continue
            if alert.flapping or policy.digest is not None:
                continue
            was_suppressed = alert.silenced or alert.inhibited
            key = self._group_key(alert)
            if not alert.notified:  # suppressed, or waiting in a group for its update
                if key in self._groups and not was_suppressed:
                    continue
                if self._suppressed(alert, now):
                    continue
                self._route_firing(alert, now, batch)  # a silence ended, or its inhibitor
                batch.alerts.append(alert)
                continue
            escalate = policy.escalate_after is not None and not alert.escalated and \
                alert.escalate_from is not None and \
                now - alert.escalate_from >= policy.escalate_after
            repeat = policy.repeat_every(self.settings.policies.dedup_window)
            repeat_due = repeat is not None and alert.last_notified_at is not None and \
                now - alert.last_notified_at >= repeat
            if not (escalate or repeat_due):
                continue  # the common case: nothing due, nothing to evaluate
            if self._suppressed(alert, now):
                batch.alerts.append(alert)
                continue
            if escalate:
                alert.escalated = True
                batch.alerts.append(alert)
                self._send(NotificationKind.ESCALATION, [alert], self.incidents.get(key), now,
                           batch, channels=policy.escalation or None)
            if repeat_due:
                repeats.setdefault(key, []).append(alert)
        for key, alerts in repeats.items():
            self._send(NotificationKind.REPEAT, alerts, self.incidents.get(key), now, batch)
        self._send_due_digests(now, batch)
        if batch:
            self.persist(batch)

    def _reopen(self, alert: Alert, now: float, note: str, batch: AlertingBatch) -> Alert:
        reopened, event = lifecycle.unacknowledge(alert, now, note)
        self.alerts[alert.fingerprint] = reopened
        if event is not None:
            batch.events.append(event)
            batch.alerts.append(reopened)
        return reopened

    def _send_due_digests(self, now: float, batch: AlertingBatch) -> None:
        for severity, held, counts in self._digests.due(self.settings.policies, now):
            self._send(NotificationKind.DIGEST, [], None, now, batch, snapshots=held,
                       severity=severity, counts=counts)

    # -- people ------------------------------------------------------------------------------

    def acknowledge(self, fingerprint: str, by: str) -> Alert | None:
        """Acknowledge a firing alert: its repeats and escalation stop."""
        alert = self.alerts.get(fingerprint)
        if alert is None:
            return None
        now = self.clock.now()
        acked, event = lifecycle.acknowledge(alert, by, now)
        if event is not None:
            self.alerts[fingerprint] = acked
            batch = AlertingBatch(alerts=[acked], events=[event])
            policy = self.settings.policies.for_severity(acked.severity)
            told = [*policy.targets(self.settings.channels), *policy.escalation]
            targets = [c for c in self.settings.ack_channels if c in told]
            if acked.notified and targets:
                self._send(NotificationKind.ACKNOWLEDGED, [acked],
                           self.incidents.get(self._group_key(acked)), now, batch,
                           channels=targets)
            self.persist(batch)
        return acked

    def unacknowledge(self, fingerprint: str, by: str) -> Alert | None:
        alert = self.alerts.get(fingerprint)
        if alert is None:
            return None
        batch = AlertingBatch()
        self._reopen(alert, self.clock.now(), f"unacknowledged by {by}", batch)
        if batch:
            self.persist(batch)
        return self.alerts[fingerprint]

    def add_silence(self, silence: Silence) -> None:
        """Mute matching alerts from now on; open ones show the flag at once."""
        self.silences[silence.id] = silence
        now = self.clock.now()
        batch = AlertingBatch()
        for alert in self.alerts.values():
            if alert.state.is_open and not alert.silenced:
                self._suppressed(alert, now)
                if alert.silenced:
                    batch.alerts.append(alert)
        if batch:
            self.persist(batch)

    def expire_silence(self, silence_id: str) -> None:
        silence = self.silences.get(silence_id)
        if silence is not None:
            now = self.clock.now()
            silence.ends_at = min(silence.ends_at, now)
            silence.starts_at = min(silence.starts_at, now)

    def report_condition(self, fingerprint: str, held: bool, *, severity: Severity,
                         service: str, check: str, summary: str, message: str = "",
                         avoid_channels: Sequence[str] = ()) -> None:
        """An alert raised by Tocsin itself (a failing channel, later a burning SLO).

        It fires on the first report that holds and resolves on the first that
        does not, through the same routing as any other alert.
        """
        now = self.clock.now()
        alert = self.alerts.get(fingerprint) or Alert(
            fingerprint=fingerprint, check=check, service=service, rule=summary,
            severity=severity, labels={"source": "tocsin"})
        alert.avoid_channels = list(avoid_channels)
        step = lifecycle.step(alert, held, now, confirm=0, for_s=None, recover=1,
                              message=message)
        alert = step.alert
        alert.summary = summary
        self.alerts[fingerprint] = alert
        if step.event is None:
            return
        batch = AlertingBatch(alerts=[alert], events=[step.event])
        self._service_first.pop(service, None)
        if step.event.to_state is AlertState.FIRING:
            self._route_firing(alert, now, batch)
        elif step.event.to_state is AlertState.RESOLVED:
            self._route_resolved(alert, now, batch)
        self.persist(batch)

    def notify_remediation(self, fingerprint: str, kind: NotificationKind, text: str, *,
                           escalate: bool = False) -> None:
        """Tell an alert's channels what its remediation did, joining its open incident.

        ``text`` stands in for the alert's summary. ``escalate`` also tells the
        severity's escalation channels at once (a failed recovery). An alert
        that is silenced or unknown is not told about.
        """
        alert = self.alerts.get(fingerprint)
        if alert is None or alert.silenced:
            log.info("remediation of %s: %s (not notified)", fingerprint, text)
            return
        now = self.clock.now()
        batch = AlertingBatch()
        snapshot = replace(self._snapshot(alert), summary=text, description=alert.summary)
        if escalate and alert.state.is_open:
            alert.escalated = True
        self._send(kind, [alert], self.incidents.get(self._group_key(alert)), now, batch,
                   escalated=escalate, snapshots=[snapshot])
        self.persist(batch)

    def drill(self, severity: Severity, channel: str | None = None) -> list[Delivery]:
        """A clearly marked synthetic alert to the severity's channels (or one channel).

        It goes through the policy's routing and the outbox like a real one;
        silences and digests do not hold it back: a drill tests delivery.
        """
        now = self.clock.now()
        snapshot = AlertSnapshot(
            fingerprint="tocsin:drill", check="tocsin:drill", service="tocsin",
            severity=severity, state=AlertState.FIRING, rule="drill",
            summary=f"DRILL — a test {severity.value} alert from Tocsin; no action needed",
            message="This is a synthetic alert sent by `tocsin drill`.", since=now,
            dashboard_url=f"{self.settings.base_url}/" if self.settings.base_url else None)
        batch = AlertingBatch()
        policy = self.settings.policies.for_severity(severity)
        targets = [channel] if channel else policy.targets(self.settings.channels)
        self._send(NotificationKind.TEST, [], None, now, batch, channels=targets,
                   snapshots=[snapshot], severity=severity)
        self.persist(batch)
        return batch.deliveries

    # -- notifications ---------------------------------------------------------------------------

    def _new_id(self, prefix: str, now: float) -> str:
        return f"{prefix}-{int(now * 1000)}-{next(self._sequence)}"

    def _snapshot(self, alert: Alert) -> AlertSnapshot:
        return notices.snapshot(alert, self.settings.base_url, self.settings.ack_link)

    def _send(self, kind: NotificationKind, alerts: Sequence[Alert], incident: Incident | None,
              now: float, batch: AlertingBatch, *, escalated: bool = False,
              channels: Sequence[str] | None = None,
              snapshots: Sequence[AlertSnapshot] | None = None, severity: Severity | None = None,
              counts: dict[str, int] | None = None) -> None:
        snaps = tuple(snapshots) if snapshots is not None else tuple(
            self._snapshot(a) for a in alerts)
        top = severity or min((a.severity for a in alerts), key=lambda s: s.rank)
        policy: Policy = self.settings.policies.for_severity(top)
        targets = list(channels) if channels is not None else \
            policy.targets(self.settings.channels)
        if escalated:
            targets += [c for c in policy.escalation if c not in targets]
        avoid = {name for alert in alerts for name in alert.avoid_channels}
        if avoid:
            targets = [c for c in targets if c not in avoid]
        for alert in alerts:
            if kind in notices.PROBLEM_NOTICES:
                alert.notified += 1
                alert.last_notified_at = now
                if alert.escalate_from is None:
                    alert.escalate_from = now
            elif kind is NotificationKind.FLAPPING:
                alert.notified += 1  # so that its resolution is told too
            if incident is not None:
                alert.incident_id = incident.id
            batch.alerts.append(alert)
        if not targets:
            log.warning("no channel for a %s %s notification", top.value, kind.value)
            return
        batch.deliveries += notices.deliveries(
            self._new_id(kind.value, now), kind, top, snaps, targets, now,
            incident_id=incident.id if incident else None,
            high_priority=policy.priority == "high", counts=counts or {})


def _inhibit_order(alert: Alert) -> tuple[bool, int]:
    return alert_metric(alert) != DOWN, alert.severity.rank
