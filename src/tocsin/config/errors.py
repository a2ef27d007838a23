"""Pydantic validation errors → :class:`ConfigIssue`, in the words of the config file.

Pydantic reports locations in terms of its schema: a discriminated union adds
its tag (``checks, 0, 'http', 'timeout'``), a dict key error adds ``'[key]'``.
Walking the model classes along the location removes those, and finds the
model an unknown key was written in, so the message can suggest the right key.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic_core import ErrorDetails

from tocsin.config.issues import ConfigIssue, KeyPath, did_you_mean, format_key_path, line_of
from tocsin.config.model import known_check_types
from tocsin.config.secrets import Redactor

_TAG_ERRORS = {"union_tag_invalid", "union_tag_not_found"}


def validation_issues(
    error: ValidationError, root: type[BaseModel], data: Any, file: str,
    lines: Mapping[KeyPath, int], redactor: Redactor, skip: Collection[KeyPath] = (),
) -> list[ConfigIssue]:
    """One issue per error, except errors at or under a path in ``skip``."""
    issues = []
    for detail in error.errors(include_url=False, include_input=False):
        path, owner = locate(detail["loc"], root)
        if any(path[:len(skipped)] == skipped for skipped in skip):
            continue  # already reported: the value could not be interpolated
        message = redactor.redact(_message(detail, path, owner, data))
        issues.append(ConfigIssue(file, format_key_path(path), line_of(path, lines), message))
    return issues


def locate(
    loc: Sequence[str | int], root: type[BaseModel]
) -> tuple[KeyPath, type[BaseModel] | None]:
    """The config key path of ``loc``, and the model that holds its last key."""
    path: list[str | int] = []
    owner: type[BaseModel] | None = None
    current: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if part == "[key]":
            continue
        current, tags = _unwrap(current)
        if tags is not None:
            current = tags.get(str(part))  # this part is a union tag, not a key
            continue
        path.append(part)
        owner = current if isinstance(current, type) and issubclass(current, BaseModel) else None
        current = _child(current, part)
    return tuple(path), owner


def _unwrap(annotation: Any) -> tuple[Any, dict[str, Any] | None]:
    """Strip Annotated and Optional; for a tagged union, return its members by tag."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            base, *metadata = get_args(annotation)
            if any(isinstance(item, Discriminator) for item in metadata):
                return base, _members_by_tag(base)
            annotation = base
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation, None
            annotation = members[0]
        else:
            return annotation, None


def _members_by_tag(union: Any) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for member in get_args(union):
        base, *metadata = get_args(member) if get_origin(member) is Annotated else (member,)
        for item in metadata:
            if isinstance(item, Tag):
                members[item.tag] = base
    return members


def _child(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = next((field for name, field in annotation.model_fields.items()
                      if (field.alias or name) == part), None)
        if field is None:
            return None
        if field.metadata:  # Annotated metadata is moved off the annotation
            return Annotated[(field.annotation, *field.metadata)]
        return field.annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    if origin in (list, tuple, Sequence) and args:
        return args[0]
    return None


def _message(detail: ErrorDetails, path: KeyPath, owner: type[BaseModel] | None, data: Any) -> str:
    kind = detail["type"]
    key = path[-1] if path else ""
    if kind == "extra_forbidden":
        return f"unknown key {key!r}{_suggestion(str(key), _fields(owner))}"
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind in _TAG_ERRORS:
        if path and path[0] == "channels":
            return _channel_type_message(_value_at(data, path))
        if path and path[0] == "platforms":
            return _platform_type_message(_value_at(data, path))
        return _check_type_message(_value_at(data, path))
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    return str(detail["msg"])


def _check_type_message(check: Any) -> str:
    known = known_check_types()
    if not isinstance(check, Mapping):
        return "a check must be a mapping with a 'type' key, e.g. {type: http, path: /health}"
    kind = check.get("type")
    if kind is None:
        return f"missing key 'type' (one of: {', '.join(known)})"
    if not isinstance(kind, str):
        return f"a check type must be a name (one of: {', '.join(known)})"
    return f"unknown check type {kind!r}{_suggestion(kind, known)}"


def _channel_type_message(channel: Any) -> str:
    from tocsin.channels.registry import known_channel_types

    known = known_channel_types()
    if not isinstance(channel, Mapping):
        return "a channel must be a mapping with a 'type' key, e.g. {type: smtp, host: …}"
    kind = channel.get("type")
    if not isinstance(kind, str):
        return f"missing key 'type' (one of: {', '.join(known)})"
    return f"unknown channel type {kind!r}{_suggestion(kind, known)}"


def _platform_type_message(platform: Any) -> str:
    from tocsin.platforms.registry import platform_types

    known = sorted(platform_types())
    if not isinstance(platform, Mapping):
        return "a platform must be a mapping with a 'type' key, e.g. {type: render, api_key: …}"
    kind = platform.get("type")
    if not isinstance(kind, str):
        return f"missing key 'type' (one of: {', '.join(known)})"
    return f"unknown platform type {kind!r}{_suggestion(kind, known)}"


def _suggestion(word: str, choices: Sequence[str]) -> str:
    return did_you_mean(word, choices)


def _fields(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
