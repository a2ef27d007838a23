"""`TokensSQL`: the API-token half of :class:`~tocsin.store.sql.SQLStore`.

A row holds a token's public id, its name and scope, and a hash of its secret;
the secret itself is shown once, when the token is created, and never stored.
Revoking keeps the row (``revoked_at``), so ``tocsin token list`` shows what
existed. Transactions and the translation of driver errors are the concrete
store's, as in :mod:`tocsin.store.alerts_sql`.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from tocsin.store.base import APIToken, Store, TokenScope
from tocsin.store.schema import api_tokens


class TokensSQL(Store):
    """The API-token methods of :class:`Store`, over the concrete store's transactions."""

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    def add_api_token(self, token: APIToken) -> None:
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(insert(api_tokens), {
                "id": token.id, "name": token.name, "scope": token.scope.value,
                "hash": token.hash, "created_at": token.created_at,
                "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
            })

    def get_api_token(self, token_id: str) -> APIToken | None:
        with self._translated(), self._transaction() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        return _to_token(row) if row is not None else None

    def list_api_tokens(self) -> list[APIToken]:
        stmt = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        with self._translated(), self._transaction() as conn:
            return [_to_token(row) for row in conn.execute(stmt)]

    def count_active_api_tokens(self) -> int:
        stmt = select(func.count()).select_from(api_tokens).where(
            api_tokens.c.revoked_at.is_(None))
        with self._translated(), self._transaction() as conn:
            return int(conn.execute(stmt).scalar_one())

    def revoke_api_token(self, token_id: str, at: float) -> bool:
        c = api_tokens.c
        stmt = update(api_tokens).where(c.id == token_id, c.revoked_at.is_(None)) \
            .values(revoked_at=at)
        with self._translated(), self._transaction(write=True) as conn:
            return conn.execute(stmt).rowcount > 0

    def touch_api_token(self, token_id: str, at: float) -> None:
        stmt = update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at)
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(stmt)


def _to_token(row: Row[Any]) -> APIToken:
    return APIToken(id=row.id, name=row.name, scope=TokenScope(row.scope), hash=row.hash,
                    created_at=row.created_at, last_used_at=row.last_used_at,
                    revoked_at=row.revoked_at)
