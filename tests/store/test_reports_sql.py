"""Stored reports: saved, listed newest first by kind and time, pruned by age."""

from __future__ import annotations

from tocsin.reports.model import StoredReport
from tocsin.store import Store


def test_reports_round_trip_and_prune(store: Store) -> None:
    first = store.save_report(StoredReport("health", "2026-10-01T10:00", 100.0,
                                           {"services": [{"name": "api", "up": True}]}))
    second = store.save_report(StoredReport("health", "2026-10-01T11:00", 200.0, {"n": 2}))
    store.save_report(StoredReport("sla", "2026-10", 150.0, {"title": "x"}))
    assert second > first
    found = store.list_reports("health")
    assert [(r.period, r.data) for r in found] == [
        ("2026-10-01T11:00", {"n": 2}),
        ("2026-10-01T10:00", {"services": [{"name": "api", "up": True}]})]
    assert found[0].id == second
    assert [r.created_at for r in store.list_reports("health", since=150.0)] == [200.0]
    assert [r.created_at for r in store.list_reports("health", until=150.0)] == [100.0]
    assert store.list_reports("health", limit=0) == []
    assert store.prune_reports("health", before=150.0) == 1
    assert [r.created_at for r in store.list_reports("health")] == [200.0]
    assert len(store.list_reports("sla")) == 1
