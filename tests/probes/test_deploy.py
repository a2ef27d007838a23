"""The deploy check against a strict fake Render API: what each deploy state is judged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.render import FakeRender
from tocsin.platforms import PlatformTarget
from tocsin.platforms.render import RenderConfig
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, ProbeError
from tocsin.probes.deploy import DeployCheckConfig, DeployProbe

API_KEY = "rnd_test_key_123"
SERVICE = "srv-backend"

MakeProbe = Callable[..., DeployProbe]


@pytest.fixture
async def render() -> AsyncIterator[FakeRender]:
    async with FakeRender(api_key=API_KEY) as fake:
        fake.add_service(SERVICE, "backend")
        yield fake


@pytest.fixture
def deploy_probe(render: FakeRender, context: ProbeContext) -> MakeProbe:
    def make(api_key: str = API_KEY, service_id: str = SERVICE, timeout: float = 2.0,
             **config: Any) -> DeployProbe:
        platform = RenderConfig(type="render", api_key=api_key, base_url=render.url)
        spec = CheckSpec(
            name="backend:deploy", service="backend", service_url=None, interval=60.0,
            timeout=timeout,
            config=DeployCheckConfig.model_validate({"type": "deploy", **config}),
            platform=PlatformTarget("render", platform, service_id),
        )
        return DeployProbe(spec, context)

    return make


async def test_a_live_deploy_is_ok(render: FakeRender, deploy_probe: MakeProbe) -> None:
    live = render.add_deploy(SERVICE, "live", commit_message="Add search")
    result = await deploy_probe().run()
    assert result.status is CheckStatus.OK
    assert result.message.startswith(f'deploy {live["id"]} (commit abc1234def "Add search") live')
    assert result.values["deploy_failed"] == 0.0
    assert result.values["deploy_duration_s"] == pytest.approx(175.0)  # started 5 s in, 3 min
    assert result.details["service"] == "backend"
    assert result.details["deploys"] == [{
        "id": live["id"], "status": "live", "trigger": "new_commit", "commit_id": "abc1234def",
        "commit_message": "Add search",
        "created_at": datetime.fromisoformat(live["createdAt"]).isoformat(),
        "finished_at": datetime.fromisoformat(live["finishedAt"]).isoformat(),
    }]
    assert render.paths() == ["GET /services/srv-backend/deploys?limit=5"]


async def test_a_failed_build_is_failing_with_id_commit_and_time(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.add_deploy(SERVICE, "live")
    created = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)
    failed = render.add_deploy(SERVICE, "build_failed", commit_id="deadbeefcafe0123",
                               commit_message="Break the build\n\nlong body", created=created)
    result = await deploy_probe().run()
    assert result.status is CheckStatus.FAILING
    assert result.message == (f'deploy {failed["id"]} (commit deadbeefcafe "Break the build") '
                              "build_failed at 2026-03-04 10:03:00 UTC")
    assert result.values["deploy_failed"] == 1.0
    assert len(result.details["deploys"]) == 2


@pytest.mark.parametrize("status", ["update_failed", "pre_deploy_failed", "canceled"])
async def test_every_failed_status_is_failing(render: FakeRender, deploy_probe: MakeProbe,
                                              status: str) -> None:
    render.add_deploy(SERVICE, status)
    assert (await deploy_probe().run()).status is CheckStatus.FAILING


async def test_a_failed_deploy_stays_failing_while_the_next_one_builds(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    failed = render.add_deploy(SERVICE, "build_failed")
    render.add_deploy(SERVICE, "build_in_progress", created=datetime.now(UTC))
    result = await deploy_probe().run()
    assert result.status is CheckStatus.FAILING
    assert result.message.startswith(f"deploy {failed['id']}")
    assert "since then: deploy" in result.message


async def test_a_deploy_canceled_by_a_newer_one_is_not_a_failure(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.add_deploy(SERVICE, "live")
    render.add_deploy(SERVICE, "canceled")
    render.add_deploy(SERVICE, "build_in_progress", created=datetime.now(UTC))
    assert (await deploy_probe().run()).status is CheckStatus.OK


async def test_a_deploy_in_progress_within_max_duration_is_ok(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.add_deploy(SERVICE, "live")
    render.add_deploy(SERVICE, "update_in_progress", created=datetime.now(UTC))
    result = await deploy_probe().run()
    assert result.status is CheckStatus.OK
    assert "update_in_progress for" in result.message


async def test_a_deploy_stuck_longer_than_max_duration_is_failing(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.add_deploy(SERVICE, "live")
    stuck = render.add_deploy(SERVICE, "build_in_progress",
                              created=datetime.now(UTC) - timedelta(minutes=45))
    result = await deploy_probe(max_duration="30m").run()
    assert result.status is CheckStatus.FAILING
    assert result.message.startswith(f"deploy {stuck['id']} (commit abc1234def \"Ship it\") "
                                     "stuck in build_in_progress for 44m")
    assert "(max 30m)" in result.message
    assert result.values["deploy_failed"] == 1.0
    assert result.values["deploy_duration_s"] > 44 * 60


async def test_no_deploys_yet_is_ok(deploy_probe: MakeProbe) -> None:
    result = await deploy_probe().run()
    assert (result.status, result.message) == (CheckStatus.OK, "no deploys yet")
    assert result.values == {"deploy_failed": 0.0}


async def test_an_unknown_status_is_an_error_not_a_failure(render: FakeRender,
                                                           deploy_probe: MakeProbe) -> None:
    deploy = render.add_deploy(SERVICE, "live")
    deploy["status"] = "teleporting"
    result = await deploy_probe().run()
    assert result.status is CheckStatus.ERROR
    assert result.message.startswith("unknown deploy status 'teleporting'")
    assert result.details["deploys"][0]["status"] == "teleporting"


async def test_a_refused_key_is_one_error_naming_platform_and_service(
        render: FakeRender, deploy_probe: MakeProbe) -> None:
    result = await deploy_probe(api_key="rnd_wrong_key_456").run()
    assert result.status is CheckStatus.ERROR
    assert result.message.startswith("Render refused the API key for service srv-backend")
    assert "platforms.render.api_key" in result.message
    assert "rnd_wrong_key_456" not in result.message and API_KEY not in result.message


async def test_an_unknown_service_is_an_error(deploy_probe: MakeProbe) -> None:
    result = await deploy_probe(service_id="srv-gone").run()
    assert result.status is CheckStatus.ERROR
    assert "unknown service id srv-gone" in result.message


async def test_rate_limited_is_an_error_saying_when_to_retry(render: FakeRender,
                                                             deploy_probe: MakeProbe) -> None:
    render.fail_next(429, headers={"Retry-After": "120"})
    probe = deploy_probe()
    first = await probe.run()
    assert first.status is CheckStatus.ERROR
    assert "rate limited" in first.message and "retry at" in first.message
    second = await probe.run()  # held by the client: no second request
    assert second.status is CheckStatus.ERROR and "rate limited" in second.message
    assert len(render.requests) == 1


async def test_a_server_error_is_an_error(render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.fail_next(500)
    result = await deploy_probe().run()
    assert result.status is CheckStatus.ERROR
    assert result.message.startswith("Render answered HTTP 500 for service srv-backend")
    assert result.values == {}


async def test_malformed_json_is_an_error(render: FakeRender, deploy_probe: MakeProbe) -> None:
    render.malformed_next('[{"deploy": {"id": "dep-1"')
    result = await deploy_probe().run()
    assert result.status is CheckStatus.ERROR
    assert "malformed answer" in result.message


async def test_a_hanging_api_costs_the_check_timeout(render: FakeRender,
                                                     deploy_probe: MakeProbe) -> None:
    render.hang_next()
    result = await deploy_probe(timeout=0.3).run()
    assert result.status is CheckStatus.ERROR
    assert result.message == ("platform 'render' did not answer within 300ms "
                              "(service srv-backend)")


async def test_no_api_key_is_an_error_without_a_request(render: FakeRender,
                                                        deploy_probe: MakeProbe) -> None:
    result = await deploy_probe(api_key="").run()
    assert result.status is CheckStatus.ERROR
    assert result.message.startswith("no API key for platform 'render'")
    assert render.requests == []


async def test_limit_is_passed_on(render: FakeRender, deploy_probe: MakeProbe) -> None:
    await deploy_probe(limit=20).run()
    assert render.paths() == ["GET /services/srv-backend/deploys?limit=20"]


def test_a_deploy_probe_without_a_platform_is_refused(context: ProbeContext) -> None:
    spec = CheckSpec(name="x:deploy", service="x", service_url=None, interval=60.0, timeout=5.0,
                     config=DeployCheckConfig(type="deploy"))
    with pytest.raises(ProbeError, match="needs a platform service"):
        DeployProbe(spec, context)
