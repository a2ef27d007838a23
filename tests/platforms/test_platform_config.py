"""The `platforms:` section, `services.X.platform`, and how deploy checks find their platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.config import (
    EXAMPLE_CONFIG_PATH,
    ConfigError,
    ConfigIssue,
    load_config,
    load_config_text,
)
from tocsin.platforms.render import RenderConfig
from tocsin.probes.deploy import DeployCheckConfig

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"

RENDER = "platforms:\n  render: {type: render, api_key: '${RENDER_API_KEY:-}'}\n"


def issues(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env=env or {})
    return caught.value.issues


def test_a_service_platform_resolves_into_its_deploy_check() -> None:
    loaded = load_config_text(RENDER + """\
services:
  backend:
    platform: {name: render, service_id: srv-b}
    checks:
      - {type: deploy, max_duration: 20m, limit: 10}
      - {type: http, url: http://127.0.0.1:1/}
""", env={"RENDER_API_KEY": "rnd_k_1234"})
    deploy, http = loaded.checks
    assert isinstance(deploy.config, DeployCheckConfig)
    assert (deploy.config.max_duration, deploy.config.limit) == (1200.0, 10)
    assert deploy.platform is not None
    assert (deploy.platform.platform, deploy.platform.service_id) == ("render", "srv-b")
    assert isinstance(deploy.platform.config, RenderConfig)
    assert deploy.platform.config.api_key.get_secret_value() == "rnd_k_1234"
    assert "rnd_k_1234" in loaded.redactor
    assert "rnd_k_1234" not in repr(loaded.config)
    assert http.platform is not None  # the service's platform, for remediation later
    assert loaded.skipped == ()


def test_a_deploy_check_may_name_its_own_platform_service() -> None:
    loaded = load_config_text(RENDER + """\
services:
  worker:
    checks:
      - {type: deploy, platform: render, service_id: srv-w}
""", env={})
    [check] = loaded.checks
    assert check.platform is not None and check.platform.service_id == "srv-w"
    assert check.config.max_duration == 1800.0 and check.config.limit == 5


def test_a_deploy_check_without_a_platform_service_is_refused() -> None:
    [issue] = issues(RENDER + """\
services:
  worker:
    checks:
      - {type: deploy}
""")
    assert (issue.path, issue.line) == ("services.worker.checks[0]", 6)
    assert issue.message.startswith("a deploy check needs a platform service")


def test_an_unknown_platform_name_is_refused_with_a_suggestion() -> None:
    found = issues(RENDER + """\
services:
  backend:
    platform: {name: rendr, service_id: srv-b}
    checks:
      - {type: deploy, platform: heroku}
""")
    by_path = {issue.path: issue for issue in found}
    service = by_path["services.backend.platform.name"]
    assert service.line == 5
    assert service.message == "unknown platform 'rendr' (did you mean 'render'?)"
    assert by_path["services.backend.checks[0].platform"].message == (
        "unknown platform 'heroku' (configured platforms: render)")


def test_an_unknown_platform_type_is_refused_with_a_suggestion() -> None:
    [issue] = issues("platforms:\n  render: {type: rendr, api_key: x}\n")
    assert (issue.path, issue.line) == ("platforms.render", 2)
    assert issue.message == "unknown platform type 'rendr' (did you mean 'render'?)"


def test_platform_keys_are_checked() -> None:
    found = issues("platforms:\n  render: {type: render, api_key: x, base_url: "
                   "'http://api.render.com/v1', region: eu}\n")
    messages = {issue.path: issue.message for issue in found}
    assert messages["platforms.render.base_url"].startswith("base_url must use https://")
    assert messages["platforms.render.region"].startswith("unknown key 'region'")


def test_a_service_platform_needs_both_keys() -> None:
    [issue] = issues(RENDER + "services:\n  a:\n    platform: {name: render}\n")
    assert issue.path == "services.a.platform.service_id"


def test_an_api_key_from_any_variable_is_a_secret() -> None:
    loaded = load_config_text(
        "platforms:\n  render: {type: render, api_key: '${RENDER_CREDS_VALUE}'}\n",
        env={"RENDER_CREDS_VALUE": "rnd_oddly_named"})
    assert "rnd_oddly_named" in loaded.redactor


def test_the_example_config_runs_its_deploy_check_without_a_key() -> None:
    loaded = load_config(EXAMPLE_CONFIG_PATH, env={})
    deploy = next(check for check in loaded.checks if check.name == "backend:deploy")
    assert "backend:deploy" not in loaded.skipped
    assert deploy.platform is not None and deploy.platform.service_id == "srv-backend-id"
    assert deploy.platform.config.api_key.get_secret_value() == ""  # not configured: ERROR


def test_the_product_brief_example_resolves_its_deploy_check() -> None:
    env = {"RENDER_API_KEY": "rnd_test_key_123", "COMPANY_KEY": "company-key-456",
           "SENDGRID_API_KEY": "SG.test-789", "ALERT_EMAIL": "oncall@example.com",
           "SMTP_HOST": "127.0.0.1", "SMTP_USER": "tocsin", "SMTP_PASSWORD": "smtp-pass-000",
           "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    loaded = load_config(FIXTURES / "product_example.yaml", env=env)
    deploy = next(check for check in loaded.checks if check.name == "backend:deploy")
    assert deploy.platform is not None and deploy.platform.platform == "render"
    assert "rnd_test_key_123" in loaded.redactor
