"""Rollups: per-check aggregates of results, mergeable across any window.

A :class:`Aggregate` holds what a bucket of results reduces to — how many
there were, how many failed or errored, and the latency (count measured, min,
max, sum, and a histogram). Aggregates merge exactly, so an hour is the merge
of its twelve 5-minute buckets and a 90-day window the merge of its days.

Latencies are kept as integer microseconds (exact for any latency given to
the microsecond). The histogram has fixed log-scale bins: bin 0 holds
latencies under :data:`FIRST_BOUND_US` (0.1 ms), bin ``i >= 1`` holds
``[0.1 ms · γ^(i-1), 0.1 ms · γ^i)`` with ``γ = 2^(1/8)``, and the last bin is
open above. A percentile is the nearest-rank sample's bin, reported as the
value ``2·lo·hi/(lo+hi)`` of that bin, clamped to the exact min and max: its
relative error is at most ``(γ-1)/(γ+1)`` = :data:`RELATIVE_ERROR` (4.33 %),
or 0.05 ms absolute under 0.1 ms.

In memory a histogram is one Python ``int`` whose 32-bit lanes are the bin
counts: adding a sample is ``h += 1 << 32·bin`` and merging two histograms is
``a + b``, both in C. Stored, it is the trimmed run of non-empty lanes
(:func:`encode_histogram`), 16- or 32-bit, or for a few samples just their bin
numbers.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

#: Bins per doubling of latency.
BINS_PER_DOUBLING = 8
GAMMA = 2 ** (1 / BINS_PER_DOUBLING)
#: The bound on a percentile's relative error (above :data:`FIRST_BOUND_US`).
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
FIRST_BOUND_US = 100
BINS = 200  # the last bin starts at ~47 minutes
_LANE = 32
_LANE_MASK = (1 << _LANE) - 1
#: Lower bound (µs) of every bin from 1 on: ``bin = bisect_right(_BOUNDS, us)``.
_BOUNDS = [FIRST_BOUND_US * GAMMA ** i for i in range(BINS - 1)]
_REPRESENTATIVE = [FIRST_BOUND_US / 2] + [
    2 * lo * hi / (lo + hi) for lo, hi in zip(_BOUNDS, [*_BOUNDS[1:], math.inf], strict=True)
]
_REPRESENTATIVE[-1] = _BOUNDS[-1]  # open above: min/max clamping does the rest
_LITTLE = sys.byteorder == "little"

# Stored histogram formats: the first byte says which.
_SAMPLES = 1  # the bin of each sample, one byte each (few samples)
_DENSE16 = 2  # [2][first bin][u16 lanes], little-endian
_DENSE32 = 4  # [4][first bin][u32 lanes], little-endian
_FEW = 16  # up to this many samples, the samples format


def latency_bin(latency_us: int) -> int:
    """The histogram bin of a latency in microseconds."""
    return bisect_right(_BOUNDS, latency_us)


def _lanes(histogram: int) -> tuple[int, array[int]]:
    """``(first bin, counts from it to the last non-empty bin)`` of a histogram int."""
    raw = histogram.to_bytes(BINS * 4, "little")
    first = (len(raw) - len(raw.lstrip(b"\0"))) // 4
    end = (len(raw.rstrip(b"\0")) + 3) // 4
    lanes = array("I", raw[first * 4:end * 4])
    if not _LITTLE:
        lanes.byteswap()
    return first, lanes


def encode_histogram(histogram: int, few: int = 0, *, wide: bool = False) -> bytes:
    """The stored form of a histogram int: its non-empty run of lanes, 16 or 32 bits wide.

    With ``few`` (the number of samples, when the caller knows it is small), the bin of
    each sample instead: one byte a sample. ``wide`` always takes 32-bit lanes, which
    decode fastest (the daily rows a long window reads by the thousand).
    """
    if not histogram:
        return b""
    first, lanes = _lanes(histogram)
    if 0 < few < _FEW:
        out = bytearray([_SAMPLES])
        for offset, count in enumerate(lanes):
            if count:
                out += bytes((first + offset,)) * count
        return bytes(out)
    if not wide and max(lanes) < 1 << 16:
        packed = array("H", lanes)
        if not _LITTLE:
            packed.byteswap()
        return bytes([_DENSE16, first]) + packed.tobytes()
    if not _LITTLE:
        lanes.byteswap()
    return bytes([_DENSE32, first]) + lanes.tobytes()


def decode_histogram(blob: bytes | None) -> int:
    """The histogram int of a stored histogram (0 for empty or None)."""
    if not blob:
        return 0
    kind = blob[0]
    if kind == _DENSE32 and _LITTLE:
        return int.from_bytes(blob[2:], "little") << (_LANE * blob[1])
    if kind in (_DENSE16, _DENSE32):
        lanes = array("H" if kind == _DENSE16 else "I")
        lanes.frombytes(blob[2:])
        if not _LITTLE:
            lanes.byteswap()
        wide = array("I", lanes)
        if not _LITTLE:
            wide.byteswap()
        return int.from_bytes(wide.tobytes(), "little") << (_LANE * blob[1])
    if kind == _SAMPLES:
        histogram = 0
        for bin_ in blob[1:]:
            histogram += 1 << (_LANE * bin_)
        return histogram
    raise ValueError(f"unknown histogram format {kind}")


def quantiles(histogram: int, qs: tuple[float, ...], low_us: int, high_us: int) -> list[float]:
    """Nearest-rank quantiles ``qs`` (ascending, in (0, 1]) in microseconds.

    ``low_us``/``high_us`` are the exact min and max; estimates are clamped to them.
    """
    first, lanes = _lanes(histogram)
    total = sum(lanes)
    ranks = [max(1, math.ceil(q * total)) for q in qs]
    answers: list[float] = []
    seen = 0
    want = 0
    for offset, count in enumerate(lanes):
        seen += count
        while want < len(ranks) and ranks[want] <= seen:
            estimate = _REPRESENTATIVE[first + offset]
            answers.append(min(max(estimate, low_us), high_us))
            want += 1
        if want == len(ranks):
            break
    return answers


@dataclass(slots=True)
class Aggregate:
    """What a bucket of results of one check reduces to; latencies in microseconds.

    ``measured`` counts the results that have a latency: ``min_us``,
    ``max_us``, ``sum_us`` and ``histogram`` are over those only.
    """

    count: int = 0
    failures: int = 0
    errors: int = 0
    measured: int = 0
    min_us: int = 0
    max_us: int = 0
    sum_us: int = 0
    histogram: int = 0

    def add(self, status: int, latency_us: int | None) -> None:
        """Count one result (status 0 ok, 1 failing, 2 error)."""
        self.count += 1
        if status == 1:
            self.failures += 1
        elif status == 2:
            self.errors += 1
        if latency_us is not None:
            if self.measured == 0:
                self.min_us = self.max_us = latency_us
            elif latency_us < self.min_us:
                self.min_us = latency_us
            elif latency_us > self.max_us:
                self.max_us = latency_us
            self.measured += 1
            self.sum_us += latency_us
            self.histogram += 1 << (_LANE * bisect_right(_BOUNDS, latency_us))

    def merge(self, other: Aggregate) -> None:
        """Add ``other``'s results to this one."""
        if other.measured:
            if self.measured == 0:
                self.min_us, self.max_us = other.min_us, other.max_us
            else:
                self.min_us = min(self.min_us, other.min_us)
                self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.failures += other.failures
        self.errors += other.errors
        self.measured += other.measured
        self.sum_us += other.sum_us
        self.histogram += other.histogram

    def copy(self) -> Aggregate:
        return Aggregate(self.count, self.failures, self.errors, self.measured,
                         self.min_us, self.max_us, self.sum_us, self.histogram)

    def summary(self) -> Summary:
        """Uptime, mean, min, max and p50/p95/p99 (milliseconds) of this aggregate."""
        p50 = p95 = p99 = mean = low = high = None
        if self.measured:
            p50, p95, p99 = (v / 1000 for v in quantiles(
                self.histogram, (0.5, 0.95, 0.99), self.min_us, self.max_us))
            mean = self.sum_us / self.measured / 1000
            low, high = self.min_us / 1000, self.max_us / 1000
        ok = self.count - self.failures - self.errors
        return Summary(count=self.count, failures=self.failures, errors=self.errors,
                       uptime=ok / self.count if self.count else None,
                       p50=p50, p95=p95, p99=p99, mean=mean, min=low, max=high)


