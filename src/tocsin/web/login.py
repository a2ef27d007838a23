"""``/login`` (a password form, and its post), ``/logout`` and ``/api/v1/session``.

The admin password is checked with scrypt in a thread, compared in constant
time, and throttled per client (:class:`~tocsin.web.security.LoginThrottle`).
Neither the password nor the cookie is logged; the page escapes what it shows
and has no inline script or style.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tocsin.web.auth import (
    SESSION_COOKIE,
    Principal,
    admin_password_set,
    authenticator,
    check_csrf,
    csrf_token,
    require_read,
    same_origin,
)
from tocsin.web.credentials import PASSWORD_HASH_ENV, verify_password

log = logging.getLogger("tocsin.web.auth")


def login_page(next_path: str, *, enabled: bool = True, error: str | None = None) -> str:
    """The ``/login`` page; ``enabled`` False says how to set the admin password instead."""
    if not enabled:
        body = (f"<p>Sign-in is off: no admin password is set. Create a hash with "
                f"<code>tocsin password-hash</code> and set <code>{PASSWORD_HASH_ENV}</code> "
                f"(or <code>{PASSWORD_HASH_ENV}_FILE</code>). Until then the dashboard "
                f"is open to this machine (loopback) only.</p>")
    else:
        alert = f'<p role="alert">{escape(error)}</p>' if error else ""
        body = (f'{alert}<form method="post" action="/login">'
                f'<input type="hidden" name="next" value="{escape(next_path)}">'
                f'<label>Password <input type="password" name="password" required '
                f'autocomplete="current-password" autofocus></label> '
                f'<button type="submit">Sign in</button></form>')
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Sign in · Tocsin</title></head>"
            f"<body><main><h1>Tocsin</h1>{body}</main></body></html>")


def _safe_next(next_path: str | None) -> str:
    """Only a path on this server: ``//evil.example`` or ``https://…`` would be an open redirect."""
    if not next_path or not next_path.startswith("/") or next_path.startswith(("//", "/\\")):
        return "/"
    return next_path


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def login_router() -> APIRouter:
    """``/login`` (form and post) and ``/logout``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        enabled = authenticator(request).password_hash is not None
        return HTMLResponse(login_page(_safe_next(next), enabled=enabled),
                            status_code=200 if enabled else 403)

    @router.post("/login")
    async def login(request: Request, password: str = Form(max_length=1024),
                    next: str = Form("/")) -> Response:
        auth = authenticator(request)
        target = _safe_next(next)
        if auth.password_hash is None:
            return HTMLResponse(login_page(target, enabled=False), status_code=403)
        if not same_origin(request):
            raise HTTPException(403, "cross-origin sign-in is refused")
        client = _client(request)
        wait = auth.throttle.retry_after(client, auth.monotonic())
        if wait is not None:
            return HTMLResponse(login_page(target, error="Too many wrong passwords: "
                                           "try again later."), status_code=429,
                                headers={"Retry-After": str(int(wait) + 1)})
        # Counted as failed before the check, so that guesses sent in parallel cannot
        # all pass the throttle while the first ones are still being hashed.
        auth.throttle.failed(client, auth.monotonic())
        if not await asyncio.to_thread(verify_password, password, auth.password_hash):
            log.warning("sign-in failed from %s", client)
            return HTMLResponse(login_page(target, error="Wrong password."), status_code=401)
        auth.throttle.succeeded(client)
        cookie, _ = auth.sessions.issue(auth.wall())
        log.info("signed in from %s", client)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=int(auth.sessions.ttl),
                            httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        return response

    @router.get("/api/v1/session")
    async def whoami(request: Request,
                     principal: Annotated[Principal, Depends(require_read)]) -> dict[str, Any]:
        """Who this request acts as, and the CSRF token a browser sends with its writes."""
        return {"kind": principal.kind, "scope": principal.scope.value,
                "csrf_token": None if principal.kind == "token" else csrf_token(request),
                "admin_password_set": admin_password_set(request)}

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await check_csrf(request)
        auth = authenticator(request)
        session = auth.session_of(request)
        if session is not None:
            auth.sessions.end(session, auth.wall())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")
        return response

    return router
