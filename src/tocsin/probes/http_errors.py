"""Why an HTTP request could not be made, in words: aiohttp, ssl and OS errors translated.

This is the one place where the exceptions of the HTTP client are known by
name; probes catch :data:`TARGET_FAULTS` around a request and report
:func:`describe_error`. Messages never carry header values or the URL (either
may hold a secret); they quote at most the first bytes of a status line.
"""

from __future__ import annotations

import errno
import ssl

import aiohttp
from aiohttp import http_exceptions

_CONNECT_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connect timed out",
    errno.EADDRNOTAVAIL: "address not available",
}


def _parser_error(exc: BaseException) -> str:
    """The reason in an HTTP parser error, without echoing header lines."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, http_exceptions.BadStatusLine):
            return f"bad status line {_status_line(cause)}"
        if isinstance(cause, http_exceptions.LineTooLong):
            return "header line too long"
        if isinstance(cause, http_exceptions.InvalidHeader):
            return "invalid header"
        cause = cause.__cause__
    message = exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
    if not message.strip():
        return type(exc).__name__
    first_line = message.strip().splitlines()[0][:80]
    return first_line[0].lower() + first_line[1:]


def _status_line(exc: http_exceptions.BadStatusLine) -> str:
    # The C parser leaves ``line`` empty and quotes the line inside its message.
    if exc.line:
        return repr(exc.line[:40])
    quoted = [part.strip() for part in exc.message.splitlines() if part.strip()[:2] in ("b'", 'b"')]
    return quoted[0][:45] if quoted else "(unreadable)"


def describe_error(exc: BaseException, timeout: float, max_redirects: int) -> str:
    """A short, secret-free message for why a request could not be made."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {round(timeout, 3)} s"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"too many redirects ({max_redirects})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = exc.certificate_error
        detail = getattr(reason, "verify_message", None) or getattr(reason, "reason", None)
        return f"TLS certificate verify failed: {detail or reason}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {exc.host}"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        why = getattr(exc, "reason", None) or getattr(exc, "strerror", None)
        return f"TLS handshake failed: {why or type(exc).__name__}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        known = _CONNECT_ERRNOS.get(exc.os_error.errno or 0)
        return known or f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed before a response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        if isinstance(exc.__cause__, http_exceptions.ContentEncodingError):
            return "invalid compressed body"
        return "connection closed mid-response"
    if isinstance(exc, aiohttp.RedirectClientError):
        return "redirect to an invalid or non-HTTP URL"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid HTTP response: {_parser_error(exc)}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError):
        known = _CONNECT_ERRNOS.get(exc.errno or 0)
        return known or f"network error: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "connection lost"
    if isinstance(exc, ValueError):
        return "the HTTP client refused to follow the answer (e.g. a redirect with credentials)"
    return f"request failed: {type(exc).__name__}"


# aiohttp raises a bare ValueError for a few answers it refuses to follow (a
# redirect to a URL with credentials while an Authorization header is set).
TARGET_FAULTS = (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError, ValueError)
