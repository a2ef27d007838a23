"""The shipped example config — the original system, rewritten — runs every check it names.

`tocsin check` runs each check once against local stand-ins: the target for
the backend and front end, the fake Render API, a SQLite demo database.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.conftest import Target
from tests.fakes.render import FakeRender
from tests.test_cli import _env, tocsin
from tocsin.config import EXAMPLE_CONFIG_PATH

API_KEY = "rnd_example_key_0123"


async def test_the_example_config_runs_every_check(tmp_path: Path, target: Target) -> None:
    demo = tmp_path / "homeverse_demo.db"
    with sqlite3.connect(demo) as db:
        db.execute("CREATE TABLE activities (id INTEGER PRIMARY KEY, what TEXT)")
        db.executemany("INSERT INTO activities (what) VALUES (?)", [("login",), ("view",)])
    async with FakeRender(api_key=API_KEY) as render:
        for service in ("srv-backend-id", "srv-frontend-id"):
            render.add_service(service)
            render.add_deploy(service, "live")
        env = _env(BACKEND_URL=target.url, FRONTEND_URL=target.url,
                   RENDER_API_URL=render.url, RENDER_API_KEY=API_KEY,
                   DEMO_DATABASE_URL=f"sqlite:///{demo}",
                   TOCSIN_STORAGE=f"sqlite:///{tmp_path / 'tocsin.db'}")
        code, out, err = await tocsin("check", "-c", str(EXAMPLE_CONFIG_PATH), cwd=tmp_path,
                                      env=env, within=60)
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "skipped" not in err, err
    expected = {"backend:http", "backend:deploy", "backend:error_rate", "frontend:http",
                "host:cpu", "host:memory", "host:disk:/", "demo:database"}
    assert expected <= set(rows), out
    for name in ("backend:http", "frontend:http", "backend:deploy", "host:cpu",
                 "host:memory", "host:disk:/", "demo:database"):
        assert re.match(rf"{re.escape(name)}\s+ok\b", rows[name]), rows[name]
    # The stand-in backend has no /api/v1/* routes: every request answers 404, which is
    # not an error (only 5xx and no answer are), so the error rate is 0 %.
    assert re.match(r"backend:error_rate\s+ok\b", rows["backend:error_rate"]), out
    assert "probe crashed" not in out
    assert code == 0, out + err
