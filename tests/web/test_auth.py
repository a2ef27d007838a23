"""Who may read and write, through the real web server of a Runtime: tokens, sessions, loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fastapi import Depends
from yarl import URL

from tocsin.runtime import Runtime
from tocsin.store.base import APIToken, TokenScope
from tocsin.web.auth import (
    SESSION_COOKIE,
    TOKEN_CACHE_TTL,
    Authenticator,
    Principal,
    require_session,
)
from tocsin.web.credentials import IssuedToken, hash_password, issue_token
from tocsin.web.security import CONTENT_SECURITY_POLICY

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)
SILENCE = {"matchers": ["service=backend"], "duration": "1h", "created_by": "test"}


@dataclass
class Server:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, allow_redirects=False,
                                     **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def response(self, method: str, path: str,
                       **kwargs: Any) -> tuple[aiohttp.ClientResponse, str]:
        async with self.http.request(method, self.url + path, allow_redirects=False,
                                     **kwargs) as response:
            return response, await response.text()

    @property
    def auth(self) -> Authenticator:
        assert self.runtime.web is not None
        auth: Authenticator = self.runtime.web.app.state.auth
        return auth

    async def token(self, scope: TokenScope, name: str = "test") -> IssuedToken:
        issued = issue_token()
        await asyncio.to_thread(self.runtime.require_store().add_api_token, APIToken(
            id=issued.id, name=name, scope=scope, hash=issued.hash, created_at=time.time()))
        self.auth.forget_cached()  # as if the cache had expired: the next request asks
        return issued

    async def sign_in(self, password: str = PASSWORD) -> int:
        status, _ = await self.call("POST", "/login", data={"password": password, "next": "/x"})
        return status


Start = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    """Start a Runtime with the given environment; stopped at the end of the test."""
    for name in ("TOCSIN_API_TOKEN", "TOCSIN_ADMIN_PASSWORD_HASH",
                 "TOCSIN_ADMIN_PASSWORD_HASH_FILE", "TOCSIN_SESSION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1h, timeout: 1s}}
services:
  backend:
    url: http://127.0.0.1:9
    checks:
      - {{type: http, name: backend-health, path: /health}}
""")
    started: list[tuple[Runtime, asyncio.Task[None], aiohttp.ClientSession]] = []

    async def starting(**env: str) -> Server:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime = Runtime(config)
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.ready.wait(), 10)
        assert runtime.web_address is not None
        host, port = runtime.web_address
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        started.append((runtime, task, http))
        return Server(runtime, f"http://{host}:{port}", http)

    yield starting
    for runtime, task, http in started:
        await http.close()
        runtime.request_stop()
        await asyncio.wait_for(task, 10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REMOTE = {"X-Forwarded-For": "203.0.113.9"}  # uvicorn trusts it from loopback: a remote client


# -- nothing configured: loopback only ------------------------------------------------------

async def test_with_nothing_configured_loopback_may_read_and_write(start: Start) -> None:
    server = await start()
    status, _ = await server.call("GET", "/api/v1/checks")
    assert status == 200
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE)
    assert status == 201
    status, body = await server.call("GET", "/api/v1/session")
    assert body["kind"] == "loopback" and body["admin_password_set"] is False


async def test_with_nothing_configured_other_hosts_get_401(start: Start) -> None:
    server = await start()
    status, body = await server.call("GET", "/api/v1/checks", headers=REMOTE)
    assert status == 401 and "tocsin token create" in body["detail"]
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE, headers=REMOTE)
    assert status == 401
    status, _ = await server.call("GET", "/metrics", headers=REMOTE)
    assert status == 401


async def test_loopback_refuses_a_rebound_host_name_and_a_cross_origin_write(
        start: Start) -> None:
    server = await start()
    status, _ = await server.call("GET", "/api/v1/checks", headers={"Host": "evil.example"})
    assert status == 401  # DNS rebinding: a page of evil.example resolved to 127.0.0.1
    status, body = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                     headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in body["detail"]


async def test_the_first_token_ends_the_loopback_exception(start: Start) -> None:
    server = await start()
    await server.token(TokenScope.READ)
    status, _ = await server.call("GET", "/api/v1/checks")
    assert status == 401


# -- API tokens -----------------------------------------------------------------------------

async def test_writes_need_a_write_token(start: Start) -> None:
    server = await start()
    read, write = await server.token(TokenScope.READ), await server.token(TokenScope.WRITE)
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE)
    assert status == 401
    status, body = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                     headers=bearer(read.text))
    assert status == 403 and body["detail"] == "this API token may only read"
    status, _ = await server.call("GET", "/api/v1/silences", headers=bearer(read.text))
    assert status == 200
    status, body = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                     headers=bearer(write.text))
    assert status == 201 and body["created_by"] == "test"
    status, _ = await server.call("GET", "/api/v1/silences", headers=bearer(write.text))
    assert status == 200  # write implies read


