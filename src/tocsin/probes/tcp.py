"""The ``tcp`` check: open a connection, optionally send a line and wait for a banner.

A run is OK when the connection opens (and, with ``expect``, the answer
contains the expected text within ``max_read`` bytes), FAILING when the peer
answered something else or closed without the text, and ERROR when it could not
be reached: refused, unreachable, unresolvable, or no answer before the timeout.
The whole run (connect, send, read) is bounded by the check timeout.

``values``: ``connect_time`` (ms, the TCP handshake with any DNS lookup) and
``response_time`` (ms, the whole exchange: up to the expected banner when
``expect`` is set, else connect and send).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import socket
from time import perf_counter
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from tocsin.config.durations import Size
from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
    wall_clock,
)
from tocsin.probes.context import ProbeContext
from tocsin.probes.registry import register

DEFAULT_MAX_READ = 4096
BANNER_DETAIL_CHARS = 200

class TCPCheckConfig(CheckConfig):
    """A ``tcp`` check: ``host`` and ``port`` default to the service URL's."""

    type: Literal["tcp"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    send: str | None = None
    expect: str | None = None
    max_read: Size = DEFAULT_MAX_READ

    @model_validator(mode="after")
    def _sane(self) -> TCPCheckConfig:
        if self.host is not None and not self.host.strip():
            raise ValueError("host is empty")
        if self.expect is not None and not self.expect:
            raise ValueError("expect is empty: leave it out to only check the connection")
        if self.max_read < 1:
            raise ValueError("max_read must be at least 1 byte")
        return self


def service_host_port(service_url: str | None) -> tuple[str | None, int | None, str | None]:
    """The host, explicit port and scheme of a service URL (each None when absent)."""
    if not service_url:
        return None, None, None
    parts = urlsplit(service_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname, port, parts.scheme or None


def resolve_host(type_name: str, spec_name: str, host: str | None,
                 service_url: str | None) -> str:
    """The configured host, else the service URL's; ProbeError when neither is known."""
    if host is not None:
        return host.strip()
    url_host, _, _ = service_host_port(service_url)
    if url_host:
        return url_host
    raise ProbeError(f"check {spec_name!r}: a {type_name} check needs a host: "
                     "set host, or a url on its service")


def describe_connect_error(exc: OSError, host: str, port: int) -> str:
    """A short message for a failed connection (refused, unreachable, unresolvable)."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by {where}"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"{where} is unreachable ({exc.strerror or 'no route'})"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot connect to {where}: {reason}"


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close a connection without waiting long for a peer that does not answer."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


def _banner(data: bytes | bytearray) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= BANNER_DETAIL_CHARS else text[:BANNER_DETAIL_CHARS] + "..."


@register
class TCPProbe(Probe[TCPCheckConfig]):
    """Connect to ``host:port``; with ``send`` write it, with ``expect`` wait for it."""

    type: ClassVar[str] = "tcp"
    config_model: ClassVar[builtins.type[CheckConfig]] = TCPCheckConfig

    def __init__(self, spec: CheckSpec[TCPCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        self._host = resolve_host("tcp", spec.name, config.host, spec.service_url)
        _, url_port, _ = service_host_port(spec.service_url)
        port = config.port if config.port is not None else url_port
        if port is None:
            raise ProbeError(f"check {spec.name!r}: a tcp check needs a port: set port, "
                             "or a url with an explicit port on its service")
        self._port = port
        self._send = config.send.encode() if config.send is not None else None
        self._expect = config.expect.encode() if config.expect is not None else None
        self._max_read = config.max_read
        self._timeout = spec.timeout

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        connect_ms: float | None = None
        received = bytearray()
        phase = "connecting"
        writer: asyncio.StreamWriter | None = None
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port)
                connect_ms = (perf_counter() - start) * 1000
                if self._send is not None:
                    phase = "sending"
                    writer.write(self._send)
                    await writer.drain()
                if self._expect is not None:
                    phase = "waiting for the banner"
                    await self._read_banner(reader, received)
        except TimeoutError:
            elapsed = (perf_counter() - start) * 1000
            message = f"timed out after {self._timeout:g} s {phase}"
            if phase == "waiting for the banner":
                message += f" {self.spec.config.expect!r} (received {len(received)} bytes)"
            message += f" ({where})"
            return self._error(started_at, message, elapsed, connect_ms)
        except OSError as exc:
            elapsed = (perf_counter() - start) * 1000
            if connect_ms is None:
                message = describe_connect_error(exc, self._host, self._port)
            else:
                message = f"connection to {where} failed {phase}: {exc.strerror or exc}"
            return self._error(started_at, message, elapsed, connect_ms)
        finally:
            if writer is not None:
                await close_quietly(writer)
        end_ms = (perf_counter() - start) * 1000
        values = {"connect_time": connect_ms or 0.0, "response_time": end_ms}
        details: dict[str, object] = {"host": self._host, "port": self._port}
        if self._expect is not None:
            details["banner"] = _banner(received)
            if self._expect not in received:
                ending = ("closed the connection" if len(received) < self._max_read
                          else f"sent {self._max_read} bytes")
                return self.new_result(
                    CheckStatus.FAILING, started_at, latency_ms=end_ms,
                    message=f"banner does not contain {self.spec.config.expect!r} "
                            f"(the peer {ending}: {_banner(received[:60])!r})",
                    values=values, details=details)
        return self.new_result(CheckStatus.OK, started_at, latency_ms=end_ms,
                               values=values, details=details)

    async def _read_banner(self, reader: asyncio.StreamReader, received: bytearray) -> None:
        """Read until the expected text appears, the peer closes, or ``max_read`` bytes."""
        assert self._expect is not None
        while len(received) < self._max_read:
            chunk = await reader.read(self._max_read - len(received))
            if not chunk:
                break
            received += chunk
            if self._expect in received:
                break

    def _error(self, started_at: float, message: str, elapsed: float,
               connect_ms: float | None) -> CheckResult:
        values = {"connect_time": connect_ms} if connect_ms is not None else {}
        return self.new_result(CheckStatus.ERROR, started_at, latency_ms=elapsed,
                               message=message, values=values)
