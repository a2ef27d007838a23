"""The ``heartbeat`` check: a job pings Tocsin when it runs, and silence is the alarm.

The pings arrive through the web server (:mod:`tocsin.web.pings`) into the
:class:`~tocsin.probes.heartbeat_book.HeartbeatBook`; this probe, run by the
scheduler like any other, turns what they say into a result. The states and
their rules are in :mod:`tocsin.probes.heartbeat_book`.
"""

from __future__ import annotations

import builtins
from typing import ClassVar

from tocsin.probes.base import CheckConfig, CheckResult, Probe, wall_clock
from tocsin.probes.heartbeat_book import HeartbeatCheckConfig
from tocsin.probes.registry import register


@register
class HeartbeatProbe(Probe[HeartbeatCheckConfig]):
    """Reads what the pings mean now; the pings themselves arrive through the web server."""

    type: ClassVar[str] = "heartbeat"
    config_model: ClassVar[builtins.type[CheckConfig]] = HeartbeatCheckConfig

    async def run(self) -> CheckResult:
        now = wall_clock()
        found = self.context.heartbeats.assess(self.spec.name, now)
        if found is None:
            return CheckResult.error(self.spec.name, now, "heartbeat is not configured "
                                     "in the running process (reload pending)")
        return self.new_result(found.status, now, message=found.message,
                               values=found.values, details=found.details)
