"""The ``tls`` check: the certificate a TLS server presents, and how long it has left.

One verified handshake says whether the chain and the name are valid. When they
are not, the reason comes from OpenSSL's verify code (expired, not yet valid,
self-signed or unknown CA, hostname mismatch), and a second, unverified
handshake fetches the certificate anyway, so that ``days_left`` is known even
for a broken chain: a rule ``days_left < 14`` keeps working.

A run is OK when the certificate verifies, FAILING when it does not (the message
says why), and ERROR when no handshake could be made (refused, timeout, not
TLS). With ``verify: false`` chain and name are not checked, but the validity
dates still are. The whole run is bounded by the check timeout.

``values``: ``days_left`` (days until notAfter; negative once expired) and
``valid`` (1 or 0). ``details``: ``subject`` (the CN), ``sans``, ``issuer``,
``not_before``, ``not_after`` (ISO 8601, UTC), ``host``, ``port``,
``server_name``.
"""

from __future__ import annotations

import asyncio
import builtins
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

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
from tocsin.probes.tcp import close_quietly, describe_connect_error, resolve_host, service_host_port

DEFAULT_PORT = 443
SECONDS_PER_DAY = 86400.0

# OpenSSL X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code carries them.
_NOT_YET_VALID = 9
_EXPIRED = 10
_REASONS: dict[int, str] = {
    _NOT_YET_VALID: "certificate not yet valid",
    _EXPIRED: "certificate expired",
    18: "self-signed certificate",
    19: "self-signed certificate in the chain (unknown CA)",
    20: "unknown CA (issuer certificate not trusted)",
    21: "unknown CA (cannot verify the leaf certificate)",
    23: "certificate revoked",
    62: "hostname mismatch",
    64: "hostname mismatch (IP address)",
}


