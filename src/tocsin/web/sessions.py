"""Admin sessions in signed cookies: ``<base64 JSON>.<HMAC-SHA256>`` under a server secret.

Nothing is kept server-side but the ids of sessions signed out before they
expired. The cookie holds the session's CSRF token too; it is HttpOnly, and
its signature keeps anyone who can set cookies from choosing that token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

SESSION_TTL = 12 * 3600.0  # seconds a sign-in lasts


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in admin, as its cookie carries it."""

    sid: str
    csrf: str
    expires_at: float


class SessionSigner:
    """Issues and reads session cookies; ``end`` refuses one before it expires (sign-out)."""

    def __init__(self, secret: bytes, ttl: float = SESSION_TTL) -> None:
        self._key = hashlib.sha256(b"tocsin-session\0" + secret).digest()
        self.ttl = ttl
        self._ended: dict[str, float] = {}  # sid → expiry, of sessions signed out
        self.anonymous_csrf = hmac.new(self._key, b"anonymous-csrf", "sha256").hexdigest()

    def issue(self, now: float) -> tuple[str, Session]:
        session = Session(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(32),
                          expires_at=now + self.ttl)
        payload = base64.urlsafe_b64encode(json.dumps(
            {"sid": session.sid, "csrf": session.csrf, "exp": session.expires_at},
            separators=(",", ":")).encode()).decode()
        return f"{payload}.{self._sign(payload)}", session

    def read(self, cookie: str, now: float) -> Session | None:
        payload, _, signature = cookie.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(payload))
            session = Session(sid=str(fields["sid"]), csrf=str(fields["csrf"]),
                              expires_at=float(fields["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= now or session.sid in self._ended:
            return None
        return session

    def end(self, session: Session, now: float) -> None:
        """Refuse this session's cookie from now on (sign-out), until it would expire anyway."""
        self._ended = {sid: exp for sid, exp in self._ended.items() if exp > now}
        self._ended[session.sid] = session.expires_at

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), "sha256").hexdigest()
