"""The ``dns`` check: ask a name server one question, judge the answer.

The question (``query``, ``record`` A, AAAA, CNAME, MX or TXT) goes over UDP
(TCP when the answer is truncated) to each of ``nameservers`` in turn
(``ip`` or ``ip:port``, ``[v6]:port``), or to the system's (``/etc/resolv.conf``)
when none is given, until one answers; the whole run is bounded by the check
timeout, each server getting an equal share of the time left (a dead server
is usually silence over UDP, not a refusal). Recursion is requested, as a stub resolver would.

- OK: the answer's rcode is ``expect.rcode`` (NOERROR by default) and the
  answer expectations hold;
- FAILING: a server answered but not as expected: another rcode (NXDOMAIN,
  **SERVFAIL** — a server that says it cannot resolve the name has answered,
  like an HTTP 503; the message names the rcode), no record of the type
  asked for (NOERROR with an empty answer, when a NOERROR is expected),
  ``answers_include`` entries missing, or answers not ``answers_equal``;
- ERROR: no server answered within the timeout, or none could be asked.

Answers are compared in text form, names case-insensitively and without the
trailing dot (``mail.example.com``), addresses as addresses (``::1`` equals
``0:0::1``), MX as ``preference exchange`` (``10 mail.example.com``), TXT as
the record's strings joined. ``answers_equal`` ignores order.

``values``: ``query_time`` (ms, the answering exchange) and ``answers`` (the
number of records of the type asked for); ``code``: the rcode's number;
``details``: ``answers`` (text, sorted), ``rcode`` (its name), ``nameserver``.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
from time import perf_counter
from typing import Any, ClassVar, Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
from pydantic import BaseModel, ConfigDict, Field, field_validator

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

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT"]
DEFAULT_PORT = 53


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"`` → ``("127.0.0.1", 5353)``; ``::1``, ``[::1]:53`` too."""
    text = text.strip()
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid nameserver {text!r}: write [v6 address]:port")
        if rest:
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver {text!r} is not an IP address "
                         "(write e.g. 9.9.9.9 or 127.0.0.1:5353)") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port in nameserver {whole!r}")
    return int(text)


def _rcode(text: str) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.from_text(text.strip().upper()))
    except dns.rcode.UnknownRcode:
        raise ValueError(
            f"unknown rcode {text!r}: write e.g. NOERROR, NXDOMAIN, SERVFAIL") from None


