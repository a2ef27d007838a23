"""The system probe on this machine: every metric, the CPU arithmetic, processes, config."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tocsin.alerting.conditions import parse_condition
from tocsin.config import ConfigError, load_config_text
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, probe_types
from tocsin.probes.host_metrics import CPUMeter, Reading
from tocsin.probes.system import SystemCheckConfig, SystemProbe

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
MakeProbe = Callable[..., SystemProbe]


@pytest.fixture
def system_probe(context: ProbeContext) -> MakeProbe:
    """``system_probe(metric, timeout=2.0, **config)`` → a probe of this host."""

    def make(metric: str, timeout: float = 2.0, **config: Any) -> SystemProbe:
        spec = CheckSpec(
            name=f"host:{metric}", service=None, service_url=None, interval=60.0,
            timeout=timeout,
            config=SystemCheckConfig.model_validate(
                {"type": "system", "metric": metric, **config}),
        )
        return SystemProbe(spec, context)

    return make


def test_system_is_a_registered_check_type() -> None:
    assert probe_types()["system"] is SystemProbe


# -- the metrics ---------------------------------------------------------------------------------


async def test_cpu_is_a_percentage_of_all_cpus(system_probe: MakeProbe) -> None:
    result = await system_probe("cpu", timeout=0.2).run()

    assert result.status is OK, result.message
    assert set(result.values) == {"value", "cpu"}
    assert 0 <= result.values["cpu"] <= 100
    assert result.values["value"] == result.values["cpu"]
    assert result.message.startswith("cpu ") and result.message.endswith("%")


async def test_cpu_first_run_samples_briefly_and_later_runs_do_not_wait(
    system_probe: MakeProbe,
) -> None:
    probe = system_probe("cpu", timeout=0.2)  # a sample of at most half the timeout: 0.1 s
    first = await probe.run()
    await asyncio.sleep(0.15)
    start = time.perf_counter()
    second = await probe.run()
    elapsed = time.perf_counter() - start

    assert first.latency_ms is not None and first.latency_ms >= 100
    assert elapsed < 0.05  # measured since the first run: no new sample needed
    assert 0 <= second.values["cpu"] <= 100


async def test_memory_is_a_percentage_with_bytes(system_probe: MakeProbe) -> None:
    result = await system_probe("memory").run()

    assert result.status is OK, result.message
    assert 0 < result.values["memory"] <= 100
    assert result.values["value"] == result.values["memory"]
    assert 0 < result.values["available_bytes"] <= result.values["total_bytes"]
    assert result.values["total_bytes"] == psutil.virtual_memory().total


async def test_swap_is_a_percentage_even_without_swap(system_probe: MakeProbe) -> None:
    result = await system_probe("swap").run()

    assert result.status is OK, result.message
    assert 0 <= result.values["swap"] <= 100
    assert result.values["total_bytes"] == psutil.swap_memory().total


async def test_disk_is_the_share_in_use_of_the_filesystem_of_a_path(
    system_probe: MakeProbe, tmp_path: Path
) -> None:
    root = await system_probe("disk").run()  # path defaults to /
    here = await system_probe("disk", path=str(tmp_path)).run()

    for result in (root, here):
        assert result.status is OK, result.message
        assert 0 < result.values["disk"] <= 100
        assert result.values["value"] == result.values["disk"]
        assert 0 < result.values["free_bytes"] < result.values["total_bytes"]
    assert root.message.startswith("disk / ")
    assert here.values["total_bytes"] == psutil.disk_usage(str(tmp_path)).total


async def test_load_is_per_core_with_the_raw_averages(system_probe: MakeProbe) -> None:
    result = await system_probe("load").run()

    assert result.status is OK, result.message
    cores = psutil.cpu_count() or 1
    assert result.values["value"] == result.values["load"]
    assert result.values["load"] == pytest.approx(result.values["load1"] / cores)
    assert all(result.values[key] >= 0 for key in ("load1", "load5", "load15"))


async def test_a_disk_path_that_vanished_is_an_error(
    system_probe: MakeProbe, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    probe = system_probe("disk", path=str(gone))
    gone.rmdir()

    result = await probe.run()
    assert result.status is ERROR
    assert result.message == f"cannot read disk {gone}: No such file or directory"


# -- rules on the primary value ------------------------------------------------------------------


async def test_short_form_rules_compare_the_primary_value(system_probe: MakeProbe) -> None:
    memory = await system_probe("memory").run()
    disk = await system_probe("disk").run()

    outcome = parse_condition("> 80%").evaluate(memory)
    assert outcome.value == memory.values["memory"]
    assert outcome.held is (memory.values["memory"] > 80)
    assert parse_condition("> 0%").evaluate(disk).held is True
    assert parse_condition(">= 100.1%").evaluate(disk).held is False
    assert parse_condition("free_bytes > 1KB").evaluate(disk).held is True


# -- the CPU arithmetic --------------------------------------------------------------------------

Times = namedtuple("Times", "user nice system idle iowait")


def test_cpu_meter_is_busy_time_over_elapsed_time_between_its_own_samples() -> None:
    meter = CPUMeter(min_interval=1.0)
    assert meter.sample(Times(10, 0, 10, 80, 0), at=100.0) is None  # a baseline
    # +6 user, +2 system, +10 idle, +2 iowait: 8 busy of 20
    assert meter.sample(Times(16, 0, 12, 90, 2), at=101.0) == pytest.approx(40.0)
    # nothing but idle since
    assert meter.sample(Times(16, 0, 12, 110, 2), at=102.0) == 0.0


def test_two_meters_do_not_shorten_each_others_interval() -> None:
    every_second, every_minute = CPUMeter(1.0), CPUMeter(1.0)
    every_second.sample(Times(0, 0, 0, 0, 0), at=0.0)
    every_minute.sample(Times(0, 0, 0, 0, 0), at=0.0)
    # A busy first second, then an idle minute.
    assert every_second.sample(Times(1, 0, 0, 0, 0), at=1.0) == 100.0
    assert every_second.sample(Times(1, 0, 0, 59, 0), at=60.0) == 0.0
    # The other meter still measures its whole minute: 1 busy second of 60.
    assert every_minute.sample(Times(1, 0, 0, 59, 0), at=60.0) == pytest.approx(100 / 60)


def test_cpu_meter_wants_a_new_baseline_right_after_a_sample() -> None:
    meter = CPUMeter(min_interval=0.5)
    assert not meter.ready(0.0)
    meter.sample(Times(1, 0, 0, 1, 0), at=10.0)
    assert not meter.ready(10.1)
    assert meter.ready(10.5)


def test_cpu_meter_without_a_tick_between_samples_is_idle() -> None:
    meter = CPUMeter(min_interval=0.0)
    meter.sample(Times(1, 0, 0, 1, 0), at=0.0)
    assert meter.sample(Times(1, 0, 0, 1, 0), at=0.001) == 0.0


# -- processes -----------------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A child process with a unique marker on its command line."""
    marker = f"tocsin-test-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    child.marker = marker  # type: ignore[attr-defined]
    yield child
    child.kill()
    child.wait()


