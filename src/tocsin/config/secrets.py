"""Keeping secrets out of logs, errors and pages.

Every value the config took from a secret-looking environment variable, a
``*_FILE`` secret or a check's ``headers`` is registered with a
:class:`Redactor`; :class:`RedactingFilter` applies the current one to every log
record. A config reload swaps the redactor, not the filter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# WEBHOOK: a Slack or Teams webhook URL is its own credential.
_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL|WEBHOOK", re.IGNORECASE
)

MIN_SECRET_LENGTH = 4
"""Shorter values are not redacted: hiding every ``1`` or ``on`` would garble logs."""

MASK = "***"


def looks_secret(variable: str) -> bool:
    """True when an environment variable's name suggests that its value is a secret."""
    return _SECRET_NAME.search(variable) is not None


class Redactor:
    """Replaces each known secret in a text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}
        self.secrets: frozenset[str] = frozenset(kept)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(kept, key=lambda secret: (-len(secret), secret))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def __contains__(self, value: object) -> bool:
        return value in self.secrets

    def __len__(self) -> int:
        return len(self.secrets)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self.secrets)} secrets>)"  # never the secrets themselves


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's message and exception text.

    Attach it to handlers (a filter on a handler sees records from every logger).
    ``filter.redactor = new_redactor`` takes effect for the next record.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor  # one read: a concurrent swap cannot split a record
        if not redactor.secrets:
            return True
        record.msg = redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.redact(record.stack_info)
        return True
