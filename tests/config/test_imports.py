"""The check union is built on first use, so import order and late registration work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tocsin.config.issues import format_key_path


def run_fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    "first", ["tocsin.probes.base", "tocsin.probes.http", "tocsin.config.model", "tocsin.config"]
)
def test_any_import_order_works(first: str) -> None:
    output = run_fresh(f"""
        import {first}
        from tocsin.config import load_config_text
        print(load_config_text("services: {{a: {{checks: [{{type: http}}]}}}}", env={{}})
              .checks[0].name)
    """)
    assert output == "a:http"


def test_a_probe_registered_later_is_accepted() -> None:
    output = run_fresh("""
        from typing import Literal
        from tocsin.config import load_config_text
        from tocsin.probes import CheckConfig, Probe, register

        load_config_text("services: {}", env={})  # builds the union without "echo"

        class EchoConfig(CheckConfig):
            type: Literal["echo"]
            text: str

        @register
        class EchoProbe(Probe[EchoConfig]):
            type = "echo"
            config_model = EchoConfig
            async def run(self):
                raise NotImplementedError

        loaded = load_config_text("services: {a: {checks: [{type: echo, text: hi}]}}", env={})
        print(type(loaded.checks[0].config).__name__, loaded.checks[0].config.text)
    """)
    assert output == "EchoConfig hi"


def test_key_paths_read_like_the_file() -> None:
    assert format_key_path(("services", "backend", "checks", 0, "timeout")) == (
        "services.backend.checks[0].timeout"
    )
    assert format_key_path(("host", 2)) == "host[2]"
    assert format_key_path(()) == ""
