"""The command probe (Nagios plugin API) running small scripts of its own."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, build_probe, probe_types
from tocsin.probes.command import CommandCheckConfig, CommandProbe
from tocsin.probes.perfdata import parse, value_name

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
CHECK_DUMMY = "/usr/lib/nagios/plugins/check_dummy"
CHECK_DISK = "/usr/lib/nagios/plugins/check_disk"


def make(context: ProbeContext, argv: list[str], timeout: float = 5.0,
         **config: Any) -> CommandProbe:
    spec = CheckSpec(name="svc cmd", service="svc", service_url=None, interval=10.0,
                     timeout=timeout, config=CommandCheckConfig.model_validate(
                         {"type": "command", "argv": argv, **config}))
    return CommandProbe(spec, context)


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "plugin.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_command_is_a_registered_check_type() -> None:
    assert probe_types()["command"] is CommandProbe


@pytest.mark.skipif(not os.path.exists(CHECK_DISK),
                    reason="needs Debian's monitoring plugins: "
                           "apt-get install monitoring-plugins-basic")
async def test_real_check_disk_perfdata_becomes_values(context: ProbeContext) -> None:
    result = await make(context, [CHECK_DISK, "-w", "1%", "-c", "1%", "-p", "/"]).run()
    assert result.status is CheckStatus.OK, result.message
    assert result.message.startswith("DISK OK")
    # '/=26461863936B;…;0;270552530944': the label "/" becomes the value "_", in bytes.
    used = result.values["_"]
    assert used > 1_000_000


@pytest.mark.parametrize(
    ("code", "status", "line", "message"),
    [
        (0, OK, "OK: all good | time=0.5s;1;2;0", "all good"),
        (1, FAILING, "WARNING - disk 85% full | used=85%;80;90", "disk 85% full"),
        (2, FAILING, "CRITICAL: disk 95% full", "disk 95% full"),
        (3, ERROR, "UNKNOWN: cannot stat /data", "cannot stat /data"),
        (2, FAILING, "", "CRITICAL"),
        (4, ERROR, "weird", "exit 4: weird"),
    ],
)
async def test_exit_codes_are_nagios_states(
    context: ProbeContext, tmp_path: Path, code: int, status: CheckStatus, line: str,
    message: str,
) -> None:
    argv = script(tmp_path, f"import sys\nprint({line!r})\nsys.exit({code})\n")
    result = await make(context, argv).run()
    assert result.status is status
    assert result.message == message
    assert result.code == code
    if code <= 3:
        assert result.values["nagios_state"] == code
    else:
        assert "nagios_state" not in result.values
    assert result.latency_ms is not None and result.latency_ms > 0


async def test_perfdata_of_the_first_line_become_values(
    context: ProbeContext, tmp_path: Path
) -> None:
    argv = script(tmp_path, """\
        print("OK: fine | time=0.5s;1;2;0 'Free Space'=2GB;;;0;10 load1=0.25")
        print("long output line")
        print("more | rows=12c")
    """)
    result = await make(context, argv).run()
    assert result.status is OK
    assert result.values == {"nagios_state": 0, "time": 500.0, "free_space": 2e9,
                             "load1": 0.25, "rows": 12.0}
    assert result.details["nagios_state"] == "OK"
    assert result.details["output"].startswith("OK: fine")


async def test_killed_by_sigkill_is_exit_137(context: ProbeContext, tmp_path: Path) -> None:
    argv = script(tmp_path, """\
        import os, signal, sys
        print("about to die", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = await make(context, argv).run()
    assert result.status is ERROR
    assert result.code == 137
    assert result.message == "exit 137 (killed by signal 9): about to die"


async def test_hang_is_killed_at_the_timeout(context: ProbeContext, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    argv = script(tmp_path, f"""\
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    result = await make(context, argv, timeout=1.0).run()
    assert loop.time() - begun < 3
    assert result.status is ERROR
    assert result.message == f"{sys.executable} timed out after 1s (killed)"
    child = int(pid_file.read_text())
    await asyncio.sleep(0.2)
    assert not _alive(child)  # the whole process group was killed


def _alive(pid: int) -> bool:
    """Running (a zombie left for the container's init to reap is dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


async def test_megabytes_of_output_are_capped(context: ProbeContext, tmp_path: Path) -> None:
    argv = script(tmp_path, """\
        import sys
        sys.stdout.write("OK: big | size=5MB\\n")
        for _ in range(64):
            sys.stdout.write("x" * (1024 * 1024))
    """)
    result = await make(context, argv, timeout=20.0, output_cap="64KiB").run()
    assert result.status is OK
    assert result.message == "big"
    assert result.values["size"] == 5e6
    assert result.details["output_truncated"] is True
    assert len(result.details["output"]) <= 4000


async def test_missing_binary_is_an_error(context: ProbeContext, tmp_path: Path) -> None:
    result = await make(context, [str(tmp_path / "no-such-plugin")]).run()
    assert result.status is ERROR
    assert result.message == f"cannot run {tmp_path / 'no-such-plugin'}: No such file or directory"


async def test_environment_is_clean_plus_configured(
    context: ProbeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_TEST_SECRET", "leak")
    argv = script(tmp_path, """\
        import os
        print("OK: " + ",".join(sorted(k for k in os.environ if k not in ("LC_CTYPE",))))
    """)
    result = await make(context, argv, env={"PLUGIN_MODE": "fast"}).run()
    assert "TOCSIN_TEST_SECRET" not in result.message
    assert "PLUGIN_MODE" in result.message.split(",")


async def test_build_probe_makes_a_command_probe(context: ProbeContext) -> None:
    spec = CheckSpec(name="n", service=None, service_url=None, interval=10.0, timeout=1.0,
                     config=CommandCheckConfig.model_validate(
                         {"type": "command", "argv": ["/bin/true"]}))
    assert isinstance(build_probe(spec, context), CommandProbe)


@pytest.mark.skipif(not os.path.exists(CHECK_DUMMY),
                    reason="needs Debian's monitoring plugins: "
                           "apt-get install monitoring-plugins-basic")
async def test_real_check_dummy_warning(context: ProbeContext) -> None:
    result = await make(context, [CHECK_DUMMY, "1", "disk nearly full"]).run()
    assert result.status is FAILING
    assert result.values["nagios_state"] == 1
    assert result.message == "disk nearly full"


@pytest.mark.parametrize(
    "config",
    [{"argv": []}, {"argv": [" "]}, {"argv": ["a\x00b"]}, {"argv": ["x"], "env": {"1X": "y"}},
     {"argv": "echo hi"}, {"argv": ["x"], "shell": True}],
)
def test_invalid_configs_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CommandCheckConfig.model_validate({"type": "command", **config})


# -- perfdata ------------------------------------------------------------------------------------


def test_perfdata_units_are_converted() -> None:
    out = parse("OK | a=1s b=2ms c=3000us d=50% e=1B f=2KB g=3MB h=4GB i=1TB j=7c k=3 l=-1.5e1")
    assert out.values() == {"a": 1000.0, "b": 2.0, "c": 3.0, "d": 50.0, "e": 1.0, "f": 2000.0,
                            "g": 3e6, "h": 4e9, "i": 1e12, "j": 7.0, "k": 3.0, "l": -15.0}
    assert out.malformed == [] and out.unknown == []


def test_quoted_labels_unknown_values_and_malformed_items() -> None:
    out = parse("OK: text | 'Free Space'=10MB;;; 'it''s'=1 'x y'=U;1;2 bad =5 n=abc m=5parsecs"
                " ok=2")
    assert out.text == "OK: text"
    assert out.values() == {"free_space": 1e7, "it_s": 1.0, "ok": 2.0}
    assert out.unknown == ["x y"]
    assert out.malformed == ["bad", "=5", "n=abc", "m=5parsecs"]
    assert out.perfdata[1].label == "it's"


def test_long_output_perfdata_after_the_bar_on_later_lines() -> None:
    out = parse("DISK OK | /=2643MB;5948\n/ 15272 MB (77%);\n/boot 68 MB; | /boot=68MB\n"
                "/home=69357MB;253404\n")
    assert out.text == "DISK OK"
    assert out.long_output == "/ 15272 MB (77%);\n/boot 68 MB;"
    assert out.values() == {"_": 2.643e9, "_boot": 6.8e7, "_home": 6.9357e10}


def test_no_output_and_names() -> None:
    assert parse("").text == ""
    assert value_name("Load 1") == "load_1"
    assert value_name("1min") == "_1min"
