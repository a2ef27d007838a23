"""``tocsin token`` and ``tocsin password-hash``, run as real processes, against a real server."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import time
from pathlib import Path

from tests.conftest import Target
from tests.test_cli import TOCSIN, _env, tocsin
from tests.test_cli_alerts import FINGERPRINT, serving, write_config
from tocsin.web.auth import TOKEN_CACHE_TTL
from tocsin.web.credentials import verify_password

TOKEN = re.compile(r"tcn_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")


async def create(tmp_path: Path, config: Path, *args: str) -> tuple[str, str]:
    """Create a token; its id and full text."""
    code, out, err = await tocsin("token", "create", "-c", str(config), *args, cwd=tmp_path)
    assert code == 0, err
    match = TOKEN.fullmatch(out.strip())
    assert match is not None, out
    return match.group(1), match.group(0)


def database_files(directory: Path) -> list[bytes]:
    """The bytes of the SQLite database and its write-ahead log."""
    return [path.read_bytes() for path in directory.glob("tocsin.db*")]


def config_in(tmp_path: Path) -> Path:
    config = write_config(tmp_path / "tocsin.yaml", "http://127.0.0.1:9")
    return config


async def test_create_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    code, _, err = await tocsin("db", "migrate", "-c", str(config), cwd=tmp_path)
    assert code == 0, err
    code, out, err = await tocsin("token", "create", "-c", str(config), "--name", "ci",
                                  "--scope", "write", cwd=tmp_path)
    assert code == 0, err
    match = TOKEN.fullmatch(out.strip())
    assert match is not None, out
    token_id, secret = match.groups()
    assert f"created write token {token_id} (ci)" in err and "shown only now" in err

    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        rows = db.execute("SELECT id, name, scope, hash, revoked_at FROM api_tokens").fetchall()
    assert rows == [(token_id, "ci", "write", hashlib.sha256(secret.encode()).hexdigest(),
                     None)]
    assert not any(secret.encode() in data for data in database_files(tmp_path))


async def test_list_shows_tokens_without_secrets_and_revoke_marks_them(
        tmp_path: Path) -> None:
    config = config_in(tmp_path)
    assert (await tocsin("db", "migrate", "-c", str(config), cwd=tmp_path))[0] == 0
    code, out, _ = await tocsin("token", "list", "-c", str(config), cwd=tmp_path)
    assert code == 0 and "no API tokens" in out
    ci_id, ci_text = await create(tmp_path, config, "--name", "ci")
    prom_id, _ = await create(tmp_path, config, "--name", "prometheus", "--scope", "read")

    code, out, err = await tocsin("token", "revoke", ci_id, "-c", str(config), cwd=tmp_path)
    assert code == 0 and out == f"revoked token {ci_id}\n", err
    code, out, _ = await tocsin("token", "list", "-c", str(config), cwd=tmp_path)
    assert code == 0 and ci_text.rsplit("_", 1)[1] not in out
    lines = [re.split(r"\s{2,}", line) for line in out.splitlines()]
    assert lines[0] == ["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"]
    assert lines[1][:3] == [ci_id, "ci", "read"] and lines[1][5] != "-"
    assert lines[2][:3] == [prom_id, "prometheus", "read"] and lines[2][4:] == ["-", "-"]

    code, _, err = await tocsin("token", "revoke", ci_id, "-c", str(config), cwd=tmp_path)
    assert code == 1 and err == f"token {ci_id} is already revoked\n"
    code, _, err = await tocsin("token", "revoke", "nope", "-c", str(config), cwd=tmp_path)
    assert code == 1 and err == "no token 'nope'\n"


async def test_an_unmigrated_store_is_refused_with_a_hint(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    code, out, err = await tocsin("token", "create", "-c", str(config), "--name", "ci",
                                  cwd=tmp_path)
    assert code == 1 and out == "" and "run `tocsin db migrate`" in err


async def test_a_token_works_against_a_running_server_until_revoked(
        tmp_path: Path, target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    async with serving(tmp_path, config) as url:
        code, _, err = await tocsin("alerts", "--url", url, cwd=tmp_path)
        assert code == 0, err  # nothing configured yet: loopback may read
        read_id, read_text = await create(tmp_path, config, "--name", "reader")
        _, write_text = await create(tmp_path, config, "--name", "ops", "--scope", "write")
        await asyncio.sleep(TOKEN_CACHE_TTL)  # the server's "any token?" answer expires

        code, _, err = await tocsin("alerts", "--url", url, cwd=tmp_path)
        assert code == 1 and "requires an API token" in err
        code, out, err = await tocsin("alerts", "--url", url, cwd=tmp_path,
                                      env=_env(TOCSIN_API_TOKEN=read_text))
        assert code == 0 and "firing" in out, err
        code, _, err = await tocsin("ack", FINGERPRINT, "--url", url, cwd=tmp_path,
                                    env=_env(TOCSIN_API_TOKEN=read_text))
        assert code == 1 and "this API token may only read" in err
        code, out, err = await tocsin("ack", FINGERPRINT, "--by", "alice", "--url", url,
                                      cwd=tmp_path, env=_env(TOCSIN_API_TOKEN=write_text))
        assert code == 0, err

        assert (await tocsin("token", "revoke", read_id, "-c", str(config),
                             cwd=tmp_path))[0] == 0
        deadline = time.monotonic() + TOKEN_CACHE_TTL + 5
        while True:
            code, _, err = await tocsin("alerts", "--url", url, cwd=tmp_path,
                                        env=_env(TOCSIN_API_TOKEN=read_text))
            if code == 1:
                break
            assert time.monotonic() < deadline, "the revoked token is still accepted"
            await asyncio.sleep(0.5)
        assert "refused the API token" in err


async def test_password_hash_reads_stdin_and_prints_a_verifiable_hash(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, "password-hash", cwd=tmp_path, env=_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(b"s3cret pass\n"), 30)
    assert process.returncode == 0, err
    encoded = out.decode().strip()
    assert encoded.startswith("scrypt$") and "s3cret" not in encoded
    assert verify_password("s3cret pass", encoded)
    assert not verify_password("s3cret pass ", encoded)
