"""Fakes for testing Tocsin configs and code that uses it (like ``structlog.testing``).

* :class:`FakeClock` — a clock that moves only when told; pass it wherever
  Tocsin takes a :class:`~tocsin.alerting.clock.Clock`.
* :class:`RecordingChannel` — ``type: recording`` in a config; every
  notification it gets lands in ``RecordingChannel.sent[channel name]``.
  It is defined in :mod:`tocsin.channels.recording` and registered with the
  other built-in channels; importing this module imports them.
"""

from __future__ import annotations

from tocsin.channels.recording import RecordingChannel, RecordingConfig

__all__ = ["FakeClock", "RecordingChannel", "RecordingConfig"]


class FakeClock:
    """Wall-clock seconds since the epoch that change only through :meth:`advance` and :meth:`set`.

    The default start, 1 800 000 000 (2027-01-15T08:00:00Z), is far enough
    from 0 that code treating 0 or None as "never" is not fooled.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never back: use :meth:`set` for that); the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not advance by a negative time ({seconds}s); use set()")
        self._now += seconds
        return self._now

    def set(self, timestamp: float) -> None:
        """Jump to ``timestamp``, forward or back (a wall clock may be corrected backwards)."""
        self._now = timestamp

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
