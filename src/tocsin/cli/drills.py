"""``tocsin channels``, ``tocsin channels test NAME`` and ``tocsin drill``: is every route alive?"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from tocsin.cli import EXIT_FAILED, _print_table, config_option, main
from tocsin.cli.remote import _api_errors, _client, _fail, _when, url_option
from tocsin.web.client import APIError, TocsinClient, path_segment

_SEVERITIES = ("P1", "P2", "P3", "P4")


@main.group(invoke_without_command=True)
@config_option
@url_option
@click.pass_context
def channels(ctx: click.Context, config_path: Path | None, url: str | None) -> None:
    """Each channel's health: last success, last error, pending and failed deliveries."""
    if ctx.invoked_subcommand is not None:
        return
    client = _client(config_path, url)
    with _api_errors(client, "no channels"):
        items = client.get("/api/v1/channels")["items"]
    rows = [(c["name"], "FAILING" if c["failing"] else "ok", c["type"],
             _when(c["last_success_at"]), str(c["pending"]), str(c["failed"]),
             (c["last_error"] or "-")[:80]) for c in items]
    _print_table(("CHANNEL", "STATE", "TYPE", "LAST SUCCESS", "PENDING", "FAILED",
                  "LAST ERROR"), rows, ["red" if c["failing"] else "green" for c in items])


@channels.command("test")
@config_option
@url_option
@click.option("--wait", "wait_s", default=60.0, show_default=True, help="Seconds to wait.")
@click.argument("name")
def channels_test(config_path: Path | None, url: str | None, wait_s: float, name: str) -> None:
    """Send one test message to channel NAME and report how it went."""
    _drill(_client(config_path, url), {"severity": "P3", "channel": name}, wait_s)


@main.command()
@config_option
@url_option
@click.option("--severity", type=click.Choice(_SEVERITIES), default="P1", show_default=True)
@click.option("--channel", default=None, help="Only this channel (default: the policy's).")
@click.option("--wait", "wait_s", default=60.0, show_default=True, help="Seconds to wait.")
def drill(config_path: Path | None, url: str | None, severity: str, channel: str | None,
          wait_s: float) -> None:
    """Send a marked synthetic alert through the real routing and outbox; report each route."""
    body: dict[str, Any] = {"severity": severity}
    if channel:
        body["channel"] = channel
    _drill(_client(config_path, url), body, wait_s)


def _drill(client: TocsinClient, body: dict[str, Any], wait_s: float) -> None:
    channel = body.get("channel")
    with _api_errors(client, f"no channel {channel!r}"):
        started = time.monotonic()
        deliveries = client.post("/api/v1/drills", body)["deliveries"]
    done: dict[str, dict[str, Any]] = {}
    deadline = started + wait_s
    while len(done) < len(deliveries) and time.monotonic() < deadline:
        for delivery in deliveries:
            key = delivery["key"]
            if key in done:
                continue
            try:
                now = client.get(f"/api/v1/deliveries/{path_segment(key)}")
            except APIError as error:
                if error.status == 404:
                    continue  # not saved yet
                raise
            if now["status"] != "pending":
                done[key] = now
        time.sleep(0.2)
    rows, failed = [], False
    for delivery in deliveries:
        result = done.get(delivery["key"])
        if result is None:
            failed = True
            rows.append((delivery["channel"], "pending", "-",
                         f"not delivered within {wait_s:g} s"))
        elif result["status"] == "sent":
            latency = (result["sent_at"] - result["created_at"]) * 1000
            rows.append((delivery["channel"], "delivered", f"{latency:.0f} ms", ""))
        else:
            failed = True
            rows.append((delivery["channel"], "FAILED", "-", result["last_error"] or ""))
    _print_table(("CHANNEL", "RESULT", "LATENCY", "ERROR"), rows,
                 ["green" if row[1] == "delivered" else "red" for row in rows])
    if failed:
        _fail("the drill did not reach every channel", EXIT_FAILED)
