"""Alerting persistence: alerts, events, incidents, the delivery outbox, silences."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

from tocsin.alerting.model import (
    Alert,
    AlertEvent,
    AlertSnapshot,
    AlertState,
    Delivery,
    DeliveryStatus,
    Incident,
    Matcher,
    MatchOp,
    Notification,
    NotificationKind,
    Severity,
    Silence,
)
from tocsin.store import Store, StoreError

T0 = 1_790_000_000.0


def alert(fingerprint: str, **fields: Any) -> Alert:
    fields.setdefault("check", fingerprint.split(":")[0])
    fields.setdefault("service", "backend")
    fields.setdefault("rule", "down")
    fields.setdefault("severity", Severity.P1)
    return Alert(fingerprint=fingerprint, **fields)


def snapshot(fingerprint: str = "api:down", **fields: Any) -> AlertSnapshot:
    fields.setdefault("check", "api")
    fields.setdefault("service", "backend")
    fields.setdefault("severity", Severity.P1)
    fields.setdefault("state", AlertState.FIRING)
    fields.setdefault("rule", "down")
    fields.setdefault("summary", "api is down")
    return AlertSnapshot(fingerprint=fingerprint, **fields)


def notification(key: str, **fields: Any) -> Notification:
    fields.setdefault("channel", "email")
    fields.setdefault("kind", NotificationKind.FIRING)
    fields.setdefault("severity", Severity.P1)
    fields.setdefault("subject", "[P1] api is down")
    fields.setdefault("alerts", (snapshot(),))
    fields.setdefault("created_at", T0)
    return Notification(key=key, **fields)


def delivery(key: str, next_attempt_at: float = T0, **fields: Any) -> Delivery:
    note_fields = {k: fields.pop(k) for k in ("channel", "created_at") if k in fields}
    return Delivery(notification(key, **note_fields), next_attempt_at=next_attempt_at, **fields)


def silence(silence_id: str, starts_at: float, ends_at: float, **fields: Any) -> Silence:
    fields.setdefault("matchers", (Matcher("service", MatchOp.EQUAL, "backend"),))
    fields.setdefault("created_by", "ops@example.com")
    fields.setdefault("comment", "deploy")
    fields.setdefault("created_at", starts_at)
    return Silence(id=silence_id, starts_at=starts_at, ends_at=ends_at, **fields)


# -- alerts -------------------------------------------------------------------


def test_every_alert_field_survives_a_round_trip(store: Store) -> None:
    full = Alert(
        fingerprint="backend /health:response_time{region=eu}",
        check="backend /health",
        service="backend",
        rule="response_time > 1000ms",
        severity=Severity.P2,
        state=AlertState.ACKNOWLEDGED,
        active_at=T0,
        fired_at=T0 + 2.5,
        acked_at=T0 + 60,
        acked_by="ana@example.com",
        resolved_at=None,
        last_notified_at=T0 + 3,
        notified=2,
        escalated=True,
        incident_id="inc-1",
        failures=4,
        successes=0,
        value=1234.5,
        message="took 1234.5 ms — «slow»",
        summary="backend is slow",
        description="p95 over 1 s",
        runbook="https://runbooks.example.com/slow",
        labels={"region": "eu", "team": "core"},
        history="0011",
        flapping=True,
        silenced=True,
        inhibited=True,
        updated_at=T0 + 60,
    )
    unset = alert("db:down", service=None, severity=Severity.P4)

    assert store.save_alerting(alerts=[full, unset]) == []

    assert store.get_alert(full.fingerprint) == full
    assert store.get_alert("db:down") == unset
    assert store.get_alert("never:seen") is None
    assert Alert.from_json(full.to_json()) == full


def test_saving_an_alert_again_replaces_it(store: Store) -> None:
    first = alert("api:down", state=AlertState.FIRING, fired_at=T0, updated_at=T0)
    store.save_alerting(alerts=[first])

    resolved = replace(first, state=AlertState.RESOLVED, resolved_at=T0 + 90, updated_at=T0 + 90)
    store.save_alerting(alerts=[resolved])

    assert store.load_alerts() == [resolved]


def test_load_alerts_filters_by_state(store: Store) -> None:
    store.save_alerting(alerts=[
        alert("a:down", state=AlertState.FIRING),
        alert("b:down", state=AlertState.ACKNOWLEDGED),
        alert("c:down", state=AlertState.RESOLVED),
        alert("d:down", state=AlertState.PENDING),
    ])

    def fingerprints(states: list[AlertState] | None) -> list[str]:
        return [a.fingerprint for a in store.load_alerts(states)]

    assert fingerprints(None) == ["a:down", "b:down", "c:down", "d:down"]
    assert fingerprints([AlertState.FIRING, AlertState.ACKNOWLEDGED]) == ["a:down", "b:down"]
    assert fingerprints([]) == []


def test_list_alerts_pages_newest_first_with_the_total(store: Store) -> None:
    store.save_alerting(alerts=[
        alert(f"check-{i}:down", service="web" if i % 2 else "db",
              state=AlertState.FIRING if i < 6 else AlertState.RESOLVED, updated_at=T0 + i)
        for i in range(10)
    ])

    page, total = store.list_alerts(limit=3)
    assert ([a.fingerprint for a in page], total) == (
        ["check-9:down", "check-8:down", "check-7:down"], 10)

    page, total = store.list_alerts(state=AlertState.FIRING, service="web", limit=2, offset=1)
    assert ([a.fingerprint for a in page], total) == (["check-3:down", "check-1:down"], 3)

    assert store.list_alerts(service="nowhere") == ([], 0)


# -- events -------------------------------------------------------------------


def test_events_are_appended_and_read_oldest_first(store: Store) -> None:
    events = [
        AlertEvent("api:down", T0, AlertState.INACTIVE, AlertState.PENDING, Severity.P1),
        AlertEvent("api:down", T0 + 2, AlertState.PENDING, AlertState.FIRING, Severity.P1,
                   note="confirmed after 1 re-check"),
        AlertEvent("db:down", T0 + 1, AlertState.INACTIVE, AlertState.PENDING, Severity.P2),
    ]
    store.save_alerting(events=events[:2])
    store.save_alerting(events=events[2:])
    store.save_alerting(events=[
        AlertEvent("api:down", T0 + 60, AlertState.FIRING, AlertState.ACKNOWLEDGED, Severity.P1,
                   note="by ana"),
    ])

    everything = store.alert_events()
    assert [(e.fingerprint, e.at) for e in everything] == [
        ("api:down", T0), ("db:down", T0 + 1), ("api:down", T0 + 2), ("api:down", T0 + 60)]
    assert everything[:3] == [events[0], events[2], events[1]]
    assert [e.to_state for e in store.alert_events("api:down", since=T0 + 1)] == [
        AlertState.FIRING, AlertState.ACKNOWLEDGED]
    assert [e.at for e in store.alert_events(limit=2)] == [T0, T0 + 1]
    assert store.alert_events("never:seen") == []
    assert store.alert_events(limit=0) == []


# -- incidents ----------------------------------------------------------------


def test_incidents_are_upserted_and_open_ones_loaded(store: Store) -> None:
    opened = Incident("inc-1", "backend", T0, Severity.P2)
    other = Incident("inc-2", "db", T0 + 5, Severity.P3, paged_at=T0 + 6)
    store.save_alerting(incidents=[opened, other])

    escalated = replace(opened, severity=Severity.P1, paged_at=T0 + 1)
    closed = replace(other, closed_at=T0 + 100)
    store.save_alerting(incidents=[escalated, closed])

    assert store.load_incidents() == [escalated]
    assert store.load_incidents(open_only=False) == [escalated, closed]


# -- deliveries ---------------------------------------------------------------


def test_a_new_delivery_is_stored_and_returned_with_its_id(store: Store) -> None:
    queued = delivery("<a1@tocsin>", fallback_of="<a0@tocsin>")

    inserted = store.save_alerting(deliveries=[queued])

    assert len(inserted) == 1
    assert inserted[0].id is not None
    assert replace(inserted[0], id=None) == queued
    assert queued.id is None  # the argument is left as it was
    assert store.get_delivery("<a1@tocsin>") == inserted[0]
    assert store.get_delivery("<nope@tocsin>") is None


def test_enqueueing_the_same_key_again_stores_it_once(store: Store) -> None:
    first = store.save_alerting(deliveries=[delivery("k1"), delivery("k2")])

    again = store.save_alerting(deliveries=[
        delivery("k2", attempts=9),  # already stored: skipped, not overwritten
        delivery("k3"),
        delivery("k3"),  # repeated within the batch
    ])

    assert [d.key for d in first] == ["k1", "k2"]
    assert [d.key for d in again] == ["k3"]
    assert len({d.id for d in first + again}) == 3
    assert store.list_deliveries()[1] == 3
    assert store.get_delivery("k2") == first[1]


def test_due_deliveries_are_pending_ones_longest_waiting_first(store: Store) -> None:
    store.save_alerting(deliveries=[
        delivery("later", next_attempt_at=T0 + 30),
        delivery("retry", next_attempt_at=T0 + 5),
        delivery("first", next_attempt_at=T0),
        delivery("sent", next_attempt_at=T0, status=DeliveryStatus.SENT, sent_at=T0),
        delivery("failed", next_attempt_at=T0, status=DeliveryStatus.FAILED),
        delivery("also-first", next_attempt_at=T0),
    ])

    def due(now: float, limit: int = 100) -> list[str]:
        return [d.key for d in store.due_deliveries(now, limit)]

    assert due(T0 - 1) == []
    assert due(T0 + 5) == ["first", "also-first", "retry"]
    assert due(T0 + 60, limit=2) == ["first", "also-first"]
    assert store.next_delivery_at() == T0


def test_next_delivery_at_is_none_when_nothing_is_pending(store: Store) -> None:
    assert store.next_delivery_at() is None

    [queued] = store.save_alerting(deliveries=[delivery("k", next_attempt_at=T0 + 10)])
    assert store.next_delivery_at() == T0 + 10

    store.update_delivery(replace(queued, status=DeliveryStatus.SENT, attempts=1, sent_at=T0 + 10))
    assert store.next_delivery_at() is None


def test_an_attempts_outcome_survives_a_round_trip(store: Store) -> None:
    [queued] = store.save_alerting(deliveries=[delivery("k")])

    retrying = replace(queued, attempts=1, next_attempt_at=T0 + 4,
                       last_error="SMTP 451: try again later")
    store.update_delivery(retrying)
    assert store.get_delivery("k") == retrying
    assert store.due_deliveries(T0 + 1) == []

    sent = replace(retrying, status=DeliveryStatus.SENT, attempts=2, sent_at=T0 + 4.5,
                   last_error=None)
    store.update_delivery(sent)
    assert store.get_delivery("k") == sent


def test_updating_an_unknown_delivery_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no delivery with key 'ghost'"):
        store.update_delivery(delivery("ghost"))


def test_list_deliveries_filters_and_counts(store: Store) -> None:
    store.save_alerting(deliveries=[
        delivery(f"k{i}", channel="email" if i % 2 else "slack", created_at=T0 + i,
                 status=DeliveryStatus.FAILED if i >= 7 else DeliveryStatus.PENDING)
        for i in range(10)
    ])

    page, total = store.list_deliveries(limit=3)
    assert ([d.key for d in page], total) == (["k9", "k8", "k7"], 10)

    page, total = store.list_deliveries(status=DeliveryStatus.PENDING, channel="email",
                                        limit=2, offset=1)
    assert ([d.key for d in page], total) == (["k3", "k1"], 3)

    assert store.list_deliveries(channel="pager") == ([], 0)


def test_a_notification_with_alert_snapshots_survives_the_outbox(store: Store) -> None:
    sent = Notification(
        key="<inc-1.2@tocsin.example.com>",
        channel="oncall-email",
        kind=NotificationKind.UPDATE,
        severity=Severity.P1,
        subject="[P1] backend: 2 alerts",
        alerts=(
            snapshot(
                "backend /health:down", check="backend /health", description="503s",
                value=503.0, unit="", threshold="!= 200", message="status 503 — «down»",
                since=T0, runbook="https://runbooks.example.com/down",
                labels={"region": "eu"}, ack_url="https://tocsin.example.com/ack/abc",
                dashboard_url="https://tocsin.example.com/checks/backend",
            ),
            snapshot(
                "backend /health:response_time", severity=Severity.P2,
                state=AlertState.RESOLVED, rule="response_time > 1000ms",
                summary="slow", value=1234.5, unit="ms", since=T0 - 60, ended_at=T0,
            ),
        ),
        created_at=T0 + 1,
        incident_id="inc-1",
        high_priority=True,
        counts={"P1": 1, "P2": 1},
    )
    assert Notification.from_json(sent.to_json()) == sent

    store.save_alerting(deliveries=[Delivery(sent)])

    stored = store.get_delivery(sent.key)
    assert stored is not None
    assert stored.notification == sent
    assert stored.notification.alerts[1].duration_s == 60.0


# -- one transaction ----------------------------------------------------------


def test_save_alerting_is_all_or_nothing(store: Store) -> None:
    before = alert("api:down", state=AlertState.PENDING, updated_at=T0)
    store.save_alerting(alerts=[before])
    # A notification without a channel breaks the table's NOT NULL constraint,
    # after the alert, event and incident have been written in the same transaction.
    broken = delivery("k2", channel=cast(str, None))

    with pytest.raises(StoreError):
        store.save_alerting(
            alerts=[replace(before, state=AlertState.FIRING, fired_at=T0 + 2)],
            events=[AlertEvent("api:down", T0 + 2, AlertState.PENDING, AlertState.FIRING,
                               Severity.P1)],
            incidents=[Incident("inc-1", "backend", T0 + 2, Severity.P1)],
            deliveries=[delivery("k1"), broken],
        )

    assert store.load_alerts() == [before]
    assert store.alert_events() == []
    assert store.load_incidents(open_only=False) == []
    assert store.list_deliveries() == ([], 0)
    # and the store still works afterwards
    assert [d.key for d in store.save_alerting(deliveries=[delivery("k1")])] == ["k1"]


def test_saving_nothing_is_a_no_op(store: Store) -> None:
    assert store.save_alerting() == []
    assert store.load_alerts() == []


# -- silences -----------------------------------------------------------------


def test_a_silence_survives_a_round_trip(store: Store) -> None:
    muted = silence(
        "s1", T0, T0 + 3600,
        matchers=(
            Matcher("service", MatchOp.EQUAL, "backend"),
            Matcher("severity", MatchOp.NOT_EQUAL, "P1"),
            Matcher("check", MatchOp.REGEX, "backend .*"),
            Matcher("region", MatchOp.NOT_REGEX, "us-.*"),
        ),
        comment="migration — «planned»",
    )

    store.add_silence(muted)

    assert store.get_silence("s1") == muted
    assert store.get_silence("s2") is None
    assert store.list_silences() == [muted]


def test_adding_a_silence_with_a_known_id_edits_it(store: Store) -> None:
    store.add_silence(silence("s1", T0, T0 + 60))
    longer = silence("s1", T0, T0 + 7200, comment="deploy runs late")

    store.add_silence(longer)

    assert store.list_silences() == [longer]


def test_list_silences_can_leave_out_long_expired_ones(store: Store) -> None:
    old = silence("old", T0 - 7200, T0 - 3600)
    recent = silence("recent", T0 - 600, T0 - 60)
    active = silence("active", T0 - 60, T0 + 60)
    pending = silence("pending", T0 + 600, T0 + 1200)
    for s in (pending, active, old, recent):
        store.add_silence(s)

    assert store.list_silences() == [old, recent, active, pending]
    assert store.list_silences(include_expired_after=T0 - 300) == [recent, active, pending]
    assert store.list_silences(include_expired_after=T0) == [active, pending]


def test_expiring_an_active_silence_ends_it_now(store: Store) -> None:
    store.add_silence(silence("s1", T0, T0 + 3600))

    assert store.expire_silence("s1", T0 + 60) is True

    expired = store.get_silence("s1")
    assert expired is not None
    assert (expired.starts_at, expired.ends_at) == (T0, T0 + 60)


def test_expiring_a_pending_silence_starts_and_ends_it_now(store: Store) -> None:
    store.add_silence(silence("s1", T0 + 600, T0 + 3600))

    assert store.expire_silence("s1", T0)

    expired = store.get_silence("s1")
    assert expired is not None
    assert (expired.starts_at, expired.ends_at) == (T0, T0)


def test_expiring_an_expired_silence_keeps_its_times(store: Store) -> None:
    store.add_silence(silence("s1", T0, T0 + 60))

    assert store.expire_silence("s1", T0 + 3600)

    assert store.get_silence("s1") == silence("s1", T0, T0 + 60)


def test_expiring_an_unknown_silence_says_so(store: Store) -> None:
    assert store.expire_silence("ghost", T0) is False
