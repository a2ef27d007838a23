"""Render an :class:`SLAReport` as Markdown, HTML (charts inline as SVG) or PDF (ReportLab).

Every format says the same things in the same order: the summary table, then
per service its figures, SLOs, charts and incidents. A month without data says
so instead of printing zeros. Text from the outside (service names, incident
summaries) is escaped in HTML and PDF.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from functools import cache
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from tocsin.reports.charts import latency_chart, to_svg, uptime_chart
from tocsin.reports.model import ServiceSLA, SLAReport, SLORow

NO_DATA = "no data"


# -- shared wording --------------------------------------------------------------------

def percent(fraction: float | None, digits: int = 3) -> str:
    return NO_DATA if fraction is None else f"{fraction * 100:.{digits}f} %"


def minutes(value: float) -> str:
    if value < 60:
        return f"{value:.1f} min"
    return f"{value / 60:.1f} h ({value:.0f} min)"


def milliseconds(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.0f} ms"


def duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    mins, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min {secs:02d} s" if mins else f"{secs} s"


def error_rate(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.2f} %"


def deploys(service: ServiceSLA) -> str:
    if not service.deploys_total:
        return "no deploys"
    return f"{percent(service.deploy_success, 1)} ({service.deploys_ok}/{service.deploys_total})"


def slo_verdict(row: SLORow) -> str:
    if row.met is None:
        return NO_DATA
    return "met" if row.met else "missed"


def slo_budget(row: SLORow) -> str:
    share = row.budget_used_share
    used = f"{row.budget_used:.1f} of {row.budget_allowed:.1f} {row.unit}"
    return used if share is None else f"{share * 100:.0f} % ({used})"


def make_timestamp(report: SLAReport) -> Callable[[float | None], str]:
    zone = ZoneInfo(report.timezone)

    def stamp(moment: float | None) -> str:
        if moment is None:
            return "ongoing"
        return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M")

    return stamp


def no_data_text(report: SLAReport) -> str:
    return (f"No measurements were stored for {report.month}: Tocsin was not running, "
            "or the history has been pruned.")


# -- Markdown ------------------------------------------------------------------

def render_markdown(report: SLAReport) -> str:
    stamp = make_timestamp(report)
    lines = [f"# {report.title} — {report.month}", "",
             f"Period: {stamp(report.start)} to {stamp(report.end)} ({report.timezone}). "
             f"Generated {stamp(report.generated_at)}.", ""]
    if not report.has_data:
        return "\n".join([*lines, no_data_text(report), ""])
    lines += ["| Service | Uptime | Downtime | p95 latency | Error rate | Deploys | Incidents |",
              "|---|---|---|---|---|---|---|"]
    for s in report.services:
        lines.append(f"| {_md(s.name)} | {percent(s.uptime)} | {minutes(s.downtime_minutes)} | "
                     f"{milliseconds(s.p95_ms)} | {error_rate(s.error_rate)} | {deploys(s)} | "
                     f"{len(s.incidents)} |")
    for s in report.services:
        lines += ["", f"## {_md(s.name)}", ""]
        if s.slos:
            lines += ["| SLO | Objective | Measured | Verdict | Budget used |",
                      "|---|---|---|---|---|"]
            lines += [f"| {_md(r.name)} ({_md(r.indicator)}) | {percent(r.objective, 2)} | "
                      f"{percent(r.sli)} | {slo_verdict(r)} | {slo_budget(r)} |" for r in s.slos]
            lines.append("")
        if s.incidents:
            lines += ["| Start | End | Duration | Severity | Summary |", "|---|---|---|---|---|"]
            lines += [f"| {stamp(i.opened_at)} | {stamp(i.closed_at)} | {duration(i.duration_s)} "
                      f"| {i.severity} | {_md(i.summary)} |" for i in s.incidents]
        else:
            lines.append("No incidents.")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- HTML ----------------------------------------------------------------------

@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("tocsin.reports", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(percent=percent, minutes=minutes, milliseconds=milliseconds,
                       duration=duration, error_rate=error_rate, deploys=deploys,
                       slo_verdict=slo_verdict, slo_budget=slo_budget)
    return env


def render_html(report: SLAReport) -> str:
    # ReportLab's own SVG, with no text from outside in it: safe to inline.
    charts = {s.name: (Markup(to_svg(uptime_chart(s.days, _objective(s)))),
                       Markup(to_svg(latency_chart(s.days))))
              for s in report.services}
    return _environment().get_template("sla.html.j2").render(
        report=report, stamp=make_timestamp(report), charts=charts,
        no_data=no_data_text(report))


def _objective(service: ServiceSLA) -> float | None:
    """The availability objective to draw on the uptime chart, if the service has one."""
    return next((r.objective for r in service.slos if r.indicator == "availability"), None)


# -- PDF -----------------------------------------------------------------------

def render_pdf(report: SLAReport) -> bytes:
    """A real PDF: A4, a summary table, then a page section per service with its charts."""
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8, leading=10)
    stamp = make_timestamp(report)
    story: list[Flowable] = [
        Paragraph(escape(f"{report.title} — {report.month}"), styles["Title"]),
        Paragraph(escape(f"Period: {stamp(report.start)} to {stamp(report.end)} "
                         f"({report.timezone}). Generated {stamp(report.generated_at)}."),
                  styles["BodyText"]),
        Spacer(1, 6 * mm),
    ]
    if not report.has_data:
        story.append(Paragraph(escape(no_data_text(report)), styles["BodyText"]))
    else:
        rows: list[list[Any]] = [
            ["Service", "Uptime", "Downtime", "p95", "Error rate", "Deploys", "Incidents"]]
        rows += [[Paragraph(escape(s.name), small), percent(s.uptime),
                  minutes(s.downtime_minutes), milliseconds(s.p95_ms), error_rate(s.error_rate),
                  deploys(s), str(len(s.incidents))] for s in report.services]
        story += [_table(rows, [38 * mm, 22 * mm, 24 * mm, 18 * mm, 20 * mm, 30 * mm, 18 * mm]),
                  Spacer(1, 8 * mm)]
        for s in report.services:
            story += _service_section(s, small, stamp)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, title=f"{report.title} {report.month}",
                                 author="Tocsin", leftMargin=15 * mm, rightMargin=15 * mm,
                                 topMargin=15 * mm, bottomMargin=15 * mm)
    document.build(story)
    return buffer.getvalue()


def _service_section(s: ServiceSLA, small: ParagraphStyle,
                     stamp: Callable[[float | None], str]) -> list[Flowable]:
    sheet = getSampleStyleSheet()
    part: list[Flowable] = [Paragraph(escape(s.name), sheet["Heading2"])]
    part.append(Paragraph(escape(
        f"Uptime {percent(s.uptime)}, downtime {minutes(s.downtime_minutes)}, "
        f"p95 latency {milliseconds(s.p95_ms)}, error rate {error_rate(s.error_rate)}, "
        f"deploys {deploys(s)}."), sheet["BodyText"]))
    if s.slos:
        rows: list[list[Any]] = [["SLO", "Objective", "Measured", "Verdict", "Budget used"]]
        rows += [[Paragraph(escape(f"{r.name} ({r.indicator})"), small),
                  percent(r.objective, 2), percent(r.sli), slo_verdict(r), slo_budget(r)]
                 for r in s.slos]
        part += [Spacer(1, 3 * mm), _table(rows, [62 * mm, 22 * mm, 26 * mm, 18 * mm, 42 * mm])]
    part += [Spacer(1, 3 * mm), uptime_chart(s.days, _objective(s)), latency_chart(s.days)]
    if s.incidents:
        incidents: list[list[Any]] = [["Start", "End", "Duration", "Severity", "Summary"]]
        incidents += [[stamp(i.opened_at), stamp(i.closed_at), duration(i.duration_s), i.severity,
                  Paragraph(escape(i.summary), small)] for i in s.incidents]
        part += [Spacer(1, 3 * mm),
                 _table(incidents, [30 * mm, 30 * mm, 24 * mm, 16 * mm, 70 * mm])]
    else:
        part.append(Paragraph("No incidents.", sheet["BodyText"]))
    return [KeepTogether(part[:3]), *part[3:], Spacer(1, 6 * mm)]


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f3f5")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.HexColor("#adb5bd")),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#dee2e6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table
