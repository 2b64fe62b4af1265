"""The search index of a first import built beside it (store/transfer/side_index.py).

Into a database without messages, `import threadline` and `load_history` leave the message
index to a child process and copy its side file in at the end. What must hold: the same
search results and an index FTS5 finds consistent, as the usual path gives; a fed row that
another writer deletes meanwhile, or a row it adds, comes out right; a killed import leaves
the rows to the build and running it again finishes both; no side file is left behind.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from threadline.records import IncomingMessage, IncomingSession
from threadline.store import Store
from threadline.store.transfer import bulk, history, importer, side_index

SESSION = "0190b000-0000-7000-8000-{:012x}"
WORDS = ("heron", "kestrel", "pelican", "osprey", "plover")
QUERIES = ("heron", "kestrel osprey", "plov*", '"the common"', "s2m3", "alpha -heron")
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def _export(sessions: int, per_session: int) -> str:
    lines = [json.dumps({"type": "header", "format": "threadline", "version": 1})]
    mid = 1
    for n in range(sessions):
        sid = SESSION.format(n + 1)
        lines.append(
            json.dumps(
                {
                    "type": "session",
                    "id": sid,
                    "working_dir": f"/work/p{n % 3}",
                    "created_at": "2026-01-01T10:00:00.000Z",
                    "updated_at": "2026-01-01T11:00:00.000Z",
                }
            )
        )
        for i in range(per_session):
            word = WORDS[(n + i) % len(WORDS)]
            lines.append(
                json.dumps(
                    {
                        "type": "message",
                        "id": mid,
                        "session_id": sid,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": f"alpha {word} s{n}m{i} the common text",
                        "created_at": "2026-01-01T10:00:00.000Z",
                    }
                )
            )
            mid += 1
    return "".join(line + "\n" for line in lines)


def _history(sessions: int, per_session: int) -> list[IncomingSession]:
    out = []
    for n in range(sessions):
        messages = [
            IncomingMessage(
                key=f"m{i}",
                role="user" if i % 2 == 0 else "assistant",
                content=f"alpha {WORDS[(n + i) % len(WORDS)]} s{n}m{i} the common text",
                created_at=T0 + timedelta(seconds=10 * i),
                payload={"source": "claude-code", "n": i},
            )
            for i in range(per_session)
        ]
        out.append(
            IncomingSession(
                source="claude-code",
                source_id=f"s{n}",
                working_dir=f"/work/p{n % 3}",
                created_at=T0 + timedelta(days=n),
                messages=messages,
            )
        )
    return out


def _fts_consistent(path: Path) -> None:
    """FTS5's own check of the message index against its content (raises when they differ)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "INSERT INTO search_messages (search_messages, rank) VALUES ('integrity-check', 1)"
        )
        assert conn.execute("SELECT count(*) FROM search_build").fetchone() == (0,)
    finally:
        conn.close()


def _side_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if ".side-index-" in name]


