"""platform.restart / rollback / redeploy against the strict fake Render API."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import Target
from tests.fakes.render import FakeRender
from tests.remediation.conftest import API_KEY, SERVICE_ID, alert_request
from tocsin.platforms.render import RenderConfig, RenderPlatform
from tocsin.remediation import ActionRequest, PlatformHandle, RemediationError, build_action
from tocsin.remediation.platform_actions import (
    RedeployConfig,
    RestartConfig,
    RollbackConfig,
)


async def test_restart_is_accepted_and_sends_exactly_one_bare_post(
        render: FakeRender, request_for: ActionRequest) -> None:
    outcome = await build_action(RestartConfig(action="platform.restart")).act(request_for)
    assert outcome.accepted and outcome.data == {"service_id": SERVICE_ID}
    assert "Render accepted the restart" in outcome.detail
    [sent] = render.requests
    assert (sent.method, sent.path, sent.query, sent.body) == (
        "POST", "/services/srv-backend/restart", [], b"")
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Content-Type" not in sent.headers
    assert render.services[SERVICE_ID].restarts == 1


async def test_a_wired_restart_brings_the_target_back(
        render: FakeRender, request_for: ActionRequest, target: Target) -> None:
    target.health_status = 503

    def recover() -> None:
        target.health_status = 200

    render.on_restart(SERVICE_ID, recover, delay=0.2)
    await build_action(RestartConfig(action="platform.restart")).act(request_for)
    async with aiohttp.ClientSession() as session:
        async with session.get(target.url + "/health") as response:
            assert response.status == 503  # not yet: recovery takes a while
        await asyncio.sleep(0.4)
        async with session.get(target.url + "/health") as response:
            assert response.status == 200


async def test_a_broken_restart_is_accepted_and_nothing_recovers(
        render: FakeRender, request_for: ActionRequest, target: Target) -> None:
    target.health_status = 503
    render.on_restart(SERVICE_ID, lambda: None, delay=0.05)
    render.break_restarts(SERVICE_ID)
    outcome = await build_action(RestartConfig(action="platform.restart")).act(request_for)
    await asyncio.sleep(0.1)
    assert outcome.accepted and target.health_status == 503


async def test_rollback_goes_to_the_last_live_deploy_before_the_failed_one(
        render: FakeRender, request_for: ActionRequest) -> None:
    render.add_deploy(SERVICE_ID, "deactivated", commit_id="0ld")
    good = render.add_deploy(SERVICE_ID, "live", commit_id="900d")
    render.add_deploy(SERVICE_ID, "build_failed", commit_id="bad1")
    failed = render.add_deploy(SERVICE_ID, "update_failed", commit_id="bad2")
    outcome = await build_action(RollbackConfig(action="platform.rollback")).act(request_for)
    newest = render.services[SERVICE_ID].deploys[0]
    assert outcome.accepted
    assert outcome.data == {"service_id": SERVICE_ID, "deploy_id": newest["id"],
                            "rolled_back_to": good["id"], "rolled_back_from": failed["id"]}
    assert (newest["trigger"], newest["status"], newest["commit"]["id"]) == (
        "rollback", "live", "900d")
    assert render.paths() == ["GET /services/srv-backend/deploys?limit=20",
                              "POST /services/srv-backend/rollback"]
    post = render.requests[1]
    assert json.loads(post.body) == {"deployId": good["id"]}
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_rollback_refuses_when_no_earlier_deploy_was_live(
        render: FakeRender, request_for: ActionRequest) -> None:
    render.add_deploy(SERVICE_ID, "deactivated")
    render.add_deploy(SERVICE_ID, "build_failed")
    with pytest.raises(RemediationError) as caught:
        await build_action(RollbackConfig(action="platform.rollback")).act(request_for)
    assert caught.value.permanent
    assert "no earlier live deploy to roll back to" in caught.value.message
    assert render.paths() == ["GET /services/srv-backend/deploys?limit=20"]


async def test_rollback_refuses_a_service_without_deploys(
        render: FakeRender, request_for: ActionRequest) -> None:
    with pytest.raises(RemediationError, match="no earlier live deploy") as caught:
        await build_action(RollbackConfig(action="platform.rollback")).act(request_for)
    assert caught.value.permanent


async def test_redeploy_clears_the_cache_when_asked(render: FakeRender,
                                                   request_for: ActionRequest) -> None:
    config = RedeployConfig(action="platform.redeploy", clear_cache=True)
    outcome = await build_action(config).act(request_for)
    newest = render.services[SERVICE_ID].deploys[0]
    assert outcome.accepted and outcome.data["deploy_id"] == newest["id"]
    [sent] = render.requests
    assert (sent.method, sent.path, sent.body) == (
        "POST", "/services/srv-backend/deploys", b'{"clearCache":"clear"}')


async def test_redeploy_keeps_the_cache_by_default(render: FakeRender,
                                                  request_for: ActionRequest) -> None:
    render.new_deploy_status = 202
    outcome = await build_action(RedeployConfig(action="platform.redeploy")).act(request_for)
    assert outcome.accepted and outcome.data["deploy_id"] is not None
    assert render.requests[0].body == b'{"clearCache":"do_not_clear"}'


@pytest.mark.parametrize(("status", "permanent"), [
    (401, True), (403, True), (404, True), (429, False), (500, False), (503, False)])
@pytest.mark.parametrize("config", [
    RestartConfig(action="platform.restart"),
    RollbackConfig(action="platform.rollback"),
    RedeployConfig(action="platform.redeploy"),
], ids=["restart", "rollback", "redeploy"])
async def test_platform_refusals_say_whether_to_retry(
        render: FakeRender, request_for: ActionRequest, status: int, permanent: bool,
        config: RestartConfig) -> None:
    render.fail_next(status, headers={"Retry-After": "7"} if status == 429 else None)
    with pytest.raises(RemediationError) as caught:
        await build_action(config).act(request_for)
    error = caught.value
    assert error.permanent is permanent
    assert config.action in error.message and "srv-backend" in error.message
    assert API_KEY not in error.message and API_KEY not in repr(error)
    if status == 429:
        assert error.retry_after is not None and 6.5 <= error.retry_after <= 7.5


async def test_a_wrong_key_is_permanent_and_never_quoted(render: FakeRender) -> None:
    wrong = "rnd_wrong_key_000111"
    config = RenderConfig(type="render", api_key=wrong, base_url=render.url, timeout="2s")
    platform = RenderPlatform("render", config)
    try:
        request = alert_request(PlatformHandle(platform, SERVICE_ID))
        with pytest.raises(RemediationError) as caught:
            await build_action(RestartConfig(action="platform.restart")).act(request)
    finally:
        await platform.close()
    assert caught.value.permanent and "API key" in caught.value.message
    assert wrong not in caught.value.message


async def test_an_unknown_service_is_permanent(render: FakeRender,
                                               client: RenderPlatform) -> None:
    request = alert_request(PlatformHandle(client, "srv-nope"))
    with pytest.raises(RemediationError, match="srv-nope") as caught:
        await build_action(RestartConfig(action="platform.restart")).act(request)
    assert caught.value.permanent


async def test_a_hanging_platform_is_cut_by_the_action_timeout(
        render: FakeRender, request_for: ActionRequest) -> None:
    render.hang_next()
    action = build_action(RestartConfig(action="platform.restart", timeout="300ms"))
    with pytest.raises(RemediationError, match=r"timed out after 0\.3 s") as caught:
        await action.act(request_for)
    assert not caught.value.permanent


async def test_a_hanging_platform_is_cut_by_the_client_timeout(render: FakeRender) -> None:
    render.hang_next()
    config = RenderConfig(type="render", api_key=API_KEY, base_url=render.url, timeout="200ms")
    platform = RenderPlatform("render", config)
    try:
        request = alert_request(PlatformHandle(platform, SERVICE_ID))
        with pytest.raises(RemediationError, match="did not answer") as caught:
            await build_action(RollbackConfig(action="platform.rollback")).act(request)
    finally:
        await platform.close()
    assert not caught.value.permanent


async def test_a_service_without_a_platform_is_refused() -> None:
    with pytest.raises(RemediationError, match="no platform") as caught:
        await build_action(RestartConfig(action="platform.restart")).act(alert_request())
    assert caught.value.permanent
