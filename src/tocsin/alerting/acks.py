"""Signed, expiring acknowledgement links: ``{base}/ack/{fingerprint}?exp=…&sig=…``.

The signature is HMAC-SHA256 over the fingerprint and the expiry, keyed with a
secret from the environment; a link cannot be forged, altered or reused after
it expires. Following the link shows a confirmation page; only its POST
acknowledges (mail scanners fetch links, they do not submit forms).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

DEFAULT_TTL = 24 * 3600.0  # a link in a notification works for a day


class AckSigner:
    """Makes and verifies ack links with one secret."""

    def __init__(self, secret: str, base_url: str, ttl: float = DEFAULT_TTL) -> None:
        if len(secret) < 16:
            raise ValueError("the ack secret must be at least 16 characters")
        self._key = secret.encode()
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    def _signature(self, fingerprint: str, expires: int) -> str:
        message = f"{fingerprint}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def link(self, fingerprint: str, now: float) -> str:
        expires = int(now + self.ttl)
        query = urlencode({"exp": expires, "sig": self._signature(fingerprint, expires)})
        return f"{self.base_url}/ack/{quote(fingerprint, safe='')}?{query}"

    def verify(self, fingerprint: str, expires: int, signature: str, now: float) -> bool:
        """True when the signature is right and the link has not expired."""
        if now > expires:
            return False
        return hmac.compare_digest(self._signature(fingerprint, expires), signature)
