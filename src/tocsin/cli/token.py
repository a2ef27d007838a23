"""``tocsin token``: create, list and revoke API tokens; ``tocsin password-hash``.

Token commands work on the store the config's ``storage`` names (or ``--url``)
directly, beside a running ``tocsin run``: it sees a new token at once and a
revocation within :data:`~tocsin.web.auth.TOKEN_CACHE_TTL` seconds. A token's
secret is printed once, by ``create``, and never stored.

Exit codes: 0 success; 1 the store failed, or no such token; 2 a config error
or invalid arguments.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from tocsin.cli import EXIT_CONFIG, EXIT_FAILED, _print_table, config_option, main
from tocsin.cli.db import _opened, _url, url_option
from tocsin.store.base import APIToken, TokenScope
from tocsin.store.schema import LATEST_VERSION
from tocsin.store.sql import SQLStore
from tocsin.web.credentials import CredentialError, hash_password, issue_token


@main.group()
def token() -> None:
    """API tokens: create, list, revoke."""


def _require_current(store: SQLStore) -> None:
    version = store.schema_version()
    if version < LATEST_VERSION:
        click.echo(f"{store.url} is at schema v{version}; run `tocsin db migrate` "
                   f"(or start `tocsin run`) first", err=True)
        sys.exit(EXIT_FAILED)


@token.command()
@config_option
@url_option
@click.option("--name", required=True, help="What the token is for, e.g. ci or prometheus.")
@click.option("--scope", type=click.Choice([s.value for s in TokenScope]), default="read",
              show_default=True, help="read, or write (which may also read).")
def create(config_path: Path | None, url: str | None, name: str, scope: str) -> None:
    """Create a token and print it once: keep it, it cannot be shown again."""
    name = name.strip()
    if not name or len(name) > 255:
        click.echo("--name must be 1-255 characters", err=True)
        sys.exit(EXIT_CONFIG)
    issued = issue_token()
    with _opened(_url(config_path, url)) as store:
        _require_current(store)
        store.add_api_token(APIToken(id=issued.id, name=name, scope=TokenScope(scope),
                                     hash=issued.hash, created_at=time.time()))
    click.echo(f"created {scope} token {issued.id} ({name}); it is shown only now:", err=True)
    click.echo(issued.text)


@token.command("list")
@config_option
@url_option
def list_tokens(config_path: Path | None, url: str | None) -> None:
    """Every token: id, name, scope, created, last used, revoked (never the secret)."""
    with _opened(_url(config_path, url)) as store:
        _require_current(store)
        tokens = store.list_api_tokens()
    if not tokens:
        click.echo("no API tokens: create one with `tocsin token create --name NAME`")
        return
    rows = [(t.id, t.name, t.scope.value, _when(t.created_at), _when(t.last_used_at),
             _when(t.revoked_at)) for t in tokens]
    _print_table(("ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"), rows,
                 ["red" if t.revoked_at is not None else "" for t in tokens])


@token.command()
@config_option
@url_option
@click.argument("token_id", metavar="ID")
def revoke(config_path: Path | None, url: str | None, token_id: str) -> None:
    """Revoke the token ID (a running server refuses it within seconds)."""
    with _opened(_url(config_path, url)) as store:
        _require_current(store)
        if not store.revoke_api_token(token_id, time.time()):
            found = store.get_api_token(token_id)
            click.echo(f"token {token_id} is already revoked" if found is not None
                       else f"no token {token_id!r}", err=True)
            sys.exit(EXIT_FAILED)
    click.echo(f"revoked token {token_id}")


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


@main.command("password-hash")
def password_hash() -> None:
    """Hash the admin password read from stdin, for TOCSIN_ADMIN_PASSWORD_HASH."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        click.echo(hash_password(password))
    except CredentialError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
