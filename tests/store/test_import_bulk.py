"""`import threadline`'s loading (store/transfer/importer.py): checked whole, then loaded in
short transactions that leave the lock free between them, resumable after a crash.

What must hold whatever happens: the schema (triggers included) is exactly as before, the
full-text index matches the messages, a bad file imports nothing, another writer gets the lock
between two transactions, and an import cut by a crash is finished by running it again, with
the result a clean import gives.
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from threadline.store import Store, transfer
from threadline.store.transfer import bulk

SESSION = "0190a000-0000-7000-8000-{:012x}"


def _schema(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def _fts_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'"
                " AND sql NOT LIKE '%fts5vocab%'"
            )
        ]


def _fts_consistent(path: Path) -> None:
    """FTS5's own check of each index against its content table (raises when they differ)."""
    conn = sqlite3.connect(path)
    try:
        for fts in _fts_tables(path):
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
        assert phases.index("reading") < phases.index("loading") and phases[-1] == "loading"
        t = result.timings
        assert t.load_seconds > 0 and t.index_seconds > 0 and t.total_seconds >= t.locked_seconds
        assert t.transactions >= 2 and t.longest_lock_seconds <= t.locked_seconds
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
        for fts in _fts_tables(db):
            assert conn.execute(
                f"SELECT count(*) FROM {fts}_config WHERE k = 'hashsize'"
            ).fetchone() == (0,)
        # and the run's record is gone with its end
        assert conn.execute("SELECT count(*) FROM import_runs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM import_run_sessions").fetchone() == (0,)


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


async def test_interleaved_sessions_keep_their_ids(tmp_path):
    """Two sessions written turn about (ids 1,3,5 and 2,4,6) keep them: only an id really
    taken moves a session."""
    text, _ = _export(2, 3)
    for old, new in ((2, 3), (3, 5), (4, 2), (5, 4)):
        text = text.replace(f'"id": {old},', f'"id": x{new},')
    text = text.replace('"id": x', '"id": ')
    text = text.replace('"first_message_id": 4', '"first_message_id": 2')
    text = text.replace('"last_message_id": 3', '"last_message_id": 5')
    store = await Store.open(tmp_path / "t.db")
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "x")
        assert result.renumbered_sessions == []
        assert [m.id for m in await store.get_messages(SESSION.format(1))] == [1, 3, 5]
        assert [m.id for m in await store.get_messages(SESSION.format(2))] == [2, 4, 6]
    finally:
        await store.close()


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
        assert again.skipped == 2 and not again.resumed
        assert len(await store.search("alpha", limit=100)) == count + 3
    finally:
        await store.close()
    _fts_consistent(db)


async def test_reading_takes_no_lock_and_a_bad_file_never_locks(tmp_path):
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
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM import_runs").fetchone() == (0,)


async def test_another_connection_writes_between_two_transactions(tmp_path, monkeypatch):
    """The lock is free between transactions: a connection that will not wait at all writes
    there, and its message lands between messages of two transactions."""
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)  # a spool item per transaction
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    db = tmp_path / "t.db"
    await _fresh(db)
    text, _ = _export(4, 10)
    landed: list[int] = []

    def write_between(phase: str, done: int, total: int | None) -> None:
        if phase == "loading" and done >= 10 and not landed:
            other = sqlite3.connect(db, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if the import held it
                other.execute(
                    "INSERT INTO sessions (id, working_dir, created_at, updated_at)"
                    " VALUES ('other', '/o', 'x', 'x')"
                )
                cur = other.execute(
                    "INSERT INTO messages (session_id, role, content, created_at)"
                    " VALUES ('other', 'user', 'heron', '2026-01-01T00:00:00.000Z')"
                )
                other.execute("COMMIT")
                landed.append(int(cur.lastrowid))
            finally:
                other.close()

    store = await Store.open(db)
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "x", progress=write_between)
        assert result.timings.transactions > 4 and result.renumbered_sessions == []
        # The file's ids were reserved first: the other writer's message goes above them.
        assert landed == [41]
        assert [m.id for m in await store.get_messages(SESSION.format(4))] == list(range(31, 41))
        assert [h.message_id for h in await store.search("heron")] == [41]
    finally:
        await store.close()
    _fts_consistent(db)


