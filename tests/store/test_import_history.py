"""The history loader (Store.load_history): what sources yield, written in short transactions.

Batches are built here by hand (threadline.records' shapes); readers of real files are tested
in tests/sources. What must hold: sessions found by (source, source_id) and messages by key, so
loading twice adds nothing and a grown file adds only what is new; marks saved with their
batch; bounds checked before SQLite; counters, previews and the search index as if each row
had been written one by one.
"""

from __future__ import annotations

import io
import json
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from threadline.records import (
    FileMark,
    IncomingMessage,
    IncomingSession,
    IncomingSummary,
)
from threadline.store import Store, StoreError
from threadline.store.transfer import batches as batch_module
from threadline.store.transfer import bulk, history, imported_session_id

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def message(i: int, text: str | None = None, **kw: Any) -> IncomingMessage:
    role = kw.pop("role", "user" if i % 2 == 0 else "assistant")
    return IncomingMessage(
        key=kw.pop("key", f"m{i}"),
        role=role,
        content=text if text is not None else f"words of message {i} pelican",
        created_at=T0 + timedelta(seconds=10 * i),
        payload=kw.pop("payload", {"source": "claude-code", "records": [{"n": i}]}),
        input_tokens=kw.pop("input_tokens", 10 * i if role == "assistant" else None),
        output_tokens=kw.pop("output_tokens", 3 * i if role == "assistant" else None),
        **kw,
    )


def session(
    source_id: str = "s1",
    messages: list[IncomingMessage] | None = None,
    *,
    count: int = 6,
    mark: FileMark | None = None,
    **kw: Any,
) -> IncomingSession:
    return IncomingSession(
        source=kw.pop("source", "claude-code"),
        source_id=source_id,
        working_dir=kw.pop("working_dir", "/work/project"),
        created_at=kw.pop("created_at", T0),
        messages=messages if messages is not None else [message(i) for i in range(count)],
        mark=mark,
        **kw,
    )


def mark(path: str = "/logs/s1.jsonl", offset: int = 100, **kw: Any) -> FileMark:
    return FileMark(
        path=path,
        source="claude-code",
        size=kw.pop("size", offset),
        mtime_ns=kw.pop("mtime_ns", 1_700_000_000_000_000_000),
        offset=offset,
        fingerprint=kw.pop("fingerprint", f"fp{offset}"),
        state=kw.pop("state", {"group": offset}),
    )


async def dump(store: Store) -> str:
    out = io.StringIO()
    await store.export_jsonl(out)
    return out.getvalue()


def unreceived(jsonl: str) -> list[dict[str, Any]]:
    """An export's records without sessions' received_at."""
    records = [json.loads(line) for line in jsonl.splitlines()]
    for r in records:
        r.pop("received_at", None)
    return records


