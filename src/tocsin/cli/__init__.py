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
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tocsin import __version__
from tocsin.config import (
    EXAMPLE_CONFIG_PATH,
    ConfigError,
    LoadedConfig,
    RedactingFilter,
    Redactor,
    load_config,
)
from tocsin.probes import CheckResult, CheckSpec, CheckStatus, ProbeContext
from tocsin.runtime import Runtime, build_probes
from tocsin.scheduler import run_once
from tocsin.store import Store, StoreError, open_store
from tocsin.web.credentials import CredentialError

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
    except StoreError as error:  # a corrupt or newer database, or one another Tocsin holds
        logging.getLogger("tocsin").error("%s", error)
        sys.exit(EXIT_FAILED)
    except CredentialError as error:  # a malformed password hash or session secret
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)


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
    results = run_async(_run_checks(specs, loaded))
    _print_results(results)
    sys.exit(EXIT_OK if all(r.status.is_ok for r in results) else EXIT_FAILED)


async def _run_checks(specs: list[CheckSpec[Any]], loaded: LoadedConfig) -> list[CheckResult]:
    context = ProbeContext()
    context.databases = loaded.config.databases
    store: Store | None = None
    if any(spec.type == "slo" for spec in specs):  # SLOs are measured from the store
        try:
            store = await asyncio.to_thread(open_store, loaded.config.storage)
            await asyncio.to_thread(store.migrate)
            context.store = store
        except StoreError as error:
            click.echo(f"SLO checks cannot read the store: {error}", err=True)
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
        if store is not None:
            await asyncio.to_thread(store.close)


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
        status = f"[{style}]{cells[1]}[/]" if style else cells[1]
        table.add_row(cells[0], status, *cells[2:])
    console.print(table)


# Commands that talk to a running server register themselves on `main`.
from tocsin.cli import remote as _remote  # noqa: E402,F401  isort: skip
from tocsin.cli import drills as _drills  # noqa: E402,F401  isort: skip
from tocsin.cli import demo as _demo  # noqa: E402,F401  isort: skip
from tocsin.cli import db as _db  # noqa: E402,F401  isort: skip
from tocsin.cli import token as _token  # noqa: E402,F401  isort: skip
from tocsin.cli import report as _report  # noqa: E402,F401  isort: skip
