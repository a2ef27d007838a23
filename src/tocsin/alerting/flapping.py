"""Flap detection, as Nagios does it, over an alert's recent condition outcomes.

The history is a string of ``"1"`` (the condition held) and ``"0"`` (it did
not), newest last, at most :data:`HISTORY_SIZE` long. Each change between
neighbouring outcomes is weighted linearly from 0.75 (the oldest of the 20
possible changes) to 1.25 (the newest), and the flap percentage is
Σweights × 100 / 20. An alert starts flapping at ≥ 20 % and stops at ≤ 5 %;
in between it keeps what it was (hysteresis).

A history shorter than 21 is read as if its oldest outcome had been repeated
before it, which is how Nagios fills a new object's history: a young alert is
judged on the changes it has had, each at its true distance from now.
"""

from __future__ import annotations

HISTORY_SIZE = 21
FLAP_START = 20.0  # percent
FLAP_STOP = 5.0  # percent
_LOW_WEIGHT, _HIGH_WEIGHT = 0.75, 1.25


def flap_percent(history: str, size: int = HISTORY_SIZE) -> float:
    """The weighted percentage of state changes in the last ``size`` outcomes."""
    recent = history[-size:]
    if len(recent) < 2:
        return 0.0
    padded = recent[0] * (size - len(recent)) + recent
    slots = size - 1  # possible changes
    weighted = 0.0
    for position in range(1, size):  # 1 = the oldest change, size-1 = the newest
        if padded[position] != padded[position - 1]:
            weighted += _LOW_WEIGHT + (position - 1) * (_HIGH_WEIGHT - _LOW_WEIGHT) / (slots - 1)
    # Rounded so that exact vectors (20 %, 5 %) meet their thresholds despite float sums.
    return round(weighted * 100.0 / slots, 9)


def is_flapping(percent: float, was_flapping: bool, *, start: float = FLAP_START,
                stop: float = FLAP_STOP) -> bool:
    """Start at ≥ ``start`` percent, stop at ≤ ``stop``; in between, stay as before."""
    if was_flapping:
        return percent > stop
    return percent >= start


def record_outcome(history: str, held: bool, was_flapping: bool,
                   size: int = HISTORY_SIZE) -> tuple[str, bool]:
    """Append one outcome to ``history``; return the new history and whether it flaps."""
    history = (history + ("1" if held else "0"))[-size:]
    return history, is_flapping(flap_percent(history, size), was_flapping)
