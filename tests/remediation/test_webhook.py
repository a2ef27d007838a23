"""action: webhook — against a real local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.webhook import ScriptedServer
from tests.remediation.conftest import alert_request
from tocsin.remediation import RemediationError, build_action
from tocsin.remediation.webhook import WebhookActionConfig

TOKEN = "hook_token_5up3r_s3cret"


@pytest.fixture
async def receiver() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as server:
        yield server


def config(receiver: ScriptedServer, **extra: object) -> WebhookActionConfig:
    return WebhookActionConfig.model_validate(
        {"action": "webhook", "url": f"{receiver.url}/fix/{TOKEN}",
         "headers": {"Authorization": f"Bearer {TOKEN}"}, **extra})


async def test_a_2xx_is_accepted_and_the_payload_describes_the_alert(
        receiver: ScriptedServer) -> None:
    outcome = await build_action(config(receiver)).act(alert_request())
    assert outcome.accepted and outcome.data == {"status": 200}
    assert outcome.detail == '{"status": "ok"}'
    [sent] = receiver.requests
    assert (sent.method, sent.path) == ("POST", f"/fix/{TOKEN}")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == {
        "version": "1", "action": "webhook",
        "alert": {"fingerprint": "backend-http:up", "check": "backend-http",
                  "service": "backend", "severity": "P1", "summary": "backend is down",
                  "message": "HTTP 503 from /health", "value": 503.0,
                  "labels": {"team": "core"}},
        "platform": None}


@pytest.mark.parametrize(("status", "permanent"), [
    (500, False), (503, False), (429, False), (404, True), (400, True), (401, True)])
async def test_failures_say_whether_to_retry(receiver: ScriptedServer, status: int,
                                             permanent: bool) -> None:
    receiver.fail_next(1, status, retry_after="5" if status == 429 else None)
    with pytest.raises(RemediationError) as caught:
        await build_action(config(receiver)).act(alert_request())
    error = caught.value
    assert error.permanent is permanent and f"HTTP {status}" in error.message
    assert TOKEN not in error.message and receiver.url not in error.message
    if status == 429:
        assert error.retry_after == 5.0


async def test_a_hanging_receiver_is_cut_at_the_timeout(receiver: ScriptedServer) -> None:
    receiver.hang_next()
    with pytest.raises(RemediationError, match="timed out") as caught:
        await build_action(config(receiver, timeout="300ms")).act(alert_request())
    assert not caught.value.permanent


async def test_an_unreachable_receiver_is_transient_and_unnamed() -> None:
    action = build_action(WebhookActionConfig.model_validate(
        {"action": "webhook", "url": f"http://127.0.0.1:9/{TOKEN}"}))
    with pytest.raises(RemediationError, match="cannot reach") as caught:
        await action.act(alert_request())
    assert not caught.value.permanent and TOKEN not in caught.value.message


def test_a_plain_http_url_off_this_machine_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError) as caught:
        WebhookActionConfig.model_validate(
            {"action": "webhook", "url": f"http://fixer.example/{TOKEN}"})
    assert TOKEN not in str(caught.value)
