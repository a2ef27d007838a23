"""Silences and maintenance windows: matchers, states, and DST-safe recurring windows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tocsin.alerting.model import Alert, Matcher, MatchOp, Severity, Silence
from tocsin.alerting.silences import (
    MaintenanceWindow,
    active_silence,
    active_window,
    alert_labels,
    matches,
    parse_matcher,
    parse_matchers,
)

BERLIN = ZoneInfo("Europe/Berlin")
LABELS = {"service": "backend", "check": "backend:http", "severity": "P1",
          "alertname": "down", "fingerprint": "backend:http:down"}


def at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0,
       tz: Any = UTC) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()


def silence(*matchers: str, starts_at: float = 100.0, ends_at: float = 200.0,
            id: str = "s1") -> Silence:
    return Silence(id=id, matchers=tuple(parse_matcher(m) for m in matchers),
                   starts_at=starts_at, ends_at=ends_at, created_by="ann", comment="deploy",
                   created_at=50.0)


def window(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "nightly", **fields})


@pytest.mark.parametrize(("text", "matcher"), [
    ("service=backend", Matcher("service", MatchOp.EQUAL, "backend")),
    (" severity != P4 ", Matcher("severity", MatchOp.NOT_EQUAL, "P4")),
    ("check=~backend:.*", Matcher("check", MatchOp.REGEX, "backend:.*")),
    ('alertname!~"down|failed"', Matcher("alertname", MatchOp.NOT_REGEX, "down|failed")),
    ("team=", Matcher("team", MatchOp.EQUAL, "")),
])
def test_parse_matcher(text: str, matcher: Matcher) -> None:
    assert parse_matcher(text) == matcher


@pytest.mark.parametrize(("text", "message"), [
    ("service", "invalid matcher"), ("=backend", "invalid matcher"),
    ("service~backend", "invalid matcher"), ("1x=y", "invalid matcher"),
    ("check=~(", "invalid regex '('"),
])
def test_bad_matchers_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_matcher(text)


def test_all_matchers_must_match() -> None:
    assert matches([parse_matcher("service=backend"), parse_matcher("severity=~P[12]")], LABELS)
    assert not matches([parse_matcher("service=backend"), parse_matcher("severity=P2")], LABELS)
    assert matches([], LABELS)


def test_regexes_are_fully_anchored() -> None:
    assert not matches([parse_matcher("service=~back")], LABELS)
    assert matches([parse_matcher("service=~back.*")], LABELS)
    assert matches([parse_matcher("check!~backend")], LABELS)


def test_a_missing_label_reads_as_empty() -> None:
    assert matches([parse_matcher("team!=api")], LABELS)
    assert matches([parse_matcher("team=")], LABELS)
    assert not matches([parse_matcher("team=~.+")], LABELS)


def test_matchers_from_config_as_mapping_or_list() -> None:
    assert parse_matchers({"service": "backend"}) == (Matcher("service", MatchOp.EQUAL,
                                                              "backend"),)
    assert parse_matchers(["service=backend", "severity=~P[34]"])[1].op is MatchOp.REGEX
    with pytest.raises(ValueError, match="mapping"):
        parse_matchers("service=backend")


def test_silence_states_follow_its_times() -> None:
    muted = silence("service=backend")
    assert active_silence([muted], LABELS, 99.9) is None  # pending
    assert active_silence([muted], LABELS, 100.0) is muted
    assert active_silence([muted], LABELS, 199.9) is muted
    assert active_silence([muted], LABELS, 200.0) is None  # expired
    assert active_silence([silence("service=frontend")], LABELS, 150.0) is None


def test_the_longest_matching_silence_is_reported() -> None:
    short = silence("service=backend", ends_at=160.0, id="short")
    long = silence("check=~backend:.*", ends_at=400.0, id="long")
    assert active_silence([short, long], LABELS, 150.0) is long


def test_alert_labels_add_the_identifying_fields() -> None:
    alert = Alert(fingerprint="host:disk:value{mount=/}", check="host:disk", service=None,
                  rule="> 90%", severity=Severity.P2, labels={"mount": "/"})
    assert alert_labels(alert) == {"mount": "/", "check": "host:disk", "severity": "P2",
                                   "alertname": "value",
                                   "fingerprint": "host:disk:value{mount=/}"}
    down = Alert(fingerprint="backend:http:down", check="backend:http", service="backend",
                 rule="down", severity=Severity.P1)
    assert alert_labels(down) == LABELS


def test_cron_window_is_active_from_start_for_its_duration() -> None:
    nightly = window(cron="0 2 * * *", duration="1h", matchers={"service": "backend"})
    assert not nightly.active(at(2026, 5, 4, 1, 59))
    assert nightly.active(at(2026, 5, 4, 2, 0))
    assert nightly.active(at(2026, 5, 4, 2, 59, 59))
    assert not nightly.active(at(2026, 5, 4, 3, 0))
    assert active_window([nightly], LABELS, at(2026, 5, 4, 2, 30)) is nightly
    assert active_window([nightly], {**LABELS, "service": "x"}, at(2026, 5, 4, 2, 30)) is None


def test_weekday_window_opens_only_on_its_days() -> None:
    weekly = window(weekdays=["Sat", "sunday"], start="22:30", duration="3h",
                    timezone="Europe/Berlin")
    assert weekly.weekdays == ("sat", "sun")
    assert weekly.active(at(2026, 5, 2, 23, 0, tz=BERLIN))  # Saturday
    assert weekly.active(at(2026, 5, 4, 1, 0, tz=BERLIN))  # Sunday's window, past midnight
    assert not weekly.active(at(2026, 5, 4, 1, 30, tz=BERLIN))
    assert not weekly.active(at(2026, 5, 5, 23, 0, tz=BERLIN))  # Tuesday


def test_window_keeps_local_time_across_the_dst_change() -> None:
    daily = window(cron="0 9 * * *", duration="30m", timezone="Europe/Berlin")
    # 09:10 local is 08:10 UTC before the change (CET) and 07:10 UTC after it (CEST).
    assert daily.active(at(2026, 3, 28, 8, 10))
    assert daily.active(at(2026, 3, 30, 7, 10))
    assert not daily.active(at(2026, 3, 30, 8, 10))


def test_window_duration_is_elapsed_time_on_the_spring_forward_night() -> None:
    # 2026-03-29, Europe/Berlin: 02:00 CET jumps to 03:00 CEST.
    night = window(cron="0 1 * * *", duration="2h", timezone="Europe/Berlin")
    assert night.active(at(2026, 3, 29, 1, 0, tz=BERLIN))
    assert night.active(at(2026, 3, 29, 3, 59, tz=BERLIN))  # two hours later: one hour skipped
    assert not night.active(at(2026, 3, 29, 4, 0, tz=BERLIN))


def test_a_start_in_the_skipped_hour_opens_at_the_first_real_time() -> None:
    skipped = window(weekdays=["sun"], start="02:30", duration="1h", timezone="Europe/Berlin")
    assert not skipped.active(at(2026, 3, 29, 0, 59))  # 01:59 CET
    assert skipped.active(at(2026, 3, 29, 1, 0))  # 03:00 CEST
    assert skipped.active(at(2026, 3, 29, 1, 59))
    assert not skipped.active(at(2026, 3, 29, 2, 0))  # 04:00 CEST
    assert skipped.active(at(2026, 4, 5, 2, 45, tz=BERLIN))  # a week later, as written


@pytest.mark.parametrize(("fields", "message"), [
    ({"cron": "0 2 * * *"}, "Field required"),
    ({"duration": "1h"}, "needs `cron"),
    ({"weekdays": ["sun"], "duration": "1h"}, "needs `cron"),
    ({"cron": "0 2 * * *", "start": "02:00", "weekdays": ["sun"], "duration": "1h"},
     "either `cron`"),
    ({"cron": "0 25 * * *", "duration": "1h"}, "invalid cron expression"),
    ({"weekdays": ["sonday"], "start": "02:00", "duration": "1h"}, "unknown weekday 'sonday'"),
    ({"weekdays": ["sun"], "start": "2am", "duration": "1h"}, "invalid start '2am'"),
    ({"cron": "0 2 * * *", "duration": "1h", "timezone": "Europe/Berln"},
     "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
    ({"cron": "0 2 * * *", "duration": 0}, "longer than zero"),
])
def test_bad_windows_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        window(**fields)
    assert message in str(caught.value)
