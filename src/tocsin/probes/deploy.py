"""The ``deploy`` check: the latest deploys of a platform service, judged.

A run asks the platform for the ``limit`` newest deploys and judges them:

- FAILING when the newest *finished* deploy failed (``build_failed``,
  ``update_failed``, ``pre_deploy_failed``, or ``canceled`` with nothing newer:
  a deploy canceled because a newer one superseded it is not a failure), or when
  a deploy has been in progress for longer than ``max_duration``. A failed
  deploy stays FAILING while the next one builds: the service is fixed when a
  deploy goes live, not when one starts;
- ERROR when the platform could not be asked (5xx, timeout, malformed answer,
  rate limited, key refused, unknown service, no key configured), and when the
  newest deploy's status is one this Tocsin does not know: no verdict;
- OK otherwise: the newest finished deploy is ``live`` (or ``deactivated``), a
  deploy is in progress within ``max_duration``, or there is no deploy yet.

Values: ``deploy_failed`` (1 or 0), and the newest deploy's duration (finished
− started, or until now while it runs) as ``deploy_duration_s`` in seconds and
``deploy_duration`` in ms (the unit rule thresholds such as ``> 20m`` compare in). ``details`` holds
``platform``, ``service_id``, ``service`` and ``deploys`` (each deploy seen,
see :func:`~tocsin.platforms.events.deploy_detail`), which the runtime's
:class:`~tocsin.platforms.events.DeployRecorder` keeps.
"""

from __future__ import annotations

import asyncio
import builtins
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, ClassVar, Literal

from pydantic import Field

from tocsin.config.durations import Duration, format_duration
from tocsin.platforms.base import Deploy, DeployStatus, Platform, PlatformError
from tocsin.platforms.events import DEPLOYS, deploy_detail
from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
    wall_clock,
)
from tocsin.probes.context import ProbeContext
from tocsin.probes.registry import register

COMMIT_MESSAGE_LIMIT = 80  # characters of a commit's first line in a message


class DeployCheckConfig(CheckConfig):
    """A ``deploy`` check; ``platform`` and ``service_id`` default to the service's ``platform``."""

    type: Literal["deploy"]
    platform: str | None = None
    service_id: str | None = Field(default=None, min_length=1)
    max_duration: Duration = 30 * 60.0
    limit: int = Field(default=5, ge=1, le=100)


def _moment(moment: datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(moment: datetime | None) -> str:
    return f"at {_moment(moment)}"


def describe_deploy(deploy: Deploy) -> str:
    """``deploy dep-1 (commit abc1234 "Fix login")``: the deploy and what it built."""
    text = f"deploy {deploy.id}"
    if deploy.commit is not None:
        first_line = (deploy.commit.message or "").strip().splitlines()
        message = first_line[0] if first_line else ""
        if len(message) > COMMIT_MESSAGE_LIMIT:
            message = message[:COMMIT_MESSAGE_LIMIT - 1] + "…"
        text += f" (commit {deploy.commit.id[:12]}" + (f' "{message}")' if message else ")")
    elif deploy.image:
        text += " (image)"
    return text


def _duration(deploy: Deploy, now: float) -> float:
    start = (deploy.started_at or deploy.created_at).timestamp()
    end = deploy.finished_at.timestamp() if deploy.finished_at is not None else now
    return max(0.0, end - start)


@register
class DeployProbe(Probe[DeployCheckConfig]):
    """Ask the service's platform for its newest deploys and judge them."""

    type: ClassVar[str] = "deploy"
    config_model: ClassVar[builtins.type[CheckConfig]] = DeployCheckConfig

    def __init__(self, spec: CheckSpec[DeployCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        if spec.platform is None:
            raise ProbeError(f"check {spec.name!r}: a deploy check needs a platform service: "
                             "set `platform: {name, service_id}` on its service")
        self._target = spec.platform

    @property
    def _client(self) -> Platform:
        return self.context.platforms.client(self._target)

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        service_id = self._target.service_id
        try:
            async with asyncio.timeout(self.spec.timeout):
                deploys = await self._client.latest_deploys(service_id, self.spec.config.limit)
        except TimeoutError:
            return CheckResult.error(
                self.spec.name, started_at,
                f"platform {self._target.platform!r} did not answer within "
                f"{format_duration(self.spec.timeout)} (service {service_id})",
                latency_ms=(perf_counter() - start) * 1000)
        except PlatformError as error:
            return CheckResult.error(self.spec.name, started_at, error.message,
                                     latency_ms=(perf_counter() - start) * 1000)
        latency_ms = (perf_counter() - start) * 1000
        status, message, failed = self._judge(deploys, started_at)
        values: dict[str, float] = {}
        if status is not CheckStatus.ERROR:
            values["deploy_failed"] = 1.0 if failed else 0.0
            if deploys:
                seconds = _duration(deploys[0], started_at)
                values["deploy_duration_s"] = seconds
                # In ms too, like every timing value: `deploy_duration > 20m` compares in ms.
                values["deploy_duration"] = seconds * 1000
        details: dict[str, Any] = {
            "platform": self._target.platform,
            "service_id": service_id,
            "service": self.spec.service,
            DEPLOYS: [deploy_detail(deploy) for deploy in deploys],
        }
        return self.new_result(status, started_at, latency_ms=latency_ms, message=message,
                               values=values, details=details)

    def _judge(self, deploys: list[Deploy], now: float) -> tuple[CheckStatus, str, bool]:
        """(status, message, whether a deploy failed or is stuck)."""
        if not deploys:
            return CheckStatus.OK, "no deploys yet", False
        newest = deploys[0]
        if newest.status is DeployStatus.UNKNOWN:
            return (CheckStatus.ERROR,
                    f"unknown deploy status {newest.status_text!r} ({describe_deploy(newest)})",
                    False)
        max_duration = self.spec.config.max_duration
        running: list[Deploy] = []
        finished: Deploy | None = None
        for position, deploy in enumerate(deploys):
            if deploy.status.in_progress:
                running.append(deploy)
                continue
            if deploy.status is DeployStatus.UNKNOWN:
                continue  # an older deploy in a state we cannot read: judge the ones we can
            if deploy.status is DeployStatus.CANCELED and position > 0:
                continue  # superseded by a newer deploy
            finished = deploy
            break
        notes: list[str] = []
        for deploy in running:
            took = _duration(deploy, now)
            if took > max_duration:
                return (CheckStatus.FAILING,
                        f"{describe_deploy(deploy)} stuck in {deploy.status.value} for "
                        f"{format_duration(round(took))} (max {format_duration(max_duration)}), "
                        f"started {_when(deploy.started_at or deploy.created_at)}", True)
            notes.append(f"{describe_deploy(deploy)} {deploy.status.value} for "
                         f"{format_duration(round(took))}")
        if finished is not None and finished.status.failed:
            message = (f"{describe_deploy(finished)} {finished.status.value} "
                       f"{_when(finished.finished_at or finished.updated_at)}")
            if notes:
                message += f"; since then: {notes[0]}"
            return CheckStatus.FAILING, message, True
        if finished is not None:
            notes.append(f"{describe_deploy(finished)} {finished.status.value} since "
                         f"{_moment(finished.finished_at)}")
        return CheckStatus.OK, "; ".join(notes), False
