"""The tls probe against local TLS servers whose certificates trustme makes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from pydantic import ValidationError

from targets import LOOPBACK, closed_port, hanging_target
from tocsin.alerting.conditions import parse_condition
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, ProbeError, probe_types
from tocsin.probes.tls import TLSCheckConfig, TLSProbe

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
MakeProbe = Callable[..., TLSProbe]


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(authority: trustme.CA) -> Iterator[str]:
    with authority.cert_pem.tempfile() as path:
        yield path


@pytest.fixture
def tls_probe(context: ProbeContext) -> MakeProbe:
    """``tls_probe(port, timeout=1.0, **config)`` → a TLSProbe on 127.0.0.1."""

    def make(port: int, timeout: float = 1.0, **config: Any) -> TLSProbe:
        config.setdefault("host", LOOPBACK)
        spec = CheckSpec(name="svc tls", service="svc", service_url=None, interval=10.0,
                         timeout=timeout,
                         config=TLSCheckConfig.model_validate({"type": "tls", "port": port,
                                                               **config}))
        return TLSProbe(spec, context)

    return make


@contextlib.asynccontextmanager
async def tls_server(cert: trustme.LeafCert) -> AsyncIterator[int]:
    """A TLS server presenting ``cert``; it greets and closes. Yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            writer.write(b"hello\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def now() -> datetime:
    return datetime.now(UTC)


def test_tls_is_a_registered_check_type() -> None:
    assert probe_types()["tls"] is TLSProbe


async def test_valid_certificate_is_ok_with_days_left(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert(LOOPBACK, "svc.example", not_after=now() + timedelta(days=30))
    async with tls_server(cert) as port:
        result = await tls_probe(port, ca_file=ca_file).run()

    assert result.status is OK, result.message
    assert result.values["valid"] == 1
    assert result.values["days_left"] == pytest.approx(30, abs=0.01)
    assert result.details["sans"] == ["svc.example", LOOPBACK]
    assert result.details["subject"] is None or isinstance(result.details["subject"], str)
    assert "trustme" in result.details["issuer"]
    assert result.details["not_after"].startswith((now() + timedelta(days=30)).date().isoformat())


async def test_expiring_soon_certificate_can_be_alerted_on(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert(LOOPBACK, not_after=now() + timedelta(days=5))
    async with tls_server(cert) as port:
        result = await tls_probe(port, ca_file=ca_file).run()
    assert result.status is OK, result.message
    assert parse_condition("days_left < 14").evaluate(result).held is True
    assert parse_condition("days_left < 3").evaluate(result).held is False


async def test_expired_certificate_is_failing_with_negative_days_left(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert(LOOPBACK, not_before=now() - timedelta(days=40),
                                not_after=now() - timedelta(days=3))
    async with tls_server(cert) as port:
        result = await tls_probe(port, ca_file=ca_file).run()

    assert result.status is FAILING
    assert result.message.startswith("certificate expired 3.0 days ago"), result.message
    assert result.values["valid"] == 0
    assert result.values["days_left"] == pytest.approx(-3, abs=0.01)
    assert result.details["reason"] == "certificate expired"


async def test_not_yet_valid_certificate_is_failing(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert(LOOPBACK, not_before=now() + timedelta(days=2),
                                not_after=now() + timedelta(days=90))
    async with tls_server(cert) as port:
        result = await tls_probe(port, ca_file=ca_file).run()

    assert result.status is FAILING
    assert result.message.startswith("certificate not yet valid: valid from"), result.message
    assert result.values["valid"] == 0
    assert result.values["days_left"] == pytest.approx(90, abs=0.01)


async def test_unknown_ca_is_failing_but_days_left_is_known(
    tls_probe: MakeProbe, authority: trustme.CA
) -> None:
    cert = authority.issue_cert(LOOPBACK, not_after=now() + timedelta(days=60))
    async with tls_server(cert) as port:
        result = await tls_probe(port).run()  # no ca_file: the system store

    assert result.status is FAILING
    assert "unknown CA" in result.message or "self-signed" in result.message, result.message
    assert result.values["valid"] == 0
    assert result.values["days_left"] == pytest.approx(60, abs=0.01)


async def test_self_signed_certificate_is_failing(tls_probe: MakeProbe) -> None:
    # A CA certificate served as the leaf is self-signed.
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with authority.cert_pem.tempfile() as cert_path, \
            authority.private_key_pem.tempfile() as key_path:
        context.load_cert_chain(cert_path, key_path)

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await tls_probe(port).run()
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is FAILING
    assert "self-signed" in result.message, result.message


async def test_wrong_host_is_a_hostname_mismatch(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert("other.example")
    async with tls_server(cert) as port:
        by_ip = await tls_probe(port, ca_file=ca_file).run()
        by_name = await tls_probe(port, ca_file=ca_file, server_name="svc.example").run()

    for result in (by_ip, by_name):
        assert result.status is FAILING
        assert result.message.startswith("hostname mismatch"), result.message
        assert "other.example" in result.message
        assert result.values["valid"] == 0
    assert by_name.message.endswith("not svc.example")


async def test_server_name_is_sent_and_checked(
    tls_probe: MakeProbe, authority: trustme.CA, ca_file: str
) -> None:
    cert = authority.issue_cert("svc.example")
    async with tls_server(cert) as port:
        result = await tls_probe(port, ca_file=ca_file, server_name="svc.example").run()
    assert result.status is OK, result.message


async def test_verify_false_ignores_the_chain_but_not_the_dates(
    tls_probe: MakeProbe, authority: trustme.CA
) -> None:
    good = authority.issue_cert("other.example")
    expired = authority.issue_cert(LOOPBACK, not_before=now() - timedelta(days=9),
                                   not_after=now() - timedelta(days=1))
    async with tls_server(good) as port:
        ok = await tls_probe(port, verify=False).run()
    async with tls_server(expired) as port:
        failing = await tls_probe(port, verify=False).run()
    assert ok.status is OK, ok.message
    assert failing.status is FAILING
    assert failing.message.startswith("certificate expired")


async def test_refused_is_an_error(tls_probe: MakeProbe) -> None:
    async with closed_port() as target:
        port = int(target.url.rsplit(":", 1)[1])
        result = await tls_probe(port).run()
    assert result.status is ERROR
    assert result.message == f"connection refused by {LOOPBACK}:{port}"
    assert result.values == {}


async def test_silent_server_times_out(tls_probe: MakeProbe) -> None:
    async with hanging_target() as target:
        port = int(target.url.rsplit(":", 1)[1])
        result = await tls_probe(port, timeout=0.3).run()
    assert result.status is ERROR
    assert result.message.startswith("timed out after 0.3 s during the TLS handshake")


async def test_plain_tcp_server_is_an_error(tls_probe: MakeProbe) -> None:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, LOOPBACK, 0)
    try:
        result = await tls_probe(server.sockets[0].getsockname()[1]).run()
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is ERROR
    assert "TLS handshake" in result.message or "connection" in result.message


def test_host_and_port_default_to_the_service_url(context: ProbeContext) -> None:
    def probe(url: str | None, **config: Any) -> TLSProbe:
        spec = CheckSpec(name="n", service="svc", service_url=url, interval=10.0, timeout=1.0,
                         config=TLSCheckConfig.model_validate({"type": "tls", **config}))
        return TLSProbe(spec, context)

    assert (probe("https://api.example.com")._host, probe("https://api.example.com")._port) \
        == ("api.example.com", 443)
    assert probe("https://api.example.com:8443")._port == 8443
    assert probe("http://api.example.com:8000")._port == 443
    assert probe("http://a.example", port=9443)._port == 9443
    assert probe("https://a.example", server_name="b.example")._server_name == "b.example"
    with pytest.raises(ProbeError, match="needs a host"):
        probe(None)
    with pytest.raises(ProbeError, match="ca_file"):
        probe("https://a.example", ca_file="/no/such/ca.pem")


@pytest.mark.parametrize("fields", [{"port": 0}, {"port": 70000}, {"server_name": ""},
                                    {"verify": "maybe"}, {"unknown": 1}])
def test_bad_config_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TLSCheckConfig.model_validate({"type": "tls", **fields})
