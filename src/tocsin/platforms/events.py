"""Deploy events: every deploy a ``deploy`` check saw, kept in the store.

The probe does not know the store. It puts what it saw into its result's
``details["deploys"]`` (:func:`deploy_detail`, JSON-ready); the scheduler hands
every result to :class:`DeployRecorder`, which turns those entries back into
:class:`DeployEvent` values (:func:`deploy_events`) and writes the new and the
changed ones in batches, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tocsin.platforms.base import Deploy, DeployStatus

if TYPE_CHECKING:
    from tocsin.probes.base import CheckResult
    from tocsin.store.base import Store

log = logging.getLogger(__name__)

DEPLOYS = "deploys"
"""The key of ``CheckResult.details`` that holds the deploys a check saw."""


@dataclass(frozen=True, slots=True)
class DeployEvent:
    """One deploy of a service, in the state a check last saw it change to.

    Times are seconds since the epoch; ``seen_at`` is when a check first saw
    the deploy in this ``status``. ``status`` is ``UNKNOWN`` for a value this
    Tocsin does not know.
    """

    deploy_id: str
    service: str | None
    check: str
    status: DeployStatus
    trigger: str | None
    commit_id: str | None
    commit_message: str | None
    created_at: float
    finished_at: float | None
    seen_at: float


def deploy_detail(deploy: Deploy) -> dict[str, Any]:
    """``deploy`` as an entry of ``details["deploys"]``: JSON-ready, times in ISO 8601."""
    return {
        "id": deploy.id,
        "status": deploy.status_text or deploy.status.value,
        "trigger": deploy.trigger,
        "commit_id": deploy.commit.id if deploy.commit else None,
        "commit_message": deploy.commit.message if deploy.commit else None,
        "created_at": deploy.created_at.isoformat(),
        "finished_at": deploy.finished_at.isoformat() if deploy.finished_at else None,
    }


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _status(text: Any) -> DeployStatus:
    try:
        status = DeployStatus(text)
    except ValueError:
        return DeployStatus.UNKNOWN
    return status


def deploy_events(result: CheckResult) -> list[DeployEvent]:
    """The deploys a result's ``details`` hold (none for a result of another check type)."""
    entries = result.details.get(DEPLOYS) if isinstance(result.details, Mapping) else None
    if not isinstance(entries, list):
        return []
    service = result.details.get("service")
    events = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            continue
        created = _epoch(entry.get("created_at"))
        if created is None:
            continue
        events.append(DeployEvent(
            deploy_id=entry["id"],
            service=service if isinstance(service, str) else None,
            check=result.check,
            status=_status(entry.get("status")),
            trigger=entry.get("trigger"),
            commit_id=entry.get("commit_id"),
            commit_message=entry.get("commit_message"),
            created_at=created,
            finished_at=_epoch(entry.get("finished_at")),
            seen_at=result.started_at,
        ))
    return events


class DeployRecorder:
    """A scheduler sink: writes the deploys that deploy checks saw into ``store``.

    A deploy is written when first seen and again when its status or finish
    time changes (a check sees the same five deploys every minute; rewriting
    them would only churn the database). Writes run in a thread, batched every
    ``flush_interval``; a failed write is retried with the next batch. At most
    ``max_pending`` events wait; beyond that the oldest are dropped.
    """

    def __init__(self, store: Store, *, flush_interval: float = 0.5,
                 max_pending: int = 10_000, remember: int = 10_000) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.remember = remember
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._pending: deque[DeployEvent] = deque()
        self._known: dict[str, tuple[DeployStatus, float | None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._writing = asyncio.Lock()
        self._closed = asyncio.Event()

    def submit(self, result: CheckResult) -> None:
        """Queue the new and changed deploys of ``result``; never blocks, never raises."""
        for event in deploy_events(result):
            state = (event.status, event.finished_at)
            if self._known.get(event.deploy_id) == state:
                continue
            if len(self._known) >= self.remember:
                self._known.clear()  # forgetting costs one rewrite of each deploy, no more
            self._known[event.deploy_id] = state
            self._pending.append(event)
            if len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
            self._wake.set()

    def start(self) -> None:
        """Start the background write task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("DeployRecorder already started")
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="tocsin-deploy-recorder")

    async def flush(self) -> None:
        """Write what is pending now (in a thread); keep it pending if the store fails.

        Events submitted meanwhile wait for the next flush.
        """
        async with self._writing:  # one write at a time: a status change lands after its past
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        self._pending.clear()
        try:
            await asyncio.to_thread(self.store.record_deploys, batch)
        except Exception as error:  # the store's errors are all worth a retry here
            self.last_error = f"{type(error).__name__}: {error}"
            log.error("recording %d deploy events failed, retrying: %s", len(batch), error)
            self._pending.extendleft(reversed(batch))
            return
        self.written += len(batch)
        self.last_error = None

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._closing:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            if not self._closing:
                with contextlib.suppress(TimeoutError):  # let a batch build up
                    async with asyncio.timeout(self.flush_interval):
                        await self._closed.wait()
            await self.flush()
        await self.flush()
