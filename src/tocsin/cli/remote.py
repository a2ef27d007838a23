"""Commands that talk to a running ``tocsin run`` over its JSON API: ack, alerts, silences."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from tocsin.alerting.silences import parse_matcher
from tocsin.cli import (
    EXIT_CONFIG,
    EXIT_FAILED,
    _load_or_exit,
    _print_table,
    config_option,
    main,
)
from tocsin.config.durations import parse_duration
from tocsin.web.client import TOKEN_ENV, APIError, ClientError, TocsinClient, path_segment

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
            _fail(f"Tocsin refused the API token: set {TOKEN_ENV} to a token made by "
                  f"`tocsin token create` (or the server's own {TOKEN_ENV})" if client.token
                  else f"Tocsin requires an API token for this: set {TOKEN_ENV}")
        if error.status == 403:
            _fail(f"Tocsin refused this: {error.detail} (a write needs a token created "
                  f"with --scope write)")
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
        page = client.get("/api/v1/silences", expired=show_all, limit=1000)
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


_ATTEMPT_STYLE = {"recovered": "green", "failed": "red", "interrupted": "yellow",
                  "refused": "yellow", "started": "cyan", "acted": "cyan", "verifying": "cyan"}


@main.group()
def remediation() -> None:
    """Remediation: the audit log, and services waiting for a person to re-enable them."""


@remediation.command("log")
@config_option
@url_option
@click.option("--service", default=None, help="Only this service's attempts.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def remediation_log(config_path: Path | None, url: str | None, service: str | None,
                    limit: int) -> None:
    """List remediation attempts, newest first: action, state, verification, duration."""
    client = _client(config_path, url)
    with _api_errors(client, f"Tocsin at {client.base_url} has no remediation API"):
        page = client.get("/api/v1/remediation/attempts", service=service, limit=limit)
    items: list[dict[str, Any]] = page["items"]
    if not items:
        click.echo("no remediation attempts")
    else:
        rows = []
        for attempt in items:
            took = attempt["duration_s"]
            note = attempt["error"] or attempt["verification"] or attempt["answer"] or ""
            rows.append((_when(attempt["started_at"]), attempt["state"], attempt["service"],
                         attempt["action"], "-" if took is None else f"{took:.0f} s", note))
        _print_table(("STARTED", "STATE", "SERVICE", "ACTION", "TOOK", "NOTE"), rows,
                     [_ATTEMPT_STYLE.get(attempt["state"], "default") for attempt in items])
        if page["total"] > len(items):
            click.echo(f"({len(items)} of {page['total']}; see more with --limit)", err=True)
    for disabled in page.get("disabled", []):
        if service is None or disabled["service"] == service:
            click.echo(f"{disabled['service']}: remediation disabled since "
                       f"{_when(disabled['disabled_at'])} ({disabled['reason']}); "
                       f"`tocsin remediation enable {disabled['service']}`", err=True)


@remediation.command("enable")
@config_option
@url_option
@click.argument("service")
def remediation_enable(config_path: Path | None, url: str | None, service: str) -> None:
    """Let remediation act on SERVICE again after its attempts ran out."""
    client = _client(config_path, url)
    with _api_errors(client, f"remediation of {service!r} is not disabled"):
        client.post(f"/api/v1/remediation/{path_segment(service)}/enable", {})
    click.echo(f"remediation enabled for {service}")
