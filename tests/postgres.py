"""A throwaway PostgreSQL server for tests: one per test session, in a temporary directory.

:func:`running_postgres` finds the server binaries (``pg_config --bindir``, then
``PATH``, then ``/usr/lib/postgresql/*/bin``), runs ``initdb`` into a fresh
temporary directory and starts the server on 127.0.0.1 on a free port, with its
Unix socket in the same directory. Connections over TCP need the superuser's
password (``scram-sha-256``), so a wrong password is refused like on a real
server; the local socket trusts everyone. At the end it stops the server
(``pg_ctl stop -m fast``) and removes the directory.

PostgreSQL refuses to run as root, and tests (and CI) run as root here: then
the directory is handed to an unprivileged user (``postgres`` or ``nobody`` when
they exist, else a system user created for it) and every server command runs
as that user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_UNPRIVILEGED_USERS = ("postgres", "nobody")
_CREATED_USER = "tocsin-test-pg"
_START_ATTEMPTS = 3


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries on this machine (tests that need one skip)."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running test server: where it listens and how to log in over TCP."""

    host: str
    port: int
    socket_dir: Path
    data_dir: Path
    user: str
    password: str = field(repr=False)
    database: str = "postgres"
    bindir: Path = Path()
    owner: str | None = None  # the unprivileged user the server runs as, when we are root

    def dsn(self, *, user: str | None = None, password: str | None = None,
            database: str | None = None) -> str:
        """A ``postgresql://`` URL to this server, by default as the superuser."""
        login = quote(user or self.user, safe="")
        secret = self.password if password is None else password
        credentials = f"{login}:{quote(secret, safe='')}" if secret else login
        return f"postgresql://{credentials}@{self.host}:{self.port}/{database or self.database}"

    @property
    def url(self) -> str:
        """The superuser's URL, password included."""
        return self.dsn()

    def stop(self) -> None:
        """Stop the server (``-m fast``: sessions are ended, as when an operator stops it)."""
        _run(self._owner(), [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                             "-w", "-t", "30", "stop"], self.socket_dir)

    def start(self) -> None:
        """Start a stopped server again, on the same port."""
        _run(self._owner(), [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                             "-l", str(self.socket_dir / "server.log"), "-w", "-t", "30",
                             "-o", _server_options(self), "start"], self.socket_dir)

    def _owner(self) -> pwd.struct_passwd | None:
        return None if self.owner is None else pwd.getpwnam(self.owner)


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            output = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            output = ""
        if output:
            candidates.append(Path(output))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    # Newest version first: "15" sorts after "9.6" numerically, not as text.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(path) for path in sorted(versions, key=_version_key, reverse=True)]
    for directory in candidates:
        if all(os.access(directory / program, os.X_OK) for program in SERVER_PROGRAMS):
            return directory
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server, yield it, stop it and remove its files.

    Raises :class:`PostgresUnavailable` when there are no server binaries, and
    RuntimeError (with the server's log) when they are there but fail.
    """
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
            "`pg_config --bindir`, PATH or /usr/lib/postgresql/*/bin")
    owner = _server_user()
    base = Path(tempfile.mkdtemp(prefix="tocsin-pg-"))
    try:
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        server = _init(bindir, base, owner)
        started = False
        try:
            server = _start(bindir, server, owner)
            started = True
            yield server
        finally:
            if started:  # a test may have stopped it already: then this fails, harmlessly
                _run(owner, [str(bindir / "pg_ctl"), "-D", str(server.data_dir), "-m", "fast",
                             "-w", "-t", "30", "stop"], base, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in (*_UNPRIVILEGED_USERS, _CREATED_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    _CREATED_USER], check=True, capture_output=True, timeout=30)
    return pwd.getpwnam(_CREATED_USER)


def _run(owner: pwd.struct_passwd | None, command: list[str], cwd: Path,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    if owner is not None:
        command = ["runuser", "-u", owner.pw_name, "--", *command]
    # The server must not pick up the caller's PG* settings (PGDATA, PGPORT, …).
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def _init(bindir: Path, base: Path, owner: pwd.struct_passwd | None) -> PostgresServer:
    password = secrets.token_urlsafe(16)
    password_file = base / "superuser-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    if owner is not None:
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    data_dir = base / "data"
    user = "postgres"
    _run(owner, [str(bindir / "initdb"), "-D", str(data_dir), "-U", user,
                 f"--pwfile={password_file}", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
                 "--no-instructions"], base)
    password_file.unlink()
    return PostgresServer(host="127.0.0.1", port=0, socket_dir=base, data_dir=data_dir,
                          user=user, password=password, bindir=bindir,
                          owner=None if owner is None else owner.pw_name)


def _start(bindir: Path, server: PostgresServer,
           owner: pwd.struct_passwd | None) -> PostgresServer:
    log = server.socket_dir / "server.log"
    for _ in range(_START_ATTEMPTS):  # another process may take the free port first
        candidate = replace(server, port=_free_port())
        result = _run(owner, [str(bindir / "pg_ctl"), "-D", str(server.data_dir), "-l", str(log),
                              "-w", "-t", "30", "-o", _server_options(candidate), "start"],
                      server.socket_dir, check=False)
        if result.returncode == 0:
            return candidate
    server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    raise RuntimeError(f"PostgreSQL did not start:\n{result.stdout}\n{result.stderr}\n"
                       f"{server_log}")


def _server_options(server: PostgresServer) -> str:
    # Durability off: a test server's data dies with it anyway.
    return (f"-h {server.host} -p {server.port} -k {server.socket_dir} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

