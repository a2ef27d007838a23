"""Nagios flap detection over the outcome history, with its published test vectors."""

from __future__ import annotations

import pytest

from tocsin.alerting.flapping import (
    HISTORY_SIZE,
    flap_percent,
    is_flapping,
    record_outcome,
)


def test_one_change_at_the_newest_slot_is_6_25_percent() -> None:
    assert flap_percent("0" * 20 + "1") == pytest.approx(6.25)


def test_twenty_alternating_changes_are_100_percent() -> None:
    assert flap_percent("01" * 10 + "0") == pytest.approx(100.0)


def test_one_change_at_the_oldest_slot_weighs_0_75() -> None:
    assert flap_percent("1" + "0" * 20) == pytest.approx(3.75)


def test_steady_and_empty_histories_do_not_flap() -> None:
    assert flap_percent("") == flap_percent("1") == flap_percent("1" * 21) == 0.0


def test_a_short_history_counts_its_changes_at_their_true_age() -> None:
    assert flap_percent("01") == pytest.approx(6.25)
    assert flap_percent("0" * 40 + "1") == pytest.approx(6.25)  # only the last 21 count


def test_hysteresis_starts_at_20_and_stops_at_5_percent() -> None:
    assert is_flapping(20.0, was_flapping=False)
    assert not is_flapping(19.9, was_flapping=False)
    assert is_flapping(10.0, was_flapping=True)
    assert is_flapping(5.1, was_flapping=True)
    assert not is_flapping(5.0, was_flapping=True)


def test_record_outcome_keeps_21_states_and_detects_flapping() -> None:
    history, flapping = "", False
    for held in [True, False] * 3:  # 5 changes at the newest slots
        history, flapping = record_outcome(history, held, flapping)
    assert history == "101010"
    assert flapping
    for _ in range(30):
        history, flapping = record_outcome(history, True, flapping)
    assert len(history) == HISTORY_SIZE
    assert history == "1" * 21 and not flapping


def test_flapping_stays_between_the_thresholds() -> None:
    history = "0" * 15 + "010101"  # 5 recent changes: flapping starts
    history, flapping = record_outcome(history[1:], False, False)
    assert flapping
    # Quiet: the percentage falls under 20 %, and it keeps flapping until 5 %.
    while flap_percent(history) >= 20.0:
        history, flapping = record_outcome(history, False, flapping)
    assert flapping
    while flap_percent(history) > 5.0:
        assert flapping
        history, flapping = record_outcome(history, False, flapping)
    assert not flapping
