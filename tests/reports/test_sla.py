"""The monthly SLA report from a known October: exact uptime, downtime, incidents, SLOs.

October 2026 (31 days), one result a minute for ``backend:http``; a 40-minute
outage on the 12th at 03:00 UTC, with its P1 incident and alert; 20 deploys,
one failed; hourly health reports giving the error rate. Then the CLI writes
the PDF, and refuses a future or malformed month.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from tocsin.alerting.model import Alert, AlertEvent, AlertState, Incident, Severity
from tocsin.cli import main
from tocsin.config import LoadedConfig, load_config_text
from tocsin.platforms.base import DeployStatus
from tocsin.platforms.events import DeployEvent
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.reports.alerts import review_alerts
from tocsin.reports.model import StoredReport
from tocsin.reports.sla import ReportError, build_sla_report, month_bounds
from tocsin.store import Store, open_store

MINUTE = 60.0
OCT = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
NOV = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
OUTAGE = datetime(2026, 10, 12, 3, 0, tzinfo=UTC).timestamp()
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


def config_text(db: Path) -> str:
    return f"""\
storage: sqlite:///{db}
services:
  backend:
    url: http://127.0.0.1:9
    checks:
      - {{type: http, path: /health}}
      - type: error_rate
        requests: [GET /api]
        expect: {{error_rate: 1%}}
  frontend:
    url: http://127.0.0.1:9
    checks:
      - {{type: http}}
slos:
  - {{name: backend uptime, service: backend, indicator: availability, objective: 99.9%}}
  - {{name: backend fast, service: backend, indicator: "latency_p95 < 500ms", objective: 99%}}
reports:
  sla: {{title: Acme SLA}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, LoadedConfig]]:
    db = tmp_path_factory.mktemp("sla") / "tocsin.db"
    loaded = load_config_text(config_text(db), env={})
    store = open_store(f"sqlite:///{db}")
    store.migrate()
    bad = {OUTAGE + i * MINUTE for i in range(40)}
    results = [CheckResult("backend:http",
                           CheckStatus.ERROR if OCT + m * MINUTE in bad else CheckStatus.OK,
                           OCT + m * MINUTE, 120.0) for m in range(31 * 1440)]
    for offset in range(0, len(results), 20_000):
        store.write_results(results[offset:offset + 20_000])
    alert = Alert(fingerprint="backend:http:down", check="backend:http", service="backend",
                  rule="down", severity=Severity.P1, state=AlertState.RESOLVED,
                  fired_at=OUTAGE + 60, resolved_at=OUTAGE + 40 * MINUTE,
                  incident_id="inc-1", summary="backend:http is down: connection refused")
    incident = Incident("inc-1", "backend", OUTAGE + 60, Severity.P1,
                        closed_at=OUTAGE + 40 * MINUTE, paged_at=OUTAGE + 60)
    events = [AlertEvent(alert.fingerprint, OUTAGE + 60, AlertState.PENDING, AlertState.FIRING,
                         Severity.P1),
              AlertEvent(alert.fingerprint, OUTAGE + 360, AlertState.FIRING,
                         AlertState.ACKNOWLEDGED, Severity.P1),
              AlertEvent(alert.fingerprint, OUTAGE + 40 * MINUTE, AlertState.ACKNOWLEDGED,
                         AlertState.RESOLVED, Severity.P1)]
    store.save_alerting(alerts=[alert], events=events, incidents=[incident])
    store.record_deploys([DeployEvent(f"d{i}", "backend", "backend:deploy",
                                      DeployStatus.BUILD_FAILED if i == 3 else DeployStatus.LIVE,
                                      "api", None, None, OCT + i * 86400 + 100, None,
                                      OCT + i * 86400 + 100) for i in range(20)])
    for hour in range(24):
        store.save_report(StoredReport("health", f"h{hour}", OCT + 86400 + hour * 3600, {
            "services": [{"name": "backend", "error_rate_1h": 0.5 if hour % 2 else 1.5}]}))
    yield store, loaded
    store.close()


