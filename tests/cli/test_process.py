"""Whole `threadline` processes: import hygiene, broken pipes, exit codes, no tracebacks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.store import Store

HEAVY = ("textual", "rich", "httpx")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


@pytest.fixture(scope="module")
def filled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with enough text that a full export is far bigger than a pipe's buffer.

    Written once per module (400 durable transactions take seconds of disk waits); each test
    gets a copy of its own (`filled`)."""
    folder = tmp_path_factory.mktemp("filled")
    db = folder / "t.db"

    async def fill() -> None:
        store = await Store.open(db)
        try:
            for i in range(40):
                s = await store.create_session(str(folder), title=f"session {i}")
                for j in range(10):
                    await store.add_message(s.id, "user", f"searchable words {i} {j} " * 100)
        finally:
            await store.close()

    asyncio.run(fill())
    return db


@pytest.fixture
def filled(filled_template: Path, tmp_path: Path) -> Path:
    """A copy of the filled database for this test alone (SQLite's backup: WAL included)."""
    db = tmp_path / "t.db"
    source, target = sqlite3.connect(filled_template), sqlite3.connect(db)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return db


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "list", "--all"],
        ["search", "searchable"],
        ["sessions", "list", "--json"],
        ["search", "--json", "words"],
    ],
)
def test_history_commands_never_import_the_ui(filled, tmp_path, argv):
    code = (
        "import sys\n"
        "from threadline.cli import main\n"
        f"status = main({argv + ['--db', str(filled)]!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy, status, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert "HEAVY [] 0" in done.stderr, done.stderr


def test_importtime_shows_no_textual(filled, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "threadline",
            "sessions",
            "list",
            "--all",
            "--db",
            str(filled),
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert done.returncode == 0
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "threadline.store" in imported  # the listing really ran
    assert not [m for m in imported if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--all", "--format", "jsonl"],
        ["sessions", "list", "--all", "--limit", "0"],
        ["search", "searchable", "--limit", "400"],
    ],
)
def test_broken_pipe_is_quiet(filled, tmp_path, argv):
    """`threadline ... | head -1`: the reader leaves early; no traceback, no error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "threadline", *argv, "--db", str(filled)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)  # a guard against a hang, not a time limit
    assert first
    assert "Traceback" not in err and "Exception" not in err, err
    assert status == 0


def test_errors_are_one_line(tmp_path):
    env = _env(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    cases = [
        (["sessions", "list", "--all", "--db", str(junk)], 1),
        (["sessions", "show", "abc", "--db", str(tmp_path / "x.db")], 1),
        (["import", "threadline", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "x.db")], 1),
        (["search", "--db", str(tmp_path / "x.db"), "--", "*"], 2),
        (["sessions", "list", "--limit", "x"], 2),
        (["export", "--all", "-o", "/sys/nope.jsonl", "--db", str(tmp_path / "x.db")], 1),
    ]
    for argv, status in cases:
        done = subprocess.run(
            [sys.executable, "-m", "threadline", *argv], capture_output=True, text=True, env=env
        )
        assert done.returncode == status, (argv, done.stderr)
        assert done.stderr.startswith("threadline: error:"), (argv, done.stderr)
        assert done.stderr.count("\n") == 1, (argv, done.stderr)
