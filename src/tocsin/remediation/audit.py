"""The audit log of remediation: one :class:`RemediationAttempt` per decision to act.

Every attempt is stored before its action runs (state ``started``) and updated
as it moves on, so that an attempt a crash interrupted is found again
(``Store.unfinished_attempts``) and neither lost nor run twice::

    started → acted → verifying → recovered | failed
        └───────┴──────────┴────→ interrupted   (found unfinished after a restart)
    refused                       (the budget said no; logged, nothing ran)
    passive                       (passive mode: what would have run)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tocsin.remediation.policy import RemediationMode

ANSWER_LIMIT = 4000
"""Characters of an action's answer (and of a verification note) the audit log keeps."""


class AttemptState(StrEnum):
    """Where an attempt is in its life; see the module docstring."""

    STARTED = "started"
    ACTED = "acted"
    VERIFYING = "verifying"
    RECOVERED = "recovered"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    PASSIVE = "passive"

    @property
    def unfinished(self) -> bool:
        """Still running, or cut short by a crash before it finished."""
        return self in _UNFINISHED

    @property
    def counts(self) -> bool:
        """Whether the attempt spends budget: its action ran, or may have run."""
        return self not in (AttemptState.REFUSED, AttemptState.PASSIVE)


_UNFINISHED = frozenset({AttemptState.STARTED, AttemptState.ACTED, AttemptState.VERIFYING})


@dataclass(frozen=True, slots=True)
class RemediationAttempt:
    """One remediation of one service for one alert, as the audit log keeps it.

    ``inputs`` is what the action was given, secrets already redacted by the
    caller; it is stored as JSON. ``answer`` is what the action returned
    (capped at :data:`ANSWER_LIMIT` when stored). ``id`` is None until stored.
    """

    service: str
    fingerprint: str
    policy: str
    action: str
    started_at: float
    mode: RemediationMode = RemediationMode.ACTIVE
    state: AttemptState = AttemptState.STARTED
    finished_at: float | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    answer: str | None = None
    verification: str | None = None
    duration_s: float | None = None
    error: str | None = None
    id: int | None = None


def budget_times(attempts: Iterable[RemediationAttempt]) -> list[float]:
    """The start times of the attempts that count against a budget (for :func:`decide`)."""
    return [attempt.started_at for attempt in attempts if attempt.state.counts]


def capped(text: str | None, limit: int = ANSWER_LIMIT) -> str | None:
    """``text`` cut to ``limit`` characters, saying so at the end."""
    if text is None or len(text) <= limit:
        return text
    marker = "… [truncated]"
    return text[:limit - len(marker)] + marker
