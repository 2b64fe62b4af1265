"""Several OS processes writing one database at once: every write lands, none sees a lock error."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from threadline.store import Store
from threadline.store.migrate import latest_version

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from threadline.store import Store

    db, session_id, name, count, ready, go = sys.argv[1:7]
    count = int(count)

    async def main():
        store = await Store.open(db)
        if session_id == "-":
            target = (await store.create_session("/tmp/" + name)).id
        else:
            target = session_id
        Path(ready).touch()
        while not Path(go).exists():  # every process starts writing at the same moment
            time.sleep(0.001)
        for i in range(count):
            await store.add_message(target, "user", f"{name} {i}")
        await store.close()

    asyncio.run(main())
    """
)


def run_writers(
    tmp_path: Path, db: Path, session_id: str, processes: int, count: int
) -> list[subprocess.CompletedProcess[str]]:
    go = tmp_path / "go"
    procs = []
    for n in range(processes):
        ready = tmp_path / f"ready-{n}"
        args = [sys.executable, "-c", WRITER, str(db), session_id, f"p{n}", str(count)]
        procs.append(
            subprocess.Popen(
                [*args, str(ready), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in range(processes)):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


async def test_four_processes_250_writes_each(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    async with await Store.open(db) as store:
        session = await store.create_session("/tmp")
    results = run_writers(tmp_path, db, session.id, processes=4, count=250)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""  # no "database is locked", no warning
    async with await Store.open(db) as store:
        messages = await store.get_messages(session.id)
        assert len(messages) == 1000
        got = await store.get_session(session.id)
        assert got is not None and got.message_count == 1000
        for n in range(4):
            mine = [m.content for m in messages if m.content.startswith(f"p{n} ")]
            assert mine == [f"p{n} {i}" for i in range(250)]  # each process's order kept
        assert len(await store.search("p0", limit=1000)) == 250
        assert await store.integrity_check() == []
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1000
    conn.close()


async def test_processes_racing_to_create_a_fresh_database(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    db = tmp_path / "new" / "fresh.db"
    results = run_writers(tmp_path, db, "-", processes=4, count=10)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 40
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 4
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, latest_version() + 1))
    finally:
        conn.close()