async def _searches(store: Store) -> dict[str, list[tuple[str, int]]]:
    return {
        q: sorted((h.session_id, h.message_id) for h in await store.search(q, limit=500))
        for q in QUERIES
    }


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each side index was copied in (True) or left to the build (False); a load's
    child starts at its first rows."""
    monkeypatch.setattr(side_index, "START_ROWS", 0)
    seen: list[bool] = []
    real = side_index._copy

    def spy(conn: sqlite3.Connection, create: str) -> bool:
        seen.append(real(conn, create))
        return seen[-1]

    monkeypatch.setattr(side_index, "_copy", spy)
    return seen


async def _import(path: Path, text: str, **kw) -> tuple[dict, object]:
    store = await Store.open(path)
    try:
        result = await store.import_export(io.BytesIO(text.encode()), "x", **kw)
        return await _searches(store), result
    finally:
        await store.close()


@pytest.mark.parametrize("adopt_rows", [side_index.ADOPT_ROWS, 7])
async def test_import_with_a_side_index_searches_as_the_usual_path(
    tmp_path, monkeypatch, copies, adopt_rows
):
    """At the end, or part-way (adopt_rows: the rest then indexed as usual)."""
    text = _export(6, 9)
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", None)
    usual, _ = await _import(tmp_path / "usual.db", text)
    assert copies == []
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    monkeypatch.setattr(side_index, "ADOPT_ROWS", adopt_rows)
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)  # a spool item per transaction: many feeds
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    side, result = await _import(tmp_path / "side.db", text)
    assert copies == [True]
    assert side == usual and len(side["heron"]) > 5 and side["plov*"]
    assert result.messages == 54
    _fts_consistent(tmp_path / "side.db")
    assert _side_files(tmp_path) == []


async def test_load_history_with_a_side_index_searches_as_the_usual_path(
    tmp_path, monkeypatch, copies
):
    batches = _history(5, 8)
    results = []
    for name, on in (("usual.db", False), ("side.db", True)):
        monkeypatch.setattr(history, "SIDE_INDEX", on)
        store = await Store.open(tmp_path / name)
        try:
            report = await store.load_history(batches)
            assert report.messages == 40
            results.append(await _searches(store))
            assert (await store.load_history(batches)).messages == 0  # idempotent
        finally:
            await store.close()
        _fts_consistent(tmp_path / name)
    assert copies == [True]
    assert results[0] == results[1] and results[1]["kestrel osprey"] == []
    assert len(results[1]["heron"]) == 8
    assert _side_files(tmp_path) == []


def _other_writer(db: Path, sql: str, args: tuple) -> int:
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        cur = other.execute(sql, args)
        other.execute("COMMIT")
        return int(cur.lastrowid or cur.rowcount)
    finally:
        other.close()


async def test_rows_another_writer_adds_meanwhile_are_indexed_with_the_copy(
    tmp_path, monkeypatch, copies
):
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    db = tmp_path / "t.db"
    landed: list[int] = []

    def write_between(phase: str, done: int, total: int | None) -> None:
        if phase == "loading" and done >= 10 and not landed:
            landed.append(
                _other_writer(
                    db,
                    "INSERT INTO messages (session_id, role, content, created_at)"
                    " VALUES (?, 'user', 'lapwing call', '2026-01-02T00:00:00.000Z')",
                    (SESSION.format(1),),
                )
            )

    found, _ = await _import(db, _export(4, 10), progress=write_between)
    assert copies == [True] and landed == [41]  # above the file's reserved ids
    store = await Store.open(db)
    try:
        assert [h.message_id for h in await store.search("lapwing")] == [41]
    finally:
        await store.close()
    _fts_consistent(db)


async def test_a_fed_row_deleted_meanwhile_leaves_the_side_index_to_the_build(
    tmp_path, monkeypatch, copies
):
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    db = tmp_path / "t.db"
    deleted: list[int] = []
    phases: list[tuple[str, int, int | None]] = []

    def delete_between(phase: str, done: int, total: int | None) -> None:
        phases.append((phase, done, total))
        if phase == "loading" and done >= 10 and not deleted:
            deleted.append(_other_writer(db, "DELETE FROM messages WHERE id = ?", (3,)))

    found, result = await _import(db, _export(4, 10), progress=delete_between)
    assert deleted == [1] and copies == [False]  # the copy refused: the build did it
    assert phases[-1] == ("indexing", 40, 40)  # the build's progress shown, to the end
    _fts_consistent(db)  # nothing left of message 3's terms
    assert "s0m2" not in json.dumps(found)
    store = await Store.open(db)
    try:
        assert await store.search("s0m2") == []
        assert len(await store.search("s0m3")) == 1
    finally:
        await store.close()
    assert _side_files(tmp_path) == []


_KILLED = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from threadline.store import Store
    from threadline.store.transfer import bulk, importer

    db, source, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bulk.MAX_BUDGET = bulk.FIRST_BUDGET = 1  # a spool item per transaction
    importer.SIDE_INDEX_ROWS = 0

    def progress(phase, done, total):
        if phase == "loading" and done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        store = await Store.open(db)
        with open(source, "rb") as fh:
            await store.import_export(fh, source, progress=progress)

    asyncio.run(main())
    """
)


async def test_a_killed_import_leaves_its_rows_to_the_build_and_running_it_again_finishes(
    tmp_path, monkeypatch, copies
):
    text = _export(4, 10)
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    db = tmp_path / "t.db"
    store = await Store.open(db)
    await store.close()
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, str(db), str(source), "20"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with sqlite3.connect(db) as conn:
        build = conn.execute("SELECT name, done, upto FROM search_build").fetchall()
        stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert build == [("messages", 0, side_index.SIDE_UPTO)] and 0 < stored < 40
    store = await Store.open(db)
    try:  # the build the app runs finds the rows left
        assert (await store.search_build_state()).total == stored
    finally:
        await store.close()
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    again, result = await _import(db, text)
    assert result.resumed and result.messages == 40 and copies == []  # not a first import
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", None)
    clean, _ = await _import(tmp_path / "clean.db", text)
    assert again == clean
    _fts_consistent(db)
    assert _side_files(tmp_path) == []  # the killed importer's, if its child kept it, gone


def test_the_schema_s_index_trigger_is_the_one_the_side_index_does(tmp_path) -> None:
    """Otherwise no import uses the side index: a migration that changes search_messages_ai
    must update side_index.TRIGGER_SHA256 (and what the child indexes) too."""
    import asyncio

    async def make() -> None:
        async with await Store.open(tmp_path / "t.db"):
            pass

    asyncio.run(make())
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert side_index.trigger_known(conn)
        conn.execute("DROP TRIGGER search_messages_ai")
        assert not side_index.trigger_known(conn)


