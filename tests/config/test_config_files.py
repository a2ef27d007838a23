"""The shipped configs, the product brief's example, and how a config file is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.config import DEFAULT_CONFIG_PATH, EXAMPLE_CONFIG_PATH, load_config

FIXTURES = Path(__file__).parent / "fixtures"

BRIEF_ENV = {
    "RENDER_API_KEY": "rnd_test_key_123", "COMPANY_KEY": "company-key-456",
    "SENDGRID_API_KEY": "SG.test-789", "ALERT_EMAIL": "oncall@example.com",
    "SMTP_HOST": "127.0.0.1", "SMTP_USER": "tocsin", "SMTP_PASSWORD": "smtp-pass-000",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
}


def test_default_config_watches_tocsin_itself_and_the_host() -> None:
    loaded = load_config(DEFAULT_CONFIG_PATH, env={})
    assert loaded.config.storage == "sqlite:///tocsin.db"
    assert (loaded.config.web.host, loaded.config.web.port) == ("127.0.0.1", 8080)
    check, *host = loaded.checks
    assert (check.name, check.type, check.interval) == ("tocsin:health", "http", 30.0)
    assert check.service_url == "http://127.0.0.1:8080"
    assert check.config.path == "/health"
    assert [(spec.name, spec.type, spec.service) for spec in host] == [
        ("host:cpu", "system", None), ("host:memory", "system", None),
        ("host:disk:/", "system", None)]
    assert [str(spec.config.alerts[0].when) for spec in host] == ["> 80%", "> 85%", "> 90%"]
    assert loaded.skipped == ()  # all of it runs


def test_example_config_validates_with_an_empty_environment() -> None:
    loaded = load_config(EXAMPLE_CONFIG_PATH, env={})
    assert loaded.source == str(EXAMPLE_CONFIG_PATH.resolve())
    service_checks = [check for check in loaded.checks
                      if check.service in loaded.config.services and check.type != "slo"]
    assert [check.name for check in service_checks] == [
        "backend:http", "backend:deploy", "backend:error_rate", "frontend:http",
    ]
    assert [check.name for check in loaded.checks if check.type == "slo"] == [
        "slo:backend uptime", "slo:backend latency", "slo:backend errors", "slo:deploys"]
    # The error-rate SLO makes its check fail a run above the SLO's bound.
    (error_rate,) = [check for check in service_checks if check.type == "error_rate"]
    assert error_rate.config.expect.error_rate == pytest.approx(0.01)
    assert "backend:deploy" not in loaded.skipped
    assert "backend:error_rate" not in loaded.skipped
    assert [check.name for check in loaded.checks if check.name.startswith("host:")] == [
        "host:cpu", "host:memory", "host:disk:/"]
    assert all("127.0.0.1" in (check.service_url or "") for check in service_checks)


def test_example_config_comments_every_top_level_key() -> None:
    lines = EXAMPLE_CONFIG_PATH.read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")):
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


def test_product_brief_example_validates_with_planned_types() -> None:
    loaded = load_config(FIXTURES / "product_example.yaml", env=BRIEF_ENV)
    by_name = {check.name: check for check in loaded.checks}
    assert {name for name, check in by_name.items()
            if check.service in loaded.config.services and check.type != "slo"} \
        == {"backend:http", "backend:deploy", "backend:error_rate", "frontend:http"}
    assert by_name["demo:database"].config.url == "sqlite:///homeverse_demo.db"
    assert [request.label for request in by_name["backend:error_rate"].config.requests] == [
        "GET /api/v1/auth/login", "GET /api/v1/applicants", "GET /api/v1/projects"]
    assert [by_name[name].config.metric for name in ("host:cpu", "host:memory", "host:disk:/")
            ] == ["cpu", "memory", "disk"]
    assert by_name["backend:http"].timeout == 10.0
    assert by_name["frontend:http"].interval == 60.0  # from the defaults
    for secret in ("rnd_test_key_123", "company-key-456", "SG.test-789", "smtp-pass-000",
                   "http://127.0.0.1:9/hook"):
        assert secret in loaded.redactor


def test_without_a_path_the_local_file_is_used(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tocsin.yaml").write_text("web: {port: 9999}\n")
    loaded = load_config(env={})
    assert loaded.source == str(tmp_path / "tocsin.yaml")
    assert loaded.config.web.port == 9999


def test_without_a_path_or_local_file_the_default_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_config(env={})
    assert loaded.source == "<built-in default>"
    assert [check.name for check in loaded.checks] == [
        "tocsin:health", "host:cpu", "host:memory", "host:disk:/"]


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    loaded = load_config(path, env={})
    assert loaded.config.defaults.interval == 60.0
    assert loaded.config.scheduler.concurrency == 1000
    assert loaded.checks == ()
