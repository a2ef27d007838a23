"""Resources that probes share: HTTP sessions, created once, closed once."""

from __future__ import annotations

import aiohttp


class ProbeContext:
    """Shared, lazily created clients for every probe of a running scheduler.

    ``fresh_session`` opens a new connection for every request (uptime means a
    new client can connect); ``keepalive_session`` pools connections for the
    checks that opt into ``keepalive: true``.
    """

    def __init__(self, user_agent: str = "Tocsin/0.1 (+monitoring)") -> None:
        self.user_agent = user_agent
        self._fresh: aiohttp.ClientSession | None = None
        self._keepalive: aiohttp.ClientSession | None = None

    def _session(self, force_close: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            force_close=force_close, limit=0, ttl_dns_cache=60, enable_cleanup_closed=False
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.user_agent},
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
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
