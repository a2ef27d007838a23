"""The ``tocsin`` command: run, check, validate, init; and ack, unack, alerts, silence,
which talk to a running ``tocsin run`` over its JSON API (:mod:`tocsin.web.client`).

Exit codes: 0 success; 1 a check failed (``tocsin check``), or the server could
not be reached or refused the request; 2 a config error or invalid arguments.
Output is styled with progress on a terminal and plain text otherwise.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tocsin import __version__
from tocsin.alerting.silences import parse_matcher
from tocsin.config import (
    EXAMPLE_CONFIG_PATH,
    ConfigError,
    LoadedConfig,
    RedactingFilter,
    Redactor,
    load_config,
)
from tocsin.config.durations import parse_duration
from tocsin.probes import CheckResult, CheckSpec, CheckStatus, ProbeContext
from tocsin.runtime import Runtime, build_probes
from tocsin.scheduler import run_once
from tocsin.web.client import TOKEN_ENV, APIError, ClientError, TocsinClient, path_segment

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_redacting_filter = RedactingFilter(Redactor())


def setup_logging(level: str) -> None:
    """Log to stderr, every record passing through the secret redactor."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_redacting_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def use_redactor(redactor: Redactor) -> None:
    _redacting_filter.redactor = redactor


def _load_or_exit(path: Path | None) -> LoadedConfig:
    try:
        loaded = load_config(path)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
    use_redactor(loaded.redactor)
    return loaded


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_async(main: Any) -> Any:
    """Run a coroutine on uvloop when available (a third less CPU per check)."""
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        return runner.run(main)


config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
    default=None, help="Config file (default: ./tocsin.yaml, else the built-in default).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tocsin")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def main(log_level: str) -> None:
    """Tocsin: monitoring, alerting and self-healing."""
    setup_logging(log_level)


@main.command()
@config_option
def run(config_path: Path | None) -> None:
    """Run the scheduler and the web server until SIGTERM/SIGINT; SIGHUP reloads the config."""
    _load_or_exit(config_path)  # refuse a bad config before anything starts
    runtime = Runtime(config_path, on_redactor=use_redactor)
    try:
        run_async(runtime.run())
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
    except OSError as error:
        logging.getLogger("tocsin").error("%s", error)
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
def validate(file: Path | None) -> None:
    """Check a config file: print every error with its path and line, or "ok"."""
    loaded = _load_or_exit(file)
    click.echo(f"ok: {loaded.source} ({len(loaded.checks)} checks)")