async def test_a_process_found_by_name_is_ok(system_probe: MakeProbe) -> None:
    name = psutil.Process().name()
    result = await system_probe("process", process=name).run()

    assert result.status is OK, result.message
    assert result.values["processes"] >= 1
    assert result.values["value"] == result.values["processes"]
    assert os.getpid() in result.details["pids"]


async def test_a_process_found_by_command_line_and_then_gone(
    system_probe: MakeProbe, sleeper: subprocess.Popen[bytes]
) -> None:
    probe = system_probe("process", match=sleeper.marker)  # type: ignore[attr-defined]
    running = await probe.run()
    sleeper.kill()
    sleeper.wait()  # reaped: not even a zombie
    gone = await probe.run()

    assert running.status is OK, running.message
    assert running.values["processes"] == 1
    assert running.details["pids"] == [sleeper.pid]
    assert running.message == f"/{sleeper.marker}/: 1 process running"  # type: ignore[attr-defined]
    assert gone.status is FAILING
    assert gone.values["processes"] == 0
    assert gone.message == f"no process /{sleeper.marker}/ is running"  # type: ignore[attr-defined]


async def test_a_process_by_name_that_does_not_run_is_failing(system_probe: MakeProbe) -> None:
    result = await system_probe("process", process="no-such-daemon-" + uuid.uuid4().hex[:8]).run()
    assert result.status is FAILING
    assert result.message.startswith("no process no-such-daemon-")
    assert parse_condition("down").evaluate(result).held is True


async def test_a_pidfile_of_a_live_process_is_ok(system_probe: MakeProbe, tmp_path: Path) -> None:
    pidfile = tmp_path / "tocsin.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    result = await system_probe("process", pidfile=str(pidfile)).run()

    assert result.status is OK, result.message
    assert result.values == {"value": 1, "processes": 1}
    assert result.details == {"pidfile": str(pidfile), "pid": os.getpid()}


async def test_a_missing_pidfile_is_failing(system_probe: MakeProbe, tmp_path: Path) -> None:
    result = await system_probe("process", pidfile=str(tmp_path / "none.pid")).run()
    assert result.status is FAILING
    assert result.message == f"pid file {tmp_path / 'none.pid'} does not exist"


