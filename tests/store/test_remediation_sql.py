"""The remediation audit log and the disabled services, on every backend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tocsin.remediation.audit import ANSWER_LIMIT, AttemptState, RemediationAttempt
from tocsin.remediation.policy import DisabledRemediation, RemediationMode
from tocsin.store import SchemaError, Store, StoreError, open_store, schema
from tocsin.store.schema import LATEST_VERSION

from .conftest import result
from .test_migrations import write_as_version_1


def attempt(service: str = "backend", at: float = 100.0, policy: str = "restart",
            **fields: Any) -> RemediationAttempt:
    return RemediationAttempt(service=service, fingerprint=f"{service}:http:down", policy=policy,
                              action="platform.restart", started_at=at, **fields)


def test_an_attempt_round_trips_through_its_life(store: Store) -> None:
    started = attempt(inputs={"service_id": "srv-1", "api_key": "[redacted]"})
    stored = replace(started, id=store.add_attempt(started))

    done = replace(stored, state=AttemptState.RECOVERED, finished_at=160.0, duration_s=60.0,
                   answer='{"status": "ok"}', verification="backend:http ok after 30s")
    store.update_attempt(done)

    assert store.list_attempts() == ([done], 1)


def test_a_long_answer_is_capped(store: Store) -> None:
    long = attempt(answer="x" * (ANSWER_LIMIT * 3))
    store.add_attempt(long)
    [found], _ = store.list_attempts()
    assert found.answer is not None and len(found.answer) == ANSWER_LIMIT
    assert found.answer.endswith("[truncated]")


def test_updating_an_unknown_attempt_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.update_attempt(attempt())
    with pytest.raises(StoreError, match="no remediation attempt has id 42"):
        store.update_attempt(replace(attempt(), id=42))


def test_attempts_are_listed_newest_first_by_page(store: Store) -> None:
    for at in (1.0, 2.0, 3.0):
        store.add_attempt(attempt(at=at))
    store.add_attempt(attempt("frontend", at=4.0))

    page, total = store.list_attempts(service="backend", limit=2)
    assert [a.started_at for a in page] == [3.0, 2.0] and total == 3
    page, total = store.list_attempts(service="backend", limit=2, offset=2)
    assert [a.started_at for a in page] == [1.0] and total == 3
    assert store.list_attempts(since=3.0)[1] == 2


def test_attempts_since_are_of_one_service_and_policy_oldest_first(store: Store) -> None:
    store.add_attempt(attempt(at=5.0))
    store.add_attempt(attempt(at=1.0))
    store.add_attempt(attempt(at=6.0, policy="rollback"))
    store.add_attempt(attempt("frontend", at=7.0))

    found = store.attempts_since("backend", "restart", since=1.0)
    assert [a.started_at for a in found] == [1.0, 5.0]
    assert store.attempts_since("backend", "restart", since=2.0)[0].started_at == 5.0


def test_unfinished_attempts_are_found_for_resuming(store: Store) -> None:
    for at, state in enumerate(AttemptState):
        store.add_attempt(attempt(at=float(at), state=state, mode=RemediationMode.ACTIVE))

    unfinished = store.unfinished_attempts()

    assert [a.state for a in unfinished] == [AttemptState.STARTED, AttemptState.ACTED,
                                             AttemptState.VERIFYING]


def test_disable_and_enable(store: Store) -> None:
    assert store.disabled_services() == {}
    store.disable_remediation("backend", "restart", "3 attempts in the last 1h", at=10.0)
    store.disable_remediation("backend", "rollback", "again", at=20.0)  # the first record stays

    assert store.disabled_services() == {
        "backend": DisabledRemediation("backend", "restart", 10.0, "3 attempts in the last 1h")}
    assert store.enable_remediation("backend") is True
    assert store.enable_remediation("backend") is False
    assert store.disabled_services() == {}


def test_version_4_adds_remediation_to_a_version_3_database_and_keeps_its_data(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        with monkeypatch.context() as m:
            m.setattr(schema, "LATEST_VERSION", 3)  # the Tocsin that shipped version 3
            assert store.migrate() == 3
        write_as_version_1(store, result("api", 1.0, message="before the upgrade"))
        with pytest.raises(SchemaError):
            store.unfinished_attempts()  # no remediation tables yet

        assert store.migrate() == LATEST_VERSION

        assert store.history("api") == [result("api", 1.0, message="before the upgrade")]
        assert store.list_deploys() == []
        assert store.list_attempts() == ([], 0)
        assert store.disabled_services() == {}
    finally:
        store.close()
