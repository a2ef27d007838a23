"""The remediation orchestrator: act on a confirmed alert, verify, budget, audit, escalate.

The engine calls :meth:`Remediator.on_firing` when an alert whose rule has
``remediate: NAME`` becomes firing. The remediator then, in a task of its own:

1. decides with :func:`~tocsin.remediation.policy.decide` (disabled, in flight,
   silenced, exhausted, cooling down; passive mode) — a refusal is recorded,
   and a spent budget disables the service and says "remediation exhausted";
2. records the attempt as ``started`` before acting, so a crash leaves a trail,
   tells the incident "remediation started", and acts once;
3. waits ``verify_after`` and re-runs the alert's check (a real probe run);
   OK → "RECOVERED"; anything else → "RECOVERY FAILED", escalated at once.

At most one remediation runs per service at a time. :meth:`Remediator.resume`
finds attempts a previous process left unfinished, marks them interrupted and
resumes their verification without acting again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from tocsin.alerting.clock import Clock
from tocsin.alerting.model import Alert, NotificationKind
from tocsin.alerting.rules import AlertRule
from tocsin.probes import CheckResult
from tocsin.remediation.audit import AttemptState, RemediationAttempt, budget_times, capped
from tocsin.remediation.base import ActionRequest, PlatformHandle, RemediationError
from tocsin.remediation.policy import (
    RemediationMode,
    RemediationPolicy,
    RemediationSettings,
    decide,
)
from tocsin.remediation.registry import build_action
from tocsin.store import Store

log = logging.getLogger(__name__)

PlatformFor = Callable[[str], PlatformHandle | None]  # check name → its service's platform
Recheck = Callable[[str], Awaitable[CheckResult]]  # check name → a fresh result
Notify = Callable[[NotificationKind, str, str, bool], None]  # kind, fingerprint, text, escalate
CurrentAlert = Callable[[str], Alert | None]  # fingerprint → the engine's alert now
Sleep = Callable[[float], Awaitable[None]]

RECOVERED_BY_ITSELF = "the service recovered by itself"
_SECRET_WORDS = ("header", "env", "url", "key", "token", "secret", "password", "auth")


def redacted_inputs(policy: RemediationPolicy, request: ActionRequest) -> dict[str, Any]:
    """What the action is given, for the audit log: option values that may hold secrets hidden."""
    options: dict[str, Any] = {}
    for key, value in policy.action_options.items():
        secret = any(word in key.lower() for word in _SECRET_WORDS)
        options[key] = "[redacted]" if secret else value
    inputs: dict[str, Any] = {"check": request.check, "severity": request.severity.value}
    if request.platform is not None:
        inputs["service_id"] = request.platform.service_id
    if options:
        inputs["options"] = options
    return inputs


def _verb(action: str) -> str:
    """``platform.restart`` → ``restart``; ``command`` → ``command``."""
    return action.removeprefix("platform.")


class Remediator:
    """Runs the remediations of one process; see the module docstring."""

    def __init__(self, store: Store, settings: RemediationSettings, clock: Clock, *,
                 platform_for: PlatformFor, recheck: Recheck, notify: Notify,
                 current: CurrentAlert | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.platform_for = platform_for
        self.recheck = recheck
        self.notify = notify
        self.current = current
        self.sleep = sleep
        self._running: dict[str, asyncio.Task[None]] = {}  # by service
        self._tasks: set[asyncio.Task[None]] = set()

    # -- entry points -----------------------------------------------------------------

    def on_firing(self, alert: Alert, rule: AlertRule) -> None:
        """``alert`` became firing under ``rule``: remediate it if its policy allows."""
        name = rule.remediate
        if name is None:
            return
        policy = self.settings.policies.get(name)
        if policy is None:
            log.warning("alert %s names remediation %r, which is not configured",
                        alert.fingerprint, name)
            return
        service = self._service(alert)
        busy = self._busy(service)
        task = asyncio.get_running_loop().create_task(
            self._remediate(alert.copy(), name, policy, service, busy),
            name=f"tocsin-remediate-{service}")
        self._track(task)
        if not busy:
            self._claim(service, task)

    async def resume(self) -> None:
        """Attempts a previous process left unfinished: mark interrupted, verify again."""
        unfinished = await asyncio.to_thread(self.store.unfinished_attempts)
        for attempt in unfinished:
            interrupted = replace(attempt, state=AttemptState.INTERRUPTED,
                                  error=f"interrupted while {attempt.state.value}")
            await asyncio.to_thread(self.store.update_attempt, interrupted)
            log.warning("remediation of %s (%s) was interrupted while %s; verifying again",
                        attempt.service, attempt.action, attempt.state.value)
            task = asyncio.get_running_loop().create_task(
                self._resume_one(interrupted), name=f"tocsin-remediate-{attempt.service}")
            self._track(task)
            if not self._busy(attempt.service):
                self._claim(attempt.service, task)

    async def wait_idle(self) -> None:
        """Wait until every remediation task has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel what is running; an unfinished attempt is resumed at the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- internals ----------------------------------------------------------------------

    def _service(self, alert: Alert) -> str:
        return alert.service if alert.service is not None else f"check:{alert.check}"

    def _busy(self, service: str) -> bool:
        task = self._running.get(service)
        return task is not None and not task.done()

    def _claim(self, service: str, task: asyncio.Task[None]) -> None:
        """``task`` is the one remediation of ``service`` until it ends."""
        self._running[service] = task

        def release(done: asyncio.Task[None]) -> None:
            if self._running.get(service) is done:
                del self._running[service]

        task.add_done_callback(release)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("remediation task failed", exc_info=task.exception())

    def _tell(self, kind: NotificationKind, fingerprint: str, text: str,
              escalate: bool = False) -> None:
        try:
            self.notify(kind, fingerprint, text, escalate)
        except Exception:
            log.exception("remediation notice for %s failed", fingerprint)

    async def _add(self, attempt: RemediationAttempt) -> RemediationAttempt:
        attempt_id = await asyncio.to_thread(self.store.add_attempt, attempt)
        return replace(attempt, id=attempt_id)

    async def _update(self, attempt: RemediationAttempt) -> None:
        await asyncio.to_thread(self.store.update_attempt, attempt)

    def _still_open(self, fingerprint: str) -> bool:
        if self.current is None:
            return True
        alert = self.current(fingerprint)
        return alert is not None and alert.state.is_open

    async def _remediate(self, alert: Alert, name: str, policy: RemediationPolicy,
                         service: str, busy: bool) -> None:
        now = self.clock.now()
        attempts = await asyncio.to_thread(self.store.attempts_since, service, name,
                                           now - policy.per)
        unfinished = await asyncio.to_thread(self.store.unfinished_attempts)
        disabled = (await asyncio.to_thread(self.store.disabled_services)).get(service)
        in_flight = busy or any(a.service == service for a in unfinished)
        decision = decide(policy, budget_times(attempts), now=now, in_flight=in_flight,
                          disabled=disabled, silenced=alert.silenced, mode=self.settings.mode)
        base = RemediationAttempt(service=service, fingerprint=alert.fingerprint, policy=name,
                                  action=policy.action, started_at=now, mode=self.settings.mode,
                                  inputs={"check": alert.check})
        if not decision.allowed:
            log.info("remediation %s of %s refused: %s", name, service, decision.message)
            await self._add(replace(base, state=AttemptState.REFUSED, finished_at=now,
                                    error=decision.message))
            if decision.exhausted:
                await asyncio.to_thread(self.store.disable_remediation, service, name,
                                        decision.message, now)
                self._tell(NotificationKind.REMEDIATION_EXHAUSTED, alert.fingerprint,
                           f"remediation exhausted — needs a person: {policy.action} for "
                           f"{service} ({decision.message}); enable it again with "
                           f"`tocsin remediation enable {service}`")
            return
        if not self._still_open(alert.fingerprint):
            log.info("remediation %s of %s: %s; no action", name, service, RECOVERED_BY_ITSELF)
            await self._add(replace(base, state=AttemptState.REFUSED, finished_at=now,
                                    error=RECOVERED_BY_ITSELF))
            return
        if decision.passive:
            await self._add(replace(base, state=AttemptState.PASSIVE, finished_at=now,
                                    mode=RemediationMode.PASSIVE, verification=decision.message))
            self._tell(NotificationKind.REMEDIATION, alert.fingerprint,
                       f"passive mode: would run {policy.action} for {service}")
            return
        await self._act(alert, policy, service, base)

    async def _act(self, alert: Alert, policy: RemediationPolicy, service: str,
                   base: RemediationAttempt) -> None:
        platform = self.platform_for(alert.check) if policy.acts_on_platform else None
        request = ActionRequest.from_alert(alert, platform)
        attempt = await self._add(replace(base, inputs=redacted_inputs(policy, request)))
        self._tell(NotificationKind.REMEDIATION, alert.fingerprint,
                   f"remediation started: {policy.action} for {service}")
        try:
            if policy.acts_on_platform and platform is None:
                raise RemediationError(f"{policy.action} for {request.who}: the service is on "
                                       "no configured platform", permanent=True)
            outcome = await build_action(policy.action_config).act(request)
        except RemediationError as error:
            await self._fail(attempt, alert.fingerprint, error.message,
                             f"RECOVERY FAILED: {policy.action} for {service}: {error.message}")
            return
        attempt = replace(attempt, state=AttemptState.ACTED, answer=capped(outcome.detail))
        await self._update(attempt)
        await self.sleep(policy.verify_after)
        attempt = replace(attempt, state=AttemptState.VERIFYING)
        await self._update(attempt)
        await self._verify(attempt, alert.check)

    async def _resume_one(self, attempt: RemediationAttempt) -> None:
        policy = self.settings.policies.get(attempt.policy)
        check = attempt.inputs.get("check") if isinstance(attempt.inputs, Mapping) else None
        if not isinstance(check, str):
            alert = self.current(attempt.fingerprint) if self.current else None
            check = alert.check if alert is not None else None
        if check is None:
            log.warning("interrupted remediation %s of %s: its check is unknown; not verified",
                        attempt.policy, attempt.service)
            return
        verify_after = policy.verify_after if policy is not None else 0.0
        await self.sleep(max(0.0, attempt.started_at + verify_after - self.clock.now()))
        await self._verify(attempt, check, final=AttemptState.INTERRUPTED)

    async def _verify(self, attempt: RemediationAttempt, check: str,
                      final: AttemptState | None = None) -> None:
        try:
            result = await self.recheck(check)
            ok, note = result.status.is_ok, f"{result.status.value}: {result.message}".rstrip(": ")
        except Exception as error:  # the check is gone, or the probe cannot be built
            ok, note = False, f"re-check failed: {type(error).__name__}: {error}"
        now = self.clock.now()
        took = now - attempt.started_at
        verb = _verb(attempt.action)
        if ok:
            attempt = replace(attempt, state=final or AttemptState.RECOVERED, finished_at=now,
                              duration_s=took, verification=capped(note))
            await self._update(attempt)
            self._tell(NotificationKind.RECOVERED, attempt.fingerprint,
                       f"{attempt.service} is back after {verb} (took {took:.0f} s)")
            return
        await self._fail(attempt, attempt.fingerprint, f"verification failed: {note}",
                         f"RECOVERY FAILED: {attempt.service} is still down after {verb} "
                         f"({note})", final=final, verification=note)

    async def _fail(self, attempt: RemediationAttempt, fingerprint: str, error: str, text: str,
                    *, final: AttemptState | None = None,
                    verification: str | None = None) -> None:
        now = self.clock.now()
        attempt = replace(attempt, state=final or AttemptState.FAILED, finished_at=now,
                          duration_s=now - attempt.started_at, error=capped(error),
                          verification=capped(verification))
        await self._update(attempt)
        self._tell(NotificationKind.RECOVERY_FAILED, fingerprint, text, True)
