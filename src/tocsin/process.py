"""Running a program safely: no shell, capped output, the whole process group killed.

Shared by ``action: command`` (:mod:`tocsin.remediation.command`) and the
``command`` check (:mod:`tocsin.probes.command`).

- :class:`CappedOutput` reads a stream incrementally, keeping the first ``cap``
  bytes and the last ``TAIL`` bytes and draining (and counting) the rest, so a
  program printing gigabytes costs no memory and cannot block on a full pipe.
- :func:`kill_group` SIGKILLs a program started with ``start_new_session=True``
  and everything it started.
- :func:`run_program` runs ``argv`` with ``env`` (exactly: the caller builds a
  clean environment), stdout and stderr merged, and returns the exit code and
  output; cancelled (a timeout around it), it kills the process group first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

TAIL = 2000  # bytes of output's end kept for a failure message
_CHUNK = 64 * 1024


class CappedOutput:
    """The first ``cap`` bytes of a stream, its last ``TAIL`` bytes, and its total size."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.tail = b""  # the last TAIL bytes, for a failure message
        self.total = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            self.total += len(chunk)
            self.tail = (self.tail + chunk)[-TAIL:]
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if self.truncated:
            text += f"\n… (truncated: {self.total} bytes in all, first {len(self.kept)} kept)"
        return text


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL ``process`` and its children (it runs in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)  # its own session: pgid == pid


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """How a program ended: ``code`` (negative: killed by that signal) and its output."""

    code: int
    output: CappedOutput


async def start_program(argv: Sequence[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start ``argv`` without a shell, in its own session; OSError when it cannot start."""
    return await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)


async def finish_program(process: asyncio.subprocess.Process, cap: int) -> ProgramResult:
    """Read ``process``'s output (capped) until it ends; kill its group if cancelled."""
    output = CappedOutput(cap)
    try:
        assert process.stdout is not None
        await output.drain(process.stdout)
        code = await process.wait()
    except BaseException:
        # Cancelled (the timeout): kill the program and whatever it started, even
        # when the program itself has exited and a child still holds the pipe.
        kill_group(process)
        await asyncio.shield(process.wait())
        raise
    return ProgramResult(code, output)


async def run_program(argv: Sequence[str], env: Mapping[str, str], cap: int) -> ProgramResult:
    """Run ``argv`` to its end (wrap in ``asyncio.timeout`` to bound it); OSError if unstartable."""
    return await finish_program(await start_program(argv, env), cap)


# -- what a program gets: its arguments and a clean environment ----------------------------

INHERITED = ("PATH", "HOME", "LANG")  # all a program sees of Tocsin's own environment
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def clean_environment(extra: Mapping[str, str],
                      parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH, HOME, LANG from ``parent`` (``os.environ``), then ``extra``: nothing else leaks."""
    parent = os.environ if parent is None else parent
    env = {name: parent[name] for name in INHERITED if name in parent}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra)
    return env


def check_argv(argv: list[str], example: str) -> list[str]:
    """Refuse an argv whose program is blank or that holds a NUL (config validation)."""
    if not argv[0].strip():
        raise ValueError(f"argv[0] must name the program, e.g. {example}")
    if any("\x00" in arg for arg in argv):
        raise ValueError("an argument holds a NUL character")
    return argv


def check_env(env: Mapping[str, SecretStr], reserved_prefix: str | None = None) -> None:
    """Refuse invalid variable names, reserved ones, and NULs; never repeat a value."""
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if reserved_prefix and name.startswith(reserved_prefix):
            raise ValueError(f"{name} is set by Tocsin from the alert")
        if "\x00" in value.get_secret_value():
            raise ValueError(f"the value of {name} holds a NUL character")
