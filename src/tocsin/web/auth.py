"""Who may read and write: API tokens, the admin session, and loopback on a fresh install.

The JSON API (:func:`require_read`, :func:`require_write`) accepts, in order:

1. ``Authorization: Bearer <token>``: a token from ``tocsin token create``
   (scope ``read`` or ``write``; write implies read), or ``$TOCSIN_API_TOKEN``
   (a write token). A bad, unknown or revoked token is 401, a read token on a
   write endpoint 403. A token is never combined with the rules below.
2. The dashboard session cookie (after ``/login`` with the admin password). It
   may read and write; a request that changes state must also carry the
   session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``)
   and, when it has an ``Origin``, come from this origin.
3. Nothing at all, from loopback, **only while nothing is configured**: no
   ``TOCSIN_API_TOKEN``, no active token in the store, no admin password. The
   request must come from a loopback address *and* name a loopback host (so a
   DNS-rebinding page cannot use it), and a write must not come from another
   origin. This keeps a fresh install and ``tocsin ack`` on the same host
   working; the first credential configured ends it. A reverse proxy on the
   same host that does not send ``X-Forwarded-For`` makes every client
   loopback: configure a credential before putting Tocsin behind one.

Otherwise: 401. Reads are not public: with nothing configured they are open
to loopback only, as writes are. ``/health``, ``/ping/…``, signed ack links and
``POST /api/v1/metrics`` (its own push token) keep their own rules.

Dashboard pages use :func:`require_session`: a session, or loopback while no
admin password is set (the page should then show :func:`admin_password_set`'s
banner); anyone else is sent to ``/login?next=…`` (303). Their form posts use
:func:`verify_csrf`; templates get the token from :func:`csrf_token`.

Token lookups are cached for :data:`TOKEN_CACHE_TTL` seconds (a revocation
takes effect within that), and ``last_used_at`` is written at most every
:data:`TOUCH_INTERVAL` seconds per token. Secrets (tokens, passwords, cookies)
are never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from tocsin.store import Store, StoreError
from tocsin.store.base import APIToken, TokenScope
from tocsin.web.credentials import (
    CredentialError,
    load_password_hash,
    split_token,
    token_matches,
)
from tocsin.web.security import LoginThrottle
from tocsin.web.sessions import Session, SessionSigner

log = logging.getLogger("tocsin.web.auth")
_T = TypeVar("_T")

ENV_TOKEN = "TOCSIN_API_TOKEN"
SESSION_SECRET_ENV = "TOCSIN_SESSION_SECRET"
MIN_SESSION_SECRET = 32
SESSION_COOKIE = "tocsin_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_CACHE_TTL = 5.0  # seconds a token lookup (and the "any token?" count) is reused
TOUCH_INTERVAL = 60.0  # seconds between two writes of one token's last_used_at
TOKENS_CACHED = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as, and what it may do."""

    kind: Literal["token", "session", "loopback"]
    scope: TokenScope
    token_id: str | None = None  # the store id of an API token; None for $TOCSIN_API_TOKEN


