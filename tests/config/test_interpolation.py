"""${VAR} substitution: defaults, *_FILE secrets, and errors that never show a value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tocsin.config import ConfigError, ConfigIssue, load_config_text

Issues = Callable[..., list[ConfigIssue]]


def load_url(value: str, env: dict[str, str]) -> str | None:
    loaded = load_config_text(f"services:\n  a:\n    url: '{value}'\n", env=env)
    return loaded.config.services["a"].url


def test_variable_is_substituted() -> None:
    assert load_url("http://${HOST}:${PORT}", {"HOST": "127.0.0.1", "PORT": "81"}) == (
        "http://127.0.0.1:81"
    )


def test_default_is_used_when_unset_or_empty() -> None:
    assert load_url("${URL:-http://127.0.0.1:9}", {}) == "http://127.0.0.1:9"
    assert load_url("${URL:-http://127.0.0.1:9}", {"URL": ""}) == "http://127.0.0.1:9"
    assert load_url("${URL:-http://127.0.0.1:9}", {"URL": "http://h"}) == "http://h"


def test_double_dollar_escapes_a_literal() -> None:
    loaded = load_config_text("services:\n  a:\n    labels: {k: '$${NOT_A_VAR}'}\n", env={})
    assert loaded.config.services["a"].labels == {"k": "${NOT_A_VAR}"}


def test_keys_and_non_strings_are_left_alone() -> None:
    loaded = load_config_text("services:\n  a:\n    labels: {'${K}': v}\n", env={})
    assert loaded.config.services["a"].labels == {"${K}": "v"}


def test_missing_variable_is_named_with_its_path_and_line(issues_of: Issues) -> None:
    text = "storage: sqlite:///x.db\nservices:\n  backend:\n    url: ${BACKEND_URL}\n"
    [issue] = issues_of(text, {"API_TOKEN": "tok-very-secret"})
    assert (issue.line, issue.path) == (4, "services.backend.url")
    assert issue.message.startswith("environment variable BACKEND_URL is not set")
    assert "tok-very-secret" not in str(issue)


def test_errors_never_show_an_environment_value(issues_of: Issues) -> None:
    text = """\
platforms: {render: {type: render, api_key: "${RENDER_API_KEY}"}}
services:
  a:
    url: ${MISSING_URL}
    checks:
      - type: http
        headers: {x-key: "${COMPANY_KEY}"}
        timeout: ${CHECK_TIMEOUT}
"""
    env = {"RENDER_API_KEY": "rnd_abcdef123456", "COMPANY_KEY": "ck-987654321",
           "CHECK_TIMEOUT": "ck-987654321 parsecs"}
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env=env)
    rendered = str(caught.value)
    assert "MISSING_URL" in rendered
    assert "rnd_abcdef123456" not in rendered
    assert "ck-987654321" not in rendered
    assert "invalid duration '*** parsecs'" in rendered


def test_file_secret_is_read_when_the_variable_is_unset(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cr3t-from-file\n")
    loaded = load_config_text(
        "platforms: {render: {type: render, api_key: '${RENDER_API_KEY}'}}\n",
        env={"RENDER_API_KEY_FILE": str(secret)},
    )
    assert loaded.config.platforms["render"].api_key.get_secret_value() == "s3cr3t-from-file"
    assert "s3cr3t-from-file" in loaded.redactor


def test_variable_wins_over_its_file(tmp_path: Path) -> None:
    loaded = load_config_text(
        "metrics: {p: '${KEY}'}\n", env={"KEY": "direct", "KEY_FILE": str(tmp_path / "none")}
    )
    assert loaded.config.metrics == {"p": "direct"}


def test_file_wins_over_the_default(tmp_path: Path) -> None:
    secret = tmp_path / "v"
    secret.write_text("from-file")
    loaded = load_config_text("metrics: {p: '${V:-dflt}'}\n", env={"V_FILE": str(secret)})
    assert loaded.config.metrics == {"p": "from-file"}


def test_unreadable_file_secret_names_the_file(issues_of: Issues, tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    [issue] = issues_of("metrics: {p: '${RENDER_API_KEY}'}\n",
                        {"RENDER_API_KEY_FILE": str(missing)})
    assert issue.path == "metrics.p"
    assert f"cannot read RENDER_API_KEY_FILE '{missing}'" in issue.message


def test_malformed_reference_is_an_issue(issues_of: Issues) -> None:
    [issue] = issues_of("metrics: {p: '${1BAD}', q: 'ok'}\n")
    assert issue.path == "metrics.p"
    assert "invalid variable reference" in issue.message


def test_every_missing_variable_is_reported(issues_of: Issues) -> None:
    issues = issues_of("metrics:\n  p: ${A}\n  q: ${B}-${C}\n")
    assert [issue.message.split(" is ")[0] for issue in issues] == [
        "environment variable A", "environment variable B", "environment variable C",
    ]


@pytest.mark.parametrize(
    "name", ["API_KEY", "github_token", "DB_PASSWORD", "SMTP_PASSWD", "AUTH", "MY_SECRET",
             "GCP_CREDENTIALS", "SLACK_WEBHOOK_URL"],
)
def test_secret_looking_variables_are_recorded(name: str) -> None:
    loaded = load_config_text(f"metrics: {{p: '${{{name}}}'}}\n", env={name: "value-1234"})
    assert "value-1234" in loaded.redactor


def test_ordinary_variables_are_not_secrets() -> None:
    loaded = load_config_text("metrics: {p: '${BACKEND_URL}'}\n",
                              env={"BACKEND_URL": "http://127.0.0.1:8001"})
    assert len(loaded.redactor) == 0


def test_values_substituted_into_headers_are_secrets() -> None:
    text = ("services:\n  a:\n    url: http://127.0.0.1\n    checks:\n"
            "      - {type: http, headers: {authorization: 'Bearer ${COMPANY}'}}\n")
    loaded = load_config_text(text, env={"COMPANY": "acme-1234"})
    assert "acme-1234" in loaded.redactor
    assert "Bearer acme-1234" in loaded.redactor
    assert loaded.checks[0].config.headers == {"authorization": "Bearer acme-1234"}
