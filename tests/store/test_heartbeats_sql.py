"""Heartbeat pings in the store: appended, read back newest first, on every backend."""

from __future__ import annotations

from tocsin.probes.heartbeat_book import Ping, PingKind
from tocsin.store import Store


def test_pings_round_trip_newest_first(store: Store) -> None:
    pings = [
        Ping("backup", PingKind.START, 100.0, rid="r1", method="POST", source="10.0.0.7"),
        Ping("backup", PingKind.FAIL, 160.0, rid="r1", exit_code=3, duration_s=60.0,
             body="disk full ✗", truncated=True, method="POST", source="10.0.0.7"),
        Ping("other", PingKind.SUCCESS, 170.0),
        Ping("backup", PingKind.LOG, 200.0, body="note"),
    ]
    store.record_pings(pings)
    assert store.list_pings("backup") == [pings[3], pings[1], pings[0]]
    assert store.list_pings("backup", since=150.0, limit=1) == [pings[3]]
    assert store.list_pings("backup", limit=0) == []
    assert store.list_pings("nobody") == []
    store.record_pings([])