def fts_consistent(path: Path) -> None:
    """FTS5's own check of each index against its content (raises when they differ)."""
    conn = sqlite3.connect(path)
    try:
        fts = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'"
                " AND sql NOT LIKE '%fts5vocab%'"
            )
        ]
        assert fts
        for table in fts:
            conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def triggers(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()


async def test_a_new_session_is_written_as_if_row_by_row(store: Store, db_path, clock) -> None:
    before = triggers(db_path)
    report = await store.load_history([session(title="Parser work", model="claude-x")])
    assert (report.sessions, report.updated, report.messages, report.skipped) == (1, 0, 6, 0)
    sid = imported_session_id("claude-code", "s1", T0)
    s = await store.get_session(sid)
    assert s is not None and s.title == "Parser work" and s.model == "claude-x"
    assert s.metadata["source"] == "claude-code" and s.metadata["source_id"] == "s1"
    assert s.created_at == T0 and s.updated_at == T0 + timedelta(seconds=50)
    assert (s.message_count, s.total_input_tokens, s.total_output_tokens) == (6, 90, 27)
    assert s.preview == "words of message 0 pelican"
    messages = await store.get_messages(sid)
    assert [m.content for m in messages] == [f"words of message {i} pelican" for i in range(6)]
    assert messages[1].payload == {"source": "claude-code", "records": [{"n": 1}]}
    hits = await store.search("pelican", limit=100)
    assert sorted(h.message_id for h in hits) == [m.id for m in messages]
    # Where it came from, and when threadline received it, are columns too (retention, sync).
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT source, source_id, received_at FROM sessions WHERE id = ?", (sid,)
        ).fetchone()
    assert row == ("claude-code", "s1", clock().strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    assert triggers(db_path) == before
    fts_consistent(db_path)


async def test_counters_match_what_the_triggers_give_one_row_at_a_time(store: Store) -> None:
    """The bulk path against the per-row path (add_message) on the same conversation."""
    msgs = [message(i, f"  \n{'' if i == 0 else 'text'} {i}") for i in range(5)]
    msgs[0] = message(0, "   ", role="user")  # a blank first prompt is no preview
    await store.load_history([session(messages=msgs)])
    sid = imported_session_id("claude-code", "s1", T0)
    mine = await store.create_session("/work/project")
    for m in msgs:
        await store.add_message(
            mine.id,
            m.role,
            m.content,
            m.payload,
            m.input_tokens,
            m.output_tokens,
            created_at=m.created_at,
        )
    a, b = await store.get_session(sid), await store.get_session(mine.id)
    assert a is not None and b is not None
    keys = ("message_count", "total_input_tokens", "total_output_tokens", "preview")
    assert [getattr(a, k) for k in keys] == [getattr(b, k) for k in keys]
    assert a.preview == "text 2"


async def test_loading_the_same_history_twice_adds_nothing(store: Store) -> None:
    batches = [session("s1", title="One"), session("s2", count=3, created_at=T0 + timedelta(1))]
    first = await store.load_history(batches)
    assert (first.sessions, first.messages) == (2, 9)
    before = await dump(store)
    again = await store.load_history(batches)
    assert (again.sessions, again.updated, again.messages, again.skipped) == (0, 0, 0, 2)
    assert again.replaced == 0 and again.summaries == 0
    assert await dump(store) == before


async def test_growing_in_two_steps_equals_loading_whole_once(tmp_path, clock) -> None:
    """A live file read twice: the second read re-sends its last group, now complete."""
    whole = [message(i) for i in range(10)]
    summary = IncomingSummary("the first four", "m0", "m3", T0 + timedelta(minutes=5))
    step1 = [message(i) for i in range(5)]
    step1[4] = message(4, "half a repl", complete=False, input_tokens=None, output_tokens=None)
    stores = []
    for name in ("steps.db", "whole.db"):
        stores.append(await Store.open(tmp_path / name, clock=clock))
    steps, once = stores
    try:
        r1 = await steps.load_history([session(messages=step1, mark=mark(offset=50))])
        assert (r1.sessions, r1.messages) == (1, 5)
        r2 = await steps.load_history(
            [session(messages=whole[4:], summaries=[summary], mark=mark(offset=100))]
        )
        assert (r2.sessions, r2.updated, r2.messages, r2.replaced, r2.skipped) == (0, 1, 5, 1, 0)
        assert r2.summaries == 1
        r3 = await once.load_history(
            [session(messages=whole, summaries=[summary], mark=mark(offset=100))]
        )
        assert (r3.sessions, r3.messages, r3.summaries) == (1, 10, 1)
        assert await dump(steps) == await dump(once)
        assert await steps.source_file_marks("claude-code") == await once.source_file_marks(
            "claude-code"
        )
        sid = imported_session_id("claude-code", "s1", T0)
        assert (await steps.get_session(sid)).total_input_tokens == 250  # the replaced reply
        assert [h.session_id for h in await steps.search("repl")] == []  # the half text left
    finally:
        for s in stores:
            await s.close()
    for name in ("steps.db", "whole.db"):
        fts_consistent(tmp_path / name)


async def test_a_dry_run_writes_nothing_and_counts_the_same(store: Store, db_path) -> None:
    await store.load_history([session("s1", count=4)])
    batches = [
        session("s1", count=7),  # grows
        session("s2", count=3),  # new
        session("s2", [message(i) for i in range(2, 5)]),  # the new one grows, same load
        session("s3", count=2),  # new
    ]
    before = await dump(store)
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT count(*) FROM message_keys").fetchone()
    dry = await store.load_history(batches, dry_run=True)
    assert await dump(store) == before
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM message_keys").fetchone() == rows
    real = await store.load_history(batches)
    counted = ("sessions", "updated", "messages", "replaced", "skipped", "summaries")
    assert [getattr(dry, k) for k in counted] == [getattr(real, k) for k in counted]
    assert (real.sessions, real.updated, real.messages) == (2, 1, 3 + 3 + 2 + 2)
    assert dry.dry_run and not real.dry_run


async def test_title_only_names_a_present_session_unless_the_person_renamed_it(store) -> None:
    sid = imported_session_id("claude-code", "s1", T0)
    await store.load_history([session("s1", title="First guess")])
    ignored = session("elsewhere", title="Nobody's", title_only=True, mark=mark("/logs/x"))
    report = await store.load_history([session("s1", title="Better title", title_only=True)])
    assert report.titled == 1 and (report.sessions, report.skipped) == (0, 0)
    assert (await store.get_session(sid)).title == "Better title"
    report = await store.load_history([ignored])
    assert report.sessions == 0 and report.marks == 1
    assert (await store.info()).sessions == 1  # nothing made for a session never loaded
    await store.update_session(sid, title="Mine")
    report = await store.load_history([session("s1", title="Later", title_only=True)])
    assert report.titled == 0 and (await store.get_session(sid)).title == "Mine"
    # A full batch with a new title respects the rename too.
    await store.load_history([session("s1", title="Later still")])
    assert (await store.get_session(sid)).title == "Mine"


async def test_summaries_stand_for_the_messages_their_keys_name(store: Store) -> None:
    sid = imported_session_id("claude-code", "s1", T0)
    compaction = IncomingSummary("what came before", "m0", "m3", T0 + timedelta(hours=1))
    await store.load_history([session(count=4)])
    report = await store.load_history([session(count=6, summaries=[compaction])])
    assert report.summaries == 1
    messages = await store.get_messages(sid)
    (summary,) = await store.list_summaries(sid)
    assert (summary.first_message_id, summary.last_message_id) == (messages[0].id, messages[3].id)
    assert [h.kind for h in await store.search("came before")] == ["summary"]
    again = await store.load_history([session(count=6, summaries=[compaction])])
    assert again.summaries == 0 and len(await store.list_summaries(sid)) == 1
    broken = IncomingSummary("lost", "m0", "never-loaded", T0)
    with pytest.raises(StoreError, match="claude-code session s2: .*never-loaded.*never loaded"):
        await store.load_history([session("s2", count=2, summaries=[broken], mark=mark("/l/s2"))])
    assert await store.get_session(imported_session_id("claude-code", "s2", T0)) is None
    assert "/l/s2" not in await store.source_file_marks("claude-code")  # the same transaction


async def test_file_marks_are_saved_with_their_batch_and_read_back(store: Store) -> None:
    assert await store.source_file_marks("claude-code") == {}
    first = mark("/logs/a.jsonl", 10, state={"open": ["x"]})
    await store.load_history([session("a", mark=first), session("b", mark=mark("/logs/b", 7))])
    marks = await store.source_file_marks("claude-code")
    assert marks["/logs/a.jsonl"] == first and set(marks) == {"/logs/a.jsonl", "/logs/b"}
    assert await store.source_file_marks("codex") == {}
    # A mark alone (a file read with nothing new in it) is saved too.
    moved = mark("/logs/a.jsonl", 12)
    report = await store.load_history([session("a", [], mark=moved)])
    assert report.marks == 1 and report.skipped == 1 and report.messages == 0
    assert (await store.source_file_marks("claude-code"))["/logs/a.jsonl"] == moved


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: setattr(b.messages[1], "input_tokens", 10**30), "input_tokens 1e\\+30 is out"),
        (lambda b: setattr(b.messages[1], "output_tokens", -1), "output_tokens -1 is out"),
        (lambda b: setattr(b.messages[0], "created_at", datetime(2025, 1, 1)), "no time zone"),
        (lambda b: setattr(b, "working_dir", "relative/dir"), "not an absolute path"),
        (lambda b: setattr(b.messages[2], "role", "wizard"), "role 'wizard'"),
        (lambda b: setattr(b.messages[2], "payload", ["not", "an", "object"]), "JSON object"),
        (lambda b: setattr(b.messages[2], "payload", {"x": float("nan")}), "not JSON"),
        (lambda b: setattr(b, "mark", mark(offset=2**64, size=9)), "offset .* is out of range"),
    ],
)
async def test_bad_values_are_one_line_errors_naming_the_session(store, change, expected) -> None:
    good = session("before", count=2)
    bad = session("broken", count=3)
    change(bad)
    with pytest.raises(StoreError, match=f"^claude-code session broken: .*{expected}") as info:
        await store.load_history([good, bad, session("after", count=2)])
    assert "\n" not in str(info.value)
    # What came before the bad batch is in; the bad one is not.
    assert await store.get_session(imported_session_id("claude-code", "before", T0)) is not None
    assert await store.get_session(imported_session_id("claude-code", "broken", T0)) is None


