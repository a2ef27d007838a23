"""The hourly health report from a known store and latest results."""

from __future__ import annotations

from pathlib import Path

from tocsin.alerting.model import AlertEvent, AlertState, Severity
from tocsin.config import load_config_text
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.reports.health import build_health_report, render_health_html
from tocsin.store import open_store

NOW = 1_790_000_000.0
CONFIG = """\
services:
  api:
    url: http://127.0.0.1:9
    checks:
      - {type: http, name: api-health}
      - {type: error_rate, name: api-errors, requests: [GET /]}
  web:
    url: http://127.0.0.1:9
    checks:
      - {type: http, name: "web <b>home</b>"}
host:
  - {type: system, metric: cpu}
"""


def test_health_report_structure_and_counts(tmp_path: Path) -> None:
    loaded = load_config_text(CONFIG, env={})
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    store.write_results(
        [CheckResult("api-health", CheckStatus.OK, NOW - 3000 + i * 60, 40.0 + i)
         for i in range(50)]
        + [CheckResult("api-errors", CheckStatus.OK, NOW - 600 + i * 60, 10.0,
                       values={"error_rate": rate}) for i, rate in enumerate([0.0, 2.0, 4.0])])
    events = [AlertEvent("a:down", NOW - 3600, AlertState.PENDING, AlertState.FIRING,
                         Severity.P1),
              AlertEvent("b:down", NOW - 3 * 86400, AlertState.PENDING, AlertState.FIRING,
                         Severity.P2),
              AlertEvent("a:down", NOW - 3500, AlertState.ACKNOWLEDGED, AlertState.FIRING,
                         Severity.P1),  # an unack is not a new firing
              AlertEvent("c:down", NOW - 9 * 86400, AlertState.PENDING, AlertState.FIRING,
                         Severity.P1)]
    store.save_alerting(events=events)
    latest = {"api-health": CheckResult("api-health", CheckStatus.OK, NOW - 10, 42.0),
              "api-errors": CheckResult("api-errors", CheckStatus.OK, NOW - 10, 10.0),
              "web <b>home</b>": CheckResult("web <b>home</b>", CheckStatus.ERROR, NOW - 5,
                                             message="refused"),
              "host:cpu": CheckResult("host:cpu", CheckStatus.OK, NOW - 5,
                                      values={"value": 12.5})}
    data = build_health_report(store, loaded.checks, latest.get, NOW)
    api, web = data["services"]
    assert (api["name"], api["status"], web["status"]) == ("api", "operational", "down")
    assert data["overall"] == "down"
    assert api["latency_ms"] == 42.0
    assert api["error_rate_1h"] == 2.0
    assert api["uptime_1h"] == 1.0 and api["p95_1h_ms"] is not None
    assert data["host"][0]["values"] == {"value": 12.5}
    assert data["alerts"]["24h"] == {"P1": 1, "P2": 0, "P3": 0, "P4": 0, "total": 1}
    assert data["alerts"]["7d"]["total"] == 2
    html = render_health_html(data)
    assert "web &lt;b&gt;home&lt;/b&gt;" in html and "<b>home</b>" not in html
    store.close()
