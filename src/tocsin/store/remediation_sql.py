"""`RemediationSQL`: the remediation audit log half of :class:`~tocsin.store.sql.SQLStore`.

Attempts are inserted before their action runs and updated by id as they move
on; a disabled service is one row, inserted unless present (the first
exhaustion is the one a person reads about). Transactions and the translation
of driver errors are the concrete store's, as in :mod:`tocsin.store.alerts_sql`.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update

from tocsin.remediation.audit import AttemptState, RemediationAttempt, capped
from tocsin.remediation.policy import DisabledRemediation, RemediationMode
from tocsin.store.base import Store, StoreError
from tocsin.store.schema import remediation_attempts as attempt_table
from tocsin.store.schema import remediation_disabled as disabled_table

if TYPE_CHECKING:
    from tocsin.store.sql import DialectHooks

_UNFINISHED = [state.value for state in AttemptState if state.unfinished]


class RemediationSQL(Store):
    """The remediation methods of :class:`Store`, over the concrete store's transactions."""

    _hooks: DialectHooks

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    def add_attempt(self, attempt: RemediationAttempt) -> int:
        stmt = insert(attempt_table).values(_attempt_row(attempt)).returning(attempt_table.c.id)
        with self._translated(), self._transaction(write=True) as conn:
            return int(conn.execute(stmt).scalar_one())

    def update_attempt(self, attempt: RemediationAttempt) -> None:
        if attempt.id is None:
            raise StoreError("cannot update an attempt that was never stored (its id is None)")
        stmt = (update(attempt_table).where(attempt_table.c.id == attempt.id)
                .values(_attempt_row(attempt)))
        with self._translated(), self._transaction(write=True) as conn:
            if conn.execute(stmt).rowcount == 0:
                raise StoreError(f"no remediation attempt has id {attempt.id}")

    def list_attempts(self, service: str | None = None, since: float | None = None,
                      limit: int = 100, offset: int = 0) -> tuple[list[RemediationAttempt], int]:
        c = attempt_table.c
        where: list[ColumnElement[bool]] = []
        if service is not None:
            where.append(c.service == service)
        if since is not None:
            where.append(c.started_at >= since)
        page = (select(attempt_table).where(*where).order_by(c.started_at.desc(), c.id.desc())
                .limit(max(limit, 0)).offset(max(offset, 0)))
        count = select(func.count()).select_from(attempt_table).where(*where)
        with self._translated(), self._transaction() as conn:
            found = [_to_attempt(row) for row in conn.execute(page)]
            total = int(conn.scalar(count) or 0)
        return found, total

    def attempts_since(self, service: str, policy: str,
                       since: float) -> list[RemediationAttempt]:
        c = attempt_table.c
        stmt = (select(attempt_table)
                .where(c.service == service, c.policy == policy, c.started_at >= since)
                .order_by(c.started_at, c.id))
        return self._attempts(stmt)

    def unfinished_attempts(self) -> list[RemediationAttempt]:
        c = attempt_table.c
        stmt = select(attempt_table).where(c.state.in_(_UNFINISHED)).order_by(c.started_at, c.id)
        return self._attempts(stmt)

    def _attempts(self, stmt: Any) -> list[RemediationAttempt]:
        with self._translated(), self._transaction() as conn:
            return [_to_attempt(row) for row in conn.execute(stmt)]

    def disable_remediation(self, service: str, policy: str, reason: str, at: float) -> None:
        row = {"service": service, "policy": policy, "disabled_at": at, "reason": reason}
        stmt = self._hooks.insert_or_skip(disabled_table, ["service"])
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(stmt, row)

    def enable_remediation(self, service: str) -> bool:
        stmt = delete(disabled_table).where(disabled_table.c.service == service)
        with self._translated(), self._transaction(write=True) as conn:
            return bool(conn.execute(stmt).rowcount)

    def disabled_services(self) -> dict[str, DisabledRemediation]:
        stmt = select(disabled_table).order_by(disabled_table.c.service)
        with self._translated(), self._transaction() as conn:
            return {row.service: DisabledRemediation(row.service, row.policy, row.disabled_at,
                                                     row.reason)
                    for row in conn.execute(stmt)}


def _attempt_row(attempt: RemediationAttempt) -> dict[str, Any]:
    return {
        "service": attempt.service,
        "fingerprint": attempt.fingerprint,
        "policy": attempt.policy,
        "action": attempt.action,
        "mode": attempt.mode.value,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "state": attempt.state.value,
        "inputs": json.dumps(dict(attempt.inputs), sort_keys=True, default=str),
        "answer": capped(attempt.answer),
        "verification": capped(attempt.verification),
        "duration_s": attempt.duration_s,
        "error": capped(attempt.error),
    }


def _to_attempt(row: Row[Any]) -> RemediationAttempt:
    return RemediationAttempt(
        id=row.id, service=row.service, fingerprint=row.fingerprint, policy=row.policy,
        action=row.action, mode=RemediationMode(row.mode), started_at=row.started_at,
        finished_at=row.finished_at, state=AttemptState(row.state),
        inputs=json.loads(row.inputs), answer=row.answer, verification=row.verification,
        duration_s=row.duration_s, error=row.error,
    )
