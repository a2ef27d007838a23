"""The Render client against a strict local fake: each endpoint, each error class, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from tests.fakes.render import FakeRender
from tests.platforms.conftest import API_KEY, FakeMonotonic
from tocsin.platforms import DeployStatus, PlatformError
from tocsin.platforms.render import RenderConfig, RenderPlatform, rate_limit_wait

SERVICE = "srv-backend"


async def test_latest_deploys_are_parsed_newest_first(render: FakeRender,
                                                      client: RenderPlatform) -> None:
    render.add_deploy(SERVICE, "live", commit_message="First")
    image = render.add_deploy(SERVICE, "build_failed", commit_id=None)
    newest = render.add_deploy(SERVICE, "build_in_progress", commit_id="f00dfeed",
                               commit_message="Second")
    deploys = await client.latest_deploys(SERVICE, limit=5)
    assert [d.id for d in deploys] == [newest["id"], image["id"], deploys[2].id]
    assert deploys[0].status is DeployStatus.BUILD_IN_PROGRESS
    assert deploys[0].commit is not None and deploys[0].commit.id == "f00dfeed"
    assert deploys[0].commit.message == "Second"
    assert deploys[0].finished_at is None
    assert deploys[1].commit is None and deploys[1].image is not None
    assert deploys[2].finished_at is not None and deploys[2].finished_at.tzinfo is not None
    [request] = render.requests
    assert (request.method, request.path, request.query) == (
        "GET", "/services/srv-backend/deploys", [("limit", "5")])
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.body == b""


async def test_an_empty_deploy_list_is_an_empty_list(client: RenderPlatform) -> None:
    assert await client.latest_deploys(SERVICE) == []


async def test_an_unknown_status_is_kept_as_unknown(render: FakeRender,
                                                    client: RenderPlatform) -> None:
    render.add_deploy(SERVICE, "live")
    render.services[SERVICE].deploys[0]["status"] = "teleporting"
    [deploy] = await client.latest_deploys(SERVICE, 1)
    assert deploy.status is DeployStatus.UNKNOWN and deploy.status_text == "teleporting"


async def test_one_deploy_and_the_service(render: FakeRender, client: RenderPlatform) -> None:
    added = render.add_deploy(SERVICE, "update_failed")
    deploy = await client.deploy(SERVICE, added["id"])
    assert (deploy.id, deploy.status) == (added["id"], DeployStatus.UPDATE_FAILED)
    service = await client.service(SERVICE)
    assert (service.id, service.name, service.type, service.suspended) == (
        SERVICE, "backend", "web_service", "not_suspended")
    assert render.paths() == [f"GET /services/srv-backend/deploys/{added['id']}",
                              "GET /services/srv-backend"]


async def test_restart_posts_no_body_and_reads_none(render: FakeRender,
                                                    client: RenderPlatform) -> None:
    await client.restart(SERVICE)
    assert render.services[SERVICE].restarts == 1
    [request] = render.requests
    assert (request.method, request.path, request.body) == ("POST", "/services/srv-backend/restart",
                                                            b"")
    assert "Content-Type" not in request.headers


async def test_trigger_deploy_answered_201_returns_the_deploy(render: FakeRender,
                                                              client: RenderPlatform) -> None:
    deploy = await client.trigger_deploy(SERVICE, clear_cache=True)
    assert deploy is not None and deploy.status is DeployStatus.CREATED
    assert deploy.trigger == "api"
    [request] = render.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == b'{"clearCache":"clear"}'


async def test_trigger_deploy_answered_202_finds_the_queued_deploy(
        render: FakeRender, client: RenderPlatform) -> None:
    render.new_deploy_status = 202
    deploy = await client.trigger_deploy(SERVICE)
    assert deploy is not None and deploy.status is DeployStatus.QUEUED
    assert render.paths() == ["POST /services/srv-backend/deploys",
                              "GET /services/srv-backend/deploys?status=queued&limit=1"]
    assert render.requests[0].body == b'{"clearCache":"do_not_clear"}'


async def test_rollback_posts_the_deploy_id(render: FakeRender, client: RenderPlatform) -> None:
    good = render.add_deploy(SERVICE, "live", commit_id="900d", commit_message="Good")
    render.add_deploy(SERVICE, "build_failed")
    deploy = await client.rollback(SERVICE, good["id"])
    assert deploy.trigger == "rollback" and deploy.commit is not None
    assert deploy.commit.id == "900d"
    [request] = render.requests
    assert request.body == f'{{"deployId":"{good["id"]}"}}'.encode()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_permanent_and_never_shown(render: FakeRender, clock: FakeMonotonic,
                                                          status: int) -> None:
    key = "rnd_wrong_key_456" if status == 401 else API_KEY  # the fake answers 401 itself
    if status == 403:
        render.fail_next(403)  # a key without access to this service
    config = RenderConfig(type="render", api_key=key, base_url=render.url)
    client = RenderPlatform("render", config, clock=clock)
    try:
        with pytest.raises(PlatformError) as caught:
            await client.latest_deploys(SERVICE)
    finally:
        await client.close()
    error = caught.value
    assert error.permanent and error.retry_after is None
    assert error.message == (f"Render refused the API key for service srv-backend (HTTP {status}):"
                             " check platforms.render.api_key (e.g. RENDER_API_KEY)")
    assert key not in error.message


async def test_an_unknown_service_is_permanent(client: RenderPlatform) -> None:
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys("srv-nope")
    assert caught.value.permanent
    assert "unknown service id srv-nope" in caught.value.message


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_server_errors_are_transient(render: FakeRender, client: RenderPlatform,
                                           status: int) -> None:
    render.fail_next(status)
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys(SERVICE)
    assert not caught.value.permanent
    assert caught.value.message == f"Render answered HTTP {status} for service srv-backend: " \
                                   f"scripted {status}"


@pytest.mark.parametrize("body", ['{"deploy": [', "[{\"deploy\": {\"id\": 1}}]", '{"a": 1}',
                                  "<html>oops</html>"])
async def test_a_malformed_answer_is_transient(render: FakeRender, client: RenderPlatform,
                                              body: str) -> None:
    render.malformed_next(body)
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys(SERVICE)
    assert not caught.value.permanent
    assert caught.value.message.startswith("Render sent a malformed answer for service srv-backend")


async def test_a_hanging_api_times_out_transiently(render: FakeRender,
                                                   clock: FakeMonotonic) -> None:
    render.hang_next()
    config = RenderConfig(type="render", api_key=API_KEY, base_url=render.url, timeout="0.2s")
    client = RenderPlatform("render", config, clock=clock)
    try:
        with pytest.raises(PlatformError) as caught:
            await client.latest_deploys(SERVICE)
    finally:
        await client.close()
    assert not caught.value.permanent
    assert caught.value.message == "Render did not answer within 0.2 s (service srv-backend)"


async def test_a_refused_connection_is_transient(clock: FakeMonotonic) -> None:
    config = RenderConfig(type="render", api_key=API_KEY, base_url="http://127.0.0.1:9/v1")
    client = RenderPlatform("render", config, clock=clock)
    try:
        with pytest.raises(PlatformError) as caught:
            await client.service(SERVICE)
    finally:
        await client.close()
    assert not caught.value.permanent
    assert caught.value.message.startswith("cannot reach Render (service srv-backend)")


async def test_no_api_key_fails_without_a_request(render: FakeRender) -> None:
    config = RenderConfig(type="render", api_key=SecretStr(""), base_url=render.url)
    client = RenderPlatform("render", config)
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys(SERVICE)
    assert caught.value.permanent
    assert caught.value.message.startswith("no API key for platform 'render'")
    assert render.requests == []


async def test_429_waits_retry_after_and_the_client_holds_its_calls(
        render: FakeRender, client: RenderPlatform, clock: FakeMonotonic) -> None:
    render.fail_next(429, headers={"Retry-After": "30", "Ratelimit-Reset": "45"})
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys(SERVICE)
    assert not caught.value.permanent and caught.value.retry_after == 30.0
    assert "rate limited" in caught.value.message
    assert "retry at 08:00:30 UTC" in caught.value.message  # wall clock 1.8e9 = 08:00:00 UTC
    clock.now += 29
    with pytest.raises(PlatformError) as held:
        await client.latest_deploys(SERVICE)
    assert held.value.retry_after == pytest.approx(1.0)
    assert "rate limited" in held.value.message
    assert len(render.requests) == 1  # the held call never reached the API
    clock.now += 1.5
    assert await client.latest_deploys(SERVICE) == []
    assert len(render.requests) == 2


@pytest.mark.parametrize(("reset", "expected"), [("12", 12.0), (str(1_800_000_000 + 20), 20.0)])
async def test_429_without_retry_after_reads_ratelimit_reset(
        render: FakeRender, client: RenderPlatform, reset: str, expected: float) -> None:
    render.fail_next(429, headers={"ratelimit-reset": reset})  # header names are case-insensitive
    with pytest.raises(PlatformError) as caught:
        await client.latest_deploys(SERVICE)
    assert caught.value.retry_after == pytest.approx(expected)


async def test_a_spent_window_holds_calls_until_it_resets(
        render: FakeRender, client: RenderPlatform, clock: FakeMonotonic) -> None:
    render.ratelimit_remaining = 1  # this answer says 0 remain
    render.ratelimit_reset = "10"
    assert await client.latest_deploys(SERVICE) == []
    with pytest.raises(PlatformError) as held:
        await client.latest_deploys(SERVICE)
    assert held.value.retry_after == pytest.approx(10.0)
    clock.now += 10.5
    render.ratelimit_remaining = 400
    await client.latest_deploys(SERVICE)
    assert len(render.requests) == 2


def test_rate_limit_wait_reads_seconds_epochs_and_nothing() -> None:
    now = 1_800_000_000.0
    assert rate_limit_wait({"Retry-After": "7"}, now) == 7.0
    assert rate_limit_wait({"Ratelimit-Reset": "30"}, now) == 30.0
    assert rate_limit_wait({"Ratelimit-Reset": str(now + 90)}, now) == 90.0
    assert rate_limit_wait({"Ratelimit-Reset": str(now - 90)}, now) == 0.0
    assert rate_limit_wait({"Ratelimit-Reset": "soon"}, now) is None
    assert rate_limit_wait({}, now) is None


def test_the_base_url_must_be_https_or_loopback() -> None:
    with pytest.raises(ValueError, match="base_url must use https://"):
        RenderConfig(type="render", api_key="k", base_url="http://api.render.com/v1")
    assert RenderConfig(type="render", api_key="k").base_url == "https://api.render.com/v1"


async def test_the_fake_refuses_what_render_refuses(render: FakeRender) -> None:
    """The fake is strict: a client that passes against it follows the contract."""
    import aiohttp

    auth = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    base = render.url + "/services/srv-backend"
    cases = [
        ("GET", base + "/deploys?limit=5", {"Accept": "application/json"}, None, 401),
        ("GET", base + "/deploys?limit=0", auth, None, 400),
        ("GET", base + "/deploys?limit=101", auth, None, 400),
        ("GET", base + "/deploys?limit=5&status=nope", auth, None, 400),
        ("GET", base + "/deploys?limit=5&colour=red", auth, None, 400),
        ("POST", base + "/restart", {**auth, "Content-Type": "application/json"}, b"{}", 400),
        ("POST", base + "/deploys", {**auth, "Content-Type": "application/json"},
         b'{"clearCache": "maybe"}', 400),
        ("POST", base + "/rollback", {**auth, "Content-Type": "application/json"},
         b'{"deployId": "dep-none"}', 404),
        ("GET", base + "/deploys?limit=5", {**auth, "Accept": "text/html"}, None, 406),
        ("DELETE", base + "/restart", auth, None, 405),
        ("GET", render.url + "/services/srv-other", auth, None, 404),
    ]
    async with aiohttp.ClientSession() as session:
        for method, url, headers, body, status in cases:
            async with session.request(method, url, headers=headers, data=body) as response:
                assert response.status == status, (method, url)
                assert response.headers["Ratelimit-Limit"] == "400"
                assert "Ratelimit-Remaining" in response.headers
                assert "Ratelimit-Reset" in response.headers


async def test_deploys_created_long_ago_parse_as_aware_datetimes(
        render: FakeRender, client: RenderPlatform) -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    render.add_deploy(SERVICE, "live", created=created, finished=created + timedelta(minutes=2))
    [deploy] = await client.latest_deploys(SERVICE, 1)
    assert deploy.created_at == created
    assert deploy.finished_at == created + timedelta(minutes=2)