def test_uptime_downtime_and_latency_are_exact(setup: tuple[Store, LoadedConfig]) -> None:
    store, loaded = setup
    report = build_sla_report(store, loaded.config, loaded.checks, "2026-10", NOW)
    assert (report.start, report.end, report.title) == (OCT, NOV, "Acme SLA")
    backend = report.services[0]
    assert backend.name == "backend"
    assert backend.checks == 44_640
    assert backend.uptime == pytest.approx((44_640 - 40) / 44_640)
    assert backend.downtime_minutes == pytest.approx(40.0)
    assert backend.p95_ms == pytest.approx(120.0, rel=0.05)  # within the histogram's bound
    assert backend.error_rate == pytest.approx(1.0)
    assert (backend.deploys_ok, backend.deploys_total) == (19, 20)
    assert len(backend.days) == 31
    twelfth = backend.days[11]
    assert twelfth.uptime == pytest.approx(1 - 40 / 1440)
    assert all(day.uptime == 1.0 for i, day in enumerate(backend.days) if i != 11)


def test_incidents_and_slos(setup: tuple[Store, LoadedConfig]) -> None:
    store, loaded = setup
    backend = build_sla_report(store, loaded.config, loaded.checks, "2026-10", NOW).services[0]
    (incident,) = backend.incidents
    assert incident.severity == "P1" and incident.duration_s == pytest.approx(39 * 60)
    assert "connection refused" in incident.summary
    uptime, fast = backend.slos
    assert uptime.name == "backend uptime" and uptime.met is True
    assert uptime.budget_allowed == pytest.approx(44.64)  # 0.1 % of 31 days in minutes
    assert uptime.budget_used == pytest.approx(40.0)
    assert fast.met is True and fast.budget_used == 0


def test_a_service_without_data_and_a_month_without_data(
        setup: tuple[Store, LoadedConfig]) -> None:
    store, loaded = setup
    report = build_sla_report(store, loaded.config, loaded.checks, "2026-10", NOW)
    frontend = report.services[1]
    assert frontend.uptime is None and frontend.checks == 0 and frontend.incidents == []
    empty = build_sla_report(store, loaded.config, loaded.checks, "2026-08", NOW)
    assert not empty.has_data


@pytest.mark.parametrize("month, message", [
    ("2026-12", "has not begun yet"), ("2026-13", "invalid month"), ("Oct 2026", "YYYY-MM"),
])
def test_bad_months_are_refused(setup: tuple[Store, LoadedConfig], month: str,
                                message: str) -> None:
    store, loaded = setup
    with pytest.raises(ReportError, match=message):
        build_sla_report(store, loaded.config, loaded.checks, month, NOW)


def test_month_bounds_follow_the_time_zone() -> None:
    start, end = month_bounds("2026-10", "Europe/Berlin")
    assert start == datetime(2026, 9, 30, 22, 0, tzinfo=UTC).timestamp()  # CEST
    assert end == datetime(2026, 10, 31, 23, 0, tzinfo=UTC).timestamp()  # CET
    assert month_bounds("2026-12", "UTC")[1] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_alert_review_counts_the_outage(setup: tuple[Store, LoadedConfig]) -> None:
    store, _ = setup
    (review,) = review_alerts(store, OCT, NOV)
    assert (review.fired, review.acked, review.unacted, review.short) == (1, 1, 0, 0)
    assert review.median_ack_s == 300


def test_cli_writes_the_pdf_and_refuses_a_future_month(
        setup: tuple[Store, LoadedConfig], tmp_path: Path) -> None:
    _, loaded = setup
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_text(Path(loaded.config.storage.removeprefix("sqlite:///"))))
    out = tmp_path / "october.pdf"
    runner = CliRunner()
    done = runner.invoke(main, ["report", "sla", "-c", str(config), "--month", "2026-10",
                                "--format", "pdf", "-o", str(out)])
    assert done.exit_code == 0, done.output
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert "Acme SLA" in text and "99.910 %" in text and "40.0 min" in text
    future = runner.invoke(main, ["report", "sla", "-c", str(config), "--month", "2099-01"])
    assert future.exit_code == 2 and "has not begun yet" in future.output
    review = runner.invoke(main, ["report", "alerts", "-c", str(config), "--since", "3650d"])
    assert review.exit_code == 0 and "backend:http:down" in review.output
