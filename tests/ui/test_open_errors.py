"""A database the app cannot open ends it with one clear line and status 1, file untouched."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from apphelpers import HANG_GUARD

from threadline.store import Store

HEADLESS = "textual.drivers.headless_driver:HeadlessDriver"


def run_app(db: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "THREADLINE_DB": str(db),
        "TEXTUAL_DRIVER": HEADLESS,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    return subprocess.run(
        [sys.executable, "-m", "threadline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("threadline: error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0]


def test_not_a_sqlite_file(tmp_path: Path):
    db = tmp_path / "notes.txt"
    db.write_text("these are my notes, not a database\n")
    before = digest(db)
    result = run_app(db, tmp_path)
    assert_one_line_error(result, "not a SQLite database")
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("notes")) == ["notes.txt"]


def test_a_corrupt_database(tmp_path: Path):
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 8192)
    before = digest(db)
    result = run_app(db, tmp_path)
    assert_one_line_error(result, "corrupt")
    assert digest(db) == before


def test_a_database_from_a_newer_threadline(tmp_path: Path):
    db = tmp_path / "newer.db"

    async def make() -> None:
        store = await Store.open(db)
        await store.close()

    asyncio.run(make())
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01T00:00:00.000Z')")
    conn.commit()
    conn.close()
    before = digest(db)
    result = run_app(db, tmp_path)
    assert_one_line_error(result, "schema version 99", "upgrade threadline")
    assert digest(db) == before


def test_a_directory_that_cannot_be_created(tmp_path: Path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    result = run_app(blocker / "threadline.db", tmp_path)
    assert_one_line_error(result, "not a directory")
    assert blocker.read_text() == "a file where the data directory should be"


def test_in_a_real_terminal_the_screen_is_restored_then_the_error_printed(tmp_path: Path):
    import pty
    import select

    db = tmp_path / "notes.txt"
    db.write_text("not a database")
    env = {**os.environ, "THREADLINE_DB": str(db), "TERM": "xterm-256color"}
    env.pop("TEXTUAL_DRIVER", None)
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(sys.executable, [sys.executable, "-m", "threadline"], env)
    output = bytearray()
    while True:  # until the app ends
        ready, _, _ = select.select([fd], [], [], HANG_GUARD)
        assert ready, f"the app wrote nothing for {HANG_GUARD:.0f} s"
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output.extend(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1
    text = bytes(output).decode("utf-8", "replace")
    assert "Traceback" not in text
    tail = text.rsplit("\x1b[?1049l", 1)[-1]  # after the app left the alternate screen
    assert "threadline: error: " in tail and "not a SQLite database" in tail
