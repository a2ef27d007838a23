"""The alerting sections: policies, inhibit, maintenance, alerting; and their cross-references."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tocsin.alerting.model import Severity
from tocsin.alerting.policies import Priority
from tocsin.config import (
    EXAMPLE_CONFIG_PATH,
    ConfigError,
    ConfigIssue,
    load_config,
    load_config_text,
)

Issues = Callable[..., list[ConfigIssue]]
FIXTURES = Path(__file__).parent / "fixtures"
CHANNELS = "channels:\n  email: {type: recording}\n  slack: {type: recording}\n"


def only(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, [str(issue) for issue in issues]
    return issues[0]


def test_unknown_channel_in_a_policy_suggests_the_right_one(issues_of: Issues) -> None:
    text = CHANNELS + "policies:\n  P1:\n    channels: [email, slak]\n"
    issue = only(issues_of(text))
    assert str(issue) == ("tocsin.yaml:6: policies.P1.channels[1]: "
                          "unknown channel 'slak' (did you mean 'slack'?)")


def test_unknown_escalation_channel_lists_the_channels(issues_of: Issues) -> None:
    text = CHANNELS + "policies:\n  P2:\n    escalation:\n      - pagerduty\n"
    issue = only(issues_of(text))
    assert (issue.path, issue.line) == ("policies.P2.escalation[0]", 7)
    assert issue.message == "unknown channel 'pagerduty' (configured channels: email, slack)"


def test_policy_channels_without_a_channels_section(issues_of: Issues) -> None:
    issue = only(issues_of("policies: {P3: {channels: [email]}}\n"))
    assert issue.message == ("unknown channel 'email' "
                             "(no channels are configured: add it under `channels:`)")


def test_channel_errors_are_reported_with_schema_errors(issues_of: Issues) -> None:
    text = CHANNELS + "policies:\n  P1: {channels: [emial], priority: loud}\n"
    issues = issues_of(text)
    assert {issue.path for issue in issues} == {"policies.P1.channels[0]",
                                                "policies.P1.priority"}


def test_unknown_policy_key_suggests_the_right_one(issues_of: Issues) -> None:
    issue = only(issues_of("policies:\n  P2:\n    repaet: 1h\n"))
    assert (issue.path, issue.line) == ("policies.P2.repaet", 3)
    assert issue.message == "unknown key 'repaet' (did you mean 'repeat'?)"


def test_two_alerts_with_one_fingerprint_are_refused(issues_of: Issues) -> None:
    text = """\
services:
  backend:
    checks:
      - type: http
        alerts:
          - {when: "response_time > 1s", severity: P2}
          - {when: "response_time > 5s", severity: P1}
          - {when: "response_time > 9s", severity: P1, name: very_slow}
"""
    issue = only(issues_of(text))
    assert (issue.path, issue.line) == ("services.backend.checks[0].alerts[1]", 7)
    assert issue.message == ("a second alert with fingerprint 'backend:http:response_time' "
                             "(also on line 6): give one of them a distinct `name:`")


def test_example_config_types_the_alerting_sections() -> None:
    config = load_config(EXAMPLE_CONFIG_PATH, env={}).config
    assert config.policies.P1.channels == ("email", "slack")
    assert config.policies.P1.priority is Priority.HIGH
    assert config.policies.P2.repeat == 1800.0
    assert config.policies.P2.escalate_after == 1800.0  # from the default
    assert config.policies.for_severity(Severity.P4).digest == "0 9 * * *"
    assert config.base_url == "http://127.0.0.1:8080"
    assert config.alerting.ack_secret is None
    assert [window.name for window in config.maintenance] == ["backend deploys"]


def test_product_example_policies_name_existing_channels() -> None:
    env = {"RENDER_API_KEY": "k" * 8, "COMPANY_KEY": "c" * 8, "SENDGRID_API_KEY": "s" * 8,
           "ALERT_EMAIL": "a@example.com", "SMTP_HOST": "127.0.0.1", "SMTP_USER": "u",
           "SMTP_PASSWORD": "p" * 8, "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    config = load_config(FIXTURES / "product_example.yaml", env=env).config
    assert config.policies.P3.channels == ("email",)


def test_alerting_sections_load() -> None:
    text = CHANNELS + """\
