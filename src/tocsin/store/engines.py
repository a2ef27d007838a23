"""`open_store`: pick the backend a URL names.

A new database is one ``open_<name>(url) -> Store`` function in
:mod:`tocsin.store.backends` and one line in ``_OPENERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from tocsin.store.backends.postgresql import open_postgresql
from tocsin.store.backends.sqlite import open_sqlite
from tocsin.store.base import Store, StoreError

_OPENERS: dict[str, Callable[[str], Store]] = {
    "sqlite": open_sqlite,
    "postgresql": open_postgresql,
}


def open_store(url: str) -> Store:
    """Open the store at ``url`` (``sqlite:///tocsin.db``, ``postgresql://USER@HOST:PORT/DB``).

    The store is not migrated: call :meth:`Store.migrate` before using it.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        # The text may hold a password: do not echo it.
        raise StoreError("not a database URL (expected sqlite:///PATH or postgresql://…)") from exc
    opener = _OPENERS.get(parsed.get_backend_name())
    if opener is None:
        known = ", ".join(sorted(_OPENERS))
        shown = parsed.render_as_string(hide_password=True)
        raise StoreError(f"unsupported database in {shown}; known: {known}")
    return opener(url)
