"""Which URLs an HTTP channel may post to: https, or plain http to this machine only.

Alerts carry service names, errors and links that should not cross a network
in clear, and webhook URLs are secrets; plain ``http://`` is allowed only for
a loopback host, where tests and demos run local stand-ins. Error messages
never repeat the URL (it may be a secret).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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
