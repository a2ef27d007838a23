"""A local Slack incoming webhook that checks messages against Slack's documented limits.

Answers ``200 ok`` to a valid message, else Slack's plain-text error with its
status: 400 ``invalid_payload`` (not JSON), ``no_text`` (neither text, blocks
nor attachments), ``invalid_blocks`` (a block or text object over its limit or
malformed), ``too_many_attachments`` (over 100). Lengths are counted in UTF-16
code units. Limits (Block Kit reference): 50 blocks a message; header text
plain_text ≤ 150; section text ≤ 3,000, ≤ 10 fields of ≤ 2,000; actions
≤ 25 elements; context ≤ 10 elements; button text plain_text ≤ 75, url ≤ 3,000,
action_id ≤ 255 and unique in the message; top-level text ≤ 40,000.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from tests.fakes import FakeAPI, Refused, utf16_length

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
HEADER_TEXT, SECTION_TEXT, FIELD_TEXT, FIELDS = 150, 3000, 2000, 10
ACTION_ELEMENTS, CONTEXT_ELEMENTS = 25, 10
BUTTON_TEXT, BUTTON_URL, ACTION_ID = 75, 3000, 255
_COLOR = re.compile(r"#?[0-9A-Fa-f]{6}|good|warning|danger")


class SlackFake(FakeAPI):
    """One incoming webhook; :attr:`messages` holds the JSON of the messages it accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []  # why each invalid_blocks was answered, for test failures

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [request.json() for request in self.accepted]

    def validate(self, request: web.Request, body: bytes) -> web.Response:
        try:
            message = json.loads(body)
        except ValueError:
            raise Refused(400, "invalid_payload") from None
        if not isinstance(message, dict):
            raise Refused(400, "invalid_payload")
        text = message.get("text")
        if text is not None and (not isinstance(text, str) or utf16_length(text) > MAX_TEXT):
            raise Refused(400, "invalid_payload")
        if not text and not message.get("blocks") and not message.get("attachments"):
            raise Refused(400, "no_text")
        ids: set[str] = set()
        blocks = 0
        blocks += self._blocks(message.get("blocks", []), ids)
        attachments = message.get("attachments", [])
        if not isinstance(attachments, list):
            raise self._refuse("attachments must be a list")
        if len(attachments) > MAX_ATTACHMENTS:
            raise Refused(400, "too_many_attachments")
        for attachment in attachments:
            if not isinstance(attachment, dict):
                raise self._refuse("an attachment must be an object")
            color = attachment.get("color")
            if color is not None and not (isinstance(color, str) and _COLOR.fullmatch(color)):
                raise self._refuse(f"bad colour {color!r}")
            blocks += self._blocks(attachment.get("blocks", []), ids)
        if blocks > MAX_BLOCKS:
            raise self._refuse(f"{blocks} blocks > {MAX_BLOCKS}")
        return web.Response(status=200, text="ok")

    def _refuse(self, why: str) -> Refused:
        self.reasons.append(why)
        return Refused(400, "invalid_blocks")

    def _blocks(self, blocks: Any, ids: set[str]) -> int:
        if not isinstance(blocks, list):
            raise self._refuse("blocks must be a list")
        for block in blocks:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "header":
                self._text(block.get("text"), HEADER_TEXT, "header", plain=True)
            elif kind == "section":
                self._section(block, ids)
            elif kind == "actions":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= ACTION_ELEMENTS:
                    raise self._refuse("actions needs 1–25 elements")
                for element in elements:
                    self._button(element, ids)
            elif kind == "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= CONTEXT_ELEMENTS:
                    raise self._refuse("context needs 1–10 elements")
                for element in elements:
                    self._text(element, SECTION_TEXT, "context")
            elif kind != "divider":
                raise self._refuse(f"unknown block type {kind!r}")
        return len(blocks)

    def _section(self, block: dict[str, Any], ids: set[str]) -> None:
        if "text" not in block and "fields" not in block:
            raise self._refuse("a section needs text or fields")
        if "text" in block:
            self._text(block["text"], SECTION_TEXT, "section")
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 0 < len(fields) <= FIELDS:
                raise self._refuse("a section has 1–10 fields")
            for field in fields:
                self._text(field, FIELD_TEXT, "field")
        if "accessory" in block:
            self._button(block["accessory"], ids)

    def _button(self, element: Any, ids: set[str]) -> None:
        if not isinstance(element, dict) or element.get("type") != "button":
            raise self._refuse("only buttons are expected")
        self._text(element.get("text"), BUTTON_TEXT, "button", plain=True)
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or not 0 < len(url) <= BUTTON_URL):
            raise self._refuse("button url too long")
        action_id = element.get("action_id")
        if action_id is not None:
            if not isinstance(action_id, str) or len(action_id) > ACTION_ID or action_id in ids:
                raise self._refuse(f"bad or repeated action_id {action_id!r}")
            ids.add(action_id)

    def _text(self, value: Any, limit: int, where: str, *, plain: bool = False) -> None:
        if not isinstance(value, dict) or value.get("type") not in ("plain_text", "mrkdwn"):
            raise self._refuse(f"{where}: not a text object")
        if plain and value["type"] != "plain_text":
            raise self._refuse(f"{where}: must be plain_text")
        text = value.get("text")
        if not isinstance(text, str) or not text or utf16_length(text) > limit:
            length = utf16_length(text) if isinstance(text, str) else None
            raise self._refuse(f"{where}: text empty or over {limit} ({length})")
