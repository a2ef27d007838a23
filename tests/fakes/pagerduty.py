"""A fake PagerDuty Events API v2: ``POST /v2/enqueue``, validated as the published contract.

Answers 202 ``{"status": "success", "message": "Event processed", "dedup_key": …}``
for a valid event and 400 ``{"status": "invalid event", "message": "Event
object is invalid", "errors": [...]}`` for an invalid one: routing_key missing
or not 32 characters (or, when ``known_keys`` is given, not one of them: our
reading of what the real API does with a key of no integration), an unknown
``event_action``, a ``dedup_key`` over 255 characters (or missing on
acknowledge/resolve), a trigger without ``payload`` or with a missing or
invalid ``summary`` (≤ 1024), ``source`` or ``severity``, or an event over
512 KiB. Scripting (``fail_next``, ``hang_next``) comes from
:class:`~tests.fakes.webhook.ScriptedServer`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.webhook import ScriptedServer

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def event_errors(event: Any, known_keys: frozenset[str] | None = None) -> list[str]:
    """Why PagerDuty would refuse ``event``; empty when it would take it."""
    if not isinstance(event, dict):
        return ["Event must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif known_keys is not None and key not in known_keys:
        errors.append("Invalid routing key")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or invalid")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is missing or invalid")
            details = payload.get("custom_details")
            if details is not None and not isinstance(details, dict | str):
                errors.append("'payload.custom_details' must be an object")
        for link in event.get("links", []):
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                errors.append("each of 'links' needs an 'href'")
    return errors


class FakePagerDuty(ScriptedServer):
    """The Events API v2 enqueue endpoint; ``events`` holds every event it took."""

    def __init__(self, known_keys: frozenset[str] | None = None) -> None:
        super().__init__()
        self.known_keys = known_keys
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> FakePagerDuty:
        await super().__aenter__()
        return self

    async def answer(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if request.path != "/v2/enqueue":
            return web.json_response({"status": "not found"}, status=404)
        if request.method != "POST":
            return web.json_response({"status": "method not allowed"}, status=405)
        if len(body) > 512 * 1024:
            return web.json_response({"status": "invalid event", "message": "Event object is "
                                      "invalid", "errors": ["Event exceeds 512 KiB"]},
                                     status=400)
        try:
            event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return web.json_response({"status": "invalid event",
                                      "message": "Could not parse JSON", "errors": []},
                                     status=400)
        errors = event_errors(event, self.known_keys)
        if errors:
            return web.json_response({"status": "invalid event",
                                      "message": "Event object is invalid", "errors": errors},
                                     status=400)
        self.events.append(event)
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": event.get("dedup_key") or "generated"},
                                 status=202)
