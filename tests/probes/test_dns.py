"""The dns probe against a tiny local name server on 127.0.0.1 (no traffic leaves the host)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from pydantic import ValidationError

from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, build_probe, probe_types
from tocsin.probes.dns import DNSCheckConfig, DNSProbe, parse_nameserver

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR

ZONE: dict[tuple[str, str], list[str]] = {
    ("www.example.test.", "A"): ["192.0.2.10", "192.0.2.11"],
    ("www.example.test.", "AAAA"): ["2001:db8::10"],
    ("example.test.", "MX"): ["10 mail.example.test.", "20 backup.example.test."],
    ("example.test.", "TXT"): ['"v=spf1 -all"'],
    ("alias.example.test.", "CNAME"): ["www.example.test."],
    ("mxonly.example.test.", "MX"): ["10 mail.example.test."],
}
SERVFAIL_NAME = "broken.example.test."
SILENT_NAME = "silent.example.test."


class _Server(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.questions.append(f"{name} {rdtype}")
        if name == SILENT_NAME:
            return
        response = dns.message.make_response(query)
        if name == SERVFAIL_NAME:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in ZONE:
            response.answer.append(
                dns.rrset.from_text_list(name, 60, "IN", rdtype, ZONE[(name, rdtype)]))
        elif not any(known == name for known, _ in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
        # a known name without this type: NOERROR, empty answer (NODATA)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def name_server() -> AsyncIterator[tuple[str, _Server]]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        _Server, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        transport.close()


def make(context: ProbeContext, nameserver: str | list[str], timeout: float = 1.0,
         **config: Any) -> DNSProbe:
    servers = [nameserver] if isinstance(nameserver, str) else nameserver
    spec = CheckSpec(name="svc dns", service="svc", service_url=None, interval=10.0,
                     timeout=timeout, config=DNSCheckConfig.model_validate(
                         {"type": "dns", "nameservers": servers, **config}))
    return DNSProbe(spec, context)


def test_dns_is_a_registered_check_type() -> None:
    assert probe_types()["dns"] is DNSProbe


async def test_a_record_is_ok_with_values_and_details(context: ProbeContext) -> None:
    async with name_server() as (address, server):
        result = await make(context, address, query="www.example.test").run()
    assert result.status is OK, result.message
    assert result.values["answers"] == 2
    assert 0 < result.values["query_time"] < 1000
    assert result.details["answers"] == ["192.0.2.10", "192.0.2.11"]
    assert result.details["rcode"] == "NOERROR"
    assert result.code == 0
    assert server.questions == ["www.example.test. A"]


@pytest.mark.parametrize(
    ("query", "record", "expect", "answers"),
    [
        ("www.example.test", "aaaa", {"answers_include": ["2001:db8:0::10"]}, ["2001:db8::10"]),
        ("example.test", "MX",
         {"answers_equal": ["20 backup.example.test", "10 Mail.example.test."]},
         ["10 mail.example.test", "20 backup.example.test"]),
        ("example.test", "TXT", {"answers_include": ["v=spf1 -all"]}, ["v=spf1 -all"]),
        ("alias.example.test", "CNAME", {"answers_equal": ["www.example.test"]},
         ["www.example.test"]),
        ("nowhere.example.test", "A", {"rcode": "nxdomain"}, []),
    ],
)
async def test_record_types_and_expectations_hold(
    context: ProbeContext, query: str, record: str, expect: dict[str, Any], answers: list[str]
) -> None:
    async with name_server() as (address, _):
        result = await make(context, address, query=query, record=record, expect=expect).run()
    assert result.status is OK, result.message
    assert result.details["answers"] == answers


async def test_nxdomain_is_failing(context: ProbeContext) -> None:
    async with name_server() as (address, _):
        result = await make(context, address, query="nowhere.example.test").run()
    assert result.status is FAILING
    assert result.message == "rcode NXDOMAIN, expected NOERROR"
    assert result.details["rcode"] == "NXDOMAIN"
    assert result.values["answers"] == 0


async def test_servfail_is_failing_naming_the_rcode(context: ProbeContext) -> None:
    async with name_server() as (address, _):
        result = await make(context, address, query="broken.example.test").run()
    assert result.status is FAILING
    assert result.message == "rcode SERVFAIL, expected NOERROR"
    assert result.code == dns.rcode.SERVFAIL


async def test_no_record_of_the_type_is_failing(context: ProbeContext) -> None:
    async with name_server() as (address, _):
        result = await make(context, address, query="mxonly.example.test").run()
    assert result.status is FAILING
    assert result.message == "no A record for mxonly.example.test"


async def test_wrong_answers_are_failing_naming_them(context: ProbeContext) -> None:
    async with name_server() as (address, _):
        include = await make(context, address, query="www.example.test",
                             expect={"answers_include": ["192.0.2.99"]}).run()
        equal = await make(context, address, query="www.example.test",
                           expect={"answers_equal": ["192.0.2.10"]}).run()
    assert include.status is FAILING
    assert include.message == "answers lack 192.0.2.99 (got 192.0.2.10, 192.0.2.11)"
    assert equal.status is FAILING
    assert equal.message == "answers 192.0.2.10, 192.0.2.11, expected 192.0.2.10"


async def test_silent_server_is_an_error_within_the_timeout(context: ProbeContext) -> None:
    async with name_server() as (address, _):
        loop = asyncio.get_running_loop()
        begun = loop.time()
        result = await make(context, address, timeout=0.3, query="silent.example.test").run()
        elapsed = loop.time() - begun
    assert result.status is ERROR
    assert result.message.startswith("no answer within 0.3s: ")
    assert "did not answer" in result.message
    assert elapsed < 1.0


async def test_next_nameserver_is_asked_when_the_first_is_closed(context: ProbeContext) -> None:
    async with name_server() as (closed, _):
        pass  # its port is now closed: ICMP refused or silence
    async with name_server() as (address, _):
        result = await make(context, [closed, address], timeout=2.0,
                            query="www.example.test").run()
    assert result.status is OK, result.message
    assert result.details["nameserver"] == address


async def test_build_probe_makes_a_dns_probe(context: ProbeContext) -> None:
    spec = CheckSpec(name="n", service=None, service_url=None, interval=10.0, timeout=1.0,
                     config=DNSCheckConfig.model_validate(
                         {"type": "dns", "query": "example.test", "nameservers": ["127.0.0.1"]}))
    assert isinstance(build_probe(spec, context), DNSProbe)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("::1", ("::1", 53)), ("[::1]:5353", ("::1", 5353))],
)
def test_nameserver_forms(text: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize(
    "config",
    [
        {"query": "example.test", "record": "SRV"},
        {"query": "example.test", "nameservers": ["dns.google"]},
        {"query": "example.test", "nameservers": ["127.0.0.1:99999"]},
        {"query": "example.test", "expect": {"rcode": "MAYBE"}},
        {"query": "a..b"},
        {"record": "A"},
        {"query": "example.test", "name": "x", "answers_include": ["1.2.3.4"]},
    ],
)
def test_invalid_configs_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DNSCheckConfig.model_validate({"type": "dns", **config})
