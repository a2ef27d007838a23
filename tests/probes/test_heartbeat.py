"""Heartbeat states from pings on a known clock, schedules across DST, and config errors."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tocsin.config import ConfigError, ConfigIssue, load_config_text
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, build_probe
from tocsin.probes.heartbeat_book import (
    HeartbeatBook,
    HeartbeatCheckConfig,
    HeartbeatState,
    Ping,
    PingKind,
    TokenBucket,
    assess,
)

TOKEN = "0123456789abcdef0123"
T0 = 1_790_000_000.0  # 2026-09-21
HOUR = 3600.0
DAY = 86400.0


def config(**fields: Any) -> HeartbeatCheckConfig:
    return HeartbeatCheckConfig(type="heartbeat", token=TOKEN, **fields)


def ping(kind: PingKind, at: float, **fields: Any) -> Ping:
    return Ping(check="backup", kind=kind, at=at, **fields)


def state_after(*pings: Ping, since: float = T0) -> HeartbeatState:
    state = HeartbeatState(since=since)
    for p in pings:
        state.apply(p)
    return state


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


# -- period + grace ------------------------------------------------------------


def test_never_pinged_is_new_then_late_then_down() -> None:
    c = config(period="1d", grace="1h")
    state = state_after()
    assert assess(c, state, T0 + DAY - 1).state == "new"
    late = assess(c, state, T0 + DAY + 60)
    assert (late.state, late.status) == ("late", CheckStatus.OK)
    assert late.values["late_by"] == pytest.approx(60_000)
    down = assess(c, state, T0 + DAY + HOUR + 1)
    assert (down.state, down.status) == ("down", CheckStatus.FAILING)
    assert "no ping received" in down.message


def test_success_restarts_the_period() -> None:
    c = config(period="1h", grace="10m")
    state = state_after(ping(PingKind.SUCCESS, T0 + 50 * 60))
    assert assess(c, state, T0 + 50 * 60 + HOUR - 1).state == "up"
    assert assess(c, state, T0 + 50 * 60 + HOUR + 1).state == "late"
    down = assess(c, state, T0 + 50 * 60 + HOUR + 601)
    assert down.state == "down"
    assert down.values["since_last_ping"] == pytest.approx((HOUR + 601) * 1000)


def test_fail_and_nonzero_exit_code_are_failed_with_the_body() -> None:
    c = config(period="1d")
    failed = assess(c, state_after(ping(PingKind.FAIL, T0, body="disk full\n")), T0 + 1)
    assert (failed.state, failed.status) == ("failed", CheckStatus.FAILING)
    assert "disk full" in failed.message
    coded = assess(c, state_after(ping(PingKind.FAIL, T0, exit_code=3)), T0 + 1)
    assert "exit code 3" in coded.message
    assert coded.values["exit_code"] == 3
    recovered = assess(c, state_after(ping(PingKind.FAIL, T0), ping(PingKind.SUCCESS, T0 + 5)),
                       T0 + 6)
    assert recovered.state == "up"


def test_log_does_not_change_the_state() -> None:
    c = config(period="1h", grace="1m")
    state = state_after(ping(PingKind.SUCCESS, T0), ping(PingKind.LOG, T0 + 2 * HOUR))
    assert assess(c, state, T0 + 2 * HOUR).state == "down"


def test_start_pairs_with_its_end_by_run_id() -> None:
    c = config(period="1d", grace="1h")
    state = HeartbeatState(since=T0)
    state.apply(ping(PingKind.START, T0, rid="a"))
    state.apply(ping(PingKind.START, T0 + 5, rid="stale"))  # crashed: an end supersedes it
    ended = state.apply(ping(PingKind.SUCCESS, T0 + 70, rid="a"))
    assert ended.duration_s == 70
    assert assess(c, state, T0 + 71).state == "up"
    state.apply(ping(PingKind.START, T0 + 75, rid="b"))
    # b is open and newer than the last end: running.
    assert assess(c, state, T0 + 80).state == "running"
    b = state.apply(ping(PingKind.SUCCESS, T0 + 165, rid="b"))
    assert b.duration_s == 90
    up = assess(c, state, T0 + 166)
    assert up.state == "up"
    assert up.values["run_time"] == 90_000


def test_start_without_end_within_grace_is_down() -> None:
    c = config(period="1d", grace="30m")
    state = state_after(ping(PingKind.SUCCESS, T0), ping(PingKind.START, T0 + HOUR))
    assert assess(c, state, T0 + HOUR + 29 * 60).state == "running"
    down = assess(c, state, T0 + HOUR + 31 * 60)
    assert (down.state, down.status) == ("down", CheckStatus.FAILING)
    assert "has not finished" in down.message


def test_open_runs_are_bounded() -> None:
    state = HeartbeatState(since=T0)
    for i in range(500):
        state.apply(ping(PingKind.START, T0 + i, rid=f"r{i}"))
    assert len(state.open_runs) == 100


# -- cron + timezone -----------------------------------------------------------


def test_cron_is_due_at_the_next_fire_after_the_last_success() -> None:
    c = config(cron="0 2 * * *", timezone="Europe/Berlin", grace="1h")
    last = berlin(2026, 6, 1, 2, 5)
    state = state_after(ping(PingKind.SUCCESS, last))
    due = berlin(2026, 6, 2, 2, 0)
    assert assess(c, state, due - 1).state == "up"
    assert assess(c, state, due + 1).state == "late"
    assert assess(c, state, due + HOUR + 1).state == "down"


@pytest.mark.parametrize("day, expected_hour", [
    ((2026, 3, 29), 3),  # spring forward: 02:30 does not exist, the job runs at 03:00
    ((2026, 10, 25), 2),  # fall back: 02:30 happens twice; the first one is due
])
def test_cron_across_a_dst_change(day: tuple[int, int, int], expected_hour: int) -> None:
    c = config(cron="30 2 * * *", timezone="Europe/Berlin", grace="30m")
    y, m, d = day
    previous = berlin(y, m, d - 1, 2, 31)
    state = state_after(ping(PingKind.SUCCESS, previous))
    due = assess(c, state, previous + 60).details["due_at"]
    assert isinstance(due, float)
    local = datetime.fromtimestamp(due, ZoneInfo("Europe/Berlin"))
    assert (local.day, local.hour) == (d, expected_hour)
    # A ping that arrives during the change (the job ran at the due time) is up,
    # and the next one is due a day later at 02:30 local, not an hour off.
    state.apply(ping(PingKind.SUCCESS, due + 60))
    after = assess(c, state, due + 120)
    assert after.state == "up"
    next_due = after.details["due_at"]
    assert isinstance(next_due, float)
    assert datetime.fromtimestamp(next_due, ZoneInfo("Europe/Berlin")).timetuple()[2:5] == \
        (d + 1, 2, 30)
    assert assess(c, state, due + 1800).state == "up"  # no false alarm inside the change


# -- book: tokens, rate limits, restore ----------------------------------------


def spec(name: str = "backup", **fields: Any) -> CheckSpec[HeartbeatCheckConfig]:
    return CheckSpec(name=name, service=None, service_url=None, interval=60, timeout=5,
                     config=config(**fields))


def test_book_finds_by_token_and_forgets_removed_heartbeats() -> None:
    book = HeartbeatBook()
    book.configure([spec()], T0)
    found = book.find(TOKEN)
    assert found is not None and found.name == "backup"
    assert book.find("not-the-token-at-all") is None
    book.record(ping(PingKind.SUCCESS, T0 + 1))
    book.configure([spec()], T0 + 5)  # a reload keeps the state
    state = book.state("backup")
    assert state is not None and state.last_success is not None
    book.configure([], T0 + 10)
    assert book.find(TOKEN) is None and book.state("backup") is None


def test_restore_replays_pings_and_keeps_the_earliest_since() -> None:
    book = HeartbeatBook()
    book.configure([spec(period="1h", grace="1m")], T0 + DAY)
    book.restore("backup", [ping(PingKind.START, T0, rid="x"),
                            ping(PingKind.SUCCESS, T0 + 30, rid="x")])
    found = book.assess("backup", T0 + 31)
    assert found is not None and found.state == "up"
    assert found.values["run_time"] == 30_000


def test_rate_limit_refills_over_time() -> None:
    book = HeartbeatBook()
    book.configure([spec(rate_limit=6)], T0)
    allowed = [book.allow("backup", 100.0) is None for _ in range(10)]
    assert allowed.count(True) == 6
    wait = book.allow("backup", 100.0)
    assert wait is not None and 0 < wait <= 10
    assert book.allow("backup", 110.5) is None  # 6/min = one every 10 s
    bucket = TokenBucket(60, 0.0)
    assert sum(bucket.take(0.0) for _ in range(100)) == 60


async def test_probe_reports_the_assessment() -> None:
    context = ProbeContext()
    context.heartbeats.configure([spec(period="1h")], time.time())
    probe = build_probe(spec(period="1h"), context)
    assert probe is not None
    result = await probe.run()
    assert result.status is CheckStatus.OK
    assert result.details["state"] == "new"
    await context.close()


# -- config --------------------------------------------------------------------

ENV = {"BACKUP_PING_TOKEN": TOKEN, "OTHER_TOKEN": TOKEN}


def issues_of(text: str, env: dict[str, str]) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env=env)
    return caught.value.issues


def heartbeat_config(check: str) -> str:
    return f"services:\n  jobs:\n    checks:\n      - {check}\n"


def test_heartbeat_config_loads_with_token_from_the_environment() -> None:
    loaded = load_config_text(heartbeat_config(
        '{type: heartbeat, name: backup, token: "${BACKUP_PING_TOKEN}", cron: "0 2 * * *", '
        'timezone: Europe/Berlin}'), env=ENV)
    (check,) = loaded.checks
    assert isinstance(check.config, HeartbeatCheckConfig)
    assert loaded.redactor.redact(f"/ping/{TOKEN}") == "/ping/***"


@pytest.mark.parametrize("check, where, message", [
    ("{type: heartbeat, token: 0123456789abcdef0123}", "token", "take it from the environment"),
    ('{type: heartbeat, token: "${SHORT_TOKEN}"}', "token", "at least 16 characters"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", cron: "0 0 30 2 *"}', "",
     "never fires"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", cron: "61 * * * *"}', "cron",
     "invalid cron expression"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", cron: "0 2 * * *", period: 1d}', "",
     "either period or cron"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", timezone: Europe/Berln}', "timezone",
     "Europe/Berlin"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", grace: 0s}', "", "grace must be"),
    ('{type: heartbeat, token: "${BACKUP_PING_TOKEN}", body_limit: 2MiB}', "", "body_limit"),
    ('{type: heartbeat}', "", "token"),
])
def test_heartbeat_config_errors(check: str, where: str,
                                 message: str) -> None:
    env = {**ENV, "SHORT_TOKEN": "abc123"}
    found = issues_of(heartbeat_config(check), env)
    assert any(message in issue.message for issue in found), found
    issue = next(issue for issue in found if message in issue.message)
    assert issue.path.startswith("services.jobs.checks[0]")
    assert issue.path.endswith(where)
    assert issue.line == 4
    assert TOKEN not in str(found) and "abc123" not in str(found)


def test_two_heartbeats_with_one_token_are_refused() -> None:
    text = ("services:\n  jobs:\n    checks:\n"
            '      - {type: heartbeat, name: a, token: "${BACKUP_PING_TOKEN}"}\n'
            '      - {type: heartbeat, name: b, token: "${OTHER_TOKEN}"}\n')
    (issue,) = issues_of(text, ENV)
    assert issue.path == "services.jobs.checks[1].token"
    assert "same token as 'a'" in issue.message
    assert TOKEN not in issue.message


def test_token_is_never_in_the_repr() -> None:
    assert TOKEN not in repr(config())
    with pytest.raises(ValidationError) as caught:
        HeartbeatCheckConfig(type="heartbeat", token="short")
    assert "short" not in str(caught.value).split("input_value")[0]
