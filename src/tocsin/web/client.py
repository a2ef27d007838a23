"""A small blocking client for a running Tocsin's JSON API, used by the ``tocsin`` command.

Blocking (``urllib``) on purpose: a command makes one or two requests and exits,
so an event loop would only add start-up time. ``urllib`` errors are translated
here, at the boundary::

    ClientError
    ├── Unreachable   no connection (refused, DNS, timeout): is ``tocsin run`` running?
    └── APIError      the server answered with an error status; ``status`` and ``detail``
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

TOKEN_ENV = "TOCSIN_API_TOKEN"
TIMEOUT = 10.0  # seconds; the API answers from memory or one small query


class ClientError(Exception):
    """The request did not succeed."""


class Unreachable(ClientError):
    """No answer from the server at all."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach Tocsin at {url} (is `tocsin run` running?): {reason}")
        self.url = url
        self.reason = reason


class APIError(ClientError):
    """An error status, with the server's ``detail`` when it sent one."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def path_segment(value: str) -> str:
    """``value`` quoted as one path segment (fingerprints hold ``{``, ``"``, ``/``)."""
    return quote(value, safe="")


class TocsinClient:
    """JSON requests to one Tocsin server; a bearer token when one is given."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        handlers: list[urllib.request.BaseHandler] = []
        if _is_loopback(urlsplit(self.base_url).hostname or ""):
            # An HTTP(S)_PROXY meant for the internet must not carry requests to this host.
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def from_env(cls, base_url: str) -> TocsinClient:
        """A client that sends ``$TOCSIN_API_TOKEN`` when it is set."""
        return cls(base_url, os.environ.get(TOKEN_ENV))

    def get(self, path: str, **query: str | int | bool | None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                query: dict[str, str | int | bool | None] | None = None) -> Any:
        """Send one request; the decoded JSON answer, or a :class:`ClientError`."""
        url = self.base_url + path
        params = {key: _query_value(value) for key, value in (query or {}).items()
                  if value is not None}
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=TIMEOUT) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as error:
            try:
                detail = _detail(error.read(), error.reason)
            finally:
                error.close()
            raise APIError(error.code, detail) from None
        except urllib.error.URLError as error:
            raise Unreachable(self.base_url, str(error.reason)) from None
        except (OSError, http.client.HTTPException) as error:  # reset, timeout, not HTTP
            raise Unreachable(self.base_url, str(error) or type(error).__name__) from None


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise APIError(200, "the server's answer is not JSON: is this a Tocsin server?") from None


def _detail(raw: bytes, reason: object) -> str:
    """FastAPI's ``{"detail": "…"}``, or a validation error list, as one line of text."""
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        return str(reason)
    if isinstance(detail, list):  # request validation: [{"loc": [...], "msg": "..."}]
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg', '')}"
            if isinstance(item, dict) else str(item) for item in detail)
    return str(detail) if detail is not None else str(reason)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
