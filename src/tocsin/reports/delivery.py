"""The monthly SLA report on a schedule: built, stored, and sent through the outbox.

On ``reports.sla.schedule`` (cron, in ``reports.sla.timezone``) the report of
the month before goes to each of ``reports.sla.channels`` as a ``report``
notification with the document attached. It is written to the outbox like any
alert notification — retried, with fallbacks, and never sent twice: its key is
``report:sla:<month>:<channel>``, so a restart that runs the job again finds
it there. A process that was down at the scheduled time catches up at start,
within :data:`CATCH_UP`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from tocsin.alerting.model import Attachment, Delivery, Notification, NotificationKind, Severity
from tocsin.config.cron import next_fire, previous_fire
from tocsin.config.model import TocsinConfig
from tocsin.probes.base import CheckSpec
from tocsin.reports.jobs import ReportJob
from tocsin.reports.model import SLAReport, StoredReport
from tocsin.reports.render import minutes, percent, render_html, render_markdown, render_pdf
from tocsin.reports.sla import build_sla_report, previous_month
from tocsin.store.base import Store, StoreError

log = logging.getLogger(__name__)

CATCH_UP = 7 * 86400.0
RETRY = 300.0
_CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html", "md": "text/markdown"}


def report_notifications(report: SLAReport, channels: Sequence[str], format_: str,
                         now: float) -> list[Notification]:
    """One ``report`` notification per channel, the document attached."""
    if format_ == "pdf":
        document = render_pdf(report)
    elif format_ == "html":
        document = render_html(report).encode()
    else:
        document = render_markdown(report).encode()
    attachment = Attachment(f"sla-{report.month}.{format_}", _CONTENT_TYPES[format_],
                            base64.b64encode(document).decode("ascii"))
    subject = f"{report.title} — {report.month}"
    return [Notification(key=f"report:sla:{report.month}:{channel}", channel=channel,
                         kind=NotificationKind.REPORT, severity=Severity.P4, subject=subject,
                         alerts=(), created_at=now, body=summary_text(report),
                         attachments=(attachment,))
            for channel in channels]


def summary_text(report: SLAReport) -> str:
    """The mail's text: one line per service, the full report attached."""
    if not report.has_data:
        return f"{report.title} for {report.month}: no measurements were stored for that month."
    lines = [f"{report.title} for {report.month} (attached)."]
    for service in report.services:
        slos = ", ".join(f"{row.name} {'met' if row.met else 'missed'}"
                         for row in service.slos if row.met is not None)
        lines.append(f"{service.name}: uptime {percent(service.uptime)}, downtime "
                     f"{minutes(service.downtime_minutes)}, {len(service.incidents)} incidents"
                     + (f"; SLOs: {slos}" if slos else ""))
    return "\n\n".join(lines)


class SLAReporter(ReportJob):
    """Runs the scheduled SLA report; ``wake`` is the outbox sender's, to send at once."""

    task_name = "tocsin-sla-report"

    def __init__(self, store: Store, config: Callable[[], TocsinConfig],
                 checks: Callable[[], Sequence[CheckSpec[Any]]], wake: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.checks = checks
        self.wake = wake
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.config().reports.sla.schedule is not None

    async def run_once(self, month: str | None = None) -> list[Delivery]:
        """Build last month's (or ``month``'s) report, store it, and enqueue its deliveries."""
        config, now = self.config(), self.clock()
        settings = config.reports.sla
        month = month or previous_month(now, settings.timezone)
        report = await asyncio.to_thread(build_sla_report, self.store, config, self.checks(),
                                         month, now)
        notes = await asyncio.to_thread(report_notifications, report, settings.channels,
                                        settings.format, now)
        stored = await asyncio.to_thread(self._save, report, notes, now)
        self.wake()
        log.info("SLA report %s: %d deliveries enqueued", month, len(stored))
        return stored

    def _save(self, report: SLAReport, notes: Sequence[Notification],
              now: float) -> list[Delivery]:
        stored = self.store.list_reports("sla", since=report.start, limit=1000)
        if all(existing.period != report.month for existing in stored):
            self.store.save_report(StoredReport("sla", report.month, now,
                                                {"has_data": report.has_data,
                                                 **dataclasses.asdict(report)}))
        return self.store.save_alerting(deliveries=[Delivery(note, next_attempt_at=now)
                                                    for note in notes])

    async def _run(self) -> None:
        settings = self.config().reports.sla
        assert settings.schedule is not None
        now = self.clock()
        last = previous_fire(settings.schedule, settings.timezone, now)
        if now - last <= CATCH_UP:
            await self._attempt()  # the outbox skips what was already enqueued
        while True:
            now = self.clock()
            await asyncio.sleep(max(0.0, next_fire(settings.schedule, settings.timezone, now)
                                    - now))
            await self._attempt()

    async def _attempt(self) -> None:
        while True:
            try:
                await self.run_once()
                return
            except StoreError as error:
                log.error("SLA report: the store failed; retrying in %.0f s: %s", RETRY, error)
                await asyncio.sleep(RETRY)