@main.command()
@click.argument("path", required=False, default="tocsin.yaml",
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write an annotated example config (default ./tocsin.yaml)."""
    if path.exists() and not force:
        click.echo(f"{path} exists; use --force to overwrite it", err=True)
        sys.exit(EXIT_FAILED)
    shutil.copyfile(EXAMPLE_CONFIG_PATH, path)
    click.echo(f"wrote {path}; check it with: tocsin validate {path}")


@main.command()
@config_option
@click.argument("names", nargs=-1)
def check(config_path: Path | None, names: tuple[str, ...]) -> None:
    """Run checks once (all, or those NAMED), print a table; exit 1 if any fails."""
    loaded = _load_or_exit(config_path)
    known = {spec.name for spec in loaded.checks}
    unknown = [name for name in names if name not in known]
    if unknown:
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            click.echo(f"no check named {name!r}{hint}", err=True)
        sys.exit(EXIT_CONFIG)
    specs = [spec for spec in loaded.checks if not names or spec.name in names]
    results = run_async(_run_checks(specs))
    _print_results(results)
    sys.exit(EXIT_OK if all(r.status.is_ok for r in results) else EXIT_FAILED)


async def _run_checks(specs: list[CheckSpec[Any]]) -> list[CheckResult]:
    context = ProbeContext()
    probes = build_probes(specs, context)
    console = Console(stderr=True)
    try:
        if not console.is_terminal or len(probes) < 2:
            return await run_once(probes)
        columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("checks", total=len(probes))
            return await run_once(probes, on_result=lambda _: progress.advance(task))
    finally:
        await context.close()


_STATUS_STYLE = {CheckStatus.OK: "green", CheckStatus.FAILING: "red", CheckStatus.ERROR: "magenta"}


def _print_results(results: list[CheckResult]) -> None:
    rows = [
        (r.check, r.status.value, f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-",
         str(r.code) if r.code is not None else "-", r.message)
        for r in results
    ]
    _print_table(("CHECK", "STATUS", "LATENCY", "CODE", "MESSAGE"), rows,
                 [_STATUS_STYLE[r.status] for r in results])


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 styles: Sequence[str]) -> None:
    """A table: styled on a terminal, plain columns otherwise; ``styles`` colour column 2."""
    console = Console()
    if not console.is_terminal:
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        for row in (headers, *rows):
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                       .rstrip())
        return
    table = Table(*headers)
    for style, row in zip(styles, rows, strict=True):
        cells = [escape(cell) for cell in row]
        table.add_row(cells[0], f"[{style}]{cells[1]}[/]", *cells[2:])
    console.print(table)


# -- talking to a running server -------------------------------------------------------

url_option = click.option(
    "--url", envvar="TOCSIN_URL", default=None, metavar="URL",
    help="The running server, e.g. http://127.0.0.1:8080 (default: $TOCSIN_URL, else the "
         "config's web.host and web.port).",
)
by_option = click.option(
    "--by", default=lambda: os.environ.get("USER") or "cli", show_default="$USER",
    help="Who is doing this, as recorded.",
)


def _client(config_path: Path | None, url: str | None) -> TocsinClient:
    if url is None:
        web = _load_or_exit(config_path).config.web
        host = web.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"  # a wildcard bind answers on loopback
        elif host == "::":
            host = "::1"
        url = f"http://[{host}]:{web.port}" if ":" in host else f"http://{host}:{web.port}"
    return TocsinClient.from_env(url)


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


@contextmanager
def _api_errors(client: TocsinClient, not_found: str) -> Iterator[None]:
    """Turn a failed request into one clear line and an exit code."""
    try:
        yield
    except APIError as error:
        if error.status == 404:
            _fail(not_found)
        if error.status == 401:
            _fail(f"Tocsin refused the API token: set {TOKEN_ENV} to the token the server "
                  f"was started with" if client.token else
                  f"Tocsin requires an API token for this: set {TOKEN_ENV}")
        if error.status == 403:
            _fail(f"Tocsin accepts this without a token only from its own host: start "
                  f"`tocsin run` with {TOKEN_ENV} set, and set it here too ({error.detail})")
        if error.status == 422:
            _fail(error.detail, EXIT_CONFIG)
        _fail(f"Tocsin at {client.base_url} answered {error.status}: {error.detail}")
    except ClientError as error:
        _fail(str(error))


def _when(timestamp: float | None) -> str:
    """Epoch seconds as local time, to the second."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@config_option
@url_option
@by_option
@click.argument("fingerprint")
def ack(config_path: Path | None, url: str | None, by: str, fingerprint: str) -> None:
    """Acknowledge a firing alert: its repeats and escalation stop."""
    client = _client(config_path, url)
    with _api_errors(client, f"no alert {fingerprint!r}"):
        alert = client.post(f"/api/v1/alerts/{path_segment(fingerprint)}/ack", {"by": by})
    if alert["state"] != "acknowledged":
        _fail(f"alert {fingerprint!r} is {alert['state']}, not firing: nothing to acknowledge")
    if alert["acked_by"] != by:
        click.echo(f"{fingerprint} was already acknowledged by {alert['acked_by']} "
                   f"at {_when(alert['acked_at'])}")
        return
    click.echo(f"acknowledged {fingerprint} (by {by})")


@main.command()
@config_option
@url_option
@by_option
@click.argument("fingerprint")
def unack(config_path: Path | None, url: str | None, by: str, fingerprint: str) -> None:
    """Return an acknowledged alert to firing: repeats and escalation resume."""
    client = _client(config_path, url)
    with _api_errors(client, f"no alert {fingerprint!r}"):
        alert = client.post(f"/api/v1/alerts/{path_segment(fingerprint)}/unack", {"by": by})
    if alert["state"] != "firing":
        _fail(f"alert {fingerprint!r} is {alert['state']}: nothing to unacknowledge")
    click.echo(f"{fingerprint} is firing (not acknowledged)")


_ALERT_STATES = ("firing", "acknowledged", "pending", "resolved")
_ALERT_STYLE = {"firing": "red", "acknowledged": "yellow", "pending": "cyan",
                "resolved": "green"}
_ALERT_SINCE = {"firing": "fired_at", "acknowledged": "acked_at", "pending": "active_at",
                "resolved": "resolved_at"}


@main.command()
@config_option
@url_option
@click.option("--state", type=click.Choice(_ALERT_STATES), default=None,
              help="Only alerts in this state.")
@click.option("--service", default=None, help="Only this service's alerts.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def alerts(config_path: Path | None, url: str | None, state: str | None, service: str | None,
           limit: int) -> None:
    """List alerts, the most recently changed first."""
    client = _client(config_path, url)
    with _api_errors(client, f"Tocsin at {client.base_url} has no alerts API"):
        page = client.get("/api/v1/alerts", state=state, service=service, limit=limit)
    items: list[dict[str, Any]] = page["items"]
    if not items:
        click.echo("no alerts")
        return
    rows = []
    for alert in items:
        flags = [name for name, on in alert["flags"].items() if on]
        since = alert.get(_ALERT_SINCE.get(alert["state"], "updated_at"))
        note = alert["summary"] or alert["message"]
        if alert["state"] == "acknowledged":
            note = f"acked by {alert['acked_by']}" + (f"; {note}" if note else "")
        rows.append((alert["fingerprint"], ", ".join([alert["state"], *flags]),
                     alert["severity"], alert["service"] or "-", _when(since), note))
    _print_table(("FINGERPRINT", "STATE", "SEVERITY", "SERVICE", "SINCE", "SUMMARY"), rows,
                 [_ALERT_STYLE.get(alert["state"], "default") for alert in items])
    if page["total"] > len(items):
        click.echo(f"({len(items)} of {page['total']}; see more with --limit)", err=True)


@main.group()
def silence() -> None:
    """Silences: alerts that match are recorded but not notified."""


@silence.command("add")
@config_option
@url_option
@by_option
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", default=None, help="How long, from now: 30m, 2h, 1d12h.")
@click.option("--until", default=None, metavar="ISO8601",
              help="When it ends: 2030-06-01T18:00 (local time) or with an offset.")
@click.option("--comment", default="", help="Why: shown with the silence.")
def silence_add(config_path: Path | None, url: str | None, by: str, matchers: tuple[str, ...],
                duration: str | None, until: str | None, comment: str) -> None:
    """Silence alerts matching every MATCHER (service=backend, alertname=~down|failed).

    Prints the new silence's id.
    """
    for text in matchers:
        try:
            parse_matcher(text)
        except ValueError as error:
            _fail(str(error), EXIT_CONFIG)
    body: dict[str, Any] = {"matchers": list(matchers), "created_by": by, "comment": comment}
    if (duration is None) == (until is None):
        _fail("give how long it lasts: --duration 2h, or --until 2030-06-01T18:00", EXIT_CONFIG)
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as error:
            _fail(str(error), EXIT_CONFIG)
        if seconds <= 0:
            _fail("--duration must be longer than zero, e.g. 2h", EXIT_CONFIG)
        body["duration"] = duration
    else:
        assert until is not None
        try:
            ends = datetime.fromisoformat(until)
        except ValueError:
            _fail(f"invalid --until {until!r}: use ISO 8601, e.g. 2030-06-01T18:00 "
                  "or 2030-06-01T18:00:00+02:00", EXIT_CONFIG)
        body["ends_at"] = ends.astimezone().timestamp()  # a naive time is local time
    client = _client(config_path, url)
    with _api_errors(client, f"Tocsin at {client.base_url} has no silences API"):
        created = client.post("/api/v1/silences", body)
    click.echo(created["id"])
    click.echo(f"silenced {' '.join(created['matchers'])} until {_when(created['ends_at'])}",
               err=True)


_SILENCE_STYLE = {"active": "yellow", "pending": "cyan", "expired": "dim"}


@silence.command("list")
@config_option
@url_option
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
def silence_list(config_path: Path | None, url: str | None, show_all: bool) -> None:
    """List pending and active silences (and expired ones with --all)."""
    client = _client(config_path, url)
    with _api_errors(client, f"Tocsin at {client.base_url} has no silences API"):
        page = client.get("/api/v1/silences", expired=show_all)
    items: list[dict[str, Any]] = page["items"]
    if not items:
        click.echo("no silences")
        return
    rows = [(s["id"], s["state"], " ".join(s["matchers"]), _when(s["starts_at"]),
             _when(s["ends_at"]), s["created_by"], s["comment"]) for s in items]
    _print_table(("ID", "STATE", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"), rows,
                 [_SILENCE_STYLE.get(s["state"], "default") for s in items])


@silence.command("expire")
@config_option
@url_option
@click.argument("silence_id", metavar="ID")
def silence_expire(config_path: Path | None, url: str | None, silence_id: str) -> None:
    """End a silence now (its record is kept)."""
    client = _client(config_path, url)
    with _api_errors(client, f"no silence {silence_id!r}"):
        client.delete(f"/api/v1/silences/{path_segment(silence_id)}")
    click.echo(f"expired {silence_id}")
