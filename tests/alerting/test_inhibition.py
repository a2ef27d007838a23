"""Inhibition: the root alert pages, its symptoms stay quiet, and nothing mutes itself."""

from __future__ import annotations

from typing import Any

from tocsin.alerting.inhibition import InhibitRule, inhibited, inhibitor
from tocsin.alerting.model import Severity

P1, P2, P3 = Severity.P1, Severity.P2, Severity.P3


def labels(alertname: str, service: str = "backend", check: str = "backend:http",
           **extra: str) -> dict[str, str]:
    return {"service": service, "check": check, "alertname": alertname,
            "fingerprint": f"{check}:{alertname}", **extra}


def rule(**fields: Any) -> InhibitRule:
    return InhibitRule.model_validate(fields)


def test_down_inhibits_the_other_alerts_of_its_service() -> None:
    down = (labels("down"), P1)
    assert inhibited(labels("response_time"), P2, [down])
    assert inhibited(labels("error_rate", check="backend:error_rate"), P2, [down])
    assert inhibited(labels("failed", check="backend:deploy"), P2, [down])
    assert not inhibited(labels("response_time", service="frontend"), P2, [down])


def test_down_wins_over_a_higher_severity_symptom() -> None:
    down, slow = (labels("down"), P2), (labels("response_time"), P1)
    assert inhibited(slow[0], P1, [down])
    assert not inhibited(down[0], P2, [slow])


def test_higher_severity_inhibits_lower_of_the_same_service() -> None:
    errors = (labels("error_rate", check="backend:error_rate"), P2)
    assert inhibited(labels("response_time"), P3, [errors])
    assert not inhibited(labels("response_time"), P2, [errors])  # equal: neither
    assert not inhibited(labels("response_time", service="frontend"), P3, [errors])


def test_two_down_alerts_of_one_service_do_not_inhibit_each_other() -> None:
    http = labels("down")
    tcp = labels("down", check="backend:tcp")
    assert not inhibited(http, P1, [(tcp, P1)])
    assert not inhibited(tcp, P1, [(http, P1)])
    assert inhibited(tcp, P2, [(http, P1)])  # a more severe down still ranks first


def test_an_alert_never_inhibits_itself() -> None:
    down = labels("down")
    assert not inhibited(down, P1, [(down, P1)])
    mutual = rule(source=["alertname=~.*"], target=["alertname=~.*"])
    assert not inhibited(down, P1, [(down, P1)], [mutual], builtin=False)


def test_alerts_without_a_service_are_not_inhibited_by_built_ins() -> None:
    disk = {"check": "host:disk", "alertname": "value", "fingerprint": "host:disk:value"}
    cpu = {"check": "host:cpu", "alertname": "value", "fingerprint": "host:cpu:value"}
    assert not inhibited(disk, P3, [(cpu, P1)])


def test_config_rule_mutes_targets_sharing_the_equal_labels() -> None:
    database_down = rule(source={"check": "db:postgres", "alertname": "down"},
                         target=["check=~.*:http"], equal=["region"])
    db = {"check": "db:postgres", "alertname": "down", "fingerprint": "db:postgres:down",
          "region": "eu"}
    eu = labels("down", service="api", check="api:http", region="eu")
    us = labels("down", service="api", check="api:http", region="us")
    assert inhibitor(eu, P1, [(db, P1)], [database_down]) == db
    assert not inhibited(us, P1, [(db, P1)], [database_down])


def test_an_alert_on_both_sides_is_not_muted_by_another_on_both_sides() -> None:
    any_down = rule(source={"alertname": "down"}, target={"alertname": "down"})
    a, b = labels("down", service="a", check="a:http"), labels("down", service="b",
                                                                check="b:http")
    assert not inhibited(a, P1, [(b, P1)], [any_down])
    assert not inhibited(b, P1, [(a, P1)], [any_down])


def test_a_pair_that_would_mute_each_other_cancels_out() -> None:
    # A config rule mutes the down alert by the latency one, the built-in does the reverse.
    latency_mutes_down = rule(source={"alertname": "response_time"},
                              target={"alertname": "down"})
    down, slow = labels("down"), labels("response_time")
    assert not inhibited(down, P1, [(slow, P2)], [latency_mutes_down])
    assert not inhibited(slow, P2, [(down, P1)], [latency_mutes_down])


def test_built_ins_can_be_turned_off() -> None:
    assert not inhibited(labels("response_time"), P2, [(labels("down"), P1)], builtin=False)