async def test_with_on_error_a_bad_batch_is_reported_and_the_rest_go_in(store: Store) -> None:
    bad = session("broken", count=3)
    bad.messages[0].input_tokens = 10**30
    seen: list[tuple[str, str]] = []
    report = await store.load_history(
        [session("a"), bad, session("b")],
        on_error=lambda batch, exc: seen.append((batch.source_id, str(exc))),
    )
    assert (report.sessions, report.failed) == (2, 1)
    assert seen[0][0] == "broken" and "input_tokens" in seen[0][1]
    assert report.errors == [seen[0][1]]


async def test_the_readers_own_error_ends_the_load_after_what_came_before(store) -> None:
    def batches():
        yield session("a")
        raise StoreError("x.jsonl: line 3: not JSON")

    with pytest.raises(StoreError, match="line 3"):
        await store.load_history(batches())
    assert await store.get_session(imported_session_id("claude-code", "a", T0)) is not None


async def test_a_large_batch_is_split_and_its_mark_goes_with_the_last_part(
    store: Store, monkeypatch
) -> None:
    monkeypatch.setattr(batch_module, "PART_MESSAGES", 7)
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)  # one part per transaction
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    parts: list[tuple[int, int]] = []

    def progress(report: history.LoadReport) -> None:
        parts.append((report.messages, report.marks))

    summary = IncomingSummary("all of it", "m0", "m29", T0)
    report = await store.load_history(
        [session(count=30, summaries=[summary], mark=mark())], progress=progress
    )
    assert report.transactions == 5 and (report.sessions, report.messages) == (1, 30)
    assert parts == [(7, 0), (14, 0), (21, 0), (28, 0), (30, 1)]
    s = await store.get_session(imported_session_id("claude-code", "s1", T0))
    assert (
        s is not None
        and s.message_count == 30
        and s.total_input_tokens == 10 * sum(range(1, 30, 2))
    )


