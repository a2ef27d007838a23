"""Error budgets and burn rates: the arithmetic of the SRE Workbook, as pure functions.

Error budget = 1 − objective: 99.9 % over 30 days allows 0.1 % of the window,
43.2 minutes. Burn rate = error ratio ÷ (1 − objective): 1 spends the budget
exactly over the window, 14.4 spends 2 % of a 30-day budget in one hour
(0.02 × 720 h ÷ 1 h). Page when both windows of a pair exceed the rate — the
long window says it matters, the short one that it is still happening — and
ticket at 1× over 3 days and 6 hours.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """A pair of windows and the burn rate both must exceed."""

    name: str
    long: float  # seconds
    short: float  # seconds
    rate: float

    @property
    def budget_share(self) -> float:
        """The share of a 30-day budget spent in the long window at exactly ``rate``."""
        return self.rate * self.long / (30 * 24 * HOUR)


PAGE_FAST = BurnWindow("page_fast", 1 * HOUR, 5 * MINUTE, 14.4)
PAGE_SLOW = BurnWindow("page_slow", 6 * HOUR, 30 * MINUTE, 6.0)
TICKET = BurnWindow("ticket", 72 * HOUR, 6 * HOUR, 1.0)
BURN_WINDOWS = (PAGE_FAST, PAGE_SLOW, TICKET)
"""The SRE Workbook's multiwindow pairs (the short window is 1/12 of the long)."""


def burn_rate(bad: float, total: float, objective: float) -> float | None:
    """How fast the budget burns: error ratio ÷ allowed ratio; None without data."""
    if total <= 0:
        return None
    return (bad / total) / (1.0 - objective)


def pair_burn(long_rate: float | None, short_rate: float | None) -> float | None:
    """The rate a pair alerts on: both windows must exceed it, so the smaller of the two."""
    if long_rate is None or short_rate is None:
        return None
    return min(long_rate, short_rate)


@dataclass(frozen=True, slots=True)
class Budget:
    """An SLO's error budget over its window, in the SLI's unit (minutes or events).

    ``good`` and ``total`` are what was measured (check runs, 5-minute windows,
    deploys); ``allowed`` and ``used`` are in ``unit``. Build one with
    :meth:`in_minutes` or :meth:`in_events`.
    """

    objective: float  # 0.999
    good: float
    total: float
    unit: str  # "minutes" or "events"
    allowed: float
    used: float

    @classmethod
    def in_minutes(cls, objective: float, good: float, total: float, window_s: float,
                   covered_s: float) -> Budget:
        """A time budget: the window allows (1 − objective) of its minutes to be bad.

        The bad share of what was measured stands for the same share of the time
        it covered (``covered_s``, at most the window): 10 failed runs out of
        21,600 over 15 days is 10 minutes down.
        """
        bad_share = (total - good) / total if total > 0 else 0.0
        return cls(objective, good, total, "minutes", allowed=(1.0 - objective) * window_s / 60,
                   used=max(0.0, bad_share) * min(covered_s, window_s) / 60)

    @classmethod
    def in_events(cls, objective: float, good: float, total: float) -> Budget:
        """An event budget: (1 − objective) of the events seen may be bad."""
        return cls(objective, good, total, "events", allowed=(1.0 - objective) * total,
                   used=max(0.0, total - good))

    @property
    def sli(self) -> float | None:
        """The share of good, 0–1; None without data."""
        return self.good / self.total if self.total > 0 else None

    @property
    def remaining(self) -> float:
        return self.allowed - self.used

    @property
    def used_share(self) -> float | None:
        """How much of the budget is spent, 0–1 (above 1 when overspent); None if no budget."""
        return self.used / self.allowed if self.allowed > 0 else None

    @property
    def met(self) -> bool | None:
        sli = self.sli
        return None if sli is None else sli >= self.objective

    def exhaustion_in(self, current_burn: float | None, window_s: float) -> float | None:
        """Seconds until the budget is gone at ``current_burn``; 0 when it is; None if never.

        At burn rate b the budget drains b times as fast as one that lasts the
        window: the remaining share lasts ``share × window ÷ b``.
        """
        if self.allowed <= 0:
            return None
        if self.remaining <= 0:
            return 0.0
        if current_burn is None or current_burn <= 0:
            return None
        return (self.remaining / self.allowed) * window_s / current_burn
