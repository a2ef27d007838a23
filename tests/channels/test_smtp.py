"""SMTPChannel against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.conftest import (
    PASSWORD,
    T0,
    USER,
    MailServer,
    StartServer,
    notification,
    snapshot,
)
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.smtp import SMTPChannel, SMTPConfig


def smtp_channel(port: int, **options: Any) -> SMTPChannel:
    config: dict[str, Any] = {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "tocsin@example.com",
        "to": ["oncall@example.com"],
        "timeout": "5s",
    }
    config.update(options)
    channel = build_channel("mail", config)
    assert isinstance(channel, SMTPChannel)
    return channel


@pytest.fixture
def server(start_server: StartServer) -> MailServer:
    return start_server()


async def test_p1_arrives_with_both_parts_and_high_priority_headers(server: MailServer) -> None:
    channel = smtp_channel(server.port, cc=["lead@example.com"])

    await channel.send(notification(high_priority=True))

    [mail] = server.received
    message = mail.message
    assert mail.sender == "tocsin@example.com"
    assert mail.recipients == ["oncall@example.com", "lead@example.com"]
    assert message["Subject"] == "[Tocsin] P1 FIRING backend:http is down"
    assert message["From"] == "tocsin@example.com"
    assert message["To"] == "oncall@example.com"
    assert message["Cc"] == "lead@example.com"
    assert message["Message-ID"] == "<n-1@tocsin>"
    assert message["Date"] == "Fri, 15 Jan 2027 08:00:00 +0000"
    assert message["X-Tocsin-Kind"] == "firing"
    assert message["X-Tocsin-Severity"] == "P1"
    assert message["X-Priority"] == "1 (Highest)"
    assert message["Importance"] == "high"
    assert message["Priority"] == "urgent"
    text, html = mail.part("plain"), mail.part("html")
    for part in (text, html):
        assert "P1 critical" in part
        assert "backend" in part
        assert "connection refused" in part
        assert "2027-01-15T07:55:00Z" in part
        assert "for 5m" in part
    assert "Runbook:   https://runbooks.example.com/backend-down" in text
    assert "Acknowledge: http://127.0.0.1:8080/ack/abc123" in text
    assert '<a href="https://runbooks.example.com/backend-down">' in html
    assert '<a href="http://127.0.0.1:8080/ack/abc123">Acknowledge</a>' in html
    assert '<a href="http://127.0.0.1:8080/alerts/backend:http">Dashboard</a>' in html


async def test_measured_value_and_threshold_are_shown(server: MailServer) -> None:
    alert = snapshot(severity=Severity.P2, rule="response_time > 1000ms",
                     summary="backend:http is slow", value=1234.5, unit="ms",
                     threshold="1000ms", runbook="restart the worker, then page Ana")

    await smtp_channel(server.port).send(notification(alert))

    [mail] = server.received
    assert mail.message["Subject"] == "[Tocsin] P2 FIRING backend:http is slow"
    assert mail.message["X-Priority"] is None  # P2 without high_priority is not flagged
    text, html = mail.part("plain"), mail.part("html")
    assert "Measured:  1234.5ms (threshold 1000ms)" in text
    assert "Rule:      response_time &gt; 1000ms" not in text
    assert "Rule:      response_time > 1000ms" in text
    assert "response_time &gt; 1000ms" in html
    assert "Runbook:   restart the worker, then page Ana" in text
    assert "<a href" not in html.split("Runbook")[1].split("</tr>")[0]


async def test_html_part_escapes_what_the_alert_says(server: MailServer) -> None:
    alert = snapshot(message="<script>alert(1)</script>",
                     summary='backend "down" <b>now</b>',
                     runbook="javascript:alert(1)")

    await smtp_channel(server.port).send(notification(alert))

    [mail] = server.received
    html = mail.part("html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>now</b>" not in html
    assert 'href="javascript:' not in html
    assert "<script>alert(1)</script>" in mail.part("plain")


async def test_same_notification_resent_has_the_same_message_id(server: MailServer) -> None:
    channel = smtp_channel(server.port)
    weird = notification(key="P1:backend:http/firing 1800000000")

    await channel.send(weird)
    await channel.send(weird)
    await channel.send(notification(key="P1-backend-http-firing-1800000000"))

    first, second, other = (mail.message["Message-ID"] for mail in server.received)
    assert first == second
    assert first != other
    assert first.startswith("<P1-backend-http-firing-1800000000.")
    assert first.endswith("@tocsin>")


async def test_resolved_notice_says_how_long_it_lasted(server: MailServer) -> None:
    alert = snapshot(state=AlertState.RESOLVED, since=T0 - 192, ended_at=T0)

    await smtp_channel(server.port).send(
        notification(alert, kind=NotificationKind.RESOLVED, high_priority=True))

    [mail] = server.received
    assert mail.message["Subject"] == "[Tocsin] RESOLVED backend:http is down (lasted 3m12s)"
    assert mail.message["X-Priority"] is None  # good news is not urgent
    assert "Lasted:    3m12s" in mail.part("plain")
    assert "3m12s" in mail.part("html")


async def test_incident_update_counts_its_alerts(server: MailServer) -> None:
    alerts = [snapshot(severity=Severity.P2, fingerprint=f"backend:{metric}",
                       summary=f"backend {metric} is bad") for metric in ("a", "b", "c")]

    await smtp_channel(server.port).send(
        notification(*alerts, kind=NotificationKind.UPDATE, incident_id="inc-7"))

    [mail] = server.received
    assert mail.message["Subject"] == "[Tocsin] P2 update: 3 alerts in incident inc-7"
    for metric in ("a", "b", "c"):
        assert f"backend {metric} is bad" in mail.part("plain")


async def test_digest_lists_every_alert_with_counts(server: MailServer) -> None:
    alerts = [snapshot(severity=Severity.P3, fingerprint=f"host:disk{n}", rule="> 90%",
                       summary=f"disk {n} is full", value=92.5, unit="%") for n in range(10)]
    alerts += [snapshot(severity=Severity.P4, fingerprint=f"host:swap{n}",
                        summary=f"swap {n} in use") for n in range(2)]

    await smtp_channel(server.port).send(
        notification(*alerts, kind=NotificationKind.DIGEST, severity=Severity.P3))

    [mail] = server.received
    assert mail.message["Subject"] == "[Tocsin] Digest: 12 alerts (P3: 10, P4: 2)"
    text, html = mail.part("plain"), mail.part("html")
    assert "P3 medium: 10, P4 low: 2" in text
    assert "92.5%" in text
    for alert in alerts:
        assert alert.summary in text
        assert alert.summary in html


async def test_login_then_send(start_server: StartServer) -> None:
    server = start_server(auth=True)

    await smtp_channel(server.port, username=USER, password=PASSWORD).send(notification())

    assert len(server.received) == 1


async def test_refused_login_is_permanent_and_hides_the_password(
        start_server: StartServer) -> None:
    server = start_server(auth=True)
    channel = smtp_channel(server.port, username=USER, password="wrong-" + PASSWORD)

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert caught.value.permanent
    assert "535" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)
    assert PASSWORD not in repr(channel.config)
    assert server.received == []


async def test_every_recipient_refused_is_permanent(server: MailServer) -> None:
    channel = smtp_channel(server.port, to=["nobody@example.com"], cc=["nobody2@example.com"])

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert caught.value.permanent
    assert "550 no such user" in str(caught.value)
    assert server.received == []


async def test_some_recipients_refused_is_delivered_with_a_warning(
        server: MailServer, caplog: pytest.LogCaptureFixture) -> None:
    channel = smtp_channel(server.port, to=["oncall@example.com", "nobody@example.com"])

    with caplog.at_level(logging.WARNING, logger="tocsin.channels.smtp"):
        await channel.send(notification())

    [mail] = server.received
    assert mail.recipients == ["oncall@example.com"]
    assert "nobody@example.com (550 no such user)" in caplog.text


async def test_server_down_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DeliveryError) as caught:
        await smtp_channel(port).send(notification())

    assert not caught.value.permanent
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never says a word (no SMTP greeting)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_silent_server_times_out_as_transient(silent_port: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(DeliveryError) as caught:
        await smtp_channel(silent_port, timeout="500ms").send(notification())

    assert not caught.value.permanent
    assert "timed out" in str(caught.value)
    assert loop.time() - started < 2


async def test_starttls_with_a_trusted_ca(start_server: StartServer, ca_file: str) -> None:
    server = start_server(security="starttls", auth=True)
    channel = smtp_channel(server.port, security="starttls", ca_file=ca_file,
                           username=USER, password=PASSWORD)

    await channel.send(notification())

    assert len(server.received) == 1


async def test_starttls_refuses_an_untrusted_certificate(start_server: StartServer) -> None:
    server = start_server(security="starttls")

    with pytest.raises(DeliveryError) as caught:
        await smtp_channel(server.port, security="starttls").send(notification())

    assert caught.value.permanent
    assert "certificate" in str(caught.value)
    assert server.received == []


async def test_starttls_without_verification_delivers(start_server: StartServer) -> None:
    server = start_server(security="starttls")

    await smtp_channel(server.port, security="starttls", verify_tls=False).send(notification())

    assert len(server.received) == 1


async def test_implicit_tls(start_server: StartServer, ca_file: str) -> None:
    server = start_server(security="tls")

    await smtp_channel(server.port, security="tls", ca_file=ca_file).send(notification())

    assert len(server.received) == 1


async def test_starttls_required_but_not_offered_is_permanent(server: MailServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        await smtp_channel(server.port, security="starttls").send(notification())

    assert caught.value.permanent
    assert server.received == []


def test_config_refuses_header_injection() -> None:
    base = {"type": "smtp", "host": "mail.example.com", "from": "a@example.com"}
    for bad in ("x@example.com\r\nBcc: evil@example.com", "two@@example.com", "no-at",
                "a b@example.com", "Name <a@example.com>", "a@example.com, b@example.com"):
        with pytest.raises(ValueError, match="invalid email address"):
            SMTPConfig.model_validate({**base, "to": [bad]})
    with pytest.raises(ValueError, match="invalid email address"):
        SMTPConfig.model_validate({**base, "from": "a@example.com\nX: y", "to": ["b@x.org"]})


async def test_footer_says_which_path_the_mail_took(server: MailServer) -> None:
    channel = smtp_channel(server.port)

    await channel.send(notification())
    await channel.send(notification(key="firing-1-1.email~mail"))
    await channel.send(notification(key="firing-1-1.email~backup~mail"))

    direct, fallback, second = server.received
    for part in (direct.part("plain"), direct.part("html")):
        assert "Sent via mail by Tocsin at 2027-01-15T08:00:00Z." in part
    for part in (fallback.part("plain"), fallback.part("html")):
        assert "Sent via mail (fallback after email failed) by Tocsin" in part
    assert "Sent via mail (fallback after email, then backup failed)" in second.part("plain")