async def test_ids_are_the_same_wherever_the_same_history_is_imported(tmp_path) -> None:
    ids = []
    for name in ("laptop.db", "desktop.db"):
        async with await Store.open(tmp_path / name) as store:
            await store.load_history([session("abc-123")])
            ids.append((await store.list_sessions("all"))[0].id)
    assert ids[0] == ids[1] == imported_session_id("claude-code", "abc-123", T0)
    # A UUIDv7 whose time is the session's start; other sources or ids give other ids.
    assert ids[0][14] == "7" and int(ids[0].replace("-", "")[:12], 16) == int(T0.timestamp() * 1000)
    assert imported_session_id("codex", "abc-123", T0) != ids[0]
    assert imported_session_id("claude-code", "abc-124", T0) != ids[0]


async def test_a_changed_message_is_replaced_in_place_and_in_the_index(store: Store) -> None:
    sid = imported_session_id("claude-code", "s1", T0)
    await store.load_history([session(count=4)])
    ids = [m.id for m in await store.get_messages(sid)]
    changed = [message(i) for i in range(4)]
    changed[3] = message(3, "now about a heron", output_tokens=100)
    report = await store.load_history([session(messages=changed)])
    assert (report.updated, report.replaced, report.messages) == (1, 1, 0)
    messages = await store.get_messages(sid)
    assert [m.id for m in messages] == ids and messages[3].content == "now about a heron"
    assert [h.message_id for h in await store.search("heron")] == [ids[3]]
    assert (await store.get_session(sid)).total_output_tokens == 3 + 100


