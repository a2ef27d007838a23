"""Fixtures for the store tests.

``store_url`` is parametrised over every backend Tocsin ships; a new backend
(PostgreSQL) adds one ``pytest.param`` here and every ``store`` test runs on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'tocsin.db'}"
    return "sqlite:///:memory:"


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    """A database that a second connection (or process) can open too."""
    return f"sqlite:///{tmp_path / 'tocsin.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    opened.migrate()
    yield opened
    opened.close()


def result(check: str, started_at: float, **fields: Any) -> CheckResult:
    """A result with defaults for everything the test does not care about."""
    fields.setdefault("status", CheckStatus.OK)
    return CheckResult(check=check, started_at=started_at, **fields)