@dataclass(frozen=True, slots=True)
class Summary:
    """Results of one check over a window: counts, uptime (0..1) and latency in ms.

    ``uptime`` is None when there were no results; the latency fields are None
    when no result had a latency. Percentiles are within :data:`RELATIVE_ERROR`.
    """

    count: int
    failures: int
    errors: int
    uptime: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None
    min: float | None
    max: float | None

    @property
    def ok(self) -> int:
        return self.count - self.failures - self.errors


@dataclass(frozen=True, slots=True)
class Rollup:
    """One bucket of a check's series: ``start`` (epoch seconds), ``step`` (seconds)."""

    start: float
    step: int
    aggregate: Aggregate = field(compare=False)
    summary: Summary


# -- the 5-minute buckets of an hour, packed in one blob ------------------------

def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_minute(aggregate: Aggregate | None) -> bytes:
    """One 5-minute bucket: varints, latencies relative to the bucket's min; b'\\0' if empty.

    The first varint is ``count << 1``, plus 1 when failures, errors and
    unmeasured results (each a varint then) are not all zero: most buckets say
    "all ok, all measured" in that one byte.
    """
    if aggregate is None or aggregate.count == 0:
        return b"\0"
    out = bytearray()
    unmeasured = aggregate.count - aggregate.measured
    if aggregate.failures or aggregate.errors or unmeasured:
        _varint(aggregate.count << 1 | 1, out)
        _varint(aggregate.failures, out)
        _varint(aggregate.errors, out)
        _varint(unmeasured, out)
    else:
        _varint(aggregate.count << 1, out)
    if aggregate.measured:
        _varint(aggregate.min_us, out)
        _varint(aggregate.max_us - aggregate.min_us, out)
        _varint(aggregate.sum_us - aggregate.measured * aggregate.min_us, out)
        histogram = encode_histogram(aggregate.histogram, aggregate.measured)
        if aggregate.measured < _FEW:
            out += histogram[1:]  # the samples' bins: as many bytes as ``measured``
        else:
            _varint(len(histogram), out)
            out += histogram
    return bytes(out)


