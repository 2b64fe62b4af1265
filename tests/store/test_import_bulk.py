"""The bulk import (store/transfer.py): staged before the lock, loaded without per-row triggers.

What must hold whatever happens: the schema (triggers included) is exactly as before, the
full-text index matches the messages, nothing is half-imported, and other writers wait
rather than fail.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from threadline.store import Store, transfer

SESSION = "0190a000-0000-7000-8000-{:012x}"


def _schema(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def _fts_consistent(path: Path) -> None:
    """FTS5's own check of each index against its content table (raises when they differ)."""
    conn = sqlite3.connect(path)
    try:
        for fts in ("messages_fts", "summaries_fts"):
            conn.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def _export(
    sessions: int, per_session: int, first_id: int = 1, word: str = "alpha"
) -> tuple[str, int]:
    """A JSONL export written by hand: `sessions` sessions of `per_session` messages each."""
    lines = [json.dumps({"type": "header", "format": "threadline", "version": 1})]
    mid = first_id
    for n in range(sessions):
        sid = SESSION.format(n + 1)
        lines.append(
            json.dumps(
                {
                    "type": "session",
                    "id": sid,
                    "working_dir": f"/work/p{n % 3}",
                    "preview": f"question {n}",
                    "created_at": "2026-01-01T10:00:00.000Z",
                    "updated_at": "2026-01-01T11:00:00.000Z",
                }
            )
        )
        first = mid
        for i in range(per_session):
            lines.append(
                json.dumps(
                    {
                        "type": "message",
                        "id": mid,
                        "session_id": sid,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": f"{word} s{n}m{i} the common text",
                        "created_at": "2026-01-01T10:00:00.000Z",
                        "input_tokens": i,
                        "output_tokens": 2 * i,
                    }
                )
            )
            mid += 1
        lines.append(
            json.dumps(
                {
                    "type": "summary",
                    "id": n + 1,
                    "session_id": sid,
                    "content": f"summary{n} {word}",
                    "first_message_id": first,
                    "last_message_id": mid - 1,
                    "created_at": "2026-01-01T10:30:00.000Z",
                }
            )
        )
    return "".join(line + "\n" for line in lines), mid - first_id


async def _fresh(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


async def test_import_keeps_the_schema_and_indexes_exactly_the_imported_rows(tmp_path):
    db = tmp_path / "t.db"
    await _fresh(db)
    before = _schema(db)
    text, count = _export(5, 7)
    store = await Store.open(db)
    try:
        s = await store.create_session("/elsewhere")
        await store.add_message(s.id, "user", "already here before the import")
        phases: list[str] = []
        result = await store.import_export(
            io.BytesIO(text.encode()), "x", progress=lambda p, d, t: phases.append(p)
        )
        assert (result.sessions, result.messages, result.summaries) == (5, count, 5)
        assert result.renumbered_sessions == [SESSION.format(1)]  # id 1 was taken
        assert phases.index("reading") < phases.index("loading") < phases.index("indexing")
        t = result.timings
        assert t.load_seconds > 0 and t.index_seconds > 0 and t.total_seconds >= t.locked_seconds
        # Counters come from the rows, preview and last activity from the file.
        info = await store.get_session(SESSION.format(2))
        assert info is not None and info.message_count == 7 and info.preview == "question 1"
        assert (info.total_input_tokens, info.total_output_tokens) == (21, 42)
        assert len(await store.search("alpha", limit=100)) == 40  # 35 messages + 5 summaries
        assert len(await store.search("already")) == 1
        # The triggers are back: a new message is counted and indexed.
        await store.add_message(info.id, "user", "zebrafish afterwards")
        hits = await store.search("zebrafish")
        assert [h.session_id for h in hits] == [info.id]
        assert (await store.get_session(info.id)).message_count == 8
    finally:
        await store.close()
    assert _schema(db) == before
    _fts_consistent(db)
    with sqlite3.connect(db) as conn:  # the larger FTS buffer was for the import only
        assert conn.execute(
            "SELECT count(*) FROM messages_fts_config WHERE k = 'hashsize'"
        ).fetchone() == (0,)


async def test_message_ids_shared_between_sessions_of_one_file_are_renumbered(tmp_path):
    text, _ = _export(2, 3)
    # Give the second session the first one's message ids (a hand-made or merged file).
    text = text.replace('"id": 4,', '"id": 1,').replace('"id": 5,', '"id": 2,')
    text = text.replace('"id": 6,', '"id": 3,').replace(
        '"first_message_id": 4', '"first_message_id": 1'
    )
    text = text.replace('"last_message_id": 6', '"last_message_id": 3')
    db = tmp_path / "t.db"
    store = await Store.open(db)
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "x")
        assert result.renumbered_sessions == [SESSION.format(2)]
        second = SESSION.format(2)
        messages = await store.get_messages(second)
        assert [m.id for m in messages] == [4, 5, 6]
        assert [m.content for m in messages][0] == "alpha s1m0 the common text"
        summary = (await store.list_summaries(second))[0]
        assert (summary.first_message_id, summary.last_message_id) == (4, 6)
        hit = (await store.search("s1m2"))[0]
        assert (hit.session_id, hit.message_id) == (second, 6)
    finally:
        await store.close()
    _fts_consistent(db)


