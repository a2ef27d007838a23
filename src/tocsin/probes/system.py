"""The ``system`` check: the host Tocsin runs on, read with psutil.

One metric per check::

    cpu      busy share of all CPUs since this check's previous run    value, cpu (%)
    memory   share of memory in use (total − available)                value, memory (%),
                                                                       available_bytes, total_bytes
    swap     share of swap in use (0 when there is none)               value, swap (%),
                                                                       used_bytes, total_bytes
    disk     share of the filesystem holding ``path`` in use, as df    value, disk (%),
                                                                       free_bytes, total_bytes
    load     1-minute load average per logical CPU (1.0 = every        value, load,
             core busy)                                                load1, load5, load15
    process  processes matching ``process`` (a name), ``match`` (a     value, processes
             regex over the command line) or ``pidfile``

Percentages are 0–100, as the condition language compares them: ``"> 80%"``
compares ``values["value"]`` with 80. The status is OK whatever the numbers
(the alert rules judge them), FAILING when a watched process is not running
(as Monit does), and ERROR when the host cannot be read.

The reading itself is :mod:`tocsin.probes.host_metrics`. Every read runs in a
thread, bounded by the check timeout: a disk on a hung network filesystem
costs a timeout, not the event loop. A read that never returns is not started
again until it does, so one hung mount ties up one thread, not one per run.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import os
import re
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, ClassVar, Literal, TypeVar

import psutil
from pydantic import ValidationInfo, field_validator, model_validator

from tocsin.probes.base import CheckConfig, CheckResult, CheckSpec, Probe, wall_clock
from tocsin.probes.context import ProbeContext
from tocsin.probes.host_metrics import (
    FIRST_CPU_SAMPLE,
    CPUMeter,
    Reading,
    read_disk,
    read_load,
    read_memory,
    read_process,
    read_swap,
)
from tocsin.probes.registry import register

Metric = Literal["cpu", "memory", "swap", "disk", "load", "process"]

DEFAULT_DISK_PATH = "/"

T = TypeVar("T")


# -- configuration -------------------------------------------------------------------------------


class SystemCheckConfig(CheckConfig):
    """A ``system`` check: one ``metric`` of this host; ``path`` for disk, a process to find."""

    type: Literal["system"] = "system"  # may be left out under `host:`
    metric: Metric
    path: str | None = None  # disk: any path on the filesystem to watch (default /)
    process: str | None = None  # process: its name, or the base name of its program
    match: str | None = None  # process: a regular expression searched in its command line
    pidfile: str | None = None  # process: a file holding its pid

    @field_validator("type", mode="before")
    @classmethod
    def _only_system(cls, kind: object) -> object:
        # Only reached under `host:` (in a service, the type picks the model).
        if kind != "system":
            raise ValueError(f"`host:` lists system checks (type: system), not {kind!r}: "
                             "put other checks under a service")
        return kind

    @field_validator("path")
    @classmethod
    def _path_exists(cls, path: str | None, info: ValidationInfo) -> str | None:
        # Checked at load, so that a typo is refused with its line, not paged at 3 a.m.
        if path is not None and info.data.get("metric") == "disk" and not os.path.exists(path):
            raise ValueError(f"path {path!r} does not exist on this host")
        return path

    @field_validator("match")
    @classmethod
    def _valid_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _keys_fit_metric(self) -> SystemCheckConfig:
        if self.path is not None and self.metric != "disk":
            raise ValueError("path applies to metric: disk only")
        finders = [key for key in ("process", "match", "pidfile") if getattr(self, key)]
        if self.metric == "process":
            if len(finders) != 1:
                raise ValueError("a process check needs one of process (a name), match "
                                 "(a regex over the command line) or pidfile")
        elif finders:
            raise ValueError(f"{finders[0]} applies to metric: process only")
        return self

    @property
    def disk_path(self) -> str:
        return self.path if self.path is not None else DEFAULT_DISK_PATH

    @property
    def subject(self) -> str | None:
        """What the check watches within its metric: a disk path, a process (for its name)."""
        if self.metric == "disk":
            return self.disk_path
        return self.process or self.match or self.pidfile


def read_in_thread(read: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``read`` in a new daemon thread; its outcome settles the returned future.

    Not the loop's default executor: a read stuck in the kernel (a hung network
    mount) would hold up shutdown there, as ``asyncio.run`` waits for its
    threads; a daemon thread is left behind when the process exits.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # Retrieve a late exception, so that a read abandoned at the timeout logs nothing.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())

    def work() -> None:
        try:
            value = read()
        except Exception as exc:  # handed over to the awaiting coroutine
            settle = functools.partial(_set_exception, future, exc)
        else:
            settle = functools.partial(_set_result, future, value)
        with contextlib.suppress(RuntimeError):  # the loop closed while the read hung
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=work, name="tocsin-system-read", daemon=True).start()
    return future


def _set_result(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class _StillReading(Exception):
    """The previous read of this check has not returned: do not start another."""


@register
class SystemProbe(Probe[SystemCheckConfig]):
    """Read one metric of this host (see the module docstring for the values)."""

    type: ClassVar[str] = "system"
    config_model: ClassVar[builtins.type[CheckConfig]] = SystemCheckConfig

    def __init__(self, spec: CheckSpec[SystemCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        self._cpu = CPUMeter(min(FIRST_CPU_SAMPLE, spec.timeout / 2))
        self._reading: asyncio.Future[Any] | None = None
        config = spec.config
        readers: dict[str, Callable[[], Reading]] = {
            "memory": read_memory,
            "swap": read_swap,
            "disk": lambda: read_disk(config.disk_path),
            "load": read_load,
            "process": lambda: read_process(config.process, config.match, config.pidfile),
        }
        self._read = readers.get(config.metric)

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        try:
            async with asyncio.timeout(self.spec.timeout):
                reading = await (self._read_cpu() if self._read is None
                                 else self._in_thread(self._read))
        except _StillReading:
            return self._error(started_at, start, "the previous read has not returned yet "
                                                  "(a hung filesystem?)")
        except TimeoutError:
            return self._error(started_at, start,
                               f"reading {self._what} timed out after {self.spec.timeout:g} s")
        except (psutil.Error, OSError) as exc:
            return self._error(started_at, start, f"cannot read {self._what}: {_reason(exc)}")
        return self.new_result(
            reading.status, started_at, latency_ms=(perf_counter() - start) * 1000,
            message=reading.message, values=reading.values, details=reading.details,
        )

    async def _read_cpu(self) -> Reading:
        if not self._cpu.ready(perf_counter()):
            # The first run (or one right after the last): measure over a short
            # sample, not since boot, which would hide a busy minute in idle days.
            self._cpu.sample(await self._in_thread(psutil.cpu_times), perf_counter())
            await asyncio.sleep(self._cpu.min_interval)
        percent = self._cpu.sample(await self._in_thread(psutil.cpu_times), perf_counter())
        assert percent is not None  # there is a baseline now
        return Reading({"value": percent, "cpu": percent}, f"cpu {percent:.1f}%")

    async def _in_thread(self, read: Callable[[], T]) -> T:
        if self._reading is not None and not self._reading.done():
            raise _StillReading
        reading = read_in_thread(read)
        self._reading = reading
        # Shielded: the timeout abandons the read but leaves the future pending, so
        # the next run can see that the thread is still stuck.
        result: T = await asyncio.shield(reading)
        return result

    @property
    def _what(self) -> str:
        subject = self.spec.config.subject
        return f"{self.spec.config.metric} {subject}" if subject else self.spec.config.metric

    def _error(self, started_at: float, start: float, message: str) -> CheckResult:
        return CheckResult.error(self.spec.name, started_at, message,
                                 latency_ms=(perf_counter() - start) * 1000)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, psutil.AccessDenied):
        return "access denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