async def test_a_message_deleted_since_stays_deleted(store: Store) -> None:
    sid = imported_session_id("claude-code", "s1", T0)
    await store.load_history([session(count=6)])
    messages = await store.get_messages(sid)
    # Compaction removes the rows; their keys stay known.
    assert await store.delete_messages_before(sid, messages[3].id) == 3
    report = await store.load_history([session(count=6)])
    assert report.messages == 0 and report.skipped == 1
    assert [m.content for m in await store.get_messages(sid)] == [
        f"words of message {i} pelican" for i in range(3, 6)
    ]


async def test_the_last_of_two_messages_with_one_key_wins_in_the_first_place(store) -> None:
    msgs = [message(0), message(1, "draft"), message(2), message(1, "final")]
    await store.load_history([session(messages=msgs)])
    sid = imported_session_id("claude-code", "s1", T0)
    assert [m.content for m in await store.get_messages(sid)] == [
        "words of message 0 pelican",
        "final",
        "words of message 2 pelican",
    ]


async def test_a_session_in_the_trash_still_receives_what_is_new(store: Store) -> None:
    sid = imported_session_id("claude-code", "s1", T0)
    await store.load_history([session(count=2)])
    await store.delete_session(sid)
    report = await store.load_history([session(count=4)])
    assert report.messages == 2
    s = await store.get_session(sid)
    assert s is not None and s.deleted_at is not None and s.message_count == 4


async def test_another_connection_writes_between_two_transactions(store, db_path, monkeypatch):
    """The lock is free between transactions: a second connection that will not wait at all
    (timeout 0) writes there, and its message lands between two transactions' messages."""
    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)  # one batch per transaction
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    mine = await store.create_session("/mine")
    landed: list[int] = []

    def progress(report: history.LoadReport) -> None:
        if report.transactions == 2 and not landed:
            other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if held
                cur = other.execute(
                    "INSERT INTO messages (session_id, role, content, created_at)"
                    " VALUES (?, 'user', 'between', '2026-01-01T00:00:00.000Z')",
                    (mine.id,),
                )
                other.execute("COMMIT")
                landed.append(int(cur.lastrowid))
            finally:
                other.close()

    batches = [session(f"s{n}", count=3, created_at=T0 + timedelta(n)) for n in range(4)]
    report = await store.load_history(batches, progress=progress)
    assert report.transactions == 4 and len(landed) == 1
    ids = {
        n: [
            m.id
            for m in await store.get_messages(
                imported_session_id("claude-code", f"s{n}", T0 + timedelta(n))
            )
        ]
        for n in range(4)
    }
    assert max(ids[1]) < landed[0] < min(ids[2])


async def test_a_write_of_the_app_queued_during_a_load_goes_between_transactions(
    store: Store, monkeypatch
) -> None:
    """The app shares the store's writer: its write waits for one transaction, not the load."""
    import asyncio

    monkeypatch.setattr(bulk, "MAX_BUDGET", 1)
    monkeypatch.setattr(bulk, "FIRST_BUDGET", 1)
    mine = await store.create_session("/mine")
    tasks: list[asyncio.Task[Any]] = []

    def progress(report: history.LoadReport) -> None:
        if report.transactions == 1:
            tasks.append(asyncio.ensure_future(store.add_message(mine.id, "user", "typed")))

    batches = [session(f"s{n}", count=3, created_at=T0 + timedelta(n)) for n in range(4)]
    await store.load_history(batches, progress=progress)
    typed = await tasks[0]
    first = await store.get_messages(imported_session_id("claude-code", "s0", T0))
    second = await store.get_messages(imported_session_id("claude-code", "s1", T0 + timedelta(1)))
    assert max(m.id for m in first) < typed.id < min(m.id for m in second)


