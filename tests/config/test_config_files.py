"""The shipped configs, the product brief's example, and how a config file is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.config import DEFAULT_CONFIG_PATH, EXAMPLE_CONFIG_PATH, load_config
from tocsin.config.model import PlannedCheckConfig

FIXTURES = Path(__file__).parent / "fixtures"

BRIEF_ENV = {
    "RENDER_API_KEY": "rnd_test_key_123", "COMPANY_KEY": "company-key-456",
    "SENDGRID_API_KEY": "SG.test-789", "ALERT_EMAIL": "oncall@example.com",
    "SMTP_HOST": "127.0.0.1", "SMTP_USER": "tocsin", "SMTP_PASSWORD": "smtp-pass-000",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
}


def test_default_config_watches_tocsin_itself() -> None:
    loaded = load_config(DEFAULT_CONFIG_PATH, env={})
    assert loaded.config.storage == "sqlite:///tocsin.db"
    assert (loaded.config.web.host, loaded.config.web.port) == ("127.0.0.1", 8080)
    [check] = loaded.checks
    assert (check.name, check.type, check.interval) == ("tocsin:health", "http", 30.0)
    assert check.service_url == "http://127.0.0.1:8080"
    assert check.config.path == "/health"
    assert [item["metric"] for item in loaded.config.host] == ["cpu", "memory", "disk"]


def test_example_config_validates_with_an_empty_environment() -> None:
    loaded = load_config(EXAMPLE_CONFIG_PATH, env={})
    assert loaded.source == str(EXAMPLE_CONFIG_PATH.resolve())
    assert [check.name for check in loaded.checks] == [
        "backend:http", "backend:deploy", "backend:error_rate", "frontend:http",
    ]
    assert loaded.skipped == ("backend:deploy", "backend:error_rate")
    assert all("127.0.0.1" in (check.service_url or "") for check in loaded.checks)


def test_example_config_comments_every_top_level_key() -> None:
    lines = EXAMPLE_CONFIG_PATH.read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")):
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


def test_product_brief_example_validates_with_planned_types() -> None:
    loaded = load_config(FIXTURES / "product_example.yaml", env=BRIEF_ENV)
    by_name = {check.name: check for check in loaded.checks}
    assert set(by_name) == {"backend:http", "backend:deploy", "backend:error_rate",
                            "frontend:http"}
    assert isinstance(by_name["backend:error_rate"].config, PlannedCheckConfig)
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
    assert [check.name for check in loaded.checks] == ["tocsin:health"]


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    loaded = load_config(path, env={})
    assert loaded.config.defaults.interval == 60.0
    assert loaded.config.scheduler.concurrency == 1000
    assert loaded.checks == ()
