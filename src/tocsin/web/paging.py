"""One shape for every list of the JSON API: ``{"total", "limit", "offset", "items"}``.

An endpoint takes ``limit`` (1..:data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`)
and ``offset`` (≥ 0) through :data:`PageParams`. ``total`` counts every row that
matches the filters, before paging; an offset past the end is not an error: it
gives no items and the same total, so a client stops when ``offset >= total``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Row = TypeVar("Row")


@dataclass(frozen=True)
class Paging:
    """Which page of a list was asked for: ``limit`` rows from ``offset`` on."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def cut(self, rows: Sequence[Row]) -> list[Row]:
        """The rows of this page (none past the end)."""
        return list(rows[self.offset:self.offset + self.limit])

    def answer(self, total: int, items: list[Any], **extra: Any) -> dict[str, Any]:
        """The list's JSON: ``items`` are this page's, ``total`` all that matched."""
        return {"total": total, "limit": self.limit, "offset": self.offset, "items": items,
                **extra}

    def page(self, rows: Sequence[Row], to_json: Callable[[Row], Any],
             **extra: Any) -> dict[str, Any]:
        """Count the filtered ``rows``, cut this page and render only its rows."""
        return self.answer(len(rows), [to_json(row) for row in self.cut(rows)], **extra)


def paging(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
           offset: Annotated[int, Query(ge=0)] = 0) -> Paging:
    """The ``limit`` and ``offset`` query parameters, validated (422 outside their range)."""
    return Paging(limit=limit, offset=offset)


#: An endpoint parameter: ``page: PageParams`` reads ``?limit=&offset=``.
PageParams = Annotated[Paging, Depends(paging)]
