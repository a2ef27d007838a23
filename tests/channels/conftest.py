"""A real SMTP server (aiosmtpd) on 127.0.0.1, with optional AUTH, STARTTLS or implicit TLS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailserver import LocalController, MailServer, RecordingHandler
from tocsin.alerting.model import (
    AlertSnapshot,
    AlertState,
    Notification,
    NotificationKind,
    Severity,
)

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
USER, PASSWORD = "tocsin", "s3cret-Pa55word"


def _check_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # False: the server sends the 535 itself


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
