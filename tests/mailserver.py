"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Shared by the channel tests, the end-to-end alerting tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message as the server took it: envelope and parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    at: float = 0.0  # time.monotonic() when the server took it

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
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message,
                                      time.monotonic()))
        return "250 OK"


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