async def test_a_pidfile_of_a_dead_process_is_failing(
    system_probe: MakeProbe, sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleeper.pid"
    pidfile.write_text(str(sleeper.pid))
    probe = system_probe("process", pidfile=str(pidfile))
    assert (await probe.run()).status is OK
    sleeper.kill()
    sleeper.wait()

    result = await probe.run()
    assert result.status is FAILING
    assert result.message == f"process {sleeper.pid} from {pidfile} is not running"
    assert result.values["processes"] == 0


async def test_a_pidfile_without_a_pid_is_failing(system_probe: MakeProbe, tmp_path: Path) -> None:
    pidfile = tmp_path / "garbage.pid"
    pidfile.write_text("not a pid")
    result = await system_probe("process", pidfile=str(pidfile)).run()
    assert result.status is FAILING
    assert result.message == f"pid file {pidfile} holds no pid"


# -- reads that hang -----------------------------------------------------------------------------


async def test_a_read_that_hangs_costs_a_timeout_and_one_thread(
    system_probe: MakeProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hung network filesystem cannot be had here: a read that blocks stands in for it.
    release = threading.Event()
    calls = 0

    def hung_read() -> Reading:
        nonlocal calls
        calls += 1
        release.wait(5)
        return Reading({"value": 1.0}, "late")

    probe = system_probe("disk", timeout=0.2)
    monkeypatch.setattr(probe, "_read", hung_read)
    start = time.perf_counter()
    first = await probe.run()
    second = await probe.run()
    elapsed = time.perf_counter() - start
    release.set()
    await asyncio.sleep(0.05)
    third = await probe.run()

    assert first.status is ERROR
    assert first.message == "reading disk / timed out after 0.2 s"
    assert second.status is ERROR
    assert second.message == "the previous read has not returned yet (a hung filesystem?)"
    assert elapsed < 0.5
    assert calls == 2  # the second run started no thread; the third did
    assert third.status is OK


# -- configuration -------------------------------------------------------------------------------


def test_host_checks_are_named_for_what_they_watch(tmp_path: Path) -> None:
    loaded = load_config_text(f"""\
host:
  - {{type: system, metric: cpu, alerts: [{{when: "> 80%", severity: P3}}]}}
  - {{type: system, metric: disk}}
  - {{type: system, metric: disk, path: {tmp_path}}}
  - {{type: system, metric: process, process: nginx}}
  - {{type: system, metric: process, pidfile: /run/app.pid, interval: 10s}}
  - {{metric: load, name: load average}}
""", env={})
    assert [(check.name, check.service) for check in loaded.checks] == [
        ("host:cpu", None), ("host:disk:/", None), (f"host:disk:{tmp_path}", None),
        ("host:process:nginx", None), ("host:process:/run/app.pid", None),
        ("load average", None),
    ]
    assert loaded.checks[4].interval == 10.0
    assert loaded.checks[0].timeout == 10.0  # from the defaults


def issue_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    [issue] = caught.value.issues
    return str(issue)


def test_a_disk_path_that_does_not_exist_is_refused_at_load() -> None:
    text = "host:\n  - type: system\n    metric: disk\n    path: /no/such/mount\n"
    assert issue_of(text) == ("tocsin.yaml:4: host[0].path: path '/no/such/mount' does not "
                              "exist on this host")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{type: system, metric: cpu, path: /}", "host[0]: path applies to metric: disk only"),
        ("{type: system, metric: process}", "host[0]: a process check needs one of process"),
        ("{type: system, metric: process, process: a, pidfile: /b}",
         "host[0]: a process check needs one of"),
        ("{type: system, metric: memory, process: a}",
         "host[0]: process applies to metric: process only"),
        ("{type: system, metric: process, match: '(a'}",
         "host[0].match: invalid regular expression '(a'"),
        ("{type: system, metric: gpu}", "host[0].metric: Input should be 'cpu', 'memory'"),
        ("{type: http, metric: cpu}", "host[0].type: `host:` lists system checks (type: "
                                      "system), not 'http': put other checks under a service"),
        ("{type: system, metric: cpu, interval: 0.5s}",
         "host[0].interval: an interval must be at least 1s"),
    ],
)
def test_bad_host_checks_are_refused_with_their_line(entry: str, message: str) -> None:
    issue = issue_of(f"web: {{port: 0}}\nhost:\n  - {entry}\n")
    assert issue.startswith("tocsin.yaml:3: ")
    assert message in issue


def test_two_unnamed_host_checks_of_one_metric_must_be_named() -> None:
    issue = issue_of("host:\n  - {type: system, metric: cpu}\n  - {type: system, metric: cpu}\n")
    assert issue.startswith("tocsin.yaml:3: host[1]: a second 'system' check under `host:`")
    assert "'host:cpu' is already taken on line 2" in issue
