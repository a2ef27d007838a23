"""SlackChannel against a local incoming webhook that checks Slack's Block Kit limits."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from tests.channels.conftest import T0, notification, snapshot
from tests.fakes import utf16_length
from tests.fakes.slack import SlackFake
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.slack import SlackChannel, SlackConfig, fit
from tocsin.config import ConfigError, load_config_text

HOOK = "/services/T000/B000/XXXXSECRET"


@pytest.fixture
async def slack() -> AsyncIterator[SlackFake]:
    async with SlackFake.running() as fake:
        yield fake


@pytest.fixture
async def make_channel(slack: SlackFake) -> AsyncIterator[Any]:
    built: list[SlackChannel] = []

    def make(url: str | None = None, **options: Any) -> SlackChannel:
        config = {"type": "slack", "webhook_url": url or slack.url + HOOK, "timeout": "5s",
                  **options}
        channel = build_channel("chat", config)
        assert isinstance(channel, SlackChannel)
        built.append(channel)
        return channel

    yield make
    for channel in built:
        await channel.close()


def texts(message: dict[str, Any]) -> str:
    """Every text in a message, joined: what a reader could see."""
    return json.dumps(message, ensure_ascii=False)


def posted(slack: SlackFake) -> dict[str, Any]:
    assert slack.reasons == []
    [message] = slack.messages
    return message


async def test_p1_message_has_colour_fields_and_buttons(slack: SlackFake,
                                                        make_channel: Any) -> None:
    alert = snapshot(rule="response_time > 1000ms", value=1234.5, unit="ms",
                     threshold="1000ms", summary="backend:http is slow")

    await make_channel().send(notification(alert, incident_id="inc-7"))

    [request] = slack.accepted
    assert request.path == HOOK
    assert slack.messages == [{
        "text": "P1 FIRING backend:http is slow",
        "blocks": [{"type": "header", "text": {"type": "plain_text",
                                               "text": "P1 FIRING backend:http is slow",
                                               "emoji": True}}],
        "attachments": [{"color": "#d00000", "blocks": [
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Severity*\nP1 critical"},
                {"type": "mrkdwn", "text": "*Service*\nbackend"},
                {"type": "mrkdwn", "text": "*Check*\nbackend http"},
                {"type": "mrkdwn", "text": "*Rule*\nresponse_time &gt; 1000ms"},
                {"type": "mrkdwn", "text": "*Value*\n1234.5ms"},
                {"type": "mrkdwn", "text": "*Threshold*\n1000ms"},
                {"type": "mrkdwn", "text": "*Since*\n2027-01-15T07:55:00Z (for 5m)"},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "connection refused"}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Dashboard",
                                            "emoji": True},
                 "url": "http://127.0.0.1:8080/alerts/backend:http"},
                {"type": "button", "text": {"type": "plain_text", "text": "Runbook",
                                            "emoji": True},
                 "url": "https://runbooks.example.com/backend-down"},
                {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge",
                                            "emoji": True},
                 "url": "http://127.0.0.1:8080/ack/abc123", "style": "primary"},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "Sent via chat by Tocsin at 2027-01-15T08:00:00Z, incident inc-7")}]},
        ]}],
    }]


@pytest.mark.parametrize(("severity", "colour"), [
    (Severity.P2, "#ff8c00"), (Severity.P3, "#f2c744"), (Severity.P4, "#439fe0")])
async def test_each_severity_has_its_colour(severity: Severity, colour: str, slack: SlackFake,
                                            make_channel: Any) -> None:
    await make_channel().send(notification(snapshot(severity=severity, ack_url=None,
                                                    runbook="page Ana")))

    [attachment] = posted(slack)["attachments"]
    assert attachment["color"] == colour
    assert {"type": "section", "text": {"type": "mrkdwn", "text": "*Runbook:* page Ana"}} in \
        attachment["blocks"]
    assert "Acknowledge" not in texts(posted(slack))


async def test_resolved_notice_is_green_and_says_how_long(slack: SlackFake,
                                                          make_channel: Any) -> None:
    alert = snapshot(state=AlertState.RESOLVED, since=T0 - 192, ended_at=T0, ack_url=None)

    await make_channel().send(notification(alert, kind=NotificationKind.RESOLVED))

    message = posted(slack)
    assert message["text"] == "RESOLVED backend:http is down (lasted 3m12s)"
    [attachment] = message["attachments"]
    assert attachment["color"] == "#2eb67d"
    assert {"type": "section", "text": {"type": "mrkdwn", "text": "*Resolved after 3m12s*"}} \
        in attachment["blocks"]


async def test_digest_lists_some_alerts_then_counts_the_rest(slack: SlackFake,
                                                             make_channel: Any) -> None:
    alerts = [snapshot(severity=Severity.P3, fingerprint=f"host:disk{n}", rule="> 90%",
                       summary=f"disk {n} is full", value=92.5, unit="%", ack_url=None,
                       dashboard_url="http://127.0.0.1:8080/")
              for n in range(60)]

    await make_channel().send(notification(*alerts, kind=NotificationKind.DIGEST,
                                           severity=Severity.P3))

    message = posted(slack)
    assert message["text"] == "Digest: 60 alerts (P3: 60)"
    blocks = message["attachments"][0]["blocks"]
    assert blocks[0]["text"]["text"] == "P3 medium: 60"
    listed = [block for block in blocks[1:] if "disk" in block.get("text", {}).get("text", "")]
    assert len(listed) == 20
    assert listed[0]["text"]["text"] == (
        "*P3 medium* disk 0 is full\nbackend · backend http · 92.5% · since "
        "2027-01-15T07:55:00Z\nconnection refused")
    assert {"type": "section", "text": {"type": "mrkdwn", "text": (
        "…and 40 more: <http://127.0.0.1:8080/|see them all on the dashboard>")}} in blocks
    assert len(message["blocks"]) + len(blocks) <= 50


async def test_update_lists_alerts_with_an_acknowledge_button_each(
        slack: SlackFake, make_channel: Any) -> None:
    alerts = [snapshot(fingerprint=f"backend:{m}", summary=f"backend {m} is bad")
              for m in ("a", "b")]

    await make_channel().send(notification(*alerts, kind=NotificationKind.UPDATE,
                                           incident_id="inc-7"))

    blocks = posted(slack)["attachments"][0]["blocks"]
    assert [block["accessory"]["text"]["text"] for block in blocks if "accessory" in block] \
        == ["Acknowledge", "Acknowledge"]


async def test_two_megabyte_description_is_cut_to_fit(slack: SlackFake,
                                                      make_channel: Any) -> None:
    description = "🔥<&>" * 500_000  # 2 MB, emoji and characters that grow when escaped
    summary = "very long headline " * 20

    await make_channel().send(notification(snapshot(description=description,
                                                    summary=summary)))

    message = posted(slack)  # the fake checked every limit
    header = message["blocks"][0]["text"]["text"]
    assert utf16_length(header) <= 150 and header.endswith("…")
    said = next(block["text"]["text"] for block in message["attachments"][0]["blocks"]
                if "connection refused" in block.get("text", {}).get("text", ""))
    assert utf16_length(said) <= 3000
    assert said.endswith("… <http://127.0.0.1:8080/alerts/backend:http|more on the dashboard>")
    assert "&lt;&amp;&gt;" in said
    assert len(message["text"]) <= 3000


async def test_non_ascii_and_emoji_arrive_intact(slack: SlackFake, make_channel: Any) -> None:
    alert = snapshot(summary="Überwachung 🔥 服务 down", message="naïve café — 💥 ½")

    await make_channel().send(notification(alert))

    message = posted(slack)
    assert message["text"] == "P1 FIRING Überwachung 🔥 服务 down"
    assert "naïve café — 💥 ½" in texts(message)


async def test_markup_in_an_alert_cannot_mention_or_link(slack: SlackFake,
                                                         make_channel: Any) -> None:
    alert = snapshot(summary="<!channel> down", message="<script>alert(1)</script> <@U123>",
                     description="see <https://evil.example|the docs> & more")

    await make_channel().send(notification(alert))

    everything = texts(posted(slack))
    for raw in ("<!channel>", "<script>", "<@U123>", "<https://evil.example"):
        assert raw not in everything
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;@U123&gt;" in everything
    assert "&lt;!channel&gt; down" in everything
    assert "&amp; more" in everything


def test_a_cut_never_splits_an_entity() -> None:
    assert fit("ab&", 4) == "ab…"  # "ab&amp;" does not fit; "ab&am…" would show junk
    assert fit("🔥🔥", 3) == "🔥…"
    assert fit("short", 10) == "short"


@pytest.mark.parametrize(("status", "body"), [
    (400, "invalid_payload"), (400, "invalid_blocks"), (403, "action_prohibited"),
    (404, "no_service"), (404, "channel_not_found"), (410, "channel_is_archived")])
async def test_slack_refusals_are_permanent(status: int, body: str, slack: SlackFake,
                                            make_channel: Any) -> None:
    slack.answer_next(status, body=body)

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert caught.value.permanent
    assert str(caught.value) == f"chat: HTTP {status}: {body}"  # never the secret URL


async def test_rate_limit_is_transient_with_retry_after(slack: SlackFake,
                                                        make_channel: Any) -> None:
    slack.answer_next(429, body="rate_limited", headers={"Retry-After": "30"})

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert not caught.value.permanent
    assert caught.value.retry_after == 30.0


async def test_server_error_is_transient(slack: SlackFake, make_channel: Any) -> None:
    slack.answer_next(503)

    with pytest.raises(DeliveryError) as caught:
        await make_channel().send(notification())

    assert not caught.value.permanent


async def test_hanging_webhook_times_out_as_transient(slack: SlackFake,
                                                      make_channel: Any) -> None:
    slack.hang_next()
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(DeliveryError) as caught:
        await make_channel(timeout="300ms").send(notification())

    assert not caught.value.permanent
    assert "timed out" in str(caught.value)
    assert loop.time() - started < 1.5


async def test_connection_refused_is_transient_and_hides_the_url(make_channel: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DeliveryError) as caught:
        await make_channel(f"http://127.0.0.1:{port}{HOOK}").send(notification())

    assert not caught.value.permanent
    assert "SECRET" not in str(caught.value)


async def test_empty_webhook_url_fails_permanently_without_a_request(
        slack: SlackFake, make_channel: Any) -> None:
    channel = build_channel("chat", {"type": "slack", "webhook_url": ""})

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert caught.value.permanent
    assert "not configured" in str(caught.value)
    assert slack.received == []


def test_a_missing_webhook_variable_is_a_config_error_naming_it() -> None:
    text = "channels:\n  chat: {type: slack, webhook_url: \"${SLACK_WEBHOOK_URL}\"}\n"

    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env={})

    [issue] = caught.value.issues
    assert (issue.path, issue.line) == ("channels.chat.webhook_url", 2)
    assert "SLACK_WEBHOOK_URL" in issue.message


@pytest.mark.parametrize("url", ["http://hooks.slack.com/services/T/B/X", "hooks.slack.com/x",
                                 "https:///no-host", "javascript:alert(1)"])
def test_webhook_must_be_https_except_on_loopback(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlackConfig.model_validate({"type": "slack", "webhook_url": url})
    [error] = caught.value.errors()
    assert "webhook_url must" in error["msg"]
    assert url not in error["msg"]  # the URL is a secret
    for fine in ("https://hooks.slack.com/services/T/B/X", "http://127.0.0.1:9/hook",
                 "http://localhost/hook", "http://[::1]:8/hook"):
        SlackConfig.model_validate({"type": "slack", "webhook_url": fine})


# The stand-in itself: it must refuse what Slack refuses, or passing means nothing.

def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(("message", "error"), [
    ({}, "no_text"),
    ({"blocks": [section("x")] * 51}, "invalid_blocks"),
    ({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
     "invalid_blocks"),
    ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
     "invalid_blocks"),
    ({"blocks": [section("s" * 3001)]}, "invalid_blocks"),
    ({"blocks": [section("")]}, "invalid_blocks"),
    ({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
     "invalid_blocks"),
    ({"attachments": [{"blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "url": "u"}]}]}]},
     "invalid_blocks"),
    ({"attachments": [{"color": "red", "blocks": [section("x")]}]}, "invalid_blocks"),
    ({"attachments": [{"blocks": [section("x")]}] * 101}, "too_many_attachments"),
])
async def test_the_fake_refuses_what_slack_refuses(slack: SlackFake, message: dict[str, Any],
                                                   error: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            slack.url + HOOK, json=message) as response:
        assert (response.status, await response.text()) == (400, error)
    async with aiohttp.ClientSession() as session, session.post(
            slack.url + HOOK, data=b"{not json") as response:
        assert (response.status, await response.text()) == (400, "invalid_payload")
