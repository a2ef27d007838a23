"""Resources that probes share: HTTP sessions, created once, closed once.

The sessions' connector stamps the phases of opening a connection into the
:class:`RequestTimings` that the running request registered with
:func:`timing_into`. aiohttp's ``TraceConfig`` would give the same stamps, but
it dispatches every trace signal of every request: on loopback with uvloop that
added 8–12 % to the CPU of a check on a fresh connection and 25 % on a pooled
one, where the connector hook adds about 3 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

from tocsin.platforms.registry import PlatformClients
from tocsin.probes.heartbeat_book import HeartbeatBook
from tocsin.probes.metric_push import PushedMetrics

if TYPE_CHECKING:
    from tocsin.probes.database import DatabaseCheckConfig
    from tocsin.store.base import Store


class RequestTimings:
    """Phase stamps of one request (``time.perf_counter`` seconds, 0.0 = not seen).

    ``connect`` spans opening a connection: the DNS lookup (``dns``, answered
    from a 60 s cache when it can be) and the TCP and TLS handshakes. A request
    served on a pooled connection has no connection phase. After a redirect the
    stamps are those of the last hop that opened a connection.
    """

    __slots__ = ("connect_end", "connect_start", "dns_end", "dns_start")

    def __init__(self) -> None:
        self.dns_start = self.dns_end = 0.0
        self.connect_start = self.connect_end = 0.0


_CURRENT: ContextVar[RequestTimings | None] = ContextVar("tocsin_request_timings", default=None)


class timing_into:  # lower case like contextlib.suppress: it reads as part of a with
    """``with timing_into(timings):`` requests made inside stamp their phases into ``timings``."""

    __slots__ = ("_timings", "_token")

    def __init__(self, timings: RequestTimings) -> None:
        self._timings = timings

    def __enter__(self) -> RequestTimings:
        self._token = _CURRENT.set(self._timings)
        return self._timings

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _CURRENT.reset(self._token)


class _TimedConnector(aiohttp.TCPConnector):
    """A TCP connector that stamps DNS and connection phases into the current timings.

    It wraps two internal methods of aiohttp's connector, passing every argument
    through: should a later aiohttp rename them, the timings go missing and
    nothing else changes.
    """

    async def _resolve_host(self, *args: Any, **kwargs: Any) -> Any:
        timings = _CURRENT.get()
        if timings is None:
            return await super()._resolve_host(*args, **kwargs)
        timings.dns_start = perf_counter()
        try:
            return await super()._resolve_host(*args, **kwargs)
        finally:
            timings.dns_end = perf_counter()

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        timings = _CURRENT.get()
        if timings is None:
            return await super()._create_connection(*args, **kwargs)
        timings.connect_start = perf_counter()
        try:
            return await super()._create_connection(*args, **kwargs)
        finally:
            timings.connect_end = perf_counter()


# Probes bound every request with ``asyncio.timeout`` (connect, headers and body
# together); per-phase aiohttp timers would only cost a timer handle each.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


class ProbeContext:
    """Shared, lazily created clients for every probe of a running scheduler.

    ``fresh_session`` opens a new connection for every request (uptime means a
    new client can connect); ``keepalive_session`` pools connections for the
    checks that opt into ``keepalive: true``. The sessions set no timeouts of
    their own: every request made on them must be bounded by its caller
    (``asyncio.timeout``). Requests made inside ``with timing_into(timings)``
    record their connection phases.
    """

    def __init__(self, user_agent: str = "Tocsin/0.1 (+monitoring)") -> None:
        self.user_agent = user_agent
        self._fresh: aiohttp.ClientSession | None = None
        self._keepalive: aiohttp.ClientSession | None = None
        # One client per configured platform, shared by its checks (and its rate limits).
        self.platforms = PlatformClients()
        # The newest point pushed for each `metric` check (the web server records them).
        self.metrics = PushedMetrics()
        # Set by the runtime: the store, where a `metric` check reads the baselines of
        # its change conditions, and the `databases:` section its `database:` names.
        self.store: Store | None = None
        self.databases: Mapping[str, DatabaseCheckConfig] = {}
        # What the pings of every heartbeat check have said (the web server records them).
        self.heartbeats = HeartbeatBook()

    def _session(self, force_close: bool) -> aiohttp.ClientSession:
        connector = _TimedConnector(
            force_close=force_close, limit=0, ttl_dns_cache=60, enable_cleanup_closed=False
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.user_agent},
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
            timeout=_NO_TIMEOUT,
        )

    @property
    def fresh_session(self) -> aiohttp.ClientSession:
        if self._fresh is None or self._fresh.closed:
            self._fresh = self._session(force_close=True)
        return self._fresh

    @property
    def keepalive_session(self) -> aiohttp.ClientSession:
        if self._keepalive is None or self._keepalive.closed:
            self._keepalive = self._session(force_close=False)
        return self._keepalive

    async def close(self) -> None:
        for session in (self._fresh, self._keepalive):
            if session is not None and not session.closed:
                await session.close()
        self._fresh = self._keepalive = None
        await self.platforms.close()
