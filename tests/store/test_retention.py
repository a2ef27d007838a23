from __future__ import annotations

import pytest
from pydantic import ValidationError

from tocsin.alerting.model import AlertEvent, AlertState, Incident, Severity
from tocsin.config.model import RetentionSettings, TocsinConfig
from tocsin.store import Store
from tocsin.store.retention import PruneCounts, Pruner, Retention

from .conftest import result
from .test_alerts_sql import alert
from .test_remediation_sql import attempt

HOUR = 3600
DAY = 86400
T0 = 1_790_000_000 - 1_790_000_000 % DAY
SMALL = Retention(raw=2 * DAY, rollups_5m=4 * DAY, rollups_1h=6 * DAY)


def test_prune_removes_exactly_what_retention_no_longer_keeps(store: Store) -> None:
    # Ten days of one result every 30 minutes, for two checks.
    for check in ("api", "db"):
        store.write_results([result(check, T0 + i * 1800 + 60, latency_ms=5.0)
                             for i in range(10 * 48)])
    now = T0 + 10 * DAY

    counts = store.prune(now, SMALL, batch=7)

    # Raw: started before now - 2 d; 5-minute detail: hours ended before now - 4 d;
    # hours and days: ended before now - 6 d.
    assert counts == PruneCounts(raw=2 * 8 * 48, minutes=2 * 2 * 24, hours=2 * 4 * 24,
                                 days=2 * 4)
    kept = store.history("api", limit=10_000)
    assert min(r.started_at for r in kept) == T0 + 8 * DAY + 60
    assert len(kept) == 2 * 48
    assert store.rollups("api", 0, now, 300)[0].start == T0 + 6 * DAY
    assert store.rollups("api", 0, now, 3600)[0].start == T0 + 4 * DAY
    assert store.rollups("api", 0, now, 86400)[0].start == T0 + 4 * DAY
    # Hours past 5-minute retention keep their totals.
    assert store.summary(["api"], T0 + 4 * DAY, now)["api"].count == 6 * 48
    assert store.prune(now, SMALL, batch=7) == PruneCounts()


def test_prune_leaves_alerts_incidents_and_the_audit_log(store: Store) -> None:
    old = 1000.0
    firing = alert("api:down", state=AlertState.FIRING, fired_at=old, updated_at=old)
    event = AlertEvent("api:down", old, AlertState.PENDING, AlertState.FIRING, Severity.P1)
    store.save_alerting(alerts=[firing], events=[event],
                        incidents=[Incident("inc-1", "backend", old, Severity.P1)])
    store.add_attempt(attempt(at=old))
    store.write_results([result("api", old)])

    counts = store.prune(T0, batch=1)

    assert counts.raw == 1 and store.history("api") == []
    assert store.load_alerts() == [firing]
    assert store.alert_events() == [event]
    assert [i.id for i in store.load_incidents()] == ["inc-1"]
    assert store.list_attempts()[1] == 1


def test_checkpoint_runs_on_every_backend(store: Store) -> None:
    store.write_results([result("api", T0)])
    store.checkpoint()
    assert store.history("api") == [result("api", T0)]


def test_retention_defaults_and_keys() -> None:
    kept = TocsinConfig().retention
    assert (kept.raw, kept.rollups_5m, kept.rollups_1h) == (14 * DAY, 90 * DAY, 730 * DAY)
    config = TocsinConfig.model_validate(
        {"retention": {"raw": "7d", "rollups_5m": "30d", "rollups_1h": "104w"}})
    assert (config.retention.raw, config.retention.rollups_5m,
            config.retention.rollups_1h) == (7 * DAY, 30 * DAY, 104 * 7 * DAY)
    assert TocsinConfig.model_validate({"retention": None}).retention == RetentionSettings()


@pytest.mark.parametrize(("section", "message"), [
    ({"raw": "0s"}, "longer than zero"),
    ({"raw": "14"}, "use a number and a unit"),
    ({"raw": "100d"}, "rollups_5m (12w6d) must be at least raw (14w2d)"),
    ({"rollups_5m": "800d"}, "rollups_1h (104w2d) must be at least rollups_5m (114w2d)"),
    ({"raws": "7d"}, "Extra inputs are not permitted"),
])
def test_retention_errors_say_what_is_wrong(section: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TocsinConfig.model_validate({"retention": section})
    assert message in str(caught.value)
    with pytest.raises(ValueError):
        Retention(raw=5 * DAY, rollups_5m=DAY)


async def test_the_pruner_prunes_with_its_clock_and_checkpoints(store: Store) -> None:
    store.write_results([result("api", T0 + i * HOUR) for i in range(72)])
    pruner = Pruner(store, SMALL, clock=lambda: T0 + 3 * DAY, pause=0.0)

    counts = await pruner.prune_once()

    assert counts.raw == 24 and pruner.passes == 1
    assert len(store.history("api")) == 48
