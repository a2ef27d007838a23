"""API tokens and the admin password: how they are made, written, hashed and checked.

An API token reads ``tcn_<id>_<secret>``: ``id`` (16 hex digits) is public and
names the row in the store; ``secret`` is 32 random bytes, URL-safe base64.
Only SHA-256 of the secret is stored. A fast hash is enough here: the secret
has 256 bits of entropy, so there is no dictionary to try and no brute force
that a slow hash would slow down meaningfully — and every API request checks
one. The admin password is chosen by a person, so it gets scrypt (memory-hard,
in the standard library) with a random salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_PREFIX = "tcn"
TOKEN_SECRET_BYTES = 32

PASSWORD_HASH_ENV = "TOCSIN_ADMIN_PASSWORD_HASH"
PASSWORD_SCHEME = "scrypt"
# scrypt cost: 2**15 × 8 × 128 B = 32 MiB and ~0.1 s per check on a small machine.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024


class CredentialError(ValueError):
    """A token or a password hash that is not well formed (the message holds no secret)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as created: ``text`` is shown once; ``hash`` is what the store keeps."""

    id: str
    text: str
    hash: str


def issue_token() -> IssuedToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(TOKEN_SECRET_BYTES)
    return IssuedToken(id=token_id, text=f"{TOKEN_PREFIX}_{token_id}_{secret}",
                       hash=hash_token_secret(secret))


def split_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed ``tcn_`` token, else None."""
    prefix, _, rest = text.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or len(token_id) != 16 or not secret:
        return None
    try:
        int(token_id, 16)
    except ValueError:
        return None
    return token_id, secret


def hash_token_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token_secret(secret), stored_hash)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$<n>$<r>$<p>$<salt>$<hash>``, for ``TOCSIN_ADMIN_PASSWORD_HASH``."""
    if not password:
        raise CredentialError("the password is empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM, dklen=32)
    return f"{PASSWORD_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password_hash(encoded: str) -> None:
    """Refuse a hash that :func:`verify_password` could not use, naming what is wrong."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != PASSWORD_SCHEME:
        raise CredentialError(f"{PASSWORD_HASH_ENV} is not a hash made by "
                              "`tocsin password-hash` (scrypt$n$r$p$salt$hash)")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise CredentialError(f"{PASSWORD_HASH_ENV} is damaged: its numbers or "
                              "base64 do not parse") from None
    if n < 2**14 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise CredentialError(f"{PASSWORD_HASH_ENV} has unsafe or invalid scrypt costs")


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` has the hash ``encoded`` (constant-time comparison)."""
    check_password_hash(encoded)
    _, n, r, p, salt, digest = encoded.split("$")
    expected = _unb64(digest)
    given = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                           p=int(p), maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    return hmac.compare_digest(given, expected)


def load_password_hash(environ: dict[str, str] | None = None) -> str | None:
    """The admin password hash from ``TOCSIN_ADMIN_PASSWORD_HASH`` or its ``_FILE``; None if unset.

    A malformed hash is a :class:`CredentialError`: a typo must not leave the
    dashboard open or locked without saying why.
    """
    env = os.environ if environ is None else environ
    value = env.get(PASSWORD_HASH_ENV) or None
    path = env.get(f"{PASSWORD_HASH_ENV}_FILE") or None
    if value is not None and path is not None:
        raise CredentialError(f"set {PASSWORD_HASH_ENV} or {PASSWORD_HASH_ENV}_FILE, not both")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as error:
            raise CredentialError(f"{PASSWORD_HASH_ENV}_FILE: cannot read {path}: "
                                  f"{error.strerror}") from None
    if value is not None:
        check_password_hash(value)
    return value
