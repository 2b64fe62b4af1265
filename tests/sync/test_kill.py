"""SIGKILL in the middle of `threadline sync`: a rerun completes and the machines converge.

The process is killed at named points of the sync (after appending to the journal, after the
commit, after the rebase, after an apply transaction, ...); bench/chaos_sync.py kills it at
random moments instead, 20 times."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sync.helpers import Machine, first_difference, machines, snapshot

SRC = str(Path(__file__).resolve().parents[2] / "src")

DRIVER = """
import os, signal, sys
from threadline.sync import engine
point, nth = sys.argv[1], int(sys.argv[2])
engine.APPLY_BATCH = int(sys.argv[3])  # small transactions: several to kill between
seen = {"n": 0}
def checkpoint(name):
    if name == point:
        seen["n"] += 1
        if seen["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
engine._checkpoint = checkpoint
from threadline.cli import main
sys.exit(main(sys.argv[4:]))
"""


def run_sync(m: Machine, cwd: Path, point: str | None = None, nth: int = 1) -> int:
    env = {**os.environ, "PYTHONPATH": SRC}
    args = [sys.executable, "-c", DRIVER, point or "-", str(nth), "20", "--db", str(m.db), "sync"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    if point is None:
        assert done.returncode == 0, done.stderr
    return done.returncode


async def _chat(m: Machine, tag: str, sessions: int, messages: int) -> None:
    store = await m.open()
    try:
        for i in range(sessions):
            session = await store.create_session(m.project, title=f"{tag} {i}")
            for j in range(messages):
                m.clock.tick()
                await store.add_message(session.id, "user", f"{tag} {i}.{j}")
        live = await store.list_sessions("all", limit=5)
        if live:
            await store.update_session(live[-1].id, title=f"renamed by {tag}")
    finally:
        await m.close()


async def _check_consistent(m: Machine) -> dict:
    store = await m.open()
    try:
        assert await store.integrity_check() == []
        for row in await store.list_sessions("all", limit=None):
            assert row.message_count == await store.count_messages(row.id)
        return await snapshot(store)
    finally:
        await m.close()


@pytest.mark.parametrize(
    ("point", "nth"),
    [("appended", 1), ("rebased", 1), ("batch", 2)],
)
def test_a_killed_sync_is_completed_by_the_next(tmp_path: Path, point: str, nth: int) -> None:
    async def setup() -> list[Machine]:
        ms = await machines(tmp_path, 2)
        for m in ms:
            await m.init()
            await m.close()
        return ms

    a, b = asyncio.run(setup())
    asyncio.run(_chat(a, "a", 6, 10))
    assert run_sync(a, tmp_path) == 0
    asyncio.run(_chat(b, "b", 3, 4))
    code = run_sync(b, tmp_path, point, nth)
    assert code == -signal.SIGKILL
    asyncio.run(_check_consistent(b))  # whole transactions only: counters match their rows
    run_sync(b, tmp_path)
    run_sync(a, tmp_path)
    run_sync(b, tmp_path)
    va, vb = asyncio.run(_check_consistent(a)), asyncio.run(_check_consistent(b))
    assert va == vb, first_difference(va, vb)
    assert len(va["sessions"]) == 9
