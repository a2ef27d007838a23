"""SLA reports rendered from a known report: the figures appear in every format."""

from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from tocsin.reports.model import DayPoint, IncidentRow, ServiceSLA, SLAReport, SLORow
from tocsin.reports.render import render_html, render_markdown, render_pdf

UTC = ZoneInfo("UTC")


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def report(with_data: bool = True) -> SLAReport:
    days = [DayPoint(date(2026, 10, d), 1.0 if d != 12 else 0.9722, 180.0 + d)
            for d in range(1, 32)]
    days[20] = DayPoint(date(2026, 10, 21), None, None)  # a day without data
    backend = ServiceSLA(
        name="backend <script>alert(1)</script>",
        uptime=0.99907, downtime_minutes=40.0, checks=44_640, p95_ms=212.0, error_rate=0.42,
        deploys_ok=19, deploys_total=20,
        incidents=[IncidentRow("backend", "P1", ts(2026, 10, 12, 3, 0), ts(2026, 10, 12, 3, 40),
                               2400.0, 'API down: "connection refused" <b>')],
        slos=[SLORow("backend uptime", "availability", 0.999, 0.99907, True, "minutes",
                     44.64, 40.0),
              SLORow("backend latency", "latency_p95 < 500ms", 0.99, 0.985, False, "minutes",
                     446.4, 669.6)],
        days=days if with_data else [])
    services = [backend] if with_data else [ServiceSLA("backend", None, 0.0, 0, None, None,
                                                       0, 0)]
    return SLAReport(title="Acme SLA report", month="2026-10", timezone="UTC",
                     start=ts(2026, 10, 1), end=ts(2026, 11, 1),
                     generated_at=ts(2026, 11, 1, 8, 0), services=services)


def test_pdf_is_a_real_pdf_with_the_figures() -> None:
    pdf = render_pdf(report())
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    for figure in ("Acme SLA report", "2026-10", "99.907 %", "40.0 min", "212 ms", "0.42 %",
                   "95.0 % (19/20)", "backend uptime", "met", "missed", "90 % (40.0 of 44.6",
                   "2026-10-12 03:00", "2026-10-12 03:40", "40 min 00 s", "P1",
                   "Daily uptime", "Daily p95 latency", "<script>alert(1)</script>"):
        assert figure in text, figure
    assert reader.metadata is not None and reader.metadata.title == "Acme SLA report 2026-10"


def test_html_escapes_names_and_inlines_the_charts() -> None:
    html = render_html(report())
    assert "<script>alert(1)</script>" not in html
    assert "backend &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;" in html and "&#34;connection refused&#34;" in html
    assert html.count("<svg") == 2
    assert "99.907 %" in html and 'class="missed"' in html


def test_markdown_has_the_summary_and_incidents() -> None:
    text = render_markdown(report())
    assert "| backend <script>alert(1)</script> | 99.907 % | 40.0 min | 212 ms |" in text
    assert "| 2026-10-12 03:00 | 2026-10-12 03:40 | 40 min 00 s | P1 |" in text


def test_a_month_without_data_says_so_in_every_format() -> None:
    empty = report(with_data=False)
    assert not empty.has_data
    assert "No measurements were stored for 2026-10" in render_markdown(empty)
    assert 'id="no-data"' in render_html(empty)
    text = PdfReader(io.BytesIO(render_pdf(empty))).pages[0].extract_text()
    assert "No measurements were stored for 2026-10" in text