web: {host: 0.0.0.0, port: 9000}
alerting:
  ack_secret: ${TOCSIN_ACK_SECRET}
inhibit:
  - source: {check: "db:postgres", alertname: down}
    target: ["service=~api|worker"]
maintenance:
  - name: sunday backups
    matchers: [service=backend]
    weekdays: [sun]
    start: "03:00"
    duration: 1h
    timezone: Europe/Berlin
"""
    loaded = load_config_text(text, env={"TOCSIN_ACK_SECRET": "0123456789abcdef0123"})
    config = loaded.config
    assert config.base_url == "http://127.0.0.1:9000"  # a wildcard bind is no link
    assert config.alerting.ack_secret == "0123456789abcdef0123"
    assert "0123456789abcdef0123" in loaded.redactor
    assert "0123456789abcdef0123" not in repr(config.alerting)
    assert config.inhibit[0].target[0].value == "api|worker"
    assert config.maintenance[0].schedule == "0 3 * * sun"


def test_empty_alerting_sections_are_their_defaults() -> None:
    config = load_config_text("policies:\ninhibit:\nmaintenance:\n", env={}).config
    assert config.policies.P3.repeat == 7200.0
    assert (config.inhibit, config.maintenance) == ([], [])


def test_explicit_base_url(issues_of: Issues) -> None:
    text = "alerting: {base_url: 'https://tocsin.example.com/'}\n"
    assert load_config_text(text, env={}).config.base_url == "https://tocsin.example.com"
    issue = only(issues_of("alerting: {base_url: tocsin.example.com}\n"))
    assert issue.path == "alerting.base_url"


def test_short_ack_secret_is_refused_without_showing_it(issues_of: Issues) -> None:
    issue = only(issues_of("alerting:\n  ack_secret: ${TOCSIN_ACK_SECRET}\n",
                           env={"TOCSIN_ACK_SECRET": "hunter2"}))
    assert (issue.path, issue.line) == ("alerting.ack_secret", 2)
    assert "too short" in issue.message and "hunter2" not in issue.message


def test_bad_maintenance_window_is_refused_with_its_line(issues_of: Issues) -> None:
    text = "maintenance:\n  - name: x\n    cron: '0 2 * * *'\n    duration: 1h\n" \
           "    timezone: Europe/Berln\n"
    issue = only(issues_of(text))
    assert (issue.path, issue.line) == ("maintenance[0].timezone", 5)
    assert issue.message == "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"


def test_bad_inhibit_matcher_is_refused(issues_of: Issues) -> None:
    issue = only(issues_of("inhibit:\n  - source: [service]\n    target: {service: a}\n"))
    assert issue.path == "inhibit[0].source"
    assert issue.message.startswith("invalid matcher 'service'")


def test_a_fallback_must_name_a_channel() -> None:
    text = ("channels:\n  email: {type: sendgrid, to: [a@b.c], from: x@y.z, fallback: smpt}\n"
            "  smtp: {type: smtp, host: 127.0.0.1}\n")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env={})
    messages = [str(issue) for issue in caught.value.issues]
    assert "tocsin.yaml:2: channels.email.fallback: unknown channel 'smpt' " \
           "(did you mean 'smtp'?)" in messages


def test_an_smtp_channel_without_addresses_must_be_a_fallback() -> None:
    text = "channels:\n  smtp: {type: smtp, host: 127.0.0.1}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env={})
    assert {issue.path for issue in caught.value.issues} == {"channels.smtp"}
    fallback = ("channels:\n  email: {type: sendgrid, api_key: \"${SENDGRID_API_KEY:-}\",\n"
                "    to: [a@b.c], from: x@y.z, fallback: smtp}\n"
                "  smtp: {type: smtp, host: 127.0.0.1}\n")
    assert load_config_text(fallback, "tocsin.yaml", env={}).config.channels
