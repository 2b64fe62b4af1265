"""Identities across machines: the same imported session on two machines stays one session with
one copy of each message; a rejected push is retried; credentials never reach the journal."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sync.helpers import START, first_difference, machines, snapshot
from threadline.sync import engine
from threadline.sync.git import redact

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("bulk", [False, True])
async def test_a_session_imported_on_two_machines_is_kept_once(
    tmp_path: Path, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.store import journal

    monkeypatch.setattr(journal, "BULK_MIN", 0 if bulk else 10**9)
    a, b, c = await machines(tmp_path)
    try:
        # What an importer does on each machine: the same session id (the loader derives it
        # from the source), the same messages with their original times.
        for m in (a, b):
            assert m.store is not None
            session = await m.store.create_session(m.project, title="imported chat")
            await m.store.update_session(session.id, metadata={"source": "claude-code"})
        ids = {
            m.name: (await m.store.list_sessions("all"))[0].id  # type: ignore[union-attr]
            for m in (a, b)
        }
        assert ids["a"] != ids["b"]  # made separately: give them the loader's shared id
        shared = ids["a"]
        import sqlite3

        conn = sqlite3.connect(b.db)
        with conn:
            conn.execute("UPDATE sessions SET id = ? WHERE id = ?", (shared, ids["b"]))
        conn.close()
        for m in (a, b):
            assert m.store is not None
            for i in range(5):
                await m.store.add_message(
                    shared, "user" if i % 2 == 0 else "assistant", f"original {i}",
                    created_at=START + timedelta(seconds=i),
                )  # fmt: skip
        for m in (a, b, c):
            assert (await m.init()).errors == []
        for m in (a, b):
            assert (await m.sync()).errors == []
        views = [await snapshot(m.store) for m in (a, b, c)]  # type: ignore[arg-type]
        for view in views[1:]:
            assert view == views[0], first_difference(views[0], view)
        contents = [msg["content"] for msg in views[0]["sessions"][shared]["messages"]]
        assert contents == [f"original {i}" for i in range(5)]
    finally:
        for m in (a, b, c):
            await m.close()


async def test_a_rejected_push_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await machines(tmp_path, 2)
    try:
        for m in (a, b):
            await m.init()
        assert a.store is not None and b.store is not None
        session = await b.store.create_session(b.project, title="pushed first by b")
        await b.store.add_message(session.id, "user", "from b")
        await b.close()
        mine = await a.store.create_session(a.project, title="a's")
        await a.store.add_message(mine.id, "user", "from a")
        env = {**os.environ, "PYTHONPATH": SRC}
        seen: list[str] = []

        def checkpoint(name: str) -> None:
            seen.append(name)
            if name == "rebased" and seen.count("rebased") == 1:
                # Between a's rebase and its push, b pushes: a's push is rejected.
                subprocess.run(
                    [sys.executable, "-m", "threadline", "--db", str(b.db), "sync"],
                    env=env, cwd=tmp_path, check=True, capture_output=True,
                )  # fmt: skip

        monkeypatch.setattr(engine, "_checkpoint", checkpoint)
        report = await a.sync()
        assert seen.count("rebased") == 2  # pulled again after the rejection
        assert report.pushed
        assert {s.title for s in await a.store.list_sessions("all")} == {"a's", "pushed first by b"}
    finally:
        for m in (a, b):
            await m.close()


def test_credentials_in_a_remote_never_show(tmp_path: Path) -> None:
    assert redact("https://me:s3cret@host/x.git failed") == "https://***@host/x.git failed"
    env = {**os.environ, "PYTHONPATH": SRC, "GIT_TERMINAL_PROMPT": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "threadline", "--db", str(tmp_path / "t.db"), "sync", "init",
         "https://me:s3cret@127.0.0.1:9/history.git"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1
    assert "s3cret" not in run.stderr + run.stdout
    assert run.stderr.startswith("threadline: error: ")
    status = subprocess.run(
        [sys.executable, "-m", "threadline", "--db", str(tmp_path / "t.db"), "sync", "status"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert "s3cret" not in status.stdout