@pytest.fixture
def early(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each early feed ended: "used" (copied in as read) or "given up"."""
    seen: list[str] = []
    real_ready, real_give_up = side_index.EarlyFeed.ready, side_index.EarlyFeed.give_up

    def ready(self: side_index.EarlyFeed) -> side_index.SideIndex | None:
        got = real_ready(self)
        if got is None:
            seen.append("given up")
        return got

    def give_up(self: side_index.EarlyFeed) -> None:
        if self.side is not None:
            seen.append("given up")
        real_give_up(self)

    monkeypatch.setattr(side_index.EarlyFeed, "ready", ready)
    monkeypatch.setattr(side_index.EarlyFeed, "give_up", give_up)
    return seen


async def test_a_first_import_is_indexed_while_the_file_is_read(
    tmp_path, monkeypatch, copies, early
):
    text = _export(5, 8)
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", None)
    usual, _ = await _import(tmp_path / "usual.db", text)
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    fed: list[int] = []
    real_feed = side_index.SideIndex.feed

    def feed(self, ids, texts, dirs):
        fed.append(len(ids))
        real_feed(self, ids, texts, dirs)

    monkeypatch.setattr(side_index.SideIndex, "feed", feed)
    phases: list[str] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase == "loading":
            phases.append(f"fed {sum(fed)}")

    side, result = await _import(tmp_path / "side.db", text, progress=progress)
    assert phases[:3] == ["reading", "loading", "fed 40"]  # all of it before the load
    assert copies == [True] and early == [] and side == usual
    _fts_consistent(tmp_path / "side.db")


def _merged_export() -> str:
    """Two sessions using the same message ids (a hand-merged file): the second one's move."""
    first, second = _export(1, 5), _export(1, 5).replace(SESSION.format(1), SESSION.format(9))
    second = "".join(second.splitlines(keepends=True)[1:]).replace("alpha", "omega")
    return first + second


async def test_ids_moved_inside_the_file_give_the_early_index_up(
    tmp_path, monkeypatch, copies, early
):
    text = _merged_export()
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", None)
    usual, _ = await _import(tmp_path / "usual.db", text)
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    side, result = await _import(tmp_path / "side.db", text)
    assert early == ["given up"] and copies == [True]  # the load fed one of its own
    assert side == usual and result.messages == 10
    store = await Store.open(tmp_path / "side.db")
    try:
        assert len(await store.search("omega")) == 5
    finally:
        await store.close()
    _fts_consistent(tmp_path / "side.db")
    assert _side_files(tmp_path) == []


async def test_a_message_written_while_the_file_is_read_gives_the_early_index_up(
    tmp_path, monkeypatch, copies, early
):
    """The database is no longer empty when the load starts: no side index at all."""
    monkeypatch.setattr(importer, "SIDE_INDEX_ROWS", 0)
    db = tmp_path / "t.db"
    store = await Store.open(db)
    try:
        other = await store.create_session("/elsewhere")
        written: list[int] = []

        def write_while_reading(phase: str, done: int, total: int | None) -> None:
            if phase == "reading" and not written:
                written.append(
                    _other_writer(
                        db,
                        "INSERT INTO messages (session_id, role, content, created_at)"
                        " VALUES (?, 'user', 'lapwing', '2026-01-02T00:00:00.000Z')",
                        (other.id,),
                    )
                )

        result = await store.import_export(
            io.BytesIO(_export(3, 5).encode()), "x", progress=write_while_reading
        )
        assert written == [1] and result.renumbered_sessions == [SESSION.format(1)]
        assert len(await store.search("lapwing")) == 1
        assert len(await store.search("alpha", limit=100)) == 15
    finally:
        await store.close()
    assert early == ["given up"] and copies == []
    _fts_consistent(db)
    assert _side_files(tmp_path) == []


async def test_a_small_first_load_starts_no_process_and_its_rows_are_built(tmp_path, monkeypatch):
    started: list[int] = []
    real = side_index.SideIndex.__init__

    def spy(self, *args) -> None:
        started.append(1)
        real(self, *args)

    monkeypatch.setattr(side_index.SideIndex, "__init__", spy)
    monkeypatch.setattr(side_index, "START_ROWS", 30)
    store = await Store.open(tmp_path / "t.db")
    try:
        report = await store.load_history(_history(2, 8))
        assert report.messages == 16 and started == []
        assert len(await store.search("alpha", limit=100)) == 16
        more = await store.load_history(_history(5, 8))  # no longer a first load
        assert more.messages == 24 and started == []
    finally:
        await store.close()
    _fts_consistent(tmp_path / "t.db")
    monkeypatch.setattr(side_index, "START_ROWS", 10)
    store = await Store.open(tmp_path / "u.db")
    try:
        await store.load_history(_history(2, 8))
        assert started == [1]  # the same load, past the threshold: a child
    finally:
        await store.close()
    _fts_consistent(tmp_path / "u.db")
    assert _side_files(tmp_path) == []
