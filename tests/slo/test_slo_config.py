"""SLO config errors: each names the file, key path and line, with a hint where one helps."""

from __future__ import annotations

import pytest

from tocsin.config import ConfigError, ConfigIssue, load_config_text

BASE = """\
services:
  backend:
    url: http://127.0.0.1:9
    checks:
      - {type: http, name: api}
      - {type: error_rate, name: errs, requests: [GET /], expect: {error_rate: 5%}}
  worker:
    url: http://127.0.0.1:9
    checks:
      - {type: tcp, port: 9}
channels:
  slack: {type: slack, webhook_url: "http://127.0.0.1:9/hook"}
  mail: {type: smtp, host: 127.0.0.1, from: a@example.com, to: [b@example.com]}
"""


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(BASE + text, "tocsin.yaml", env={})
    return caught.value.issues


@pytest.mark.parametrize("slo, path, message", [
    ("{name: a, service: backnd, indicator: availability, objective: 99%}",
     "slos[0].service", "unknown service 'backnd' (did you mean 'backend'?)"),
    ("{name: a, service: backend, indicator: availability, objective: 99%, checks: [apii]}",
     "slos[0].checks[0]", "unknown check 'apii' (did you mean 'api'?)"),
    ("{name: a, service: worker, indicator: availability, objective: 99%}",
     "slos[0].indicator", "service 'worker' has no http check to measure availability"),
    ("{name: a, service: backend, indicator: 'error_rate < 1%', objective: 99%}",
     "slos[0].indicator", "check 'errs' fails its runs above 5%, but the SLO counts runs under 1%"),
    ("{name: a, service: backend, indicator: availability, objective: 100%}",
     "slos[0].objective", "strictly between 0% and 100%"),
    ("{name: a, service: backend, indicator: 'latency_p95 < 300ms', objective: 99%, "
     "window: 120d}", "slos[0].window",
     "the window (120d) is longer than the history it reads is kept: retention.rollups_5m is 90d"),
])
def test_slo_errors(slo: str, path: str, message: str) -> None:
    found = issues_of(f"slos:\n  - {slo}\n")
    assert any(i.path == path and message in i.message for i in found), found
    issue = next(i for i in found if i.path == path)
    assert issue.file == "tocsin.yaml" and issue.line == 15


def test_window_longer_than_configured_retention_names_the_setting() -> None:
    (issue,) = issues_of("retention: {raw: 7d, rollups_5m: 30d, rollups_1h: 60d}\n"
                         "slos:\n  - {name: a, service: backend, indicator: availability, "
                         "objective: 99%, window: 90d}\n")
    assert issue.path == "slos[0].window"
    assert "retention.rollups_1h is 60d" in issue.message


def test_duplicate_slo_names_and_report_channels() -> None:
    found = issues_of("slos:\n"
                      "  - {name: a, service: backend, indicator: availability, objective: 99%}\n"
                      "  - {name: a, service: backend, indicator: availability, objective: 9%}\n"
                      "reports:\n  sla: {schedule: '0 8 1 * *', channels: [slack, mial]}\n")
    messages = {i.path: i.message for i in found}
    assert messages["slos[1].name"] == "duplicate SLO name 'a'"
    assert "cannot carry the report's document" in messages["reports.sla.channels[0]"]
    assert "unknown channel 'mial' (did you mean 'mail'?)" in messages["reports.sla.channels[1]"]


def test_a_valid_slo_section_loads() -> None:
    loaded = load_config_text(BASE + "slos:\n  - {name: a, service: backend, "
                              "indicator: availability, objective: 99.5%, calendar: month, "
                              "timezone: Europe/Berlin}\n", env={})
    (slo,) = loaded.config.slos
    assert slo.calendar == "month" and slo.objective == pytest.approx(0.995)
    assert [s.name for s in loaded.checks if s.type == "slo"] == ["slo:a"]
