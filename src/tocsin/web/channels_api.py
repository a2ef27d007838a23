"""Channel health and drills: ``/api/v1/channels``, ``/api/v1/drills``, one delivery by key."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from tocsin.alerting.model import DeliveryStatus, Severity
from tocsin.web.alerts_api import delivery_json
from tocsin.web.auth import require_read, require_write
from tocsin.web.paging import PageParams

if TYPE_CHECKING:
    from tocsin.runtime import Runtime


class DrillIn(BaseModel):
    """A drill: a synthetic alert of ``severity`` to its policy's channels, or to ``channel``."""

    severity: Severity = Severity.P1
    channel: str | None = None


def channels_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    def alerting() -> Any:
        if runtime.alerting is None:
            raise HTTPException(503, "alerting is starting")
        return runtime.alerting

    @router.get("/api/v1/channels", dependencies=[Depends(require_read)])
    async def list_channels(page: PageParams, failing: bool | None = None) -> dict[str, Any]:
        """Each channel's health: failing or not, last success, last error, queue counts."""
        stage = alerting()
        store = runtime.require_store()
        health = stage.sender.health

        def is_failing(name: str) -> bool:
            state = health.get(name)
            return state is not None and state.failing

        names = [name for name in stage.sender.channels
                 if failing is None or is_failing(name) is failing]
        items = []
        for name in page.cut(names):  # the store is asked about this page's channels only
            channel, state = stage.sender.channels[name], health.get(name)
            sent, _ = await asyncio.to_thread(store.list_deliveries, DeliveryStatus.SENT, name,
                                              1, 0)
            failed, failed_total = await asyncio.to_thread(
                store.list_deliveries, DeliveryStatus.FAILED, name, 1, 0)
            _, pending_total = await asyncio.to_thread(
                store.list_deliveries, DeliveryStatus.PENDING, name, 1, 0)
            items.append({
                "name": name, "type": channel.type,
                "failing": is_failing(name),
                "last_success_at": sent[0].sent_at if sent else None,
                "last_error": failed[0].last_error if failed else (
                    state.last_error if state else None),
                "last_error_at": failed[0].notification.created_at if failed else (
                    state.last_error_at if state else None),
                "pending": pending_total, "failed": failed_total,
            })
        return page.answer(len(names), items)

    @router.post("/api/v1/drills", status_code=201, dependencies=[Depends(require_write)])
    async def drill(body: DrillIn) -> dict[str, Any]:
        """Send a clearly marked synthetic alert through routing and the outbox."""
        stage = alerting()
        if body.channel is not None and body.channel not in stage.sender.channels:
            raise HTTPException(404, f"no channel {body.channel!r}")
        deliveries = stage.engine.drill(body.severity, body.channel)
        if not deliveries:
            raise HTTPException(422, f"no channel is configured for {body.severity.value}")
        return {"deliveries": [delivery_json(d) for d in deliveries]}

    @router.get("/api/v1/deliveries/{key:path}", dependencies=[Depends(require_read)])
    async def one_delivery(key: str) -> dict[str, Any]:
        """One outbox entry by its idempotency key."""
        found = await asyncio.to_thread(runtime.require_store().get_delivery, key)
        if found is None:
            raise HTTPException(404, f"no delivery {key!r}")
        return delivery_json(found)

    return router
