"""Config problems: each one with its file, key path and line, all reported at once.

Exceptions::

    ConfigError           a config was refused; ``issues`` lists every reason
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]
"""A location in the config: mapping keys and list indexes, outermost first."""


def format_key_path(path: Sequence[object]) -> str:
    """A key path as the user reads it: ``services.backend.checks[0].timeout``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def line_of(path: Sequence[str | int], lines: Mapping[KeyPath, int]) -> int | None:
    """The line of the deepest key of ``path`` that exists in the document."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong with a config, where it is, and what to do about it."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config was refused. ``issues`` holds every problem found, in file order."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda issue: (issue.file, issue.line or 0, issue.path))
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.issues)
        header = f"{count} problem{'s' if count != 1 else ''} in the config"
        return "\n".join([header, *(f"  {issue}" for issue in self.issues)])


def did_you_mean(word: str, choices: Sequence[str], *, none: str = "",
                 otherwise: str = "expected one of") -> str:
    """A hint for a name that is not among ``choices``, with its leading space.

    ``" (did you mean 'slack'?)"`` when a choice is close; ``" (OTHERWISE: a, b)"``
    when none is; ``" (NONE)"`` when there are no choices (empty ``none``: no hint).
    """
    if not choices:
        return f" ({none})" if none else ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({otherwise}: {', '.join(choices)})"
