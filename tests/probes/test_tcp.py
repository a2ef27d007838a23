"""The tcp probe against real local TCP servers: echo, banner, silent, refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from targets import LOOPBACK, closed_port, hanging_target
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, ProbeError, build_probe, probe_types
from tocsin.probes.tcp import TCPCheckConfig, TCPProbe

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
MakeProbe = Callable[..., TCPProbe]


@pytest.fixture
def tcp_probe(context: ProbeContext) -> MakeProbe:
    """``tcp_probe(service_url, timeout=1.0, **config)`` → a TCPProbe."""

    def make(service_url: str | None, timeout: float = 1.0, **config: Any) -> TCPProbe:
        spec = CheckSpec(name="svc tcp", service="svc", service_url=service_url, interval=10.0,
                         timeout=timeout,
                         config=TCPCheckConfig.model_validate({"type": "tcp", **config}))
        return TCPProbe(spec, context)

    return make


@contextlib.asynccontextmanager
async def echo_server(banner: bytes = b"") -> AsyncIterator[int]:
    """Sends ``banner`` on connect, then echoes every line back; yields its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if banner:
                writer.write(banner)
                await writer.drain()
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_tcp_is_a_registered_check_type() -> None:
    assert probe_types()["tcp"] is TCPProbe


async def test_connect_only_is_ok_with_connect_time(tcp_probe: MakeProbe) -> None:
    async with echo_server() as port:
        result = await tcp_probe(None, host=LOOPBACK, port=port).run()

    assert result.status is OK, result.message
    assert set(result.values) == {"connect_time", "response_time"}
    assert 0 < result.values["connect_time"] <= result.values["response_time"] < 1000


async def test_host_and_port_default_to_the_service_url(context: ProbeContext) -> None:
    async with echo_server() as port:
        spec = CheckSpec(name="n", service="svc", service_url=f"http://{LOOPBACK}:{port}",
                         interval=10.0, timeout=1.0,
                         config=TCPCheckConfig.model_validate({"type": "tcp"}))
        probe = build_probe(spec, context)
        assert isinstance(probe, TCPProbe)
        result = await probe.run()
    assert result.status is OK, result.message
    assert result.details == {"host": LOOPBACK, "port": port}


async def test_send_and_expect_ok(tcp_probe: MakeProbe) -> None:
    async with echo_server() as port:
        result = await tcp_probe(None, host=LOOPBACK, port=port, send="PING hello\n",
                                 expect="hello").run()

    assert result.status is OK, result.message
    assert result.values["response_time"] >= result.values["connect_time"]
    assert result.details["banner"] == "PING hello\n"


async def test_banner_without_send_ok(tcp_probe: MakeProbe) -> None:
    async with echo_server(banner=b"220 mail.example ESMTP ready\r\n") as port:
        result = await tcp_probe(None, host=LOOPBACK, port=port, expect="ESMTP").run()
    assert result.status is OK, result.message


async def test_banner_mismatch_is_failing(tcp_probe: MakeProbe) -> None:
    async with echo_server(banner=b"SSH-2.0-OpenSSH_9.6\r\n") as port:
        result = await tcp_probe(None, host=LOOPBACK, port=port, expect="ESMTP",
                                 max_read=16).run()

    assert result.status is FAILING
    assert "banner does not contain 'ESMTP'" in result.message
    assert "sent 16 bytes" in result.message
    assert result.details["banner"] == "SSH-2.0-OpenSSH_"


async def test_peer_closing_without_the_banner_is_failing(tcp_probe: MakeProbe) -> None:
    async def close_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(close_at_once, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await tcp_probe(None, host=LOOPBACK, port=port, expect="hello").run()
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is FAILING
    assert "closed the connection" in result.message and "'bye\\n'" in result.message


async def test_refused_port_is_an_error(tcp_probe: MakeProbe) -> None:
    async with closed_port() as target:
        port = int(target.url.rsplit(":", 1)[1])
        result = await tcp_probe(None, host=LOOPBACK, port=port).run()

    assert result.status is ERROR
    assert result.message == f"connection refused by {LOOPBACK}:{port}"
    assert result.values == {}


async def test_silent_server_times_out_when_expecting(tcp_probe: MakeProbe) -> None:
    async with hanging_target() as target:
        started = asyncio.get_running_loop().time()
        result = await tcp_probe(target.url, timeout=0.3, send="hello\r\n\r\n",
                                 expect="220").run()
        elapsed = asyncio.get_running_loop().time() - started

    assert result.status is ERROR
    assert result.message.startswith("timed out after 0.3 s waiting for the banner '220'")
    assert "connect_time" in result.values
    assert elapsed < 1.5


async def test_unresolvable_host_is_an_error(tcp_probe: MakeProbe) -> None:
    result = await tcp_probe(None, host="no-such-host.invalid", port=80).run()
    assert result.status is ERROR
    assert "no-such-host.invalid" in result.message


def test_port_is_required_without_one_in_the_service_url(tcp_probe: MakeProbe) -> None:
    with pytest.raises(ProbeError, match="needs a port"):
        tcp_probe("http://example.com")
    with pytest.raises(ProbeError, match="needs a host"):
        tcp_probe(None, port=80)


@pytest.mark.parametrize("fields", [{"port": 0}, {"port": 65536}, {"expect": ""},
                                    {"host": " "}, {"unknown": 1}, {"max_read": 0}])
def test_bad_config_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TCPCheckConfig.model_validate({"type": "tcp", **fields})