_IMPORTER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from threadline.store import Store
    from threadline.store.transfer import bulk, importer, reader

    db, source, where, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    bulk.MAX_BUDGET = bulk.FIRST_BUDGET = 1  # a spool item per transaction
    reader.SPOOL_ROWS = 3  # a session's messages over several items (and transactions)
    messages, inserted = importer._Writer._messages, [0]

    def killing_messages(self, rows):
        messages(self, rows)  # these rows are in, the transaction not yet committed
        inserted[0] += len(rows)
        if where == "inside" and inserted[0] >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    importer._Writer._messages = killing_messages

    def progress(phase, done, total):
        if where == "between" and phase == "loading" and done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        store = await Store.open(db)
        with open(source, "rb") as fh:
            await store.import_export(fh, source, progress=progress)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(("where", "after"), [("inside", 16), ("between", 16), ("inside", 40)])
async def test_killed_mid_import_it_is_finished_by_running_it_again(tmp_path, where, after):
    text, count = _export(4, 10)
    text += (
        json.dumps(
            {
                "type": "memory",
                "id": 1,
                "working_dir": "/work/p0",
                "session_id": SESSION.format(1),
                "source_message_id": 3,
                "fact": "likes herons",
                "category": "preference",
                "importance": 3,
                "created_at": "2026-01-01T10:00:00.000Z",
            }
        )
        + "\n"
    )
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    db, clean = tmp_path / "t.db", tmp_path / "clean.db"
    await _fresh(db)
    before = _schema(db)
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTER, str(db), str(source), where, str(after)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr
    assert _schema(db) == before
    _fts_consistent(db)
    store = await Store.open(db)
    try:
        info = await store.info()
        assert 0 < info.messages < count and info.memories == 0  # part of it went in
        with open(source, "rb") as fh:
            result = await store.import_export(fh, str(source))
        assert result.resumed
        assert (result.sessions, result.messages, result.memories) == (4, count, 1)
        assert result.skipped_sessions == [] and result.renumbered_sessions == []
        out = io.StringIO()
        await store.export_jsonl(out)
    finally:
        await store.close()
    store = await Store.open(clean)
    try:
        with open(source, "rb") as fh:
            await store.import_export(fh, str(source))
        again = io.StringIO()
        await store.export_jsonl(again)
    finally:
        await store.close()
    assert out.getvalue() == again.getvalue()
    _fts_consistent(db)
    assert _schema(db) == before


async def test_an_export_of_version_1_still_imports(tmp_path):
    text, count = _export(2, 3)
    assert '"version": 1' in text.splitlines()[0]
    store = await Store.open(tmp_path / "t.db")
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "old.jsonl")
        assert (result.sessions, result.messages) == (2, count)
    finally:
        await store.close()


async def test_a_transaction_that_runs_long_leaves_the_rest_for_the_next(tmp_path, monkeypatch):
    """Past its cutoff a transaction takes no further spool item (here: always past)."""
    from threadline.store.transfer import importer

    text, count = _export(3, 4)
    clean = tmp_path / "clean.db"
    store = await Store.open(clean)
    try:
        await store.import_export(io.BytesIO(text.encode()), "x")
        expected = io.StringIO()
        await store.export_jsonl(expected)
    finally:
        await store.close()
    monkeypatch.setattr(importer, "CUTOFF", -1.0)
    store = await Store.open(tmp_path / "t.db")
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "x")
        # a spool item each: per session its header, messages, summaries and end; then memories
        assert result.timings.transactions == 3 * 4 + 1 and result.messages == count
        out = io.StringIO()
        await store.export_jsonl(out)
    finally:
        await store.close()
    assert out.getvalue() == expected.getvalue()