async def test_a_wrong_or_malformed_token_is_401(start: Start) -> None:
    server = await start()
    good = await server.token(TokenScope.WRITE)
    forged = good.text[:-4] + ("AAAA" if not good.text.endswith("AAAA") else "BBBB")
    for header in (bearer(forged), bearer("tcn_nothex0000000000_x"), bearer("nonsense"),
                   {"Authorization": good.text}, {"Authorization": "Basic " + good.text}):
        status, body = await server.call("GET", "/api/v1/checks", headers=header)
        assert status == 401, header
        assert body["detail"] == "the API token is invalid or revoked"


async def test_a_revoked_token_is_refused_within_the_cache_ttl(start: Start) -> None:
    server = await start()
    issued = await server.token(TokenScope.WRITE)
    now = [1000.0]
    server.auth.monotonic = lambda: now[0]
    status, _ = await server.call("GET", "/api/v1/checks", headers=bearer(issued.text))
    assert status == 200
    assert await asyncio.to_thread(server.runtime.require_store().revoke_api_token,
                                   issued.id, time.time())
    now[0] += TOKEN_CACHE_TTL / 2
    status, _ = await server.call("GET", "/api/v1/checks", headers=bearer(issued.text))
    assert status == 200  # the cached lookup: revocation is not instant
    now[0] += TOKEN_CACHE_TTL / 2
    status, _ = await server.call("GET", "/api/v1/checks", headers=bearer(issued.text))
    assert status == 401


async def test_using_a_token_records_when(start: Start) -> None:
    server = await start()
    issued = await server.token(TokenScope.READ)
    store = server.runtime.require_store()
    assert (await asyncio.to_thread(store.get_api_token, issued.id)).last_used_at is None
    status, _ = await server.call("GET", "/api/v1/checks", headers=bearer(issued.text))
    assert status == 200
    deadline = time.monotonic() + 5
    while (await asyncio.to_thread(store.get_api_token, issued.id)).last_used_at is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_the_environment_token_is_a_write_token(start: Start) -> None:
    server = await start(TOCSIN_API_TOKEN="env-token-for-tests")
    status, _ = await server.call("GET", "/api/v1/checks")
    assert status == 401  # a configured token ends the loopback exception
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                  headers=bearer("env-token-for-tests"))
    assert status == 201


# -- the admin session ----------------------------------------------------------------------

