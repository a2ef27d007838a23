"""Every hostile target at once, in the real scheduler with real HTTP probes.

Each costs failing or error results with a clear message; none costs the
process or the schedule of the healthy check running beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import targets
from tocsin.probes import CheckResult, CheckSpec, CheckStatus, ProbeContext
from tocsin.probes.http import HTTPCheckConfig, HTTPProbe
from tocsin.scheduler import Scheduler


def _probe(name: str, url: str, context: ProbeContext, **extra: Any) -> HTTPProbe:
    config = HTTPCheckConfig.model_validate({"type": "http", "url": url, **extra})
    spec = CheckSpec(name=name, service=None, service_url=None, interval=1.0, timeout=0.5,
                     config=config)
    return HTTPProbe(spec, context)


EXPECTED = {
    "refused": "refused",
    "hanging": "timed out after 0.5 s",
    "dripping": "timed out after 0.5 s",
    "garbage": "invalid http response",
    "truncated": "closed",
    "redirect-loop": "too many redirects",
    "untrusted-tls": "certificate",
}


async def test_hostile_targets_cost_one_result_each_never_the_schedule() -> None:
    results: list[CheckResult] = []
    context = ProbeContext()
    async with contextlib.AsyncExitStack() as stack:
        healthy = await stack.enter_async_context(targets.http_target())
        refused = await stack.enter_async_context(targets.closed_port())
        hanging = await stack.enter_async_context(targets.hanging_target())
        dripping = await stack.enter_async_context(targets.dripping_target(0.1))
        huge = await stack.enter_async_context(targets.endless_body_target())
        garbage = await stack.enter_async_context(targets.garbage_target())
        truncated = await stack.enter_async_context(targets.truncated_body_target())
        tls = await stack.enter_async_context(targets.tls_target())
        probes = [
            _probe("healthy", f"{healthy.url}/", context),
            _probe("refused", refused.url, context),
            _probe("hanging", hanging.url, context),
            _probe("dripping", dripping.url, context),
            _probe("huge-body", huge.url, context, expect={"body_contains": "never there"}),
            _probe("garbage", garbage.url, context),
            _probe("truncated", truncated.url, context),
            _probe("redirect-loop", f"{healthy.url}/redirect/100", context),
            _probe("untrusted-tls", f"{tls.url}/", context),
        ]
        scheduler = Scheduler([results.append])
        scheduler.set_probes(probes)
        scheduler.start()
        await asyncio.sleep(3.2)
        await scheduler.stop()
    await context.close()

    by_check: dict[str, list[CheckResult]] = {}
    for result in results:
        by_check.setdefault(result.check, []).append(result)
    assert len(by_check["healthy"]) >= 3
    assert all(r.status is CheckStatus.OK for r in by_check["healthy"])
    assert scheduler.stats.lag().max < 0.1
    assert scheduler.stats.crashed == 0
    for name, fragment in EXPECTED.items():
        assert len(by_check[name]) >= 2, name
        for result in by_check[name]:
            assert result.status is CheckStatus.ERROR, (name, result)
            assert fragment in result.message.lower(), (name, result.message)
    for result in by_check["huge-body"]:
        assert result.status is CheckStatus.FAILING
        assert "truncated at 1 MiB" in result.message