def decode_minutes(blob: bytes | None) -> list[Aggregate | None]:
    """The twelve 5-minute buckets of an hour (None where a bucket had no result)."""
    buckets: list[Aggregate | None] = [None] * 12
    if not blob:
        return buckets
    position = 0

    def varint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            byte = blob[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    for slot in range(12):
        if position >= len(blob):
            break
        head = varint()
        if head == 0:
            continue
        bucket = Aggregate(count=head >> 1, measured=head >> 1)
        if head & 1:
            bucket.failures, bucket.errors = varint(), varint()
            bucket.measured -= varint()
        if bucket.measured:
            bucket.min_us = varint()
            bucket.max_us = bucket.min_us + varint()
            bucket.sum_us = varint() + bucket.measured * bucket.min_us
            if bucket.measured < _FEW:
                size = bucket.measured
                bucket.histogram = decode_histogram(
                    bytes((_SAMPLES,)) + blob[position:position + size])
            else:
                size = varint()
                bucket.histogram = decode_histogram(blob[position:position + size])
            position += size
        buckets[slot] = bucket
    return buckets


@dataclass(slots=True)
class HourState:
    """An hour of one check as the writer holds it: the total and its 5-minute buckets.

    ``minutes`` is None once the 5-minute detail was pruned (only the total is kept).
    ``encoded`` caches each bucket's stored form so a write re-encodes changed
    buckets only (``b""`` marks a changed one).
    """

    total: Aggregate
    minutes: list[Aggregate | None] | None
    encoded: list[bytes] | None = None

    def minutes_blob(self) -> bytes | None:
        if self.minutes is None:
            return None
        if self.encoded is None:
            self.encoded = [encode_minute(m) for m in self.minutes]
        end = len(self.encoded)
        while end and self.encoded[end - 1] == b"\0":
            end -= 1  # empty buckets at the end are implied
        return b"".join(self.encoded[:end])
