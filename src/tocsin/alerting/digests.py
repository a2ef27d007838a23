"""Digests: what a severity with a ``digest:`` schedule holds back, and when it goes out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

from tocsin.alerting.model import Alert, AlertEvent, AlertSnapshot, AlertState, Severity
from tocsin.alerting.policies import Policies


class DigestBook:
    """Alerts held for their severity's next digest, and when each digest is due."""

    def __init__(self) -> None:
        self._held: dict[Severity, list[AlertSnapshot]] = {}
        self._due: dict[Severity, float] = {}

    def schedule(self, policies: Policies, now: float) -> None:
        """Set the next due time of every severity that has a digest (after a (re)load)."""
        for severity in Severity:
            policy = policies.for_severity(severity)
            if policy.digest is not None:
                self._due[severity] = policy.next_digest(now)
            else:
                self._due.pop(severity, None)

    def hold(self, severity: Severity, snapshot: AlertSnapshot) -> None:
        self._held.setdefault(severity, []).append(snapshot)

    def due(self, policies: Policies,
            now: float) -> Iterator[tuple[Severity, list[AlertSnapshot], dict[str, int]]]:
        """Each digest due at ``now`` that has something to say, with counts per state."""
        for severity, due in list(self._due.items()):
            if now < due:
                continue
            self._due[severity] = policies.for_severity(severity).next_digest(now)
            held = self._held.pop(severity, [])
            if held:
                yield severity, held, dict(Counter(entry.state.value for entry in held))

    def restore(self, events: Iterable[AlertEvent], alerts: Mapping[str, Alert],
                policies: Policies, now: float,
                snapshot: Callable[[Alert], AlertSnapshot]) -> None:
        """Refill what a previous process was holding, from the alert history.

        Each alert that fired or resolved since its severity's last digest goes in once.
        """
        seen: set[tuple[str, AlertState]] = set()
        for event in events:
            policy = policies.for_severity(event.severity)
            alert = alerts.get(event.fingerprint)
            if policy.digest is None or alert is None or \
                    event.to_state not in (AlertState.FIRING, AlertState.RESOLVED) or \
                    event.at < policy.previous_digest(now) or \
                    (event.fingerprint, event.to_state) in seen:
                continue
            seen.add((event.fingerprint, event.to_state))
            self.hold(event.severity, snapshot(alert))