class TLSCheckConfig(CheckConfig):
    """A ``tls`` check: ``host`` defaults to the service URL's, ``port`` to 443."""

    type: Literal["tls"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    server_name: str | None = None
    verify: bool = True
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _sane(self) -> TLSCheckConfig:
        if self.host is not None and not self.host.strip():
            raise ValueError("host is empty")
        if self.server_name is not None and not self.server_name.strip():
            raise ValueError("server_name is empty")
        return self


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the check reports of a certificate."""

    subject: str | None
    sans: list[str]
    issuer: str
    not_before: datetime
    not_after: datetime

    def details(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "sans": self.sans,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


def parse_der(der: bytes) -> CertInfo | None:
    """The fields of a DER certificate, or None without ``cryptography`` or on garbage."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - cryptography is not a declared dependency yet
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        subject = str(names[0].value) if names else None
        sans: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            sans.extend(san.get_values_for_type(x509.DNSName))
            sans.extend(str(address) for address in san.get_values_for_type(x509.IPAddress))
        return CertInfo(subject, sans, cert.issuer.rfc4514_string(),
                        cert.not_valid_before_utc, cert.not_valid_after_utc)
    except ValueError:
        return None


def parse_peercert(cert: dict[str, Any]) -> CertInfo | None:
    """The fields of ``SSLSocket.getpeercert()`` (a verified certificate)."""
    try:
        subject = next((value for rdn in cert.get("subject", ()) for key, value in rdn
                        if key == "commonName"), None)
        issuer = ",".join(f"{key}={value}" for rdn in reversed(cert.get("issuer", ()))
                          for key, value in rdn)
        sans = [value for _, value in cert.get("subjectAltName", ())]
        not_before = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notBefore"]), UTC)
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    except (KeyError, ValueError, TypeError):
        return None
    return CertInfo(subject, sans, issuer, not_before, not_after)


def _default_port(service_url: str | None) -> int:
    _, port, scheme = service_host_port(service_url)
    if scheme == "https" and port is not None:
        return port
    return DEFAULT_PORT


class _NoHandshake(Exception):
    """A handshake could not be made; the message says why."""


@register
class TLSProbe(Probe[TLSCheckConfig]):
    """Handshake with ``host:port`` and judge the certificate it presents."""

    type: ClassVar[str] = "tls"
    config_model: ClassVar[builtins.type[CheckConfig]] = TLSCheckConfig

    def __init__(self, spec: CheckSpec[TLSCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        self._host = resolve_host("tls", spec.name, config.host, spec.service_url)
        self._port = config.port if config.port is not None else _default_port(spec.service_url)
        self._server_name = (config.server_name or self._host).strip()
        self._timeout = spec.timeout
        self._verify = config.verify
        self._verifying: ssl.SSLContext | None = None
        if config.verify:
            try:
                self._verifying = ssl.create_default_context(
                    cafile=str(config.ca_file) if config.ca_file is not None else None)
            except (OSError, ssl.SSLError) as exc:
                raise ProbeError(f"check {spec.name!r}: cannot load ca_file "
                                 f"{str(config.ca_file)!r}: {exc}") from None
        self._unverified = ssl.create_default_context()
        self._unverified.check_hostname = False
        self._unverified.verify_mode = ssl.CERT_NONE

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        reason: str | None = None
        info: CertInfo | None = None
        try:
            async with asyncio.timeout(self._timeout):
                if self._verifying is not None:
                    try:
                        info = await self._fetch(self._verifying)
                    except ssl.SSLCertVerificationError as exc:
                        reason = _reason(exc)
                if reason is None and info is None:
                    info = await self._fetch(self._unverified)
                elif reason is not None:
                    try:  # the reason is known: the dates are a bonus
                        info = await self._fetch(self._unverified)
                    except _NoHandshake:
                        info = None
        except TimeoutError:
            return self._error(started_at, start, f"timed out after {self._timeout:g} s "
                               f"during the TLS handshake with {self._where}")
        except _NoHandshake as exc:
            return self._error(started_at, start, str(exc))
        latency_ms = (perf_counter() - start) * 1000
        details: dict[str, Any] = {"host": self._host, "port": self._port,
                                   "server_name": self._server_name}
        values: dict[str, float] = {}
        now = datetime.now(UTC)
        if info is not None:
            details.update(info.details())
            values["days_left"] = (info.not_after - now).total_seconds() / SECONDS_PER_DAY
            if reason is None and not self._verify:  # no chain check: the dates still count
                if now > info.not_after:
                    reason = _REASONS[_EXPIRED]
                elif now < info.not_before:
                    reason = _REASONS[_NOT_YET_VALID]
        values["valid"] = 0.0 if reason is not None else 1.0
        if reason is None:
            return self.new_result(CheckStatus.OK, started_at, latency_ms=latency_ms,
                                   values=values, details=details)
        details["reason"] = reason
        return self.new_result(CheckStatus.FAILING, started_at, latency_ms=latency_ms,
                               message=self._explain(reason, info, now),
                               values=values, details=details)

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    async def _fetch(self, context: ssl.SSLContext) -> CertInfo | None:
        """Handshake once and read the peer certificate; _NoHandshake when it fails."""
        verified = context.verify_mode != ssl.CERT_NONE
        try:
            _, writer = await asyncio.open_connection(
                self._host, self._port, ssl=context, server_hostname=self._server_name,
                ssl_handshake_timeout=self._timeout)
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as exc:
            raise _NoHandshake(f"TLS handshake with {self._where} failed: "
                               f"{exc.reason or exc}") from None
        except OSError as exc:
            raise _NoHandshake(describe_connect_error(exc, self._host, self._port)) from None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            if not isinstance(ssl_object, ssl.SSLObject):
                raise _NoHandshake(f"no TLS session with {self._where}")
            der = ssl_object.getpeercert(binary_form=True)
            if der is None:
                raise _NoHandshake(f"{self._where} presented no certificate")
            info = parse_der(der)
            if info is None and verified:
                info = parse_peercert(ssl_object.getpeercert() or {})
            return info
        finally:
            await close_quietly(writer)

    def _explain(self, reason: str, info: CertInfo | None, now: datetime) -> str:
        if info is None:
            return reason
        if reason == _REASONS[_EXPIRED]:
            days = (now - info.not_after).total_seconds() / SECONDS_PER_DAY
            return f"{reason} {days:.1f} days ago ({info.not_after.isoformat()})"
        if reason == _REASONS[_NOT_YET_VALID]:
            return f"{reason}: valid from {info.not_before.isoformat()}"
        if reason.startswith("hostname mismatch"):
            names = ", ".join(info.sans) or info.subject or "no name"
            return f"{reason}: certificate is for {names}, not {self._server_name}"
        if info.issuer:
            return f"{reason} (issuer {info.issuer})"
        return reason

    def _error(self, started_at: float, start: float, message: str) -> CheckResult:
        return CheckResult.error(self.spec.name, started_at, message,
                                 latency_ms=(perf_counter() - start) * 1000)


def _reason(exc: ssl.SSLCertVerificationError) -> str:
    code = getattr(exc, "verify_code", None)
    if isinstance(code, int) and code in _REASONS:
        return _REASONS[code]
    message = getattr(exc, "verify_message", None)
    return f"certificate verify failed: {message or exc.reason or exc}"
