"""``tocsin report``: the monthly SLA report, the alert review and the health report.

Each reads the store the config's ``storage`` names (beside a running Tocsin
too: it only reads). Exit codes: 0 success; 1 the store failed; 2 a config
error or invalid arguments (a malformed or future month, a bad duration).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from tocsin.cli import EXIT_CONFIG, EXIT_FAILED, _load_or_exit, config_option, main
from tocsin.config.durations import parse_duration
from tocsin.reports.alerts import render_alert_review, review_alerts
from tocsin.reports.health import build_health_report, render_health_html
from tocsin.reports.render import render_html, render_markdown, render_pdf
from tocsin.reports.sla import ReportError, build_sla_report, previous_month
from tocsin.store import Store, StoreError, open_store


@main.group()
def report() -> None:
    """Reports from what Tocsin measured: sla, alerts, health."""


def _open(url: str) -> Store:
    try:
        store = open_store(url)
        store.migrate()
    except StoreError as error:
        click.echo(f"{url}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    return store


@report.command()
@config_option
@click.option("--month", default=None, metavar="YYYY-MM",
              help="The month (default: last month, in the report's time zone).")
@click.option("--format", "format_", type=click.Choice(["html", "pdf", "md"]), default=None,
              help="Default: the config's reports.sla.format (pdf).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write here (default: sla-YYYY-MM.<format>; '-' for standard output).")
@click.option("--timezone", default=None, help="IANA time zone of the month's boundaries.")
def sla(config_path: Path | None, month: str | None, format_: str | None,
        output: Path | None, timezone: str | None) -> None:
    """The monthly SLA report: uptime, downtime, incidents, latency, deploys, SLOs, charts."""
    loaded = _load_or_exit(config_path)
    settings = loaded.config.reports.sla
    zone_name = timezone or settings.timezone
    now = time.time()
    month = month or previous_month(now, zone_name)
    store = _open(loaded.config.storage)
    try:
        built = build_sla_report(store, loaded.config, loaded.checks, month, now,
                                 timezone=zone_name)
    except ReportError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
    except StoreError as error:
        click.echo(f"{store.url}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        store.close()
    chosen = format_ or settings.format
    content: bytes = (render_pdf(built) if chosen == "pdf" else
                      (render_html(built) if chosen == "html" else render_markdown(built)
                       ).encode())
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(content)
        return
    target = output or Path(f"sla-{month}.{chosen}")
    target.write_bytes(content)
    note = "" if built.has_data else " (no data for that month: the report says so)"
    click.echo(f"wrote {target} ({len(content):,} bytes){note}")


@report.command()
@config_option
@click.option("--since", default="30d", show_default=True, help="How far back: 7d, 30d, 90d…")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def alerts(config_path: Path | None, since: str, as_json: bool) -> None:
    """Alert review: per rule, firings, acks, time to ack, noise, remediations."""
    try:
        seconds = parse_duration(since)
    except ValueError as error:
        click.echo(f"--since: {error}", err=True)
        sys.exit(EXIT_CONFIG)
    loaded = _load_or_exit(config_path)
    store = _open(loaded.config.storage)
    now = time.time()
    try:
        reviews = review_alerts(store, now - seconds, now)
    except StoreError as error:
        click.echo(f"{store.url}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reviews], indent=2))
    else:
        click.echo(render_alert_review(reviews, since), nl=False)


@report.command()
@config_option
@click.option("--html", "as_html", is_flag=True, help="Print the HTML page instead of JSON.")
def health(config_path: Path | None, as_html: bool) -> None:
    """A health report now, from the store's latest results (JSON, or --html)."""
    loaded = _load_or_exit(config_path)
    store = _open(loaded.config.storage)
    try:
        latest = store.latest_results()
        data = build_health_report(store, loaded.checks, latest.get, time.time())
    except StoreError as error:
        click.echo(f"{store.url}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        store.close()
    click.echo(render_health_html(data) if as_html else json.dumps(data, indent=2, default=str))
