"""The result store: one interface, one implementation per database.

Everything above this package (the writer, the web API, SLO maths) talks to a
:class:`Store` and never to SQLAlchemy or a driver. The methods are
synchronous; callers run them in a thread (:class:`~tocsin.store.writer.ResultWriter`
keeps one dedicated thread for writes).

Exceptions::

    StoreError                root of this layer; a database error that retrying will not fix
     ├── StoreUnavailable     transient: locked, disk I/O, disk full, connection lost — retry
     └── SchemaError          the schema is not what this Tocsin expects
                              (database newer than the code, or never migrated)

Driver and SQLAlchemy exceptions are translated at the boundary (see
:mod:`tocsin.store.sql`); none escapes a :class:`Store` method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

from tocsin.probes.base import CheckResult


class StoreError(Exception):
    """The store failed; see the subclasses for whether to retry."""


class StoreUnavailable(StoreError):
    """A transient failure (locked, I/O, connection lost): the same call may succeed later."""


class SchemaError(StoreError):
    """The database schema does not match this version of Tocsin."""


class Store(ABC):
    """Where check results are kept: history per check, and the latest result of each."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The database URL, with any password hidden."""

    @abstractmethod
    def migrate(self) -> int:
        """Apply the pending migrations, each in its own transaction; return the schema version.

        Idempotent: on an up-to-date database it changes nothing.
        Raises :class:`SchemaError` when the database is newer than this code.
        """

    @abstractmethod
    def schema_version(self) -> int:
        """The version recorded in the database; 0 for an empty database."""

    @abstractmethod
    def write_results(self, results: Sequence[CheckResult]) -> None:
        """Append ``results`` to history and update the latest result of each check.

        One transaction for the whole batch: either every result is stored or
        none is. A result older than the stored latest of its check goes to
        history only.
        """

    @abstractmethod
    def latest_results(self, checks: Collection[str] | None = None) -> dict[str, CheckResult]:
        """The newest result of each check (of every check when ``checks`` is None), by name.

        A check that has no result yet is absent from the answer.
        """

    @abstractmethod
    def history(
        self,
        check: str,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[CheckResult]:
        """Results of ``check`` with ``since <= started_at < until``, newest first.

        At most ``limit`` of them: the newest ``limit``.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""
