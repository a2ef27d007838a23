"""A local SendGrid v3 ``POST /v3/mail/send`` that checks requests as SendGrid documents them.

Refusals carry SendGrid's error body, ``{"errors": [{"message", "field", "help"}]}``:
401 for a missing or wrong ``Authorization: Bearer`` key, 413 for a body over
20 MB, 400 for a body that breaks the mail/send contract (personalizations
with ``to``, ``from.email``, a subject, content with text/plain first,
≤ 10 categories of ≤ 255 characters, no reserved headers, ``custom_args``
≤ 10,000 bytes, string header and argument values). Accepted mail gets 202, an
empty body and an ``X-Message-Id``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from tests.fakes import FakeAPI, Refused

MAX_BODY = 20 * 1024 * 1024
MAX_CATEGORIES, MAX_CATEGORY_LENGTH = 10, 255
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_RECIPIENTS = 1000
RESERVED_HEADERS = frozenset({
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc",
})
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")


def _error(status: int, message: str, field: str | None = None,
           help_url: str | None = None) -> Refused:
    body = json.dumps({"errors": [{"message": message, "field": field, "help": help_url}]})
    return Refused(status, body, "application/json")


def _bad(message: str, field: str | None = None) -> Refused:
    return _error(400, message, field)


class SendGridFake(FakeAPI):
    """SendGrid's mail/send; ``api_key`` is the one key it accepts."""

    def __init__(self, api_key: str = "SG.test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self._ids = 0

    def route(self, app: web.Application) -> None:
        app.router.add_post("/v3/mail/send", self._handle)

    @property
    def mails(self) -> list[dict[str, Any]]:
        """The JSON bodies of the mails accepted."""
        return [request.json() for request in self.accepted]

    def validate(self, request: web.Request, body: bytes) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise _error(401, "The provided authorization grant is invalid, expired, or revoked")
        if len(body) > MAX_BODY:
            raise _error(413, "Payload Too Large", None,
                         "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html")
        if request.content_type != "application/json":
            raise _bad("Content-Type should be application/json.")
        try:
            mail = json.loads(body)
        except ValueError:
            raise _bad("Bad Request") from None
        if not isinstance(mail, dict):
            raise _bad("Bad Request")
        self._check(mail)
        self._ids += 1
        return web.Response(status=202, headers={"X-Message-Id": f"fake-{self._ids}"})

    def _check(self, mail: dict[str, Any]) -> None:
        personalizations = mail.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise _bad("The personalizations field is required and must have at least one "
                       "personalization.", "personalizations")
        recipients = 0
        for index, personalization in enumerate(personalizations):
            where = f"personalizations.{index}"
            if not isinstance(personalization, dict):
                raise _bad("Bad Request", where)
            seen: set[str] = set()
            for kind in ("to", "cc", "bcc"):
                people = personalization.get(kind)
                if people is None and kind != "to":
                    continue
                if not isinstance(people, list) or not people:
                    raise _bad(f"The {kind} array is required for all personalization objects, "
                               "and must have at least one email object with a valid email "
                               "address.", f"{where}.{kind}")
                for position, person in enumerate(people):
                    address = self._email(person, f"{where}.{kind}.{position}.email")
                    if address.lower() in seen:
                        raise _bad("Each email address in the personalization block should be "
                                   "unique between to, cc, and bcc.", f"{where}.{kind}")
                    seen.add(address.lower())
                recipients += len(people)
            subject = personalization.get("subject", mail.get("subject"))
            if not isinstance(subject, str) or not subject:
                raise _bad("The subject is required. You can get around this requirement if you "
                           "use a template with a subject defined or if every personalization "
                           "has a subject defined.", "subject")
        if recipients > MAX_RECIPIENTS:
            raise _bad("The total number of recipients must be less than 1000.",
                       "personalizations")
        sender = mail.get("from")
        self._email(sender, "from.email")
        if "name" in sender and not isinstance(sender["name"], str):
            raise _bad("The from name must be a string.", "from.name")
        self._check_content(mail.get("content"))
        self._check_categories(mail.get("categories"))
        self._check_headers(mail.get("headers"))
        self._check_custom_args(mail.get("custom_args"))

    @staticmethod
    def _email(person: Any, field: str) -> str:
        address = person.get("email") if isinstance(person, dict) else None
        if not isinstance(address, str) or not _EMAIL.fullmatch(address):
            raise _bad("Does not contain a valid address.", field)
        return address

    @staticmethod
    def _check_content(content: Any) -> None:
        if not isinstance(content, list) or not content:
            raise _bad("Unless a valid template_id is provided, the content parameter is "
                       "required. There must be at least one defined content block.", "content")
        types = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad("Content type is required.", f"content.{index}.type")
            value = part.get("value")
            if not isinstance(value, str) or not value:
                raise _bad("The content value must be a string at least one character in "
                           "length.", f"content.{index}.value")
            types.append(part["type"])
        if "text/plain" in types and types[0] != "text/plain":
            raise _bad("If present, text/plain must be first, followed by text/html, "
                       "followed by any other content.", "content.0.type")
        if len(set(types)) != len(types):
            raise _bad("Each content type must be unique.", "content")

    @staticmethod
    def _check_categories(categories: Any) -> None:
        if categories is None:
            return
        if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
            raise _bad("Too many categories: a maximum of 10 categories may be set.",
                       "categories")
        for index, category in enumerate(categories):
            if not isinstance(category, str) or len(category) > MAX_CATEGORY_LENGTH:
                raise _bad("A category cannot exceed 255 characters.", f"categories.{index}")
        if len(set(categories)) != len(categories):
            raise _bad("Categories must be unique.", "categories")

    @staticmethod
    def _check_headers(headers: Any) -> None:
        if headers is None:
            return
        if not isinstance(headers, dict):
            raise _bad("Invalid type. Expected: object.", "headers")
        for name, value in headers.items():
            if name.lower() in RESERVED_HEADERS:
                raise _bad(f"The header {name!r} is reserved and cannot be set.",
                           f"headers.{name}")
            if not isinstance(value, str) or "\n" in value or "\r" in value:
                raise _bad("Header values must be strings on one line.", f"headers.{name}")

    @staticmethod
    def _check_custom_args(custom_args: Any) -> None:
        if custom_args is None:
            return
        if not isinstance(custom_args, dict) or not all(
                isinstance(value, str) for value in custom_args.values()):
            raise _bad("Custom args must be an object of string values.", "custom_args")
        if len(json.dumps(custom_args).encode()) > MAX_CUSTOM_ARGS_BYTES:
            raise _bad("Custom args may not exceed 10,000 bytes.", "custom_args")
