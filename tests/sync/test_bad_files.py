"""A journal file edited into garbage, or written by a newer threadline: a clear error naming
the file, nothing applied from it, and the rest of the sync still done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sync.helpers import Machine, machines


def _push_edit(m: Machine, edit: str) -> str:
    """Append `edit` to the machine's journal file by hand and push it; returns its path."""
    clone = Path(f"{m.db}.sync")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "pull", "-q", "--rebase"], check=True)
    (journal,) = (clone / "machines" / _machine_id(m)).glob("*.jsonl")
    with open(journal, "a", encoding="utf-8") as fh:
        fh.write(edit)
    rel = journal.relative_to(clone).as_posix()
    subprocess.run([*git, "commit", "-qam", "by hand"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD"], check=True)
    return rel


def _machine_id(m: Machine) -> str:
    import sqlite3

    conn = sqlite3.connect(m.db)
    try:
        return str(conn.execute("SELECT machine_id FROM sync_state").fetchone()[0])
    finally:
        conn.close()


async def _titles(m: Machine) -> set[str]:
    assert m.store is not None
    return {s.title or "" for s in await m.store.list_sessions("all", limit=None)}


async def test_garbage_and_newer_files_are_refused_by_name(tmp_path: Path) -> None:
    a, b, c = await machines(tmp_path)
    try:
        for m in (a, b, c):
            await m.init()
            assert m.store is not None
            session = await m.store.create_session(m.project, title=f"from {m.name}")
            await m.store.add_message(session.id, "user", f"hello from {m.name}")
        await a.sync()
        await c.sync()
        garbage = _push_edit(a, '{"v":1,"seq":99,"op":"message"\nnot json at all\n')
        newer = {"v": 2, "seq": 3, "at": "2026-11-23T10:00:00.000Z", "op": "hologram"}
        await c.sync()
        future = _push_edit(c, json.dumps(newer) + "\n")

        report = await b.sync()
        assert len(report.errors) == 2
        by_file = {e.split(":")[0]: e for e in report.errors}
        assert set(by_file) == {garbage, future}
        assert "not a valid journal" in by_file[garbage]
        assert "nothing was applied from it" in by_file[garbage]
        assert "newer threadline" in by_file[future]
        # Nothing from either file went in; b's own history was still pushed.
        assert await _titles(b) == {"from b"}
        await a.sync()
        assert "from b" in await _titles(a)

        # The same through the command line: one line per file, exit status 1.
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        run = subprocess.run(
            [sys.executable, "-m", "threadline", "--db", str(b.db), "sync"],
            capture_output=True, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 1
        errors = [ln for ln in run.stderr.splitlines() if ln.startswith("threadline: error: ")]
        assert sorted(ln.split(": ")[2] for ln in errors) == sorted([garbage, future])
        assert "Traceback" not in run.stderr
        assert await _titles(b) == {"from b"}
    finally:
        for m in (a, b, c):
            await m.close()