async def test_signing_in_sets_an_http_only_same_site_cookie(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    status, _ = await server.call("GET", "/api/v1/checks")
    assert status == 401  # the admin password ends the loopback exception
    response, _ = await server.response("POST", "/login",
                                         data={"password": PASSWORD, "next": "/dashboard"})
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=lax" in cookie.lower() and "secure" not in attributes  # plain http
    status, body = await server.call("GET", "/api/v1/session")
    assert status == 200 and body["kind"] == "session" and body["csrf_token"]
    status, _ = await server.call("GET", "/api/v1/checks")
    assert status == 200


async def test_a_wrong_password_is_401_and_sets_no_cookie(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    response, page = await server.response("POST", "/login", data={"password": "guess"})
    assert response.status == 401 and "Wrong password" in page
    assert "Set-Cookie" not in response.headers


async def test_an_open_redirect_after_sign_in_goes_home_instead(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response, _ = await server.response("POST", "/login",
                                            data={"password": PASSWORD, "next": target})
        assert response.headers["Location"] == "/", target


async def test_ten_wrong_passwords_lock_the_client_out(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    for _ in range(10):
        assert await server.sign_in("wrong") == 401
    response, _ = await server.response("POST", "/login", data={"password": PASSWORD})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert SESSION_COOKIE not in response.headers.get("Set-Cookie", "")
    # Another client is not locked out by this one's guesses.
    status, _ = await server.call("POST", "/login", data={"password": PASSWORD},
                                  headers=REMOTE)
    assert status == 303


async def test_guesses_sent_in_parallel_are_throttled_too(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    statuses = await asyncio.gather(*(server.sign_in("wrong") for _ in range(16)))
    assert sorted(statuses) == [401] * 10 + [429] * 6


async def test_a_session_write_needs_its_csrf_token(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    assert await server.sign_in() == 303
    _, body = await server.call("GET", "/api/v1/session")
    csrf = body["csrf_token"]
    status, body = await server.call("POST", "/api/v1/silences", json=SILENCE)
    assert status == 403 and "CSRF" in body["detail"]
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                  headers={"X-CSRF-Token": csrf + "x"})
    assert status == 403
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                  headers={"X-CSRF-Token": csrf,
                                           "Origin": "http://evil.example"})
    assert status == 403
    status, _ = await server.call("POST", "/api/v1/silences", json=SILENCE,
                                  headers={"X-CSRF-Token": csrf})
    assert status == 201


async def test_signing_out_needs_the_csrf_form_field_and_ends_the_session(
        start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    assert await server.sign_in() == 303
    _, body = await server.call("GET", "/api/v1/session")
    stolen = {SESSION_COOKIE: server.http.cookie_jar.filter_cookies(
        URL(server.url))[SESSION_COOKIE].value}
    status, _ = await server.call("POST", "/logout", data={"csrf_token": "nope"})
    assert status == 403
    status, _ = await server.call("POST", "/logout", data={"csrf_token": body["csrf_token"]})
    assert status == 303
    async with aiohttp.ClientSession(cookies=stolen) as other, \
            other.get(server.url + "/api/v1/checks") as response:
        assert response.status == 401  # the old cookie is refused after sign-out


async def test_a_page_without_a_session_redirects_to_sign_in(start: Start) -> None:
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    assert server.runtime.web is not None

    async def page(principal: Principal = Depends(require_session)) -> dict[str, str]:  # noqa: B008
        return {"kind": principal.kind}

    server.runtime.web.app.add_api_route("/test-page", page)
    response, _ = await server.response("GET", "/test-page?tab=1")
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=%2Ftest-page%3Ftab%3D1"
    status, form = await server.call("GET", "/login?next=/test-page")
    assert status == 200 and 'name="password"' in form and 'value="/test-page"' in form
    assert await server.sign_in() == 303
    status, body = await server.call("GET", "/test-page")
    assert status == 200 and body == {"kind": "session"}


async def test_without_a_password_pages_are_open_to_loopback_only(start: Start) -> None:
    server = await start()
    assert server.runtime.web is not None

    async def page(principal: Principal = Depends(require_session)) -> dict[str, str]:  # noqa: B008
        return {"kind": principal.kind}

    server.runtime.web.app.add_api_route("/test-page", page)
    status, body = await server.call("GET", "/test-page")
    assert status == 200 and body == {"kind": "loopback"}
    status, _ = await server.call("GET", "/test-page", headers=REMOTE)
    assert status == 303
    status, page_text = await server.call("GET", "/login")
    assert status == 403 and "TOCSIN_ADMIN_PASSWORD_HASH" in page_text


# -- headers and errors ---------------------------------------------------------------------

async def test_every_answer_has_the_security_headers(start: Start) -> None:
    server = await start()
    for path in ("/api/v1/checks", "/login", "/health", "/api/v1/nope", "/metrics"):
        response, _ = await server.response("GET", path)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_api_errors_are_json_without_a_traceback(start: Start) -> None:
    server = await start()
    status, body = await server.call("GET", "/api/v1/checks/no-such-check")
    assert status == 404 and body == {"detail": "no check named 'no-such-check'"}
    status, body = await server.call("GET", "/api/v1/heartbeats/no-such-check/pings")
    assert status == 404 and "no-such-check" in body["detail"]
    status, body = await server.call("DELETE", "/api/v1/checks")
    assert status == 405 and body == {"detail": "Method Not Allowed"}
    status, body = await server.call("GET", "/api/v1/alerts?limit=zero")
    assert status == 422 and isinstance(body["detail"], list)


async def test_an_unexpected_error_is_a_json_500_without_a_traceback(
        start: Start, caplog: pytest.LogCaptureFixture) -> None:
    server = await start()

    def broken(check: str) -> None:
        raise RuntimeError("boom at /srv/secret/path.py")

    server.runtime.latest.get = broken  # type: ignore[method-assign]
    status, body = await server.call("GET", "/api/v1/checks")
    assert status == 500 and body == {"detail": "internal server error"}
    assert "GET /api/v1/checks failed: RuntimeError" in caplog.text


async def test_secrets_are_never_logged(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start(TOCSIN_ADMIN_PASSWORD_HASH=PASSWORD_HASH)
    issued = await server.token(TokenScope.WRITE)
    await server.call("GET", "/api/v1/checks", headers=bearer(issued.text))
    await server.call("GET", "/api/v1/checks", headers=bearer(issued.text[:-1]))
    assert await server.sign_in("wrong " + PASSWORD) == 401
    assert await server.sign_in() == 303
    cookie = server.http.cookie_jar.filter_cookies(URL(server.url))[SESSION_COOKIE].value
    assert "sign-in failed from 127.0.0.1" in caplog.text  # the logging was captured
    for secret in (issued.text, issued.text.rsplit("_", 1)[1], PASSWORD, PASSWORD_HASH,
                   cookie):
        assert secret not in caplog.text