async def test_reimport_skips_sessions_and_leaves_the_index_alone(tmp_path):
    db = tmp_path / "t.db"
    text, count = _export(3, 4)
    store = await Store.open(db)
    try:
        first = await store.import_export(io.BytesIO(text.encode()), "x")
        assert first.messages == count
        # One session deleted for good; importing again brings back only that one.
        await store.purge_session(SESSION.format(2))
        again = await store.import_export(io.BytesIO(text.encode()), "x")
        assert (again.sessions, again.messages) == (1, 4)
        assert again.skipped_sessions == [SESSION.format(1), SESSION.format(3)]
        assert len(await store.search("alpha", limit=100)) == count + 3
    finally:
        await store.close()
    _fts_consistent(db)


async def test_staging_takes_no_lock_and_a_bad_file_never_locks(tmp_path):
    """While the file is read and checked, another process can write; a bad file stops there."""
    db = tmp_path / "t.db"
    await _fresh(db)
    text, _ = _export(2, 3)
    bad = text + '{"type": "message", "id": 99}\n'
    writes: list[str] = []

    def write_elsewhere(phase: str, done: int, total: int | None) -> None:
        if phase == "reading" and not writes:
            other = sqlite3.connect(db, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # fails at once if the import held the lock
                other.execute(
                    "INSERT INTO sessions (id, working_dir, created_at, updated_at)"
                    " VALUES ('other', '/o', 'x', 'x')"
                )
                other.execute("COMMIT")
                writes.append(phase)
            finally:
                other.close()

    store = await Store.open(db)
    try:
        with pytest.raises(transfer.ImportFormatError, match="line .*nothing was imported"):
            await store.import_export(io.BytesIO(bad.encode()), "bad", progress=write_elsewhere)
        assert writes == ["reading"]
        assert (await store.info()).sessions == 1  # only the other writer's row
    finally:
        await store.close()


_IMPORTER = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from threadline.store import Store, transfer

    transfer.WRITE_CHUNK = 5  # several index batches even for a small file
    db, source, mode, marker = sys.argv[1:5]

    def progress(phase, done, total):
        if phase == "indexing" and done >= 10:
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if not os.path.exists(marker):
                open(marker, "w").close()
                time.sleep(1.0)  # hold the write lock while the other writer tries

    async def main():
        store = await Store.open(db)
        try:
            with open(source, "rb") as fh:
                result = await store.import_export(fh, source, progress=progress)
            print(result.messages, len(result.renumbered_sessions))
        finally:
            await store.close()

    asyncio.run(main())
    """
)


def _start_import(tmp_path: Path, db: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    text, _ = _export(4, 10)
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", _IMPORTER, str(db), str(source), mode, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, marker


async def test_killed_during_indexing_leaves_nothing_and_the_triggers_intact(tmp_path):
    db = tmp_path / "t.db"
    await _fresh(db)
    before = _schema(db)
    proc, _ = _start_import(tmp_path, db, "kill")
    proc.wait(timeout=60)
    assert proc.returncode == -9, proc.stderr.read()
    assert _schema(db) == before
    _fts_consistent(db)
    store = await Store.open(db)
    try:
        info = await store.info()
        assert (info.sessions, info.messages, info.summaries) == (0, 0, 0)
        s = await store.create_session("/after")
        await store.add_message(s.id, "user", "kingfisher after the crash")
        assert [h.session_id for h in await store.search("kingfisher")] == [s.id]
        assert (await store.get_session(s.id)).message_count == 1
    finally:
        await store.close()
    _fts_consistent(db)


async def test_a_concurrent_writer_waits_and_lands_after_the_import(tmp_path):
    db = tmp_path / "t.db"
    store = await Store.open(db)
    try:
        mine = await store.create_session("/mine")
        proc, marker = _start_import(tmp_path, db, "hold")
        deadline = time.monotonic() + 60
        while not marker.exists():  # the import is indexing, holding the write lock
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        message = await store.add_message(mine.id, "user", "heron written during the import")
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        imported, renumbered = map(int, proc.stdout.read().split())
        assert (imported, renumbered) == (40, 0)
        assert message.id == 41  # after every imported message: it waited for the commit
        assert [h.message_id for h in await store.search("heron")] == [41]
        assert len(await store.search("alpha", limit=100)) == 44
        assert (await store.get_session(mine.id)).message_count == 1
    finally:
        await store.close()
    _fts_consistent(db)
