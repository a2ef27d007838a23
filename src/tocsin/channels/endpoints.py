"""Which URLs an HTTP channel may post to: https, or plain http to this machine only.

Alerts carry service names, errors and links that should not cross a network
in clear, and webhook URLs are secrets; plain ``http://`` is allowed only for
a loopback host, where tests and demos run local stand-ins. Error messages
never repeat the URL (it may be a secret). Configured headers are checked
here too, for every channel and action that sends them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint_url(url: str, key: str) -> str:
    """``url`` if it is https (or http to a loopback host); else ValueError naming ``key``."""
    try:
        parts = urlsplit(url)
        scheme, host, _ = parts.scheme, parts.hostname, parts.port  # a bad port raises
    except ValueError:
        scheme, host = "", None
    if not host or scheme not in ("https", "http") or any(c.isspace() for c in url):
        raise ValueError(f"{key} must be an https:// URL")
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError(f"{key} must use https:// (http:// is allowed only for a loopback "
                         f"host such as 127.0.0.1)")
    return url


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers the HTTP client sets itself: a configured one would corrupt the request.
TRANSPORT_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"})


def check_headers(headers: Mapping[str, SecretStr], reserved: frozenset[str]) -> None:
    """Refuse an invalid header name, a reserved one, or a value with a line break.

    Values are secrets: the messages name the header, never its value.
    """
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in reserved:
            raise ValueError(f"header {name!r} is set by Tocsin and cannot be configured")
        if _HEADER_VALUE_FORBIDDEN.search(value.get_secret_value()):
            raise ValueError(f"the value of header {name!r} holds a line break or "
                             "control character")