async def test_triggers_of_other_features_keep_firing_for_imported_rows(store, db_path) -> None:
    """A trigger the loader does not know (sync's journal, say) fires once per imported row."""
    with sqlite3.connect(db_path) as conn:
        conn.executescript(
            """
            CREATE TABLE journal (what TEXT, id);
            CREATE TRIGGER journal_messages AFTER INSERT ON messages
            BEGIN INSERT INTO journal VALUES ('message', new.id); END;
            CREATE TRIGGER journal_sessions AFTER INSERT ON sessions
            BEGIN INSERT INTO journal VALUES ('session', new.id); END;
            """
        )
    await store.load_history([session("a", count=5), session("b", count=2)])
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT what, count(*) FROM journal GROUP BY what").fetchall()
    assert sorted(rows) == [("message", 7), ("session", 2)]


async def test_a_changed_index_trigger_is_followed_as_written(store, db_path) -> None:
    """The index trigger's own text drives the bulk work: here it now skips tool output."""
    with sqlite3.connect(db_path) as conn:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'search_messages_ai'"
        ).fetchone()
        conn.execute("DROP TRIGGER search_messages_ai")
        conn.execute(sql.replace("WHEN NOT EXISTS", "WHEN new.role <> 'tool' AND NOT EXISTS"))
    msgs = [message(0, "kestrel prompt"), message(1, "kestrel output", role="tool")]
    await store.load_history([session(messages=msgs)])
    hits = await store.search("kestrel")
    assert [h.role for h in hits] == ["user"]


async def test_counters_still_right_when_their_trigger_is_not_the_one_known(store, db_path):
    """A counters trigger whose text changed fires per row instead of being done in bulk."""
    with sqlite3.connect(db_path) as conn:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'messages_count_ai'"
        ).fetchone()
        conn.execute("DROP TRIGGER messages_count_ai")
        conn.execute(sql.replace("message_count + 1", "message_count + 1 + 0"))
    await store.load_history([session(count=5)])
    s = await store.get_session(imported_session_id("claude-code", "s1", T0))
    assert (s.message_count, s.total_input_tokens) == (5, 40)
    with sqlite3.connect(db_path) as conn:
        plan = bulk.plan_triggers(conn)
    assert "messages_count_ai" in plan.per_row and "messages_count_ai" not in plan.suspended


def test_the_schema_s_index_and_counter_triggers_are_all_done_in_bulk(tmp_path) -> None:
    """Every trigger that writes a full-text index on insert is known to the bulk loader by
    name, and the counters trigger is the one its UPDATE was written for: a migration that
    renames or rewrites them must update store/transfer/bulk.py too (or imports slow down)."""
    import asyncio

    path = tmp_path / "t.db"

    async def make() -> None:
        async with await Store.open(path):
            pass

    asyncio.run(make())
    with sqlite3.connect(path) as conn:
        fts = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'"
                " AND sql NOT LIKE '%fts5vocab%'"
            )
        }
        writers = [
            name
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                " AND sql LIKE '%AFTER INSERT%'"
            )
            if any(f" {t} " in f" {sql} " or f"INTO {t} " in sql for t in fts)
        ]
        plan = bulk.plan_triggers(conn)
    idle = [n for t in bulk.IDLE_TRIGGERS.values() for n in t]
    assert writers and sorted(writers) == sorted(
        n for n in plan.suspended if n != "messages_count_ai" and n not in idle
    )
    assert "messages_count_ai" in plan.suspended and plan.per_row == []
    # Sync's capture of new messages, idle while sync is off, is the one known (suspended).
    assert idle == ["sync_messages_ai"] and "sync_messages_ai" in plan.suspended


async def test_sync_capture_of_imported_messages_is_as_per_row(store: Store, db_path) -> None:
    """Capture off: the idle trigger is suspended and nothing is captured; on: it fires per
    row and every complete imported message is captured, as before."""
    await store.load_history([session("s1", count=3)])
    with sqlite3.connect(db_path) as conn:
        assert (
            conn.execute("SELECT count(*) FROM sync_outbox WHERE kind = 'message'").fetchone()[0]
            == 0
        )
        conn.execute("UPDATE sync_state SET capture = 1")
        plan = bulk.plan_triggers(conn)
        assert "sync_messages_ai" in plan.per_row and "sync_messages_ai" not in plan.suspended
    await store.load_history([session("s2", count=4, created_at=T0 + timedelta(1))])
    with sqlite3.connect(db_path) as conn:
        keys = [
            int(r[0])
            for r in conn.execute("SELECT key FROM sync_outbox WHERE kind = 'message' ORDER BY seq")
        ]
        sid = imported_session_id("claude-code", "s2", T0 + timedelta(1))
        ids = [r[0] for r in conn.execute("SELECT id FROM messages WHERE session_id = ?", (sid,))]
    assert keys == sorted(ids) and len(ids) == 4


