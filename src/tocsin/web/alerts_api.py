"""Alerts, incidents, silences, deliveries and acknowledgement — JSON API and ack links.

Reads and writes are authorised by :mod:`tocsin.web.auth` (API tokens, the
dashboard session, loopback on a fresh install). Ack links in notifications
carry their own HMAC signature instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from html import escape
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from tocsin.alerting.model import (
    Alert,
    AlertState,
    Delivery,
    DeliveryStatus,
    Incident,
    Matcher,
    Severity,
    Silence,
    SilenceState,
)
from tocsin.alerting.silences import matches, parse_matcher
from tocsin.config.durations import parse_duration
from tocsin.remediation.audit import RemediationAttempt
from tocsin.web.auth import require_read, require_write
from tocsin.web.paging import PageParams

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

SAVE_WAIT = 5.0  # seconds an ack waits to be in the store before the API answers anyway


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint, "check": alert.check, "service": alert.service,
        "rule": alert.rule, "severity": alert.severity.value, "state": alert.state.value,
        "summary": alert.summary, "message": alert.message, "value": alert.value,
        "active_at": alert.active_at, "fired_at": alert.fired_at, "acked_at": alert.acked_at,
        "acked_by": alert.acked_by, "resolved_at": alert.resolved_at,
        "incident_id": alert.incident_id, "notified": alert.notified,
        "labels": alert.labels, "runbook": alert.runbook,
        "flags": {"silenced": alert.silenced, "inhibited": alert.inhibited,
                  "flapping": alert.flapping},
    }


def attempt_json(attempt: RemediationAttempt) -> dict[str, Any]:
    """One audit-log entry; its inputs were redacted before they were stored."""
    return {"id": attempt.id, "service": attempt.service, "fingerprint": attempt.fingerprint,
            "policy": attempt.policy, "action": attempt.action,
            "started_at": attempt.started_at, "finished_at": attempt.finished_at,
            "mode": attempt.mode.value, "state": attempt.state.value,
            "inputs": dict(attempt.inputs), "answer": attempt.answer,
            "verification": attempt.verification, "duration_s": attempt.duration_s,
            "error": attempt.error}


def silence_json(silence: Silence, now: float) -> dict[str, Any]:
    return {
        "id": silence.id, "state": silence.state(now).value,
        "matchers": [f"{m.name}{m.op.value}{m.value}" for m in silence.matchers],
        "starts_at": silence.starts_at, "ends_at": silence.ends_at,
        "created_by": silence.created_by, "comment": silence.comment,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    note = delivery.notification
    return {
        "key": delivery.key, "channel": delivery.channel, "kind": note.kind.value,
        "severity": note.severity.value, "subject": note.subject,
        "status": delivery.status.value, "attempts": delivery.attempts,
        "last_error": delivery.last_error, "created_at": note.created_at,
        "sent_at": delivery.sent_at, "fallback_of": delivery.fallback_of,
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "service": incident.service, "opened_at": incident.opened_at,
            "closed_at": incident.closed_at, "severity": incident.severity.value}


class SilenceIn(BaseModel):
    """A new silence: ``matchers`` like ``service=backend``; ``duration`` or ``ends_at``."""

    matchers: list[str] = Field(min_length=1)
    duration: str | None = None
    starts_at: float | None = Field(default=None, allow_inf_nan=False)
    ends_at: float | None = Field(default=None, allow_inf_nan=False)
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


class SilenceEdit(BaseModel):
    """New matchers and end of a silence that has not expired; its start and author stay.

    ``duration`` counts from the silence's start when it is pending, from now when
    it is active. Without ``comment`` the silence keeps its comment.
    """

    matchers: list[str] = Field(min_length=1)
    duration: str | None = None
    ends_at: float | None = Field(default=None, allow_inf_nan=False)
    comment: str | None = Field(default=None, max_length=2000)


def silence_terms(matchers: list[str], *, starts: float, ends_at: float | None,
                  duration: str | None, duration_from: float, start_given: bool,
                  now: float) -> tuple[tuple[Matcher, ...], float]:
    """The parsed matchers and end of a silence, for a create and an edit alike.

    422 saying what is wrong: a bad matcher or duration, no end, an end before the
    start or in the past, or matchers that would mute nearly everything.
    """
    try:
        parsed = tuple(parse_matcher(text) for text in matchers)
        if ends_at is not None:
            ends = ends_at
        elif duration is not None:
            ends = duration_from + parse_duration(duration)
        else:
            raise ValueError("give a duration (e.g. 2h) or ends_at")
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    if ends <= starts and (start_given or duration is not None):
        raise HTTPException(422, "a silence must end after it starts")
    if ends <= now:
        raise HTTPException(422, "a silence must end in the future")
    if matches(parsed, {}):
        # Alertmanager's rule: a silence whose every matcher matches the empty
        # string (``service=``, ``severity!=P1``, ``check=~.*``) mutes nearly everything.
        raise HTTPException(422, "at least one matcher must not match an empty or "
                            "missing label, e.g. service=backend")
    return parsed, ends


class AckIn(BaseModel):
    by: str = Field(default="api", min_length=1, max_length=200)


def alerts_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    def engine() -> Any:
        if runtime.engine is None:
            raise HTTPException(503, "alerting is starting")
        return runtime.engine

    @router.get("/api/v1/alerts", dependencies=[Depends(require_read)])
    async def list_alerts(page: PageParams, state: AlertState | None = None,
                          service: str | None = None) -> dict[str, Any]:
        """Alerts by state and service, newest change first (resolved ones included)."""
        store = runtime.require_store()
        alerts, total = await asyncio.to_thread(store.list_alerts, state, service, page.limit,
                                                page.offset)
        return page.answer(total, [alert_json(a) for a in alerts])

    @router.post("/api/v1/alerts/{fingerprint:path}/ack", dependencies=[Depends(require_write)])
    async def ack(fingerprint: str, body: AckIn | None = None) -> dict[str, Any]:
        """Acknowledge a firing alert: its repeats and escalation stop."""
        alert = engine().acknowledge(fingerprint, (body or AckIn()).by)
        if alert is None:
            raise HTTPException(404, f"no alert {fingerprint!r}")
        await _saved(runtime)
        return alert_json(alert)

    @router.post("/api/v1/alerts/{fingerprint:path}/unack",
                 dependencies=[Depends(require_write)])
    async def unack(fingerprint: str, body: AckIn | None = None) -> dict[str, Any]:
        """Return an acknowledged alert to firing."""
        alert = engine().unacknowledge(fingerprint, (body or AckIn()).by)
        if alert is None:
            raise HTTPException(404, f"no alert {fingerprint!r}")
        await _saved(runtime)
        return alert_json(alert)

    @router.get("/api/v1/incidents", dependencies=[Depends(require_read)])
    async def list_incidents(page: PageParams, open_only: bool = Query(True, alias="open"),
                             service: str | None = None,
                             severity: Severity | None = None) -> dict[str, Any]:
        """Incidents (open ones unless ``open=false``) by service and severity, oldest first."""
        store = runtime.require_store()
        incidents = await asyncio.to_thread(store.load_incidents, open_only)
        chosen = [i for i in incidents
                  if (service is None or i.service == service)
                  and (severity is None or i.severity is severity)]
        return page.page(chosen, incident_json)

    @router.get("/api/v1/deliveries", dependencies=[Depends(require_read)])
    async def list_deliveries(page: PageParams, status: DeliveryStatus | None = None,
                              channel: str | None = None) -> dict[str, Any]:
        """The outbox: every notification, its channel, attempts and last error."""
        store = runtime.require_store()
        rows, total = await asyncio.to_thread(store.list_deliveries, status, channel,
                                              page.limit, page.offset)
        return page.answer(total, [delivery_json(d) for d in rows])

    @router.get("/api/v1/remediation/attempts", dependencies=[Depends(require_read)])
    async def list_attempts(page: PageParams, service: str | None = None) -> dict[str, Any]:
        """The remediation audit log, newest first, and the services waiting for a person."""
        store = runtime.require_store()
        rows, total = await asyncio.to_thread(store.list_attempts, service, None, page.limit,
                                              page.offset)
        disabled = await asyncio.to_thread(store.disabled_services)
        return page.answer(total, [attempt_json(a) for a in rows],
                           disabled=[{"service": d.service, "policy": d.policy,
                                      "disabled_at": d.disabled_at, "reason": d.reason}
                                     for d in disabled.values()])

    @router.post("/api/v1/remediation/{service}/enable", dependencies=[Depends(require_write)])
    async def enable_remediation(service: str) -> dict[str, Any]:
        """Let remediation act on a service again after its budget was spent."""
        store = runtime.require_store()
        if not await asyncio.to_thread(store.enable_remediation, service):
            raise HTTPException(404, f"remediation of {service!r} is not disabled")
        return {"service": service, "enabled": True}

    @router.get("/api/v1/silences", dependencies=[Depends(require_read)])
    async def list_silences(page: PageParams, state: SilenceState | None = None,
                            created_by: str | None = None,
                            expired: bool = False) -> dict[str, Any]:
        """Silences by start time: pending and active ones, expired ones too with
        ``expired=true`` (or ``state=expired``)."""
        store = runtime.require_store()
        now = runtime.clock.now()
        with_expired = expired or state is SilenceState.EXPIRED
        silences = await asyncio.to_thread(store.list_silences, None if with_expired else now)
        # Filtered on the state, not only by the store: it keeps one that ended exactly now.
        chosen = [s for s in silences
                  if (with_expired or s.state(now) is not SilenceState.EXPIRED)
                  and (state is None or s.state(now) is state)
                  and (created_by is None or s.created_by == created_by)]
        return page.page(chosen, lambda s: silence_json(s, now))

    @router.get("/api/v1/silences/{silence_id}", dependencies=[Depends(require_read)])
    async def one_silence(silence_id: str) -> dict[str, Any]:
        """One silence by id, whatever its state."""
        silence = await asyncio.to_thread(runtime.require_store().get_silence, silence_id)
        if silence is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        return silence_json(silence, runtime.clock.now())

    @router.post("/api/v1/silences", status_code=201, dependencies=[Depends(require_write)])
    async def add_silence(body: SilenceIn) -> dict[str, Any]:
        """Create a silence; alerts matching every matcher are recorded, not notified."""
        now = runtime.clock.now()
        starts = body.starts_at if body.starts_at is not None else now
        matchers, ends = silence_terms(body.matchers, starts=starts, ends_at=body.ends_at,
                                       duration=body.duration, duration_from=starts,
                                       start_given=body.starts_at is not None, now=now)
        silence = Silence(id=f"sil-{uuid.uuid4().hex[:12]}", matchers=matchers,
                          starts_at=starts, ends_at=ends, created_by=body.created_by,
                          comment=body.comment, created_at=now)
        await asyncio.to_thread(runtime.require_store().add_silence, silence)
        engine().add_silence(silence)
        return silence_json(silence, now)

    @router.put("/api/v1/silences/{silence_id}", dependencies=[Depends(require_write)])
    async def edit_silence(silence_id: str, body: SilenceEdit) -> dict[str, Any]:
        """Change the matchers, end or comment of a pending or active silence (409 once
        it has expired: create a new one instead)."""
        store = runtime.require_store()
        now = runtime.clock.now()
        found = await asyncio.to_thread(store.get_silence, silence_id)
        if found is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        if found.state(now) is SilenceState.EXPIRED:
            raise HTTPException(409, f"silence {silence_id!r} has expired: create a new one")
        matchers, ends = silence_terms(body.matchers, starts=found.starts_at,
                                       ends_at=body.ends_at, duration=body.duration,
                                       duration_from=max(found.starts_at, now),
                                       start_given=found.starts_at > now, now=now)
        edited = dataclasses.replace(
            found, matchers=matchers, ends_at=ends,
            comment=found.comment if body.comment is None else body.comment)
        # The store replaces the silence with the same id; the engine's copy is replaced too.
        await asyncio.to_thread(store.add_silence, edited)
        engine().add_silence(edited)
        return silence_json(edited, now)

    @router.delete("/api/v1/silences/{silence_id}", dependencies=[Depends(require_write)])
    async def expire_silence(silence_id: str) -> dict[str, Any]:
        """Expire a silence now (a silence is never deleted: its record stays)."""
        now = runtime.clock.now()
        found = await asyncio.to_thread(runtime.require_store().expire_silence, silence_id, now)
        if not found:
            raise HTTPException(404, f"no silence {silence_id!r}")
        engine().expire_silence(silence_id)
        silence = await asyncio.to_thread(runtime.require_store().get_silence, silence_id)
        assert silence is not None
        return silence_json(silence, now)

    @router.get("/ack/{fingerprint:path}", response_class=HTMLResponse)
    async def ack_page(fingerprint: str, exp: int, sig: str) -> HTMLResponse:
        """The page an ack link opens: a button, so that link scanners do not ack."""
        _verify_link(runtime, fingerprint, exp, sig)
        return HTMLResponse(_page(
            f"Acknowledge {escape(fingerprint)}?",
            f'<form method="post"><input type="hidden" name="exp" value="{exp}">'
            f'<input type="hidden" name="sig" value="{escape(sig)}">'
            f'<label>Your name <input name="by" required maxlength="200"></label> '
            f'<button type="submit">Acknowledge</button></form>'))

    @router.post("/ack/{fingerprint:path}", response_class=HTMLResponse)
    async def ack_by_link(fingerprint: str, exp: int = Form(), sig: str = Form(),
                          by: str = Form(min_length=1, max_length=200)) -> HTMLResponse:
        _verify_link(runtime, fingerprint, exp, sig)
        alert = engine().acknowledge(fingerprint, by)
        if alert is None:
            raise HTTPException(404, "this alert no longer exists")
        await _saved(runtime)
        state = escape(alert.state.value)
        if alert.state is AlertState.ACKNOWLEDGED:
            # Say who really acknowledged it: someone may have been quicker.
            note = f"Acknowledged by {escape(alert.acked_by or by)}."
        else:
            note = "It is not firing: there was nothing to acknowledge."
        return HTMLResponse(_page(f"{escape(fingerprint)} is {state}", f"<p>{note}</p>"))

    return router


async def _saved(runtime: Runtime) -> None:
    """Wait until the engine's change is in the store, so that a list read next shows it.

    Bounded: while the store is down the change waits in memory and the API still answers.
    """
    if runtime.alerting is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.alerting.writer.flush(), SAVE_WAIT)


def _verify_link(runtime: Runtime, fingerprint: str, exp: int, sig: str) -> None:
    signer = runtime.ack_signer
    if signer is None or not signer.verify(fingerprint, exp, sig, runtime.clock.now()):
        raise HTTPException(403, "this ack link is invalid or has expired")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>")
