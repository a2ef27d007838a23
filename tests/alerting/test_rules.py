"""Alert rules: read and checked at load, so nothing about them fails during an incident."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from tocsin.alerting.conditions import Outcome
from tocsin.alerting.model import Alert, Severity
from tocsin.alerting.rules import AlertRule
from tocsin.config import ConfigIssue, load_config_text
from tocsin.probes.base import CheckConfig, CheckResult, CheckSpec, CheckStatus

Issues = Callable[..., list[ConfigIssue]]


def rule(**fields: Any) -> AlertRule:
    return AlertRule.model_validate(fields)


def spec() -> CheckSpec[CheckConfig]:
    return CheckSpec(name="backend:http", service="backend", service_url=None, interval=60,
                     timeout=10, config=CheckConfig(type="http"))


def alert_for(message: str = "", value: float | None = None) -> Alert:
    return Alert(fingerprint="backend:http:x", check="backend:http", service="backend",
                 rule="", severity=Severity.P1, message=message, value=value)


def check_alerts(*rules: str) -> str:
    body = "".join(f"          - {item}\n" for item in rules)
    return f"services:\n  backend:\n    checks:\n      - type: http\n        alerts:\n{body}"


@pytest.mark.parametrize(("written", "severity"), [
    ("P1", Severity.P1), ("p2", Severity.P2), ("critical", Severity.P1), ("LOW", Severity.P4),
])
def test_severity_is_read_in_any_case(written: str, severity: Severity) -> None:
    assert rule(when="down", severity=written).severity is severity


def test_unknown_severity_lists_the_severities(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P5}"))
    assert issue.path == "services.backend.checks[0].alerts[0].severity"
    assert issue.line == 6
    assert issue.message == ("unknown severity 'P5': use one of P1, P2, P3, P4 "
                             "(critical, high, medium, low)")


def test_bad_condition_is_refused_with_path_and_line(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P1}",
                                     "{when: 'response_time => 1s', severity: P2}"))
    assert (issue.path, issue.line) == ("services.backend.checks[0].alerts[1].when", 7)
    assert issue.message.startswith("unknown operator '=>'")


def test_for_and_confirm_are_exclusive(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P1, for: 5m, confirm: 2}"))
    assert (issue.path, issue.line) == ("services.backend.checks[0].alerts[0]", 6)
    assert "`for` and `confirm` cannot both be set" in issue.message


def test_template_syntax_error_is_refused_with_path_and_line(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P1, summary: '{{ check }'}"))
    assert (issue.path, issue.line) == ("services.backend.checks[0].alerts[0].summary", 6)
    assert issue.message.startswith("invalid template:")


def test_template_with_an_unknown_variable_is_refused(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P1, description: '{{ servce }}'}"))
    assert issue.path.endswith("alerts[0].description")
    assert issue.message.startswith("unknown template variable 'servce' (available: check,")


def test_unknown_rule_key_suggests_the_right_one(issues_of: Issues) -> None:
    [issue] = issues_of(check_alerts("{when: down, severity: P1, severty: P2}"))
    assert issue.message.endswith("(did you mean 'severity'?)")


def test_rules_load_into_the_check_config() -> None:
    loaded = load_config_text(check_alerts(
        "{when: down, severity: P1, remediate: restart}",
        "{when: 'response_time > 1000ms', severity: P2, for: 5m, runbook: https://x/rb}",
    ) + "remediation:\n  restart: {action: command, argv: [/bin/true]}\n", env={})
    down, slow = loaded.checks[0].config.alerts
    assert (down.metric, down.effective_confirm, down.retry_interval, down.recover) == (
        "down", 1, 2.0, 2)
    assert down.remediate == "restart"
    assert (slow.metric, slow.for_, slow.effective_confirm, slow.runbook) == (
        "response_time", 300.0, 0, "https://x/rb")


def test_confirmation_defaults() -> None:
    assert rule(when="failed", severity="P2").effective_confirm == 1
    assert rule(when="down", severity="P1", confirm=3).effective_confirm == 3
    assert rule(when="down", severity="P1", confirm=0).effective_confirm == 0
    assert rule(when="down", severity="P1", **{"for": "1m"}).effective_confirm == 0
    assert rule(when="> 90%", severity="P3").effective_confirm == 0


def test_retry_interval_under_a_second_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry_interval must be at least 1s"):
        rule(when="down", severity="P1", retry_interval="500ms")


def test_fingerprint_is_check_and_metric() -> None:
    assert rule(when="down", severity="P1").fingerprint("backend:http") == "backend:http:down"
    slow = rule(when="response_time > 1s", severity="P2")
    assert slow.fingerprint("backend:http") == "backend:http:response_time"
    assert rule(when="> 90%", severity="P2").fingerprint("host:disk") == "host:disk:value"
    named = rule(when="response_time > 5s", severity="P1", name="very_slow")
    assert named.fingerprint("backend:http") == "backend:http:very_slow"


def test_fingerprint_includes_identifying_labels_sorted() -> None:
    disk = rule(when="> 90%", severity="P2", labels={"team": "ops", "env": "prod"})
    assert disk.fingerprint("host:disk") == "host:disk:value{env=prod,team=ops}"
    assert disk.fingerprint("host:disk", {"mount": "/"}) == (
        "host:disk:value{env=prod,mount=/,team=ops}")


def test_default_summaries() -> None:
    down = rule(when="down", severity="P1")
    outcome = down.condition.evaluate(
        CheckResult("backend:http", CheckStatus.ERROR, 0.0, message="connection refused"))
    assert down.render_summary(spec(), alert_for("connection refused"), outcome) == (
        "backend:http is down: connection refused")
    assert down.render_summary(spec(), alert_for(), outcome) == "backend:http is down"
    failed = rule(when="failed", severity="P2")
    assert failed.render_summary(spec(), alert_for("build_failed"), outcome) == (
        "backend:http failed: build_failed")
    slow = rule(when="response_time > 1000ms", severity="P2")
    outcome = slow.condition.evaluate(CheckResult("backend:http", CheckStatus.OK, 0.0,
                                                  values={"response_time": 1234.4}))
    assert slow.render_summary(spec(), alert_for(value=1234.4), outcome) == (
        "backend:http response_time 1234 ms > 1000 ms")
    in_seconds = rule(when="response_time > 2s", severity="P2")
    outcome = Outcome(held=True, value=2500.0, threshold="2s", unit="ms")
    assert in_seconds.render_summary(spec(), alert_for(value=2500.0), outcome) == (
        "backend:http response_time 2.5 s > 2 s")


def test_summary_and_description_templates() -> None:
    templated = rule(when="error_rate > 5%", severity="P2",
                     summary="{{ service }} errors at {{ value }}% (limit {{ threshold }})",
                     description="{{ severity }} {{ labels.team }}: {{ message }}",
                     labels={"team": "api"})
    outcome = Outcome(held=True, value=7.5, threshold="5%", unit="%")
    alert = alert_for("3 of 40 failed", value=7.5)
    assert templated.render_summary(spec(), alert, outcome) == "backend errors at 7.5% (limit 5%)"
    assert templated.render_description(spec(), alert, outcome) == "P2 api: 3 of 40 failed"
    assert rule(when="down", severity="P1").render_description(spec(), alert, outcome) == ""


def test_a_template_failing_at_run_time_gives_a_note_not_an_exception() -> None:
    broken = rule(when="down", severity="P1", summary="{{ value + 'x' }}")
    summary = broken.render_summary(spec(), alert_for(value=None), Outcome(held=True))
    assert summary == "(template failed: TypeError)"


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    sneaky = rule(when="down", severity="P1", summary="{{ check.__class__.__mro__ }}")
    assert sneaky.render_summary(spec(), alert_for(), Outcome(held=True)) in ("", "(template "
                                                                                "failed: "
                                                                                "SecurityError)")