async def test_capture_turned_on_inside_a_bulk_transaction_aborts_it(store, db_path) -> None:
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        loader = bulk.Bulk(conn)
        assert "sync_messages_ai" in loader.plan.suspended
        conn.execute("UPDATE sync_state SET capture = 1")
        with pytest.raises(StoreError, match="sync began capturing"):
            loader.finish()
        conn.execute("ROLLBACK")


async def test_source_and_source_id_are_checked(store: Store) -> None:
    with pytest.raises(StoreError, match="batch 1: its source is empty"):
        await store.load_history([session(source="")])
    with pytest.raises(StoreError, match="not an IncomingSession"):
        await store.load_history([{"source": "x"}])  # type: ignore[list-item]
    assert json.loads(json.dumps(history.LoadReport().as_dict()))["sessions"] == 0


_KILLED_LOADER = textwrap.dedent(
    """
    import asyncio, os, pickle, signal, sys
    from threadline.store import Store
    from threadline.store.transfer import bulk, merge

    db, batches, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bulk.MAX_BUDGET = bulk.FIRST_BUDGET = 1  # one batch per transaction
    insert, calls = merge._insert, [0]

    def killing_insert(*args):
        insert(*args)  # the batch's messages are in, its transaction not yet committed
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    merge._insert = killing_insert

    async def main():
        store = await Store.open(db)
        with open(batches, "rb") as fh:
            await store.load_history(pickle.load(fh))

    asyncio.run(main())
    """
)


async def test_a_crash_mid_batch_loses_nothing_and_doubles_nothing(tmp_path, clock) -> None:
    batches = [
        session(f"s{n}", count=4, mark=mark(f"/logs/s{n}"), created_at=T0 + timedelta(n))
        for n in range(5)
    ]
    saved = tmp_path / "batches.pickle"
    saved.write_bytes(pickle.dumps(batches))
    crashed, clean = tmp_path / "crashed.db", tmp_path / "clean.db"
    async with await Store.open(crashed, clock=clock):
        pass
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_LOADER, str(crashed), str(saved), "3"],
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    async with await Store.open(crashed, clock=clock) as store:
        # Two batches committed whole, with their marks; the third, cut mid-way, not at all.
        marks = await store.source_file_marks("claude-code")
        assert sorted(marks) == ["/logs/s0", "/logs/s1"]
        info = await store.info()
        assert (info.sessions, info.messages) == (2, 8)
        report = await store.load_history(batches)  # the next pass reads on from the marks
        assert (report.sessions, report.skipped, report.messages) == (3, 2, 12)
        after = await dump(store)
    async with await Store.open(clean, clock=clock) as store:
        await store.load_history(batches)
        # The same rows (ids included); only the time of receipt differs (the child's clock).
        assert unreceived(await dump(store)) == unreceived(after)
    fts_consistent(crashed)
    assert triggers(crashed) == triggers(clean)


async def test_a_transaction_that_runs_long_leaves_the_rest_for_the_next(store, monkeypatch):
    """Past its cutoff a transaction takes no further batch; the others go in the next ones,
    in order, nothing lost or doubled (here the cutoff is always past: one per transaction)."""
    monkeypatch.setattr(history, "CUTOFF", -1.0)
    batches = [session(f"s{n}", count=3, created_at=T0 + timedelta(n)) for n in range(5)]
    report = await store.load_history(batches)
    assert (report.transactions, report.sessions, report.messages) == (5, 5, 15)
    firsts = []
    for n in range(5):
        sid = imported_session_id("claude-code", f"s{n}", T0 + timedelta(n))
        firsts.append(min(m.id for m in await store.get_messages(sid)))
    assert firsts == sorted(firsts)


