"""The report's charts, drawn once with ReportLab: embedded in the PDF, and as SVG in HTML.

Two per service: daily uptime (bars, with the objective as a line when there
is one) and daily p95 latency (a line). Days without data leave a gap, never a
zero: a missing measurement is not an outage.
"""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.lib import colors

from tocsin.reports.model import DayPoint

WIDTH, HEIGHT = 460, 150
_GOOD = colors.HexColor("#2f9e44")
_BAD = colors.HexColor("#e03131")
_INK = colors.HexColor("#343a40")
_GRID = colors.HexColor("#dee2e6")


def uptime_chart(days: Sequence[DayPoint], objective: float | None = None) -> Drawing:
    """Daily uptime in percent, bars red on the days below the objective."""
    drawing = Drawing(WIDTH, HEIGHT)
    values = [point.uptime * 100 if point.uptime is not None else None for point in days]
    known = [value for value in values if value is not None]
    floor = _uptime_floor(min(known) if known else 100.0, objective)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 45, 25, WIDTH - 60, HEIGHT - 45
    # Bars start at the floor: a gap is drawn for a day with no data.
    chart.data = [[value if value is not None else None for value in values] or [None]]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax = floor, 100.0
    chart.valueAxis.valueStep = max((100.0 - floor) / 4, 0.01)
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = "%.2f%%" if floor > 99 else "%.1f%%"
    chart.categoryAxis.categoryNames = [
        str(point.day.day) if point.day.day % 5 == 0 or point.day.day == 1 else ""
        for point in days] or [""]
    chart.categoryAxis.labels.fontSize = 7
    chart.bars.strokeWidth = 0
    chart.bars[0].fillColor = _GOOD
    threshold = objective * 100 if objective is not None else None
    for index, value in enumerate(values):
        if value is not None and threshold is not None and value < threshold:
            chart.bars[(0, index)].fillColor = _BAD
    drawing.add(chart)
    if threshold is not None and floor < threshold:
        y = chart.y + (threshold - floor) / (100.0 - floor) * chart.height
        drawing.add(Line(chart.x, y, chart.x + chart.width, y, strokeColor=_INK,
                         strokeDashArray=[3, 2], strokeWidth=0.7))
    drawing.add(String(chart.x, HEIGHT - 12, "Daily uptime", fontSize=9, fillColor=_INK))
    return drawing


def latency_chart(days: Sequence[DayPoint]) -> Drawing:
    """Daily p95 latency in ms; days without data are left out of the line."""
    drawing = Drawing(WIDTH, HEIGHT)
    points = [(float(point.day.day), point.p95_ms) for point in days if point.p95_ms is not None]
    drawing.add(String(45, HEIGHT - 12, "Daily p95 latency (ms)", fontSize=9, fillColor=_INK))
    if not points:
        drawing.add(String(45, HEIGHT / 2, "no latency measured", fontSize=8, fillColor=_INK))
        return drawing
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 45, 25, WIDTH - 60, HEIGHT - 45
    plot.data = [points]
    plot.lines[0].strokeColor = colors.HexColor("#1c7ed6")
    plot.lines[0].strokeWidth = 1.2
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 1, max(len(days), 2)
    plot.xValueAxis.valueSteps = [d for d in range(1, len(days) + 1) if d == 1 or d % 5 == 0]
    plot.xValueAxis.labels.fontSize = 7
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.labels.fontSize = 7
    plot.yValueAxis.gridStrokeColor = _GRID
    drawing.add(plot)
    return drawing


def to_svg(drawing: Drawing) -> str:
    """The drawing as an inline ``<svg>`` element (no XML declaration)."""
    text: str = renderSVG.drawToString(drawing)
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _uptime_floor(lowest: float, objective: float | None) -> float:
    """Where the uptime axis starts: low enough to show the worst day and the objective."""
    candidates = [lowest]
    if objective is not None:
        candidates.append(objective * 100)
    bottom = min(candidates)
    for floor in (99.9, 99.5, 99.0, 98.0, 95.0, 90.0, 80.0, 50.0):
        if bottom >= floor + (100 - floor) * 0.05 or bottom > floor:
            return floor
    return 0.0
