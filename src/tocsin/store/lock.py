"""`StoreLock`: one Tocsin process per SQLite file.

SQLite itself lets two processes share a file, but two Tocsins on one file
would each run every check, page twice and fight over the outbox. The
process that writes takes an exclusive ``flock`` on ``<db>.lock`` for its
whole life and writes its pid there; a second one finds the lock taken and
refuses, naming the file and that pid. The kernel drops the lock when the
process dies, however it dies (SIGKILL, OOM), so there is never a stale lock
to clean up; the file itself stays and is harmless.

PostgreSQL and ``:memory:`` databases take no lock: the first is shared by
design (its own locking keeps it consistent), the second is private.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from tocsin.store.base import StoreError


class StoreLocked(StoreError):
    """Another process holds the SQLite file."""


def sqlite_path(url: str) -> Path | None:
    """The absolute file of a ``sqlite:///`` URL; None for any other database or ``:memory:``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).resolve()


class StoreLock:
    """An exclusive lock on a SQLite store, held until :meth:`release` or the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, url: str) -> StoreLock | None:
        """Lock the SQLite file ``url`` names; None when the URL needs no lock.

        Raises :class:`StoreLocked` when another process holds it.
        """
        database = sqlite_path(url)
        if database is None:
            return None
        path = database.with_name(database.name + ".lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(f"cannot create lock file {path}: {error.strerror}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise StoreLocked(
                f"{database} is in use by another Tocsin ({who}; lock file {path}); "
                "stop it first, or point this one at another database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Unlock; the file stays (removing it would race with a process about to lock it)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