async def test_a_purged_session_leaves_no_keys_and_comes_back_on_a_new_import(store, db_path):
    sid = imported_session_id("claude-code", "s1", T0)
    await store.load_history([session(count=3)])
    assert await store.purge_session(sid)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM message_keys").fetchone() == (0,)
    report = await store.load_history([session(count=3)])
    assert (report.sessions, report.messages) == (1, 3)
    assert (await store.get_session(sid)).message_count == 3


async def test_a_backup_restored_elsewhere_still_knows_what_it_holds(tmp_path, clock) -> None:
    """Keys travel in the export: loading the same history into the restored copy adds
    nothing, and what changed since is still replaced in place."""
    batches = [session("s1", title="Kept"), session("s2", count=3, created_at=T0 + timedelta(1))]
    async with await Store.open(tmp_path / "a.db", clock=clock) as a:
        await a.load_history(batches)
        backup = await dump(a)
    async with await Store.open(tmp_path / "b.db", clock=clock) as b:
        await b.import_export(io.BytesIO(backup.encode()), "backup.jsonl")
        assert await dump(b) == backup
        again = await b.load_history(batches)
        assert (again.sessions, again.messages, again.replaced, again.skipped) == (0, 0, 0, 2)
        changed = session("s1", [message(i) for i in range(5)] + [message(5, "grown")])
        report = await b.load_history([changed])
        assert (report.updated, report.replaced, report.messages) == (1, 1, 0)


async def test_an_imported_session_carries_its_project_identity(store, db_path, tmp_path):
    """A session imported from a directory of a git repository gets the project identity
    sessions made here get (sync places it by that on every machine)."""
    repo = tmp_path / "api"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:Me/api.git\n\tfetch = +refs/heads/*\n'
    )
    (repo / "src").mkdir()
    await store.load_history(
        [session("in-repo", working_dir=str(repo / "src")), session("elsewhere")]
    )
    with sqlite3.connect(db_path) as conn:
        rows = dict(
            conn.execute(
                "SELECT source_id, project_remote || ' ' || project_path FROM sessions"
            ).fetchall()
        )
    assert rows == {"in-repo": "github.com/Me/api src", "elsewhere": None}


async def test_preview_is_the_first_typed_prompt_else_the_first_command(store: Store) -> None:
    """The counters' bulk work picks a preview as the per-row rules say: the first non-blank
    user message whose payload kind is a prompt (or has none); else the first command, until
    a later load brings a typed prompt (a session cut into two transactions gets the preview
    one transaction gives); a prompt's preview is never replaced."""

    def typed(i: int, text: str, kind: str | None) -> IncomingMessage:
        payload = {"source": "claude-code"} if kind is None else {"kind": kind}
        return message(i, text, role="user", payload=payload)

    batches = [
        session(
            "a", [typed(0, "  ", None), typed(1, "injected", "injected"), typed(2, "real", None)]
        ),
        session(
            "b",
            [typed(0, "/clear", "command"), typed(1, "/model", "command")],
            created_at=T0 + timedelta(1),
        ),
        session(
            "c",
            [typed(0, "/clear", "command"), typed(1, "typed", "prompt")],
            created_at=T0 + timedelta(2),
        ),
        session("d", [typed(0, "tool says", "injected")], created_at=T0 + timedelta(3)),
    ]
    await store.load_history(batches)
    await store.load_history([session("a", [typed(3, "later prompt", None)])])
    await store.load_history(
        [session("b", [typed(2, "/compact", "command")], created_at=T0 + timedelta(1))]
    )
    # "e" arrives in two loads, as a long session is cut into transactions: its first command,
    # then the prompt typed after it.
    await store.load_history(
        [session("e", [typed(0, "/init", "command")], created_at=T0 + timedelta(4))]
    )
    await store.load_history(
        [
            session(
                "e",
                [typed(1, "first typed", None), typed(2, "second", None)],
                created_at=T0 + timedelta(4),
            )
        ]
    )
    await store.load_history(
        [session("e", [typed(3, "third", None)], created_at=T0 + timedelta(4))]
    )
    previews = []
    for name, day in (("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)):
        got = await store.get_session(imported_session_id("claude-code", name, T0 + timedelta(day)))
        assert got is not None
        previews.append(got.preview)
    assert previews == ["real", "/clear", "typed", None, "first typed"]
