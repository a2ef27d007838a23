"""Alerts, ack, silences, deliveries, incidents and ack links, over a Runtime in this loop.

One check against the local target is down, so its P1 alert fires at the first
result and its notification goes to a ``recording`` channel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.conftest import Target
from tocsin.alerting.acks import DEFAULT_TTL
from tocsin.alerting.model import AlertSnapshot
from tocsin.runtime import Runtime
from tocsin.testing import RecordingChannel

FINGERPRINT = "backend-down:down"
ACK_SECRET = "s3cret-for-tests-0123456789abcde"  # 32 characters


@dataclass
class Server:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def wait_for(self, path: str, condition: Callable[[Any], bool],
                       within: float = 10.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            _, body = await self.call("GET", path)
            if condition(body):
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)

    async def alert(self) -> dict[str, Any]:
        _, body = await self.call("GET", "/api/v1/alerts")
        found: dict[str, Any] = next(a for a in body["items"] if a["fingerprint"] == FINGERPRINT)
        return found


@pytest.fixture
async def server(tmp_path: Path, target: Target,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    monkeypatch.setenv("TOCSIN_ACK_SECRET", ACK_SECRET)
    RecordingChannel.reset()
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
channels: {{rec: {{type: recording}}}}
alerting: {{ack_secret: "${{TOCSIN_ACK_SECRET}}"}}
services:
  backend:
    url: {target.url}
    checks:
      - type: http
        name: backend-down
        path: /down
        alerts: [{{when: down, severity: P1, confirm: 0}}]
""")
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.ready.wait(), 10)
    assert runtime.web_address is not None
    host, port = runtime.web_address
    async with aiohttp.ClientSession() as http:
        server = Server(runtime, f"http://{host}:{port}", http)
        await server.wait_for("/api/v1/alerts?state=firing", lambda b: b["total"] == 1)
        yield server
    runtime.request_stop()
    await asyncio.wait_for(task, 10)
    RecordingChannel.reset()


async def recorded_firing(within: float = 10.0) -> AlertSnapshot:
    deadline = time.monotonic() + within
    while not RecordingChannel.sent.get("rec"):
        assert time.monotonic() < deadline, "no notification reached the rec channel"
        await asyncio.sleep(0.05)
    return RecordingChannel.sent["rec"][0].alerts[0]


# -- alerts and acknowledgement ------------------------------------------------------------

async def test_a_confirmed_down_is_listed_as_firing(server: Server) -> None:
    _, body = await server.call("GET", "/api/v1/alerts?state=firing&service=backend")
    assert body["total"] == 1
    alert = body["items"][0]
    assert alert["fingerprint"] == FINGERPRINT
    assert alert["severity"] == "P1" and alert["check"] == "backend-down"
    assert alert["fired_at"] is not None and alert["acked_by"] is None
    _, body = await server.call("GET", "/api/v1/alerts?service=frontend")
    assert body["total"] == 0
    status, _ = await server.call("GET", "/api/v1/alerts?state=exploded")
    assert status == 422


async def test_ack_then_unack_moves_the_alert_between_firing_and_acknowledged(
        server: Server) -> None:
    status, body = await server.call("POST", f"/api/v1/alerts/{FINGERPRINT}/ack",
                                     json={"by": "alice"})
    assert status == 200
    assert body["state"] == "acknowledged" and body["acked_by"] == "alice"
    listed = await server.alert()  # the answer waits for the store: a read sees the ack
    assert listed["state"] == "acknowledged" and listed["acked_by"] == "alice"

    status, body = await server.call("POST", f"/api/v1/alerts/{FINGERPRINT}/unack",
                                     json={"by": "alice"})
    assert status == 200
    assert body["state"] == "firing" and body["acked_by"] is None
    assert (await server.alert())["state"] == "firing"


async def test_ack_of_an_unknown_alert_is_404(server: Server) -> None:
    status, body = await server.call("POST", "/api/v1/alerts/nope:down/ack", json={"by": "a"})
    assert status == 404 and body["detail"] == "no alert 'nope:down'"
    status, _ = await server.call("POST", "/api/v1/alerts/nope:down/unack")
    assert status == 404


async def test_deliveries_show_the_firing_notification_sent_to_the_channel(
        server: Server) -> None:
    body = await server.wait_for("/api/v1/deliveries?channel=rec",
                                 lambda b: any(d["status"] == "sent" for d in b["items"]))
    delivery = body["items"][0]
    assert delivery["kind"] == "firing" and delivery["severity"] == "P1"
    assert delivery["attempts"] == 1 and delivery["last_error"] is None
    assert "backend-down" in delivery["subject"]
    _, body = await server.call("GET", "/api/v1/deliveries?channel=elsewhere")
    assert body["total"] == 0


