"""A real SMTP server (aiosmtpd) on 127.0.0.1, with optional AUTH, STARTTLS or implicit TLS."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tocsin.alerting.model import (
    AlertSnapshot,
    AlertState,
    Notification,
    NotificationKind,
    Severity,
)

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
USER, PASSWORD = "tocsin", "s3cret-Pa55word"


@dataclass
class Received:
    """One message as the server took it: envelope and parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content = body.get_content()
        assert isinstance(content, str)
        return content


@dataclass
class RecordingHandler:
    """Keeps every message; refuses recipients whose local part starts with ``nobody``."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("nobody"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"


def _check_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # False: the server sends the 535 itself


class LocalController(Controller):
    """Listens on a free port (``port=0``); closes its sessions when stopped.

    aiosmtpd stops its loop without closing connections a client has not
    closed yet (a client that gave up mid-session closes on its next loop
    turn), and the leaked sockets would surface as ResourceWarnings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        session: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.sessions.append(session)
        return session

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]

    async def wait_for_clients(self, limit: float = 2.0) -> None:
        """Until every client has closed its connection, for at most ``limit`` seconds.

        A client closing a TLS connection finishes on later turns of its
        loop; ending the test first would close that loop with the socket open.
        """
        deadline = asyncio.get_running_loop().time() + limit
        while any(session.transport is not None for session in self.sessions):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.005)

    def stop(self, no_assert: bool = False) -> None:
        def close_sessions() -> None:
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.close()

        self.loop.call_soon_threadsafe(close_sessions)
        super().stop(no_assert)


@dataclass
class MailServer:
    port: int
    handler: RecordingHandler

    @property
    def received(self) -> list[Received]:
        return self.handler.received


StartServer = Callable[..., MailServer]


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def start_server(server_tls: ssl.SSLContext) -> AsyncIterator[StartServer]:
    """``start_server(auth=False, security="none")`` → a running local SMTP server."""
    controllers: list[LocalController] = []

    def start(*, auth: bool = False, security: str = "none") -> MailServer:
        handler = RecordingHandler()
        options: dict[str, Any] = {}
        if auth:
            options.update(authenticator=_check_login, auth_require_tls=False)
        if security == "starttls":
            options.update(tls_context=server_tls, require_starttls=True)
        elif security == "tls":
            options.update(ssl_context=server_tls)
        controller = LocalController(handler, hostname="127.0.0.1", port=0, **options)
        controller.start()
        controllers.append(controller)
        return MailServer(port=controller.port, handler=handler)

    yield start
    for controller in controllers:
        await controller.wait_for_clients()
        controller.stop()


def snapshot(**fields: Any) -> AlertSnapshot:
    """A firing P1 ``backend:http`` down alert, with ``fields`` overriding."""
    values: dict[str, Any] = {
        "fingerprint": "backend:http",
        "check": "backend http",
        "service": "backend",
        "severity": Severity.P1,
        "state": AlertState.FIRING,
        "rule": "down",
        "summary": "backend:http is down",
        "message": "connection refused",
        "since": T0 - 300,
        "runbook": "https://runbooks.example.com/backend-down",
        "dashboard_url": "http://127.0.0.1:8080/alerts/backend:http",
        "ack_url": "http://127.0.0.1:8080/ack/abc123",
    }
    values.update(fields)
    return AlertSnapshot(**values)


def notification(*alerts: AlertSnapshot, **fields: Any) -> Notification:
    """A FIRING notification of ``alerts`` (one default alert when none) to channel ``mail``."""
    chosen = alerts or (snapshot(),)
    values: dict[str, Any] = {
        "key": "n-1",
        "channel": "mail",
        "kind": NotificationKind.FIRING,
        "severity": chosen[0].severity,
        "subject": "",
        "alerts": chosen,
        "created_at": T0,
    }
    values.update(fields)
    return Notification(**values)
