"""Every list of the JSON API pages alike, and filters; silences are read and edited.

A real Runtime serves ``running.py``'s services (``edge`` is down and pages P1)
plus a heartbeat, a pushed metric and an SLO, so that each list has something in it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Target
from tests.web.running import Site, running_tocsin
from tocsin.reports.model import StoredReport
from tocsin.store.base import APIToken, TokenScope
from tocsin.web.credentials import issue_token

EXTRA = """\
  jobs:
    checks:
      - {type: heartbeat, name: nightly, token: "${JOB_PING_TOKEN}", period: 1d}
      - {type: metric, name: signups, push: true}
slos:
  - {name: api uptime, service: backend, indicator: availability, objective: 99.9%}
"""

LISTS = [
    "/api/v1/checks", "/api/v1/alerts", "/api/v1/incidents", "/api/v1/silences",
    "/api/v1/deliveries", "/api/v1/remediation/attempts", "/api/v1/services",
    "/api/v1/heartbeats", "/api/v1/metrics", "/api/v1/slos", "/api/v1/reports/alerts",
    "/api/v1/reports/health", "/api/v1/channels",
]


@pytest.fixture
async def site(tmp_path: Path, target: Target,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    for name in ("TOCSIN_API_TOKEN", "TOCSIN_ADMIN_PASSWORD_HASH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOB_PING_TOKEN", "job-token-for-paging-tests")
    async with running_tocsin(tmp_path, target, EXTRA) as site:
        await site.until(lambda: site.runtime.latest.get("edge-down") is not None
                         and site.runtime.latest.get("backend-health") is not None)
        yield site


async def listed(site: Site, path: str, **params: Any) -> dict[str, Any]:
    status, body = await site.json("GET", path, params=params)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


async def silence(site: Site, **fields: Any) -> dict[str, Any]:
    body = {"matchers": ["service=backend"], "duration": "1h", "created_by": "alice", **fields}
    status, created = await site.json("POST", "/api/v1/silences", json=body)
    assert status == 201, created
    assert isinstance(created, dict)
    return created


# -- one shape for every list ----------------------------------------------------------------

@pytest.mark.parametrize("path", LISTS)
async def test_every_list_pages_and_past_the_end_is_empty_with_the_total(
        site: Site, path: str) -> None:
    first = await listed(site, path, limit=1)
    assert {"total", "limit", "offset", "items"} <= first.keys()
    assert first["limit"] == 1 and first["offset"] == 0
    assert len(first["items"]) == min(1, first["total"])

    beyond = await listed(site, path, limit=5, offset=first["total"] + 10)
    assert beyond["items"] == [] and beyond["offset"] == first["total"] + 10
    assert beyond["total"] == first["total"]

    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        status, _ = await site.json("GET", path, params=bad)
        assert status == 422, (path, bad)


async def test_pages_of_a_list_are_consecutive(site: Site) -> None:
    every = await listed(site, "/api/v1/checks")
    assert every["total"] >= 3 and every["limit"] == 100
    pages = [await listed(site, "/api/v1/checks", limit=2, offset=offset)
             for offset in range(0, every["total"], 2)]
    assert [c["name"] for p in pages for c in p["items"]] == \
        [c["name"] for c in every["items"]]


# -- filters ----------------------------------------------------------------------------------

async def test_incidents_filter_by_service_severity_and_open(site: Site) -> None:
    await site.until(lambda: bool(site.runtime.engine and any(
        a.fired_at for a in site.runtime.engine.alerts.values())))
    body: dict[str, Any] = {"total": 0}
    deadline = time.monotonic() + 10
    while body["total"] == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
        body = await listed(site, "/api/v1/incidents", service="edge")
    assert [(i["service"], i["severity"]) for i in body["items"]] == [("edge", "P1")]
    assert (await listed(site, "/api/v1/incidents", service="backend"))["total"] == 0
    assert (await listed(site, "/api/v1/incidents", severity="P2"))["total"] == 0
    assert (await listed(site, "/api/v1/incidents", severity="P1", open="false"))["total"] == 1
    status, _ = await site.json("GET", "/api/v1/incidents", params={"severity": "P9"})
    assert status == 422


async def test_silences_filter_by_state_and_author(site: Site) -> None:
    now = time.time()
    active = await silence(site)
    pending = await silence(site, created_by="bob", starts_at=now + 3600, ends_at=now + 7200)
    gone = await silence(site)
    await site.json("DELETE", f"/api/v1/silences/{gone['id']}")

    def ids(body: dict[str, Any]) -> list[str]:
        return [s["id"] for s in body["items"]]

    assert ids(await listed(site, "/api/v1/silences")) == [active["id"], pending["id"]]
    assert ids(await listed(site, "/api/v1/silences", state="pending")) == [pending["id"]]
    assert ids(await listed(site, "/api/v1/silences", state="active")) == [active["id"]]
    assert ids(await listed(site, "/api/v1/silences", state="expired")) == [gone["id"]]
    assert ids(await listed(site, "/api/v1/silences", created_by="bob")) == [pending["id"]]
    every = await listed(site, "/api/v1/silences", expired="true", created_by="alice")
    assert set(ids(every)) == {active["id"], gone["id"]} and every["total"] == 2


async def test_services_filter_by_state(site: Site) -> None:
    down = await listed(site, "/api/v1/services", state="down")
    assert "edge" in [s["name"] for s in down["items"]]
    assert all(s["state"] == "down" for s in down["items"])
    everything = await listed(site, "/api/v1/services")
    assert down["total"] < everything["total"]
    status, _ = await site.json("GET", "/api/v1/services", params={"state": "sideways"})
    assert status == 422


async def test_heartbeats_metrics_and_slos_filter_by_service(site: Site) -> None:
    body = await listed(site, "/api/v1/heartbeats", service="jobs")
    assert [h["name"] for h in body["items"]] == ["nightly"]
    assert (await listed(site, "/api/v1/heartbeats", service="edge"))["total"] == 0
    state = body["items"][0]["state"]
    assert (await listed(site, "/api/v1/heartbeats", state=state))["total"] == 1
    other = "late" if state != "late" else "down"
    assert (await listed(site, "/api/v1/heartbeats", state=other))["total"] == 0

    assert [m["check"] for m in (await listed(site, "/api/v1/metrics",
                                              service="jobs"))["items"]] == ["signups"]
    assert (await listed(site, "/api/v1/metrics", service="backend"))["total"] == 0

    assert [s["name"] for s in (await listed(site, "/api/v1/slos",
                                             service="backend"))["items"]] == ["api uptime"]
    assert (await listed(site, "/api/v1/slos", service="edge"))["total"] == 0


async def test_channels_filter_by_failing(site: Site) -> None:
    healthy = await listed(site, "/api/v1/channels", failing="false")
    assert [c["name"] for c in healthy["items"]] == ["rec"]
    assert healthy["items"][0]["failing"] is False
    assert (await listed(site, "/api/v1/channels", failing="true"))["total"] == 0


async def test_alert_review_filters_by_severity(site: Site) -> None:
    deadline = time.monotonic() + 10
    while not (body := await listed(site, "/api/v1/reports/alerts", severity="P1"))["total"]:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)
    assert "edge-down:down" in [r["fingerprint"] for r in body["items"]]
    assert all(r["severity"] == "P1" for r in body["items"])
    assert "since" in body
    assert (await listed(site, "/api/v1/reports/alerts", severity="P4"))["total"] == 0


async def test_health_reports_page_newest_first(site: Site) -> None:
    store = site.runtime.require_store()
    start = time.time() - 10 * 3600
    for hour in range(5):
        await asyncio.to_thread(store.save_report, StoredReport(
            "health", f"h{hour}", start + hour * 3600, {"hour": hour}))
    default = await listed(site, "/api/v1/reports/health")
    assert default["limit"] == 24 and default["total"] == 5
    body = await listed(site, "/api/v1/reports/health", limit=2, offset=1)
    assert [r["hour"] for r in body["items"]] == [3, 2]
    body = await listed(site, "/api/v1/reports/health", since=start + 3600, limit=10)
    assert body["total"] == 4


async def test_check_history_pages_by_its_until_cursor(site: Site) -> None:
    path = "/api/v1/checks/edge-down/history"
    deadline = time.monotonic() + 10
    while len((first := await listed(site, path, limit=2))["items"]) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert first["limit"] == 2 and first["next_until"] == first["items"][-1]["started_at"]
    before = await listed(site, path, limit=2, until=first["next_until"])
    assert all(r["started_at"] < first["next_until"] for r in before["items"])
    seen = [r["started_at"] for r in first["items"] + before["items"]]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    last = await listed(site, path, limit=1000)
    assert last["next_until"] is None


# -- silences: read and edit -----------------------------------------------------------------

async def test_a_silence_is_read_by_id(site: Site) -> None:
    created = await silence(site, comment="deploy")
    assert await listed(site, f"/api/v1/silences/{created['id']}") == created
    status, body = await site.json("GET", "/api/v1/silences/sil-nope")
    assert status == 404 and body["detail"] == "no silence 'sil-nope'"


async def test_editing_a_silence_changes_it_for_the_engine_too(site: Site) -> None:
    created = await silence(site, comment="deploy")
    engine = site.runtime.engine
    assert engine is not None
    assert not engine.alerts["edge-down:down"].silenced

    status, edited = await site.json("PUT", f"/api/v1/silences/{created['id']}", json={
        "matchers": ["service=edge"], "duration": "3h"})
    assert status == 200, edited
    assert edited["id"] == created["id"] and edited["matchers"] == ["service=edge"]
    assert edited["starts_at"] == created["starts_at"]
    assert edited["ends_at"] == pytest.approx(time.time() + 3 * 3600, abs=30)
    assert edited["comment"] == "deploy" and edited["created_by"] == "alice"
    assert await listed(site, f"/api/v1/silences/{created['id']}") == edited
    assert (await listed(site, "/api/v1/silences"))["total"] == 1  # replaced, not added
    # The engine mutes the edge's open alert at once: it now matches the silence.
    assert engine.alerts["edge-down:down"].silenced

    ends = time.time() + 600
    status, edited = await site.json("PUT", f"/api/v1/silences/{created['id']}", json={
        "matchers": ["service=edge", "severity=P1"], "ends_at": ends, "comment": "longer"})
    assert status == 200
    assert edited["ends_at"] == ends and edited["comment"] == "longer"


async def test_editing_an_expired_silence_is_409_and_an_unknown_one_404(site: Site) -> None:
    created = await silence(site)
    await site.json("DELETE", f"/api/v1/silences/{created['id']}")
    edit = {"matchers": ["service=backend"], "duration": "1h"}
    status, body = await site.json("PUT", f"/api/v1/silences/{created['id']}", json=edit)
    assert status == 409 and "expired" in body["detail"]
    status, body = await site.json("PUT", "/api/v1/silences/sil-nope", json=edit)
    assert status == 404 and body["detail"] == "no silence 'sil-nope'"


@pytest.mark.parametrize(("edit", "reason"), [
    ({"matchers": ["service="], "duration": "1h"}, "at least one matcher"),
    ({"matchers": ["check=~("], "duration": "1h"}, "invalid regex"),
    ({"matchers": ["service=backend"]}, "give a duration"),
    ({"matchers": ["service=backend"], "ends_at": 1000.0}, "end in the future"),
    ({"matchers": ["service=backend"], "duration": "2 parsecs"}, "invalid duration"),
])
async def test_an_invalid_edit_is_refused_and_changes_nothing(
        site: Site, edit: dict[str, Any], reason: str) -> None:
    created = await silence(site)
    status, body = await site.json("PUT", f"/api/v1/silences/{created['id']}", json=edit)
    assert status == 422 and reason in body["detail"]
    assert await listed(site, f"/api/v1/silences/{created['id']}") == created


async def test_a_pending_silence_cannot_be_edited_to_end_before_it_starts(site: Site) -> None:
    now = time.time()
    created = await silence(site, starts_at=now + 3600, ends_at=now + 7200)
    status, body = await site.json("PUT", f"/api/v1/silences/{created['id']}", json={
        "matchers": ["service=backend"], "ends_at": now + 1800})
    assert status == 422 and "end after it starts" in body["detail"]
    status, edited = await site.json("PUT", f"/api/v1/silences/{created['id']}", json={
        "matchers": ["service=backend"], "duration": "30m"})
    assert status == 200  # a pending silence's duration counts from its start
    assert edited["ends_at"] == pytest.approx(now + 3600 + 1800)


async def test_a_read_token_may_not_edit_a_silence(site: Site) -> None:
    created = await silence(site)
    store = site.runtime.require_store()
    tokens = {}
    for scope in (TokenScope.READ, TokenScope.WRITE):
        issued = issue_token()
        await asyncio.to_thread(store.add_api_token, APIToken(
            id=issued.id, name=scope.value, scope=scope, hash=issued.hash,
            created_at=time.time()))
        tokens[scope] = {"Authorization": f"Bearer {issued.text}"}
    path, edit = f"/api/v1/silences/{created['id']}", {"matchers": ["service=edge"],
                                                          "duration": "1h"}
    status, body = await site.json("PUT", path, json=edit, headers=tokens[TokenScope.READ])
    assert status == 403 and body["detail"] == "this API token may only read"
    status, _ = await site.json("GET", path, headers=tokens[TokenScope.READ])
    assert status == 200
    status, body = await site.json("PUT", path, json=edit, headers=tokens[TokenScope.WRITE])
    assert status == 200 and body["matchers"] == ["service=edge"]
