"""`threadline sync init | sync | sync status` as a person runs them."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from threadline.store import Store

SRC = str(Path(__file__).resolve().parents[2] / "src")


def tl(*args: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def _one_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("threadline: error: "), run.stderr
    return lines[0]


def _history(db: Path, where: str, text: str) -> None:
    async def go() -> None:
        async with await Store.open(db) as store:
            session = await store.create_session(where, title=text)
            await store.add_message(session.id, "user", text)

    asyncio.run(go())


def test_sync_before_init_is_a_clear_error(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert "threadline sync init" in _one_error(tl("--db", db, "sync", cwd=tmp_path))
    status = tl("--db", db, "sync", "status", cwd=tmp_path)
    assert status.returncode == 0 and "not set up" in status.stdout


def test_without_git_sync_says_so(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run = tl("--db", db, "sync", "init", str(tmp_path / "r.git"), cwd=tmp_path, path="/nonexistent")
    assert "git is not installed" in _one_error(run)
    assert not (tmp_path / "r.git").exists()


def test_init_refuses_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    db = tmp_path / "a.db"
    _history(db, str(tmp_path), "kept")
    run = tl("--db", str(db), "sync", "init", str(folder), cwd=tmp_path)
    assert "not a git repository" in _one_error(run)
    status = json.loads(tl("--db", str(db), "sync", "status", "--json", cwd=tmp_path).stdout)
    assert status["repo_dir"] is None
    assert (folder / "notes.txt").read_text() == "mine"


def test_two_machines_through_a_new_bare_repository(tmp_path: Path) -> None:
    remote = tmp_path / "shared" / "history.git"
    a, b = tmp_path / "a" / "t.db", tmp_path / "b" / "t.db"
    a.parent.mkdir()
    b.parent.mkdir()
    _history(a, str(tmp_path), "from a")
    first = tl("--db", str(a), "sync", "init", str(remote), "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["written"] == 2
    assert (remote / "HEAD").is_file()  # created, bare
    second = tl("--db", str(b), "sync", "init", str(remote), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "2 applied from 1 other machine" in second.stdout
    listed = tl("--db", str(b), "sessions", "list", "--all", "--json", cwd=tmp_path)
    assert [s["title"] for s in json.loads(listed.stdout)] == ["from a"]

    _history(a, str(tmp_path), "later from a")
    assert tl("--db", str(a), "sync", cwd=tmp_path).returncode == 0
    assert tl("--db", str(b), "sync", "--json", cwd=tmp_path).returncode == 0
    status = json.loads(tl("--db", str(b), "sync", "status", "--json", cwd=tmp_path).stdout)
    others = [m for m in status["machines"] if not m["this"]]
    assert [(m["records_applied"], m["pending"], m["error"]) for m in others] == [(4, 0, None)]
    assert status["outgoing"] == 0 and status["last_error"] is None
    text = tl("--db", str(b), "sync", "status", cwd=tmp_path).stdout
    assert "4 applied, 0 to apply" in text

    clone = Path(f"{b}.sync")
    assert stat.S_IMODE(clone.stat().st_mode) == 0o700
    for path in clone.rglob("*"):
        if ".git" in path.parts:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
