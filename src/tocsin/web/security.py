"""Response hardening: security headers on every answer, JSON errors, and the login throttle.

:class:`SecurityHeaders` is plain ASGI middleware (no body buffering): it adds
the headers below to every response, and the strict Content-Security-Policy
only when the route did not choose its own (a standalone report page may need
``style-src 'self' 'unsafe-inline'``). :func:`install_error_handlers` makes an
unexpected exception a JSON ``500`` without a traceback under ``/api``; 404,
405 and 422 are FastAPI's JSON already.
"""

from __future__ import annotations

import logging
from collections import deque

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tocsin.web")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in _HEADERS if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_error_handlers(app: FastAPI) -> None:
    """An unexpected error is logged here and answered without its traceback."""

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        log.error("%s %s failed: %s: %s", request.method, request.url.path,
                  type(error).__name__, error)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "internal server error"}, status_code=500)
        return PlainTextResponse("Internal Server Error", status_code=500)


class LoginThrottle:
    """Wrong passwords per client: after ``allowed`` within ``window`` seconds, a lockout.

    A locked-out client is refused (429) even with the right password until the
    lockout ends, so guessing costs ``lockout`` seconds per ``allowed`` tries.
    The oldest clients are forgotten beyond ``clients_kept``. Time is passed in.
    """

    def __init__(self, allowed: int = 10, window: float = 900.0, lockout: float = 900.0,
                 clients_kept: int = 10_000) -> None:
        self.allowed = allowed
        self.window = window
        self.lockout = lockout
        self.clients_kept = clients_kept
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        failures = self._failures.get(client)
        if failures is None or len(failures) < self.allowed:
            return None
        wait = failures[-1] + self.lockout - now
        if wait <= 0:
            del self._failures[client]
            return None
        return wait

    def failed(self, client: str, now: float) -> None:
        failures = self._failures.pop(client, None) or deque(maxlen=self.allowed)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        failures.append(now)
        self._failures[client] = failures  # most recent last
        while len(self._failures) > self.clients_kept:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