async def test_incidents_list_the_open_incident_of_the_service(server: Server) -> None:
    body = await server.wait_for("/api/v1/incidents", lambda b: b["total"] == 1)
    incident = body["items"][0]
    assert incident["service"] == "backend" and incident["severity"] == "P1"
    assert incident["closed_at"] is None
    assert (await server.alert())["incident_id"] == incident["id"]


# -- silences ------------------------------------------------------------------------------

async def test_silence_is_created_listed_and_expired(server: Server) -> None:
    status, created = await server.call("POST", "/api/v1/silences", json={
        "matchers": ["service=backend", "alertname=~down|failed"], "duration": "2h",
        "created_by": "alice", "comment": "deploy"})
    assert status == 201, created
    assert created["state"] == "active"
    assert created["matchers"] == ["service=backend", "alertname=~down|failed"]
    assert created["ends_at"] - created["starts_at"] == pytest.approx(7200)

    _, listed = await server.call("GET", "/api/v1/silences")
    assert [s["id"] for s in listed["items"]] == [created["id"]]

    status, expired = await server.call("DELETE", f"/api/v1/silences/{created['id']}")
    assert status == 200 and expired["state"] == "expired"
    _, listed = await server.call("GET", "/api/v1/silences")
    assert listed["total"] == 0
    _, listed = await server.call("GET", "/api/v1/silences?expired=true")
    assert [(s["id"], s["state"]) for s in listed["items"]] == [(created["id"], "expired")]


async def test_a_silence_that_starts_later_is_pending_and_expiring_it_ends_it(
        server: Server) -> None:
    now = time.time()
    status, created = await server.call("POST", "/api/v1/silences", json={
        "matchers": ["service=backend"], "starts_at": now + 3600, "ends_at": now + 7200,
        "created_by": "alice"})
    assert status == 201 and created["state"] == "pending"
    _, expired = await server.call("DELETE", f"/api/v1/silences/{created['id']}")
    assert expired["state"] == "expired"
    assert expired["ends_at"] <= time.time()


@pytest.mark.parametrize(("body", "reason"), [
    ({"matchers": ["service="], "duration": "1h"}, "at least one matcher"),
    ({"matchers": ["service"], "duration": "1h"}, "invalid matcher 'service'"),
    ({"matchers": ["check=~("], "duration": "1h"}, "invalid regex"),
    ({"matchers": ["service!=backend"], "duration": "1h"}, "at least one matcher"),
    ({"matchers": ["service=backend"]}, "give a duration"),
    ({"matchers": ["service=backend"], "duration": "2 parsecs"}, "invalid duration"),
    ({"matchers": ["service=backend"], "duration": "0s"}, "end after it starts"),
    ({"matchers": ["service=backend"], "ends_at": 1000.0}, "end in the future"),
    ({"matchers": ["service=backend"], "starts_at": time.time() + 7200,
      "ends_at": time.time() + 3600}, "end after it starts"),
])
async def test_an_invalid_silence_is_refused_with_the_reason(
        server: Server, body: dict[str, Any], reason: str) -> None:
    status, answer = await server.call("POST", "/api/v1/silences",
                                       json={**body, "created_by": "alice"})
    assert status == 422
    assert reason in answer["detail"]
    _, listed = await server.call("GET", "/api/v1/silences?expired=true")
    assert listed["total"] == 0


async def test_a_silence_without_matchers_or_author_is_refused(server: Server) -> None:
    status, _ = await server.call("POST", "/api/v1/silences",
                                  json={"matchers": [], "duration": "1h", "created_by": "a"})
    assert status == 422
    status, _ = await server.call("POST", "/api/v1/silences",
                                  json={"matchers": ["service=backend"], "duration": "1h"})
    assert status == 422


async def test_expiring_an_unknown_silence_is_404(server: Server) -> None:
    status, body = await server.call("DELETE", "/api/v1/silences/sil-nope")
    assert status == 404 and body["detail"] == "no silence 'sil-nope'"


# -- who may write -------------------------------------------------------------------------

