"""SendGridChannel against a local SendGrid v3 stand-in that checks the mail/send contract."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.channels.conftest import notification, snapshot
from tests.fakes.sendgrid import MAX_BODY, SendGridFake
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.sendgrid import SendGridChannel, SendGridConfig
from tocsin.config import ConfigError, load_config_text

KEY = "SG.test-key-0123456789"


@pytest.fixture
async def sendgrid() -> AsyncIterator[SendGridFake]:
    async with SendGridFake.running(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def channels() -> AsyncIterator[list[SendGridChannel]]:
    """Channels a test built, closed after it."""
    built: list[SendGridChannel] = []
    yield built
    for channel in built:
        await channel.close()


@pytest.fixture
def make_channel(channels: list[SendGridChannel], sendgrid: SendGridFake) -> Any:
    def make(**options: Any) -> SendGridChannel:
        config: dict[str, Any] = {
            "type": "sendgrid", "api_key": KEY, "base_url": sendgrid.url,
            "from": "alerts@example.com", "to": ["oncall@example.com"], "timeout": "5s",
        }
        config.update(options)
        channel = build_channel("email", config)
        assert isinstance(channel, SendGridChannel)
        channels.append(channel)
        return channel
    return make


def parts(mail: dict[str, Any]) -> tuple[str, str]:
    text, html = mail["content"]
    assert (text["type"], html["type"]) == ("text/plain", "text/html")
    return text["value"], html["value"]


async def test_p1_mail_follows_the_contract(sendgrid: SendGridFake, make_channel: Any) -> None:
    channel = make_channel(cc=["lead@example.com"], from_name="Tocsin alerts")

    await channel.send(notification(high_priority=True, key="firing-1-1.email"))

    [request] = sendgrid.accepted
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    mail = request.json()
    text, html = parts(mail)
    assert mail == {
        "personalizations": [{"to": [{"email": "oncall@example.com"}],
                              "cc": [{"email": "lead@example.com"}]}],
        "from": {"email": "alerts@example.com", "name": "Tocsin alerts"},
        "subject": "[Tocsin] P1 FIRING backend:http is down",
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        "categories": ["tocsin", "P1", "firing"],
        "headers": {"X-Tocsin-Key": "firing-1-1.email", "X-Tocsin-Kind": "firing",
                    "X-Tocsin-Severity": "P1", "X-Priority": "1 (Highest)",
                    "Importance": "high", "Priority": "urgent"},
        "custom_args": {"tocsin_key": "firing-1-1.email"},
        "tracking_settings": {"click_tracking": {"enable": False, "enable_text": False},
                              "open_tracking": {"enable": False}},
    }
    for part in (text, html):
        assert "P1 critical" in part
        assert "connection refused" in part
        assert "Sent via email by Tocsin at 2027-01-15T08:00:00Z." in part
    assert "Acknowledge: http://127.0.0.1:8080/ack/abc123" in text
    assert '<a href="http://127.0.0.1:8080/ack/abc123">Acknowledge</a>' in html


async def test_p2_and_good_news_are_not_flagged_urgent(sendgrid: SendGridFake,
                                                       make_channel: Any) -> None:
    channel = make_channel()
    resolved = snapshot(state=AlertState.RESOLVED, ended_at=snapshot().since + 192)

    await channel.send(notification(snapshot(severity=Severity.P2), incident_id="inc-7"))
    await channel.send(notification(resolved, kind=NotificationKind.RESOLVED,
                                    high_priority=True))

    p2, good = sendgrid.mails
    assert p2["headers"] == {"X-Tocsin-Key": "n-1", "X-Tocsin-Kind": "firing",
                             "X-Tocsin-Severity": "P2", "X-Tocsin-Incident": "inc-7"}
    assert "X-Priority" not in good["headers"]
    assert good["categories"] == ["tocsin", "P1", "resolved"]
    assert good["subject"] == "[Tocsin] RESOLVED backend:http is down (lasted 3m12s)"


async def test_fallback_mail_says_which_path_it_took(sendgrid: SendGridFake,
                                                     make_channel: Any) -> None:
    # SendGrid standing in for an SMTP channel called "relay" that failed.
    await make_channel().send(notification(key="firing-1-1.relay~email", channel="email"))

    text, html = parts(sendgrid.mails[0])
    for part in (text, html):
        assert "Sent via email (fallback after relay failed) by Tocsin" in part


async def test_wrong_api_key_is_permanent_and_tried_once(sendgrid: SendGridFake,
                                                         make_channel: Any) -> None:
    channel = make_channel(api_key="SG.wrong-key")

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert caught.value.permanent
    assert "HTTP 401" in str(caught.value)
    assert "authorization grant is invalid" in str(caught.value)
    assert "SG.wrong-key" not in str(caught.value)
    assert [request.status for request in sendgrid.received] == [401]


async def test_rate_limit_is_transient_with_retry_after(sendgrid: SendGridFake,
                                                        make_channel: Any) -> None:
    sendgrid.answer_next(429, headers={"Retry-After": "7"},
                         body='{"errors":[{"message":"too many requests"}]}')
    channel = make_channel()

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert not caught.value.permanent
    assert caught.value.retry_after == 7.0
    await channel.send(notification())  # the next attempt goes through
    assert len(sendgrid.accepted) == 1


async def test_rate_limit_reset_header_is_honoured(sendgrid: SendGridFake,
                                                   make_channel: Any) -> None:
    sendgrid.answer_next(429, headers={"X-RateLimit-Reset": "30"})

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(status: int, sendgrid: SendGridFake,
                                           make_channel: Any) -> None:
    sendgrid.answer_next(status)

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert not caught.value.permanent
    assert f"HTTP {status}" in str(caught.value)


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_refusals_are_permanent(status: int, sendgrid: SendGridFake,
                                      make_channel: Any) -> None:
    sendgrid.answer_next(status, body='{"errors":[{"message":"no"}]}')

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert caught.value.permanent


async def test_hanging_api_times_out_as_transient(sendgrid: SendGridFake,
                                                  make_channel: Any) -> None:
    sendgrid.hang_next()
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(DeliveryError) as caught:
        await make_channel(timeout="300ms").send(notification())

    assert not caught.value.permanent
    assert "timed out after 0.3 s" in str(caught.value)
    assert loop.time() - started < 1.5


async def test_connection_refused_is_transient(channels: list[SendGridChannel]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = build_channel("email", {
        "type": "sendgrid", "api_key": KEY, "base_url": f"http://127.0.0.1:{port}",
        "from": "alerts@example.com", "to": ["oncall@example.com"]})
    assert isinstance(channel, SendGridChannel)
    channels.append(channel)

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert not caught.value.permanent


async def test_two_megabyte_description_is_delivered_whole(sendgrid: SendGridFake,
                                                           make_channel: Any) -> None:
    description = "disk full: " + "x" * 2_000_000

    await make_channel().send(notification(snapshot(description=description)))

    text, html = parts(sendgrid.mails[0])
    assert description in text
    assert description in html


async def test_a_description_over_the_limit_is_cut_not_refused(sendgrid: SendGridFake,
                                                               make_channel: Any) -> None:
    description = "y" * 12_000_000  # twice over 20 MB once in both parts

    await make_channel().send(notification(snapshot(description=description)))

    [request] = sendgrid.accepted
    assert len(request.body) < MAX_BODY
    text, html = parts(request.json())
    assert "y" * 1_000_000 + "… (truncated: the dashboard has the rest)" in text
    assert "y" * 1_000_001 not in html


async def test_non_ascii_and_emoji_arrive_intact(sendgrid: SendGridFake,
                                                 make_channel: Any) -> None:
    alert = snapshot(summary="Überwachung 🔥 服务 down", message="naïve café — 💥 ½")

    await make_channel().send(notification(alert))

    mail = sendgrid.mails[0]
    assert mail["subject"] == "[Tocsin] P1 FIRING Überwachung 🔥 服务 down"
    for part in parts(mail):
        assert "naïve café — 💥 ½" in part
        assert "Überwachung 🔥 服务 down" in part


async def test_html_in_an_alert_is_escaped_in_the_html_part(sendgrid: SendGridFake,
                                                            make_channel: Any) -> None:
    alert = snapshot(message="<script>alert(1)</script>", summary="<b>down</b> <!channel>")

    await make_channel().send(notification(alert))

    text, html = parts(sendgrid.mails[0])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>down</b>" not in html
    assert "<script>alert(1)</script>" in text  # plain text is shown as text


async def test_empty_api_key_fails_permanently_without_a_request(
        sendgrid: SendGridFake, make_channel: Any) -> None:
    with pytest.raises(DeliveryError) as caught:
        await make_channel(api_key="").send(notification())

    assert caught.value.permanent
    assert "not configured" in str(caught.value)
    assert sendgrid.received == []


def test_a_missing_api_key_variable_is_a_config_error_naming_it() -> None:
    text = ("channels:\n  email:\n    type: sendgrid\n    api_key: ${SENDGRID_API_KEY}\n"
            "    from: alerts@example.com\n    to: [oncall@example.com]\n")

    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env={})

    [issue] = caught.value.issues
    assert issue.path == "channels.email.api_key"
    assert issue.line == 4
    assert "SENDGRID_API_KEY" in issue.message


@pytest.mark.parametrize(("change", "message"), [
    ({"to": []}, "at least 1 item"),
    ({"api_key": "SG.a b"}, "one token"),
    ({"base_url": "http://api.sendgrid.com"}, "must use https://"),
    ({"base_url": "ftp://127.0.0.1"}, "must be an https:// URL"),
    ({"cc": ["ONCALL@example.com"]}, "only once across to and cc"),
    ({"from": "Alerts <alerts@example.com>"}, "invalid email address"),
    ({"from_name": "Tocsin\r\nBcc: x@y.z"}, "one line"),
])
def test_config_refuses(change: dict[str, Any], message: str) -> None:
    config = {"type": "sendgrid", "api_key": KEY, "from": "alerts@example.com",
              "to": ["oncall@example.com"], **change}

    with pytest.raises(ValueError, match=message):
        SendGridConfig.model_validate(config)


def test_base_url_defaults_to_sendgrid_and_the_key_stays_hidden() -> None:
    config = SendGridConfig.model_validate({"type": "sendgrid", "api_key": KEY,
                                            "from": "a@example.com", "to": ["b@example.com"]})
    assert config.base_url == "https://api.sendgrid.com"
    assert KEY not in repr(config)


# The stand-in itself: it must refuse what SendGrid refuses, or passing means nothing.

def good_mail() -> dict[str, Any]:
    return {"personalizations": [{"to": [{"email": "a@example.com"}]}],
            "from": {"email": "b@example.com"}, "subject": "s",
            "content": [{"type": "text/plain", "value": "t"},
                        {"type": "text/html", "value": "<p>t</p>"}]}


@pytest.mark.parametrize(("change", "field"), [
    ({"personalizations": []}, "personalizations"),
    ({"personalizations": [{"cc": [{"email": "a@example.com"}]}]}, "personalizations.0.to"),
    ({"from": {"name": "x"}}, "from.email"),
    ({"subject": ""}, "subject"),
    ({"content": [{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}]},
     "content.0.type"),
    ({"content": [{"type": "text/plain", "value": ""}]}, "content.0.value"),
    ({"categories": [f"c{n}" for n in range(11)]}, "categories"),
    ({"categories": ["x" * 256]}, "categories.0"),
    ({"headers": {"Message-Id": "ok", "Subject": "reserved"}}, "headers.Subject"),
    ({"custom_args": {"k": "v" * 10_001}}, "custom_args"),
])
async def test_the_fake_refuses_what_sendgrid_refuses(sendgrid: SendGridFake,
                                                      change: dict[str, Any],
                                                      field: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{sendgrid.url}/v3/mail/send", json={**good_mail(), **change},
            headers={"Authorization": f"Bearer {KEY}"}) as response:
        body = await response.json()

    assert response.status == 400
    assert body["errors"][0]["field"] == field


async def test_the_fake_refuses_a_body_over_20_mb(sendgrid: SendGridFake) -> None:
    mail = good_mail()
    mail["content"][0]["value"] = "z" * (MAX_BODY + 1)
    async with aiohttp.ClientSession() as session, session.post(
            f"{sendgrid.url}/v3/mail/send", data=io.BytesIO(json.dumps(mail).encode()),
            headers={"Authorization": f"Bearer {KEY}",
                     "Content-Type": "application/json"}) as response:
        assert response.status == 413
    async with aiohttp.ClientSession() as session, session.post(
            f"{sendgrid.url}/v3/mail/send", json=good_mail(),
            headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status == 202
        assert response.headers["X-Message-Id"]
        assert await response.read() == b""
