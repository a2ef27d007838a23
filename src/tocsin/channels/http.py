"""What every HTTP-API channel shares: one session, one POST, one error mapping.

:meth:`HTTPChannel.post` sends JSON (or bytes) and returns the response's
status, headers and (capped) body, or raises :class:`DeliveryError` decided by
the status code alone — never by the text, which APIs change:

- 2xx: delivered;
- 429: transient, waiting ``Retry-After`` (seconds or an HTTP date), or
  ``X-RateLimit-Reset`` (seconds, or an epoch above 1e9) when it is absent;
- 408, 5xx: transient;
- other 4xx (400 bad payload, 401/403 bad key, 404 unknown endpoint, 413 too
  large): permanent — retrying the same request cannot help;
- timeouts, refused or reset connections, TLS and DNS failures: transient,
  except an untrusted certificate, which is permanent.

Messages name the channel and the status, and at most 200 characters of the
response, never the URL (webhook URLs and some query strings are secrets).
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDictProxy

from tocsin.channels.base import Channel, ChannelConfig, DeliveryError

RESPONSE_CAP = 64 * 1024  # bytes of a response kept for messages and parsing
STREAM_ABOVE = 512 * 1024  # bytes of a request body sent from a stream, not at once

C = TypeVar("C", bound=ChannelConfig)


@dataclass(frozen=True)
class HTTPAnswer:
    """A 2xx answer."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` or ``X-RateLimit-Reset``, if either is usable."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = headers.get("X-RateLimit-Reset") or headers.get("Ratelimit-Reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    return None


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text[:200] + ("…" if len(text) > 200 else "")


class HTTPChannel(Channel[C]):
    """A channel that speaks to an HTTP API; subclasses build the request and call :meth:`post`."""

    def __init__(self, name: str, config: C) -> None:
        super().__init__(name, config)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": "Tocsin/0.1"},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def post(self, url: str, *, json: Any = None, data: bytes | None = None,
                   headers: Mapping[str, str] | None = None,
                   verify_tls: bool = True) -> HTTPAnswer:
        """POST, bounded by the channel's timeout; a non-2xx answer raises DeliveryError."""
        # aiohttp warns that a large bytes body written at once may hold the loop;
        # a file-like body is streamed in chunks.
        body: bytes | io.BytesIO | None = (
            io.BytesIO(data) if data is not None and len(data) > STREAM_ABOVE else data)
        try:
            async with asyncio.timeout(self.config.timeout):
                async with self.session.post(
                    url, json=json, data=body, headers=headers,
                    ssl=verify_tls, allow_redirects=False,
                ) as response:
                    body = await response.content.read(RESPONSE_CAP)
                    status, answer_headers = response.status, response.headers
        except TimeoutError:
            raise DeliveryError(f"{self.name}: timed out after {self.config.timeout:g} s",
                                permanent=False) from None
        except aiohttp.ClientConnectorCertificateError:
            raise DeliveryError(f"{self.name}: the server's TLS certificate is not trusted",
                                permanent=True) from None
        except (aiohttp.ClientError, OSError, ssl.SSLError) as error:
            raise DeliveryError(f"{self.name}: {type(error).__name__}: "
                                f"{_describe(error)}", permanent=False) from None
        if 200 <= status < 300:
            return HTTPAnswer(status, answer_headers, body)
        message = f"{self.name}: HTTP {status}"
        if body:
            message += f": {_excerpt(body)}"
        if status == 429:
            raise DeliveryError(message, permanent=False, retry_after=retry_after(answer_headers))
        if status == 408 or status >= 500:
            raise DeliveryError(message, permanent=False, retry_after=retry_after(answer_headers))
        raise DeliveryError(message, permanent=True)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.os_error.strerror or "cannot connect"
    return str(error).split(" url=", 1)[0][:200] or "failed"