class LoginRequired(Exception):
    """A dashboard page without a session: answered by a redirect to ``/login?next=…``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Authenticator:
    """The credentials of one web app: the token cache, the session signer, the throttle."""

    def __init__(self, store: Callable[[], Store | None], password_hash: str | None,
                 session_secret: bytes, *, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self.password_hash = password_hash
        self.sessions = SessionSigner(session_secret)
        self.throttle = LoginThrottle()
        self.wall = wall
        self.monotonic = monotonic
        self._tokens: dict[str, tuple[APIToken | None, float]] = {}
        self._active: tuple[int, float] | None = None
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_env(cls, store: Callable[[], Store | None]) -> Authenticator:
        """Read the admin password hash and the session secret from the environment.

        Without ``TOCSIN_SESSION_SECRET`` sessions are signed with a random key
        and end when the process restarts.
        """
        secret = os.environ.get(SESSION_SECRET_ENV, "")
        if secret and len(secret) < MIN_SESSION_SECRET:
            raise CredentialError(f"{SESSION_SECRET_ENV} must be at least "
                                  f"{MIN_SESSION_SECRET} characters")
        return cls(store, load_password_hash(),
                   secret.encode() if secret else secrets.token_bytes(32))

    async def token_scope(self, text: str) -> TokenScope | None:
        """The scope a bearer token grants, or None when it is not a valid, active token."""
        env_token = os.environ.get(ENV_TOKEN)
        if env_token and hmac.compare_digest(text.encode(), env_token.encode()):
            return TokenScope.WRITE
        parts = split_token(text)
        if parts is None:
            return None
        token_id, secret = parts
        record = await self._lookup(token_id)
        if record is None or record.revoked_at is not None or \
                not token_matches(secret, record.hash):
            return None
        self._touch(token_id)
        return record.scope

    async def open_to_loopback(self) -> bool:
        """True while no credential of any kind is configured."""
        if os.environ.get(ENV_TOKEN) or self.password_hash is not None:
            return False
        now = self.monotonic()
        if self._active is None or now - self._active[1] >= TOKEN_CACHE_TTL:
            store = self._store()
            count = 0 if store is None else await self._ask(store.count_active_api_tokens)
            self._active = (count, now)
        return self._active[0] == 0

    def forget_cached(self) -> None:
        """Drop cached lookups (a token just created or revoked in this process)."""
        self._tokens.clear()
        self._active = None

    async def _lookup(self, token_id: str) -> APIToken | None:
        now = self.monotonic()
        cached = self._tokens.get(token_id)
        if cached is not None and now - cached[1] < TOKEN_CACHE_TTL:
            return cached[0]
        store = self._store()
        if store is None:
            return None
        record = await self._ask(lambda: store.get_api_token(token_id))
        self._tokens.pop(token_id, None)
        self._tokens[token_id] = (record, now)
        while len(self._tokens) > TOKENS_CACHED:  # unknown ids must not grow it without end
            del self._tokens[next(iter(self._tokens))]
        return record

    async def _ask(self, query: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(query)
        except StoreError as error:
            log.error("cannot check credentials: the store failed: %s", error)
            raise HTTPException(503, "credentials cannot be checked: the store is "
                                "unavailable") from None

    def _touch(self, token_id: str) -> None:
        now = self.monotonic()
        if now - self._touched.get(token_id, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
            return
        self._touched[token_id] = now
        store = self._store()
        if store is not None:
            task = asyncio.create_task(self._record_use(store, token_id, self.wall()))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _record_use(self, store: Store, token_id: str, at: float) -> None:
        try:
            await asyncio.to_thread(store.touch_api_token, token_id, at)
        except StoreError as error:  # only last_used_at is lost
            log.warning("API token %s: could not record its use: %s", token_id, error)

    def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.sessions.read(cookie, self.wall()) if cookie else None


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) and ``localhost``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _loopback_request(request: Request) -> bool:
    """From a loopback address, to a loopback host name (not a rebound DNS name)."""
    return request.client is not None and _is_loopback(request.client.host) and \
        _is_loopback(request.url.hostname or "")


def same_origin(request: Request) -> bool:
    """No ``Origin`` (not a browser, or a same-origin GET), or this server's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") in (
            "same-origin", "none")
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _given_csrf(request: Request) -> str:
    given = request.headers.get(CSRF_HEADER)
    if given is not None:
        return given
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request) -> None:
    expected = csrf_token(request)
    given = await _given_csrf(request)
    if not same_origin(request) or not given or \
            not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "a valid CSRF token is required (X-CSRF-Token)")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _authorize(request: Request, needed: TokenScope) -> Principal:
    auth = authenticator(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        granted = await auth.token_scope(given.strip()) \
            if scheme.lower() == "bearer" and given.strip() else None
        if granted is None:
            raise _unauthorized("the API token is invalid or revoked")
        if needed is TokenScope.WRITE and granted is not TokenScope.WRITE:
            raise HTTPException(403, "this API token may only read")
        return Principal("token", granted)
    if auth.session_of(request) is not None:
        if needed is TokenScope.WRITE or request.method not in SAFE_METHODS:
            await check_csrf(request)
        return Principal("session", TokenScope.WRITE)
    if _loopback_request(request) and await auth.open_to_loopback():
        if request.method not in SAFE_METHODS and not same_origin(request):
            raise HTTPException(403, "cross-origin writes are refused")
        return Principal("loopback", TokenScope.WRITE)
    raise _unauthorized("an API token is required (Authorization: Bearer <token>; "
                        "create one with `tocsin token create`)")


async def require_read(request: Request) -> Principal:
    """FastAPI dependency of the JSON API's reads (see the module docstring)."""
    return await _authorize(request, TokenScope.READ)


async def require_write(request: Request) -> Principal:
    """FastAPI dependency of the JSON API's writes (see the module docstring)."""
    return await _authorize(request, TokenScope.WRITE)


async def require_session(request: Request) -> Principal:
    """FastAPI dependency of dashboard pages: a session, else a redirect to ``/login``."""
    auth = authenticator(request)
    if auth.session_of(request) is not None:
        return Principal("session", TokenScope.WRITE)
    if auth.password_hash is None and _loopback_request(request):
        return Principal("loopback", TokenScope.WRITE)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(path)


def admin_password_set(request: Request) -> bool:
    """False while the dashboard is open to loopback without a password (show a banner)."""
    return authenticator(request).password_hash is not None


def csrf_token(request: Request) -> str:
    """The CSRF token to put in this request's forms (``csrf_token`` field)."""
    auth = authenticator(request)
    session = auth.session_of(request)
    return session.csrf if session is not None else auth.sessions.anonymous_csrf


async def verify_csrf(request: Request) -> None:
    """FastAPI dependency of HTML form posts: 403 without this session's CSRF token."""
    await check_csrf(request)


def install_auth(app: FastAPI, store: Callable[[], Store | None]) -> Authenticator:
    """Attach an :class:`Authenticator` read from the environment, and the login redirect."""
    auth = Authenticator.from_env(store)
    app.state.auth = auth

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, error: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(error.next_path, safe='')}",
                                status_code=303)

    return auth