class DNSExpect(BaseModel):
    """What the answer must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answers_include: list[str] | None = None
    answers_equal: list[str] | None = None
    rcode: str = "NOERROR"

    @field_validator("rcode")
    @classmethod
    def _valid_rcode(cls, value: str) -> str:
        return _rcode(value)


class DNSCheckConfig(CheckConfig):
    """A ``dns`` check: ``query`` (the name), ``record``, ``nameservers``, ``expect``."""

    type: Literal["dns"]
    query: str
    record: RecordType = "A"
    nameservers: list[str] = Field(default_factory=list)
    expect: DNSExpect = Field(default_factory=DNSExpect)

    @field_validator("record", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("query")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            dns.name.from_text(value.strip())
        except dns.exception.DNSException as exc:
            raise ValueError(f"invalid DNS name {value!r}: {exc}") from None
        return value.strip()

    @field_validator("nameservers")
    @classmethod
    def _valid_nameservers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_nameserver(text)
        return value


def normalise(record: str, text: str) -> str:
    """One answer in the form expectations are compared in."""
    text = text.strip()
    if record in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if record == "CNAME":
        return text.rstrip(".").lower()
    if record == "MX":
        parts = text.split()
        if len(parts) == 2:
            return f"{parts[0]} {parts[1].rstrip('.').lower()}"
        return text.lower()
    return text


def _answer_text(rdata: Any, record: str) -> str:
    if record == "TXT":
        return "".join(part.decode("utf-8", errors="replace") for part in rdata.strings)
    return normalise(record, rdata.to_text())


def _system_nameservers() -> list[tuple[str, int]]:
    try:
        resolver = dns.resolver.Resolver()
    except dns.exception.DNSException as exc:
        raise ProbeError(f"no system resolver ({exc}): set nameservers") from None
    servers: list[tuple[str, int]] = []
    for server in resolver.nameservers:
        text = str(server)
        try:
            ipaddress.ip_address(text)
        except ValueError:  # a DoH/DoT URL: not asked by this check
            continue
        servers.append((text, resolver.nameserver_ports.get(text, resolver.port)))
    return servers


def _show(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == DEFAULT_PORT else f"{shown}:{port}"


@register
class DNSProbe(Probe[DNSCheckConfig]):
    """Ask one question of a name server and judge the answer."""

    type: ClassVar[str] = "dns"
    config_model: ClassVar[builtins.type[CheckConfig]] = DNSCheckConfig

    def __init__(self, spec: CheckSpec[DNSCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        self._name = dns.name.from_text(config.query)
        self._record = config.record
        self._rdtype = dns.rdatatype.from_text(config.record)
        self._servers = ([parse_nameserver(text) for text in config.nameservers]
                         if config.nameservers else None)
        self._timeout = spec.timeout
        expect = config.expect
        self._rcode = expect.rcode
        self._include = [normalise(self._record, text) for text in expect.answers_include or []]
        self._equal = (None if expect.answers_equal is None else
                       [normalise(self._record, text) for text in expect.answers_equal])

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        try:
            servers = self._servers if self._servers is not None else _system_nameservers()
        except ProbeError as exc:
            return CheckResult.error(self.spec.name, started_at, str(exc))
        if not servers:
            return CheckResult.error(self.spec.name, started_at,
                                     "no nameserver to ask: set nameservers")
        failures: list[str] = []
        deadline = start + self._timeout
        for index, (host, port) in enumerate(servers):
            # Each server left gets an equal share of the time left: a dead first
            # server (UDP: often silence, not a refusal) leaves time for the next.
            remaining = (deadline - perf_counter()) / (len(servers) - index)
            if remaining <= 0:
                break
            query = dns.message.make_query(self._name, self._rdtype, dns.rdataclass.IN)
            asked = perf_counter()
            try:
                async with asyncio.timeout(remaining):
                    response, _ = await dns.asyncquery.udp_with_fallback(
                        query, host, timeout=remaining, port=port)
            except (TimeoutError, dns.exception.Timeout):
                failures.append(f"{_show(host, port)} did not answer")
                continue
            except (OSError, dns.exception.DNSException) as exc:
                failures.append(f"{_show(host, port)}: {exc or type(exc).__name__}")
                continue
            query_ms = (perf_counter() - asked) * 1000
            return self._judge(response, started_at, query_ms, _show(host, port))
        if not failures:
            failures.append("no nameserver asked")
        return CheckResult.error(
            self.spec.name, started_at,
            f"no answer within {self._timeout:g}s: " + "; ".join(failures),
            latency_ms=(perf_counter() - start) * 1000)

    def _judge(self, response: dns.message.Message, started_at: float, query_ms: float,
               server: str) -> CheckResult:
        rcode = dns.rcode.to_text(response.rcode())
        answers = sorted(_answer_text(rdata, self._record)
                         for rrset in response.answer if rrset.rdtype == self._rdtype
                         for rdata in rrset)
        failures: list[str] = []
        got = ", ".join(answers) or "none"
        if rcode != self._rcode:
            failures.append(f"rcode {rcode}, expected {self._rcode}")
        elif rcode == "NOERROR" and not answers and self._equal != []:
            failures.append(f"no {self._record} record for {self.spec.config.query}")
        else:
            missing = [text for text in self._include if text not in answers]
            if missing:
                failures.append(f"answers lack {', '.join(missing)} (got {got})")
            if self._equal is not None and sorted(answers) != sorted(self._equal):
                failures.append(f"answers {got}, expected {', '.join(self._equal) or 'none'}")
        return self.new_result(
            CheckStatus.FAILING if failures else CheckStatus.OK,
            started_at,
            latency_ms=query_ms,
            message="; ".join(failures),
            code=response.rcode(),
            values={"query_time": query_ms, "answers": len(answers)},
            details={"answers": answers, "rcode": rcode, "nameserver": server},
        )
