"""``tocsin demo``: the product brief's example end to end, on 127.0.0.1 alone."""

from __future__ import annotations

import logging
import sys

import click

from tocsin.cli import EXIT_CONFIG, main, run_async
from tocsin.config import ConfigError
from tocsin.demo import DemoTimings, run_demo


@main.command()
@click.option("--duration", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--no-break", "no_break", is_flag=True,
              help="Do not break the backend; just run everything.")
@click.option("--break-after", type=click.FloatRange(min=0), default=DemoTimings.break_after,
              show_default=True, metavar="SECONDS", help="When the backend breaks.")
def demo(duration: float | None, no_break: bool, break_after: float) -> None:
    """Run the example (backend, front end, Render API, mail) locally and break the backend.

    Shows the P1 email, the restart, the verification and RECOVERED within about a
    minute. Everything listens on 127.0.0.1; nothing is sent anywhere else.
    """
    root = logging.getLogger()
    if root.level == logging.INFO:  # the default: the printed story is enough
        root.setLevel(logging.WARNING)
    try:
        run_async(run_demo(duration=duration, break_backend=not no_break,
                           timings=DemoTimings(break_after=break_after)))
    except ConfigError as error:  # pragma: no cover - the demo writes a valid config
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:  # Ctrl-C before Tocsin took over the signal
        sys.exit(130)
