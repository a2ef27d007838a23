from __future__ import annotations

import pytest

from tocsin.config import format_duration, parse_duration, parse_percent, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("1d", 86400.0),
     ("2w", 1209600.0), ("1.5s", 1.5), (" 10s ", 10.0), ("1m30s500ms", 90.5), (0, 0.0)],
)
def test_good_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["10 parsecs", "90", 90, "1m1h", "1s1s", "", "s", "10 s", "-5s", "1h 30m", True, None, [1]],
)
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_bare_number_suggests_a_unit() -> None:
    with pytest.raises(ValueError, match="write 90s"):
        parse_duration(90)


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (0.5, "500ms"), (60, "1m")])
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [("512B", 512), ("10KB", 10_000), ("1MiB", 1024**2), ("2 GB", 2 * 1000**3), (4096, 4096)],
)
def test_good_sizes_parse(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1M", "10kb", "1.5", -1, "lots", True])
def test_bad_sizes_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(("text", "fraction"), [("5%", 0.05), ("99.9%", 0.999), ("100 %", 1.0)])
def test_good_percents_parse(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["5", 5, "five%", "%5", 0.05])
def test_bad_percents_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="percentage"):
        parse_percent(text)
