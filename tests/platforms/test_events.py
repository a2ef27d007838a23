"""Deploy events: from a deploy check's result, through the recorder, into a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tocsin.platforms import DeployStatus
from tocsin.platforms.events import DeployEvent, DeployRecorder, deploy_events
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    opened.migrate()
    yield opened
    opened.close()


def entry(deploy_id: str, status: str, created: str = "2026-03-04T10:00:00+00:00",
          finished: str | None = None) -> dict[str, Any]:
    return {"id": deploy_id, "status": status, "trigger": "new_commit", "commit_id": "abc123",
            "commit_message": "Ship it", "created_at": created, "finished_at": finished}


def deploy_result(*entries: dict[str, Any], at: float = 1_800_000_000.0) -> CheckResult:
    return CheckResult(check="backend:deploy", status=CheckStatus.OK, started_at=at,
                       details={"service": "backend", "service_id": "srv-b",
                                "platform": "render", "deploys": list(entries)})


def test_events_are_read_from_a_deploy_result() -> None:
    [event] = deploy_events(deploy_result(entry("dep-1", "build_failed",
                                                finished="2026-03-04T10:03:00+00:00")))
    assert event == DeployEvent(
        deploy_id="dep-1", service="backend", check="backend:deploy",
        status=DeployStatus.BUILD_FAILED, trigger="new_commit", commit_id="abc123",
        commit_message="Ship it", created_at=1_772_618_400.0, finished_at=1_772_618_580.0,
        seen_at=1_800_000_000.0)


def test_other_results_hold_no_events() -> None:
    plain = CheckResult(check="backend:http", status=CheckStatus.OK, started_at=1.0)
    assert deploy_events(plain) == []
    odd = CheckResult(check="x", status=CheckStatus.OK, started_at=1.0,
                      details={"deploys": "not a list"})
    assert deploy_events(odd) == []


def test_an_unknown_status_is_recorded_as_unknown() -> None:
    [event] = deploy_events(deploy_result(entry("dep-1", "teleporting")))
    assert event.status is DeployStatus.UNKNOWN


async def test_the_recorder_stores_deploys_and_upserts_status_changes(store: Store) -> None:
    recorder = DeployRecorder(store, flush_interval=0.01)
    recorder.start()
    try:
        recorder.submit(deploy_result(entry("dep-1", "live", created="2026-03-04T09:00:00Z"),
                                      entry("dep-2", "build_in_progress")))
        await recorder.flush()
        stored = {event.deploy_id: event for event in store.list_deploys()}
        assert stored["dep-2"].status is DeployStatus.BUILD_IN_PROGRESS
        assert stored["dep-2"].finished_at is None

        recorder.submit(deploy_result(entry("dep-1", "live", created="2026-03-04T09:00:00Z"),
                                      entry("dep-2", "build_failed",
                                            finished="2026-03-04T10:04:00Z"), at=1_800_000_060.0))
        await recorder.flush()
        assert recorder.written == 3  # dep-1 did not change: written once
        [newest, oldest] = store.list_deploys(service="backend")
        assert (newest.deploy_id, newest.status) == ("dep-2", DeployStatus.BUILD_FAILED)
        assert newest.seen_at == 1_800_000_060.0 and newest.finished_at is not None
        assert (oldest.deploy_id, oldest.status) == ("dep-1", DeployStatus.LIVE)
    finally:
        await recorder.close()


async def test_the_recorder_writes_what_is_pending_when_closed(store: Store) -> None:
    recorder = DeployRecorder(store, flush_interval=60.0)
    recorder.start()
    recorder.submit(deploy_result(entry("dep-9", "queued")))
    await recorder.close()
    assert [event.deploy_id for event in store.list_deploys()] == ["dep-9"]


def test_list_deploys_filters_by_service_and_time_newest_first(store: Store) -> None:
    def event(deploy_id: str, service: str, created: float) -> DeployEvent:
        return DeployEvent(deploy_id, service, f"{service}:deploy", DeployStatus.LIVE, "api",
                           None, None, created, created + 60, created + 61)

    store.record_deploys([event("dep-a", "backend", 100.0), event("dep-b", "frontend", 200.0),
                          event("dep-c", "backend", 300.0)])
    assert [e.deploy_id for e in store.list_deploys()] == ["dep-c", "dep-b", "dep-a"]
    assert [e.deploy_id for e in store.list_deploys(service="backend")] == ["dep-c", "dep-a"]
    assert [e.deploy_id for e in store.list_deploys(since=150.0)] == ["dep-c", "dep-b"]
    assert [e.deploy_id for e in store.list_deploys(limit=1)] == ["dep-c"]
    assert store.list_deploys(limit=0) == []
