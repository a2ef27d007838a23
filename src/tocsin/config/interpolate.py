"""``${VAR}`` substitution in config strings, with secrets taken from the environment.

Forms, in any string value (keys are never interpolated):

- ``${VAR}``: the variable's value; an error when it is unset.
- ``${VAR:-default}``: the default when the variable is unset or empty.
- ``$${``: a literal ``${``.

When ``VAR`` is unset but ``VAR_FILE`` names a file, the file's contents (one
trailing newline stripped) are the value: the convention of Docker secrets and
healthchecks' ``envsecret``. Errors name the variable or the file, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tocsin.config.issues import ConfigIssue, KeyPath, format_key_path, line_of
from tocsin.config.secrets import looks_secret

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REFERENCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


# Channel keys whose values are addresses or settings, not credentials.
_PLAIN_CHANNEL_KEYS = frozenset({"type", "host", "port", "from", "from_name", "to", "cc",
                                 "security", "subject_prefix", "title_prefix", "timeout",
                                 "fallback", "format", "verify_tls", "base_url"})


@dataclass
class Interpolation:
    """The result of interpolating a document."""

    data: Any
    issues: list[ConfigIssue] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # Key paths whose value came (in part) from the environment.
    substituted: set[KeyPath] = field(default_factory=set)
    failed: set[KeyPath] = field(default_factory=set)


# Keys whose value is a credential wherever they appear (a heartbeat's ping token,
# the token that pushes metrics).
_SECRET_KEYS = frozenset({"token", "push_token"})


def interpolate(
    data: Any, env: Mapping[str, str], file: str, lines: Mapping[KeyPath, int]
) -> Interpolation:
    """Substitute variables in every string of ``data`` (a new structure is returned)."""
    result = Interpolation(data=None)
    walker = _Walker(env, file, lines, result)
    result.data = walker.walk(data, ())
    return result


class _Walker:
    def __init__(self, env: Mapping[str, str], file: str, lines: Mapping[KeyPath, int],
                 result: Interpolation) -> None:
        self.env = env
        self.file = file
        self.lines = lines
        self.result = result

    def walk(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {key: self.walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.walk(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self.substitute(value, path)
        return value

    def substitute(self, text: str, path: KeyPath) -> str:
        # Header values, and whatever a channel takes from the environment (webhook
        # and Apprise URLs embed tokens), are secrets whatever the variable is called.
        in_headers = "headers" in path or (len(path) > 2 and path[0] == "channels"
                                           and path[2] not in _PLAIN_CHANNEL_KEYS) or (
            len(path) == 3 and path[0] == "platforms" and path[2] == "api_key") or (
            bool(path) and path[-1] in _SECRET_KEYS)
        values: list[str] = []
        pieces: list[str] = []
        position = 0
        for match in _TOKEN.finditer(text):
            pieces.append(text[position:match.start()])
            position = match.end()
            if match.group(0) == "$${":
                pieces.append("${")
                continue
            reference = _REFERENCE.fullmatch(match.group(1) or "")
            if match.group(1) is None or reference is None:
                self.issue(path, "invalid variable reference: write ${NAME} or ${NAME:-default} "
                                 "(and $${ for a literal ${)")
                continue
            name, default = reference.group(1), reference.group(2)
            value = self.lookup(name, default, path)
            if value is not None:
                pieces.append(value)
                values.append(value)
                if in_headers:
                    self.result.secrets.add(value)
        pieces.append(text[position:])
        if values:
            self.result.substituted.add(path)
        substituted = "".join(pieces)
        if in_headers and values:
            self.result.secrets.add(substituted)  # "Bearer <token>" as a whole, too
        if values and len(path) == 3 and path[0] == "databases":
            self._database_secret(path[2], substituted)
        return substituted

    def _database_secret(self, key: object, value: str) -> None:
        """A database's password is a secret, however its variable is called."""
        if key == "password":
            self.result.secrets.add(value)
        elif key == "url":
            try:
                password = urlsplit(value).password
            except ValueError:
                return  # the schema reports a malformed URL, without repeating it
            if password:
                self.result.secrets.update({password, unquote(password)})

    def lookup(self, name: str, default: str | None, path: KeyPath) -> str | None:
        value = self.env.get(name)
        if value is not None and not (value == "" and default is not None):
            if looks_secret(name):
                self.result.secrets.add(value)
            return value
        file_name = self.env.get(f"{name}_FILE")
        if file_name:
            try:
                content = Path(file_name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                self.issue(path, f"cannot read {name}_FILE {file_name!r}: {reason or error}")
                return None
            content = content.removesuffix("\n").removesuffix("\r")
            self.result.secrets.add(content)
            return content
        if default is not None:
            return default
        self.issue(path, f"environment variable {name} is not set (set it, set {name}_FILE "
                         f"to a file holding it, or write ${{{name}:-default}})")
        return None

    def issue(self, path: KeyPath, message: str) -> None:
        self.result.failed.add(path)
        self.result.issues.append(
            ConfigIssue(self.file, format_key_path(path), line_of(path, self.lines), message)
        )
