"""Helpers for the reliability tests: a lock held by another connection, damaged and read-only
files, and writers that die mid-turn in a process of their own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def write_lock_held(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process would) holds BEGIN IMMEDIATE meanwhile."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def files_of(db: Path) -> dict[str, bytes | None]:
    """The bytes of the database and its -wal/-shm companions (None when absent)."""
    out: dict[str, bytes | None] = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{db}{suffix}")
        out[suffix] = p.read_bytes() if p.exists() else None
    return out


def flip_page_type(db: Path, table: str) -> None:
    """Damage the b-tree page-type byte of `table`'s root page (as a bad disk sector would)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
        page = root.fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        kind = fh.read(1)
        assert kind in (b"\x02", b"\x05", b"\x0a", b"\x0d"), kind  # a b-tree page
        fh.seek((page - 1) * size)
        fh.write(b"\x00")


@contextmanager
def read_only_file(db: Path) -> Iterator[None]:
    """Make the database file unwritable for this process, whatever its privileges.

    root ignores permission bits, so there the file is made immutable (chattr +i) instead.
    """
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(db)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(db)], check=True)
    else:
        mode = db.stat().st_mode
        os.chmod(db, 0o444)
        try:
            yield
        finally:
            os.chmod(db, mode)


_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from threadline.store import Store

    db, directory, how = sys.argv[1:4]

    async def main():
        store = await Store.open(db)
        session, _, _ = await store.begin_turn(None, "are you there?", working_dir=directory)
        await store.add_message(session.id, "assistant", "half a rep", complete=False)
        print(session.id, flush=True)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.readline()  # alive until told; then it exits without finishing the reply
        os._exit(0)

    asyncio.run(main())
    """
)


def writer_process(db: Path, directory: str, how: str) -> tuple[subprocess.Popen[str], str]:
    """A process that starts a turn and writes half a reply in `db`, then (how="kill") is
    SIGKILLed, or ("wait") waits for a line on stdin and exits without finishing it.

    Returns the process and the session's id (printed by the child once the reply is saved).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), directory, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    if not session_id:
        raise AssertionError(proc.communicate())
    return proc, session_id
