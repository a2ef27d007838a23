from __future__ import annotations

import logging
from typing import Any

import pytest

from tocsin.config import RedactingFilter, Redactor


def test_redact_replaces_every_secret() -> None:
    redactor = Redactor({"hunter22", "tok-abc"})
    assert redactor.redact("pw=hunter22 token=tok-abc again hunter22") == (
        "pw=*** token=*** again ***"
    )


def test_longest_secret_is_masked_first() -> None:
    redactor = Redactor({"abcd", "abcdefgh"})
    assert redactor.redact("x abcdefgh y abcd") == "x *** y ***"


def test_short_secrets_are_ignored() -> None:
    redactor = Redactor({"on", "abc", ""})
    assert len(redactor) == 0
    assert redactor.redact("on abc") == "on abc"


def test_regex_characters_in_secrets_are_literal() -> None:
    assert Redactor({"a.b*c+"}).redact("a.b*c+ axbbc") == "*** axbbc"


def test_repr_does_not_show_secrets() -> None:
    assert "hunter22" not in repr(Redactor({"hunter22"}))


@pytest.fixture
def captured() -> tuple[logging.Logger, list[str], RedactingFilter]:
    records: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = ListHandler()
    redacting = RedactingFilter(Redactor({"hunter22"}))
    handler.addFilter(redacting)
    logger = logging.getLogger("tocsin.test.secrets")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, records, redacting


def test_filter_redacts_message_and_args(
    captured: tuple[logging.Logger, list[str], RedactingFilter],
) -> None:
    logger, records, _ = captured
    logger.info("logging in with %s as %r", "hunter22", "admin")
    assert records == ["logging in with *** as 'admin'"]


def test_filter_redacts_exception_text(
    captured: tuple[logging.Logger, list[str], RedactingFilter],
) -> None:
    logger, records, _ = captured
    try:
        raise RuntimeError("bad password hunter22")
    except RuntimeError:
        logger.exception("failed")
    assert "hunter22" not in records[0]
    assert "bad password ***" in records[0]


def test_filter_redactor_can_be_swapped(
    captured: tuple[logging.Logger, list[str], RedactingFilter],
) -> None:
    logger, records, redacting = captured
    redacting.redactor = Redactor({"new-secret"})
    logger.warning("old hunter22, new new-secret")
    assert records == ["old hunter22, new ***"]


def test_channel_urls_from_any_variable_are_redacted() -> None:
    from tocsin.config import load_config_text

    loaded = load_config_text(
        "channels:\n  hook: {type: webhook, url: '${PUSH_URL}'}\n"
        "  mail: {type: smtp, host: '${MAIL_HOST}', from: a@b.c, to: [d@e.f]}\n",
        "t.yaml", env={"PUSH_URL": "https://hooks.example.com/T000/abcdef123456",
                       "MAIL_HOST": "mail.example.com"})
    redact = loaded.redactor.redact
    assert redact("posting to https://hooks.example.com/T000/abcdef123456") == "posting to ***"
    assert redact("mail.example.com") == "mail.example.com"


def test_a_push_token_written_into_the_file_is_refused(issues_of: Any) -> None:
    found = issues_of("web: {push_token: 0123456789abcdef}\n", {})
    (issue,) = found
    assert issue.path == "web.push_token" and issue.line == 1
    assert "take it from the environment" in issue.message
    assert "0123456789abcdef" not in issue.message