async def test_with_an_api_token_writes_need_it(server: Server,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_API_TOKEN", "t0ken-for-tests")
    path = f"/api/v1/alerts/{FINGERPRINT}/ack"
    status, body = await server.call("POST", path, json={"by": "mallory"})
    assert status == 401 and "token" in body["detail"]
    status, _ = await server.call("POST", path, json={"by": "mallory"},
                                  headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = await server.call("POST", "/api/v1/silences", json={
        "matchers": ["service=backend"], "duration": "1h", "created_by": "mallory"})
    assert status == 401
    status, _ = await server.call("GET", "/api/v1/alerts")  # reads need it too, once set
    assert status == 401
    auth = {"Authorization": "Bearer t0ken-for-tests"}
    status, body = await server.call("GET", "/api/v1/alerts", headers=auth)
    assert status == 200
    assert next(a for a in body["items"] if a["fingerprint"] == FINGERPRINT)["state"] == "firing"

    status, body = await server.call("POST", path, json={"by": "alice"}, headers=auth)
    assert status == 200 and body["state"] == "acknowledged"


# -- ack links -----------------------------------------------------------------------------

def _served(link: str, server: Server) -> str:
    """The link as notified: it points at the port the server really bound (config: 0)."""
    assert link.startswith(server.url + "/ack/"), link
    return link


async def test_an_ack_link_shows_a_form_and_only_its_post_acknowledges(
        server: Server) -> None:
    snapshot = await recorded_firing()
    assert snapshot.fingerprint == FINGERPRINT and snapshot.ack_url is not None
    link = _served(snapshot.ack_url, server)
    query = {key: values[0] for key, values in parse_qs(urlsplit(link).query).items()}

    status, page = await server.call("GET", link[len(server.url):])
    assert status == 200
    assert '<form method="post">' in page and 'name="by"' in page
    assert (await server.alert())["state"] == "firing"  # a link scanner acks nothing

    status, page = await server.call("POST", link[len(server.url):],
                                     data={"exp": query["exp"], "sig": query["sig"],
                                           "by": "carol"})
    assert status == 200
    assert "is acknowledged" in page and "Acknowledged by carol" in page
    alert = await server.alert()
    assert alert["state"] == "acknowledged" and alert["acked_by"] == "carol"


async def test_a_tampered_or_expired_ack_link_is_refused(server: Server) -> None:
    snapshot = await recorded_firing()
    assert snapshot.ack_url is not None
    link = urlsplit(_served(snapshot.ack_url, server))
    query = {key: values[0] for key, values in parse_qs(link.query).items()}
    forged = query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")

    status, _ = await server.call("GET", link.path, params={"exp": query["exp"], "sig": forged})
    assert status == 403
    status, _ = await server.call("POST", link.path,
                                  data={"exp": query["exp"], "sig": forged, "by": "mallory"})
    assert status == 403
    later = str(int(query["exp"]) + 3600)  # a longer life is a different signature
    status, _ = await server.call("POST", link.path,
                                  data={"exp": later, "sig": query["sig"], "by": "mallory"})
    assert status == 403

    signer = server.runtime.ack_signer
    assert signer is not None
    old = urlsplit(signer.link(FINGERPRINT, time.time() - 2 * DEFAULT_TTL))
    old_query = {key: values[0] for key, values in parse_qs(old.query).items()}
    status, _ = await server.call("GET", old.path, params=old_query)
    assert status == 403
    status, _ = await server.call("POST", old.path, data={**old_query, "by": "mallory"})
    assert status == 403
    assert (await server.alert())["state"] == "firing"


async def test_an_ack_link_for_an_alert_acked_meanwhile_names_who_did(server: Server) -> None:
    snapshot = await recorded_firing()
    assert snapshot.ack_url is not None
    link = urlsplit(_served(snapshot.ack_url, server))
    query = {key: values[0] for key, values in parse_qs(link.query).items()}
    await server.call("POST", f"/api/v1/alerts/{FINGERPRINT}/ack", json={"by": "alice"})
    status, page = await server.call("POST", link.path, data={**query, "by": "bob"})
    assert status == 200
    assert "Acknowledged by alice" in page and "bob" not in page


async def test_remediation_log_lists_attempts_and_enable_re_enables(server: Server) -> None:
    from tocsin.remediation.audit import AttemptState, RemediationAttempt

    store = server.runtime.require_store()
    store.add_attempt(RemediationAttempt(
        service="backend", fingerprint=FINGERPRINT, policy="restart",
        action="platform.restart", started_at=time.time(), state=AttemptState.REFUSED,
        error="exhausted"))
    store.disable_remediation("backend", "restart", "exhausted", time.time())
    status, body = await server.call("GET", "/api/v1/remediation/attempts?service=backend")
    assert status == 200 and body["total"] == 1
    assert body["items"][0]["state"] == "refused"
    assert [d["service"] for d in body["disabled"]] == ["backend"]
    status, _ = await server.call("POST", "/api/v1/remediation/backend/enable")
    assert status == 200 and store.disabled_services() == {}
    status, _ = await server.call("POST", "/api/v1/remediation/backend/enable")
    assert status == 404
