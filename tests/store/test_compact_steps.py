"""Compacting in short steps: other writers get in between, and a crash leaves a consistent
session that compacting again finishes (issue 13)."""

from __future__ import annotations

import sqlite3

import pytest

from store.test_search_index import fts_check
from threadline.chat.summarise import compact_plan, compact_session
from threadline.models import Message, Session
from threadline.store import Store
from threadline.store import messages as message_ops


async def _long_session(store: Store, n: int, covered: int) -> tuple[Session, list[Message]]:
    """A session of `n` messages whose summary stands for the first `covered`."""
    s = await store.create_session("/tmp")
    ms = [await store.add_message(s.id, "user", f"heronword number{i}") for i in range(n)]
    await store.save_summary(s.id, "what came first", ms[0].id, ms[covered - 1].id)
    return s, ms


def _stored(path: object, session_id: str) -> list[int]:
    conn = sqlite3.connect(str(path))
    try:
        rows = conn.execute(
            "SELECT id FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
        return [r[0] for r in rows]
    finally:
        conn.close()


async def test_another_connection_writes_between_compacting_steps(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_ops, "COMPACT_CHUNK", 4)
    s, ms = await _long_session(store, 11, covered=9)
    seen: list[int] = []
    landed: list[int] = []
    left_then: list[int] = []

    def write_between(removed: int) -> None:
        seen.append(removed)
        if landed:
            return
        # A connection that will not wait at all: "database is locked" if compacting held it.
        other = sqlite3.connect(store.path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            cur = other.execute(
                "INSERT INTO messages (session_id, role, content, created_at)"
                " VALUES (?, 'user', 'egretword meanwhile', '2030-01-01T00:00:00.000Z')",
                (s.id,),
            )
            other.execute("COMMIT")
            landed.append(int(cur.lastrowid))
        finally:
            other.close()
        left_then.extend(_stored(store.path, s.id))

    assert await compact_session(store, s.id, progress=write_between) == 9
    assert seen == [4, 8, 9]
    # The other writer got in after the first step, while 5 covered messages were still there.
    assert left_then == [m.id for m in ms[4:]] + landed
    assert [m.id for m in await store.get_messages(s.id)] == [ms[9].id, ms[10].id, *landed]
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 3
    assert {h.message_id for h in await store.search("heronword")} == {ms[9].id, ms[10].id}
    assert [h.message_id for h in await store.search("egretword")] == landed
    assert await store.integrity_check() == []
    fts_check(store.path)


async def test_a_crash_between_steps_leaves_a_consistent_session_and_compacting_again_finishes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_ops, "COMPACT_CHUNK", 4)
    s, ms = await _long_session(store, 11, covered=9)
    real = message_ops.delete_messages_step
    steps: list[int] = []

    def dying(*args):  # type: ignore[no-untyped-def]
        steps.append(1)
        if len(steps) == 2:
            raise RuntimeError("killed")  # inside the second step's transaction
        return real(*args)

    monkeypatch.setattr(message_ops, "delete_messages_step", dying)
    with pytest.raises(RuntimeError, match="killed"):
        await compact_session(store, s.id)
    # The first step stays; the second was rolled back whole. The summary still stands for
    # the covered messages left, which are the newest of its range.
    assert _stored(store.path, s.id) == [m.id for m in ms[4:]]
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 7
    summary = await store.latest_summary(s.id)
    assert summary is not None and summary.last_message_id == ms[8].id
    assert {h.message_id for h in await store.search("heronword")} == {m.id for m in ms[4:]}
    # Shown as before any compacting: the covered messages left, then the summary after them.
    timeline = await store.timeline(s.id)
    assert timeline[5] == summary
    assert [i.id for i in timeline[:5] + timeline[6:]] == [m.id for m in ms[4:]]
    assert await store.integrity_check() == []
    fts_check(store.path)
    # Compacting again removes the rest, in two steps.
    monkeypatch.setattr(message_ops, "delete_messages_step", real)
    plan = await compact_plan(store, s.id)
    assert plan.summary == summary and plan.removable == 5
    assert await compact_session(store, s.id) == 5
    assert [m.id for m in await store.get_messages(s.id)] == [ms[9].id, ms[10].id]
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 2
    assert {h.message_id for h in await store.search("heronword")} == {ms[9].id, ms[10].id}
    assert await store.integrity_check() == []
    fts_check(store.path)
