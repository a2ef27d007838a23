"""AppriseChannel through apprise's generic ``json://`` target, against a local aiohttp server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from targets import closed_port
from tests.channels.conftest import T0, notification, snapshot
from tests.fakes.webhook import ScriptedServer
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.apprise import AppriseChannel
from tocsin.config import ConfigError, load_config_text


def json_url(server_url: str, path: str = "/notify") -> str:
    return server_url.replace("http://", "json://") + path


def apprise_channel(*urls: str, **options: Any) -> AppriseChannel:
    config: dict[str, Any] = {"type": "apprise", "urls": list(urls), "timeout": "5s"}
    config.update(options)
    channel = build_channel("push", config)
    assert isinstance(channel, AppriseChannel)
    return channel


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as running:
        yield running


async def test_firing_alert_arrives_as_a_failure_message(server: ScriptedServer) -> None:
    alert = snapshot(value=1234.5, unit="ms", threshold="1000ms")

    await apprise_channel(json_url(server.url)).send(notification(alert))

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/notify"
    message = request.json()
    assert message["version"] == "1.0"
    assert message["type"] == "failure"
    assert message["title"] == "[Tocsin] P1 FIRING backend:http is down"
    assert message["message"].splitlines() == [
        "P1 critical — backend:http is down",
        "Service: backend",
        "Check: backend http",
        "State: firing",
        "Message: connection refused",
        "Measured: 1234.5ms (threshold 1000ms)",
        "Since: 2027-01-15T07:55:00Z (for 5m)",
        "Runbook: https://runbooks.example.com/backend-down",
        "Dashboard: http://127.0.0.1:8080/alerts/backend:http",
        "Acknowledge: http://127.0.0.1:8080/ack/abc123",
    ]


@pytest.mark.parametrize(("kind", "expected"), [
    (NotificationKind.FIRING, "failure"), (NotificationKind.ESCALATION, "failure"),
    (NotificationKind.RESOLVED, "success"), (NotificationKind.ACKNOWLEDGED, "info"),
    (NotificationKind.DIGEST, "info"),
])
async def test_notify_type_follows_the_kind(server: ScriptedServer, kind: NotificationKind,
                                            expected: str) -> None:
    alert = snapshot(state=AlertState.RESOLVED, ended_at=T0) \
        if kind is NotificationKind.RESOLVED else snapshot()

    await apprise_channel(json_url(server.url)).send(notification(alert, kind=kind))

    assert server.requests[0].json()["type"] == expected


async def test_every_url_gets_the_message(server: ScriptedServer) -> None:
    channel = apprise_channel(json_url(server.url, "/a"), json_url(server.url, "/b"),
                              title_prefix="[prod]")

    await channel.send(notification(snapshot(severity=Severity.P2)))

    assert sorted(request.path for request in server.requests) == ["/a", "/b"]
    assert {request.json()["title"] for request in server.requests} == {
        "[prod] P2 FIRING backend:http is down"}


async def test_markdown_escapes_alert_text(server: ScriptedServer) -> None:
    alert = snapshot(message="<script>alert(1)</script> *bold* [x](javascript:y)")

    await apprise_channel(json_url(server.url), format="markdown").send(notification(alert))

    body = server.requests[0].json()["message"]
    assert body.startswith("**P1 critical — backend:http is down**")
    assert "<script>" not in body
    assert r"&lt;script&gt;alert(1)&lt;/script&gt; \*bold\* \[x\](javascript:y)" in body


async def test_text_format_passes_html_as_data(server: ScriptedServer) -> None:
    alert = snapshot(message="<script>alert(1)</script>")

    await apprise_channel(json_url(server.url)).send(notification(alert))

    assert "Message: <script>alert(1)</script>" in server.requests[0].json()["message"]


async def test_non_ascii_and_emoji_arrive_intact(server: ScriptedServer) -> None:
    text = "Zürich 東京 — база недоступна 🔥"

    await apprise_channel(json_url(server.url)).send(
        notification(snapshot(summary=text, message=text)))

    message = server.requests[0].json()
    assert text in message["title"]
    assert f"Message: {text}" in message["message"]


async def test_two_megabyte_description_is_capped(server: ScriptedServer) -> None:
    alert = snapshot(description="d" * (2 * 1024 * 1024))

    await apprise_channel(json_url(server.url)).send(notification(alert))

    [request] = server.requests
    assert len(request.body) < 64 * 1024
    assert "Description: ddd" in request.json()["message"]


async def test_a_refusal_is_transient_and_says_apprise_gives_no_reason(
        server: ScriptedServer) -> None:
    server.fail_next(1, status=401)

    with pytest.raises(DeliveryError) as raised:
        await apprise_channel(json_url(server.url)).send(notification())

    # apprise reports that the service failed, not the status: retrying may be useless,
    # but Tocsin cannot tell a revoked token from an outage.
    assert not raised.value.permanent
    assert "no reason" in raised.value.message
    assert "127.0.0.1" not in raised.value.message


async def test_5xx_and_429_are_transient(server: ScriptedServer) -> None:
    server.fail_next(1, status=503)
    server.fail_next(1, status=429, retry_after="9")
    channel = apprise_channel(json_url(server.url))

    for _ in range(2):
        with pytest.raises(DeliveryError) as raised:
            await channel.send(notification())
        assert not raised.value.permanent
        assert raised.value.retry_after is None  # apprise does not pass Retry-After on
    await channel.send(notification())
    assert len(server.requests) == 3


async def test_hanging_target_times_out(server: ScriptedServer) -> None:
    server.hang_next()

    with pytest.raises(DeliveryError) as raised:
        await apprise_channel(json_url(server.url), timeout="0.5s").send(notification())

    assert not raised.value.permanent
    assert "timed out" in raised.value.message


async def test_refused_connection_is_transient() -> None:
    async with closed_port() as target:
        with pytest.raises(DeliveryError) as raised:
            await apprise_channel(json_url(target.url)).send(notification())

    assert not raised.value.permanent


def test_missing_url_variable_names_it() -> None:
    text = "channels:\n  push: {type: apprise, urls: [\"${APPRISE_TELEGRAM_URL}\"]}\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={})

    [issue] = raised.value.issues
    assert issue.path == "channels.push.urls[0]"
    assert "APPRISE_TELEGRAM_URL is not set" in issue.message


@pytest.mark.parametrize("url", ["nosuchscheme://t0k3n@host/x", "not a url t0k3n",
                                 "tgram://t0k3n"])
def test_url_apprise_cannot_use_is_refused_at_load_without_repeating_it(url: str) -> None:
    text = "channels:\n  push: {type: apprise, urls: [\"${PUSH_URL}\"]}\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={"PUSH_URL": url})

    [issue] = raised.value.issues
    assert issue.path == "channels.push.urls[0]"
    assert "is not a URL apprise can use" in issue.message
    assert "t0k3n" not in str(raised.value)


def test_empty_url_list_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text("channels:\n  push: {type: apprise, urls: []}\n", "t.yaml", env={})

    assert raised.value.issues[0].path == "channels.push.urls"


def test_urls_are_secrets_in_the_loaded_config() -> None:
    text = "channels:\n  push: {type: apprise, urls: [\"${PUSH_URL}\"]}\n"

    loaded = load_config_text(text, "t.yaml", env={"PUSH_URL": "json://127.0.0.1:9/t0k3n"})

    config = loaded.config.channels["push"]
    assert "t0k3n" not in repr(config)
    assert "t0k3n" not in json.dumps(config.model_dump(mode="json"))
