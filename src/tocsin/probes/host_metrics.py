"""Reading this host with psutil: one function per metric, each returning a :class:`Reading`.

These calls may block (a disk on a hung network mount, thousands of processes
to list): :mod:`tocsin.probes.system` runs them in a thread, bounded by the
check timeout. Percentages are 0–100; sizes are bytes.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil

from tocsin.probes.base import CheckStatus

FIRST_CPU_SAMPLE = 0.5  # seconds: the first run of a cpu check has no earlier sample to compare
_MAX_LISTED_PIDS = 20


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read of the host found."""

    values: dict[str, float]
    message: str
    status: CheckStatus = CheckStatus.OK
    details: dict[str, Any] = field(default_factory=dict)


class CPUMeter:
    """The busy share of all CPUs between two samples of ``psutil.cpu_times()``.

    Each cpu check keeps its own meter: ``psutil.cpu_percent(interval=None)``
    measures since the previous call *by anyone* in the process, so two checks
    (or a library) calling it would shorten each other's interval.
    """

    def __init__(self, min_interval: float = FIRST_CPU_SAMPLE) -> None:
        self.min_interval = min_interval
        self._last: tuple[float, float, float] | None = None  # (at, busy, total) seconds

    def ready(self, at: float) -> bool:
        """Whether a sample at ``at`` would measure something: the previous one is old enough.

        CPU times advance in clock ticks (10 ms): over a few ms they say nothing.
        """
        return self._last is not None and at - self._last[0] >= self.min_interval

    def sample(self, times: Any, at: float) -> float | None:
        """Percent busy since the previous sample (None for the first), taken at ``at``.

        ``at`` is a monotonic clock reading; the new sample is the next baseline.
        """
        busy, total = _busy_and_total(times)
        last, self._last = self._last, (at, busy, total)
        if last is None:
            return None
        elapsed = total - last[2]
        if elapsed <= 0:
            return 0.0
        return min(100.0, max(0.0, (busy - last[1]) * 100 / elapsed))


def _busy_and_total(times: Any) -> tuple[float, float]:
    """As psutil computes it: idle and iowait are not busy; guest time is counted in user."""
    total = float(sum(times))
    if sys.platform.startswith("linux"):
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return busy, total


def read_memory() -> Reading:
    memory = psutil.virtual_memory()
    return Reading(
        {"value": memory.percent, "memory": memory.percent,
         "available_bytes": memory.available, "total_bytes": memory.total},
        f"memory {memory.percent:.1f}% used, {format_bytes(memory.available)} available",
    )


def read_swap() -> Reading:
    swap = psutil.swap_memory()
    if not swap.total:
        return Reading({"value": 0.0, "swap": 0.0, "used_bytes": 0, "total_bytes": 0}, "no swap")
    return Reading(
        {"value": swap.percent, "swap": swap.percent,
         "used_bytes": swap.used, "total_bytes": swap.total},
        f"swap {swap.percent:.1f}% used of {format_bytes(swap.total)}",
    )


def read_disk(path: str) -> Reading:
    usage = psutil.disk_usage(path)
    return Reading(
        {"value": usage.percent, "disk": usage.percent,
         "free_bytes": usage.free, "total_bytes": usage.total},
        f"disk {path} {usage.percent:.1f}% used, {format_bytes(usage.free)} free",
    )


def read_load() -> Reading:
    load1, load5, load15 = psutil.getloadavg()
    cores = psutil.cpu_count() or 1
    per_core = load1 / cores
    return Reading(
        {"value": per_core, "load": per_core, "load1": load1, "load5": load5, "load15": load15},
        f"load {per_core:.2f} per core ({load1:.2f}, {load5:.2f}, {load15:.2f} over "
        f"1, 5, 15 min on {cores} CPUs)",
    )


# psutil keeps a module-wide table of the processes it has seen; process_iter
# updates it, and two threads iterating at once could race on it.
_PROCESS_TABLE = threading.Lock()


def find_processes(name: str | None, pattern: str | None) -> list[int]:
    """Pids of live processes named ``name`` (or running a program so named), or matching."""
    regex = re.compile(pattern) if pattern is not None else None
    pids = []
    with _PROCESS_TABLE:
        for process in psutil.process_iter(["name", "cmdline", "status"]):
            info = process.info
            if info["status"] == psutil.STATUS_ZOMBIE:
                continue  # exited, waiting for its parent: not running
            cmdline: list[str] = info["cmdline"] or []
            if name is not None:
                program = os.path.basename(cmdline[0]) if cmdline else None
                found = name in (info["name"], program)
            else:
                found = regex is not None and regex.search(" ".join(cmdline)) is not None
            if found:
                pids.append(process.pid)
    return sorted(pids)


def read_process(name: str | None = None, pattern: str | None = None,
                 pidfile: str | None = None) -> Reading:
    """How many processes run by ``name``, by ``pattern`` (a regex), or from ``pidfile``."""
    if pidfile is not None:
        return _read_pidfile(pidfile)
    pids = find_processes(name, pattern)
    what = name if name is not None else f"/{pattern}/"
    values: dict[str, float] = {"value": len(pids), "processes": len(pids)}
    details = {"pids": pids[:_MAX_LISTED_PIDS]}
    if not pids:
        return Reading(values, f"no process {what} is running", CheckStatus.FAILING, details)
    count = f"{len(pids)} processes" if len(pids) > 1 else "1 process"
    return Reading(values, f"{what}: {count} running", details=details)


def _read_pidfile(pidfile: str) -> Reading:
    def failing(message: str, pid: int | None = None) -> Reading:
        details = {"pidfile": pidfile, "pid": pid}
        return Reading({"value": 0, "processes": 0}, message, CheckStatus.FAILING, details)

    try:
        with open(pidfile, encoding="utf-8", errors="replace") as file:
            text = file.read(64).strip()
    except FileNotFoundError:
        return failing(f"pid file {pidfile} does not exist")
    # Other OSErrors (permission denied) mean we cannot tell: the caller reports ERROR.
    if not text.isdigit():
        return failing(f"pid file {pidfile} holds no pid")
    pid = int(text)
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    if not alive:
        return failing(f"process {pid} from {pidfile} is not running", pid)
    return Reading({"value": 1, "processes": 1}, f"process {pid} from {pidfile} is running",
                   details={"pidfile": pidfile, "pid": pid})


def format_bytes(size: float) -> str:
    """``8589934592`` → ``8.0 GiB``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size:.0f} B"


# -- the probe -----------------------------------------------------------------------------------
