"""Store methods behind summaries and memory extraction: the queue, watermarks, batches."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from threadline.store import Store, StoreError
from threadline.store.memories import WATERMARK_KEY


async def test_queue_extraction_moves_the_watermark_with_the_row(
    store: Store, workdir: str
) -> None:
    s = await store.create_session(workdir, metadata={"keep": "me"})
    assert await store.queue_extraction(s.id) is None  # no messages yet
    a = await store.add_message(s.id, "user", "a")
    b = await store.add_message(s.id, "assistant", "b")
    first = await store.queue_extraction(s.id)
    assert first is not None and (first.from_message_id, first.to_message_id) == (a.id, b.id)
    assert await store.queue_extraction(s.id) is None
    c = await store.add_message(s.id, "user", "c")
    d = await store.add_message(s.id, "user", "d")
    second = await store.queue_extraction(s.id, upto_id=c.id)
    assert second is not None and (second.from_message_id, second.to_message_id) == (c.id, c.id)
    session = await store.get_session(s.id)
    assert session is not None
    assert session.metadata == {"keep": "me", WATERMARK_KEY: c.id}
    third = await store.queue_extraction(s.id)
    assert third is not None and third.from_message_id == d.id


async def test_claim_leases_the_oldest_due_and_skips_given_up(
    store: Store, workdir: str, clock: Any
) -> None:
    ids = []
    for text in ("a", "b"):
        s = await store.create_session(workdir)
        await store.add_message(s.id, "user", text)
        pending = await store.queue_extraction(s.id)
        assert pending is not None
        ids.append(pending.id)
    await store.update_pending_extraction(ids[0], attempt_count=3)
    lease = clock() + __import__("datetime").timedelta(minutes=10)
    claimed = await store.claim_pending_extraction(lease)
    assert claimed is not None and claimed.id == ids[1]
    assert claimed.next_attempt_at == lease and claimed.last_attempt_at == clock()
    assert await store.claim_pending_extraction(lease) is None  # leased, and given up
    # By id, whatever its state.
    forced = await store.claim_pending_extraction(lease, ids[0])
    assert forced is not None and forced.id == ids[0]
    assert await store.claim_pending_extraction(lease, 999) is None


async def test_complete_extraction_is_one_transaction(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    m = await store.add_message(s.id, "user", "x")
    old = await store.save_memory(workdir, "old", "fact", 2)
    pending = await store.queue_extraction(s.id)
    assert pending is not None
    items = [
        {
            "fact": "new",
            "category": "fact",
            "importance": 3,
            "source_message_id": m.id,
            "supersedes": old.id,
        },
    ]
    saved = await store.complete_extraction(pending.id, items, rest=(m.id + 1, m.id + 5))
    assert saved is not None and saved[0].session_id == s.id
    assert (await store.get_memory(old.id)).superseded_by == saved[0].id  # type: ignore[union-attr]
    (rest,) = await store.list_pending_extractions()
    assert (rest.from_message_id, rest.to_message_id) == (m.id + 1, m.id + 5)
    # Done already (by someone else): nothing is saved twice.
    assert await store.complete_extraction(pending.id, items) is None
    assert len(await store.get_memories(workdir, include_superseded=True)) == 2
    # A bad item rolls back the whole batch, queue row included.
    bad = [
        {"fact": "ok", "category": "fact", "importance": 3},
        {"fact": "no", "category": "nope", "importance": 3},
    ]
    with pytest.raises(StoreError):
        await store.complete_extraction(rest.id, bad)
    assert len(await store.list_pending_extractions()) == 1
    assert len(await store.get_memories(workdir, include_superseded=True)) == 2


async def test_idle_sessions_need_the_mark_and_new_messages(
    store: Store, workdir: str, clock: Any
) -> None:
    from datetime import timedelta

    marked = await store.create_session(workdir)
    await store.patch_session_metadata(marked.id, {WATERMARK_KEY: 0})
    await store.add_message(marked.id, "user", "hi")
    unmarked = await store.create_session(workdir)
    await store.add_message(unmarked.id, "user", "hi")
    now = clock()
    assert (
        await store.queue_idle_extractions(now - timedelta(minutes=1), now - timedelta(days=1))
        == []
    )
    clock.advance(minutes=5)
    now = clock()
    queued = await store.queue_idle_extractions(now - timedelta(minutes=1), now - timedelta(days=1))
    assert [p.session_id for p in queued] == [marked.id]
    assert await store.queue_idle_extractions(now, now - timedelta(days=1)) == []
    # Too long ago: left alone.
    await store.add_message(marked.id, "user", "more")
    clock.advance(days=3)
    now = clock()
    assert await store.queue_idle_extractions(now, now - timedelta(days=1)) == []


async def test_patch_session_metadata_merges_and_removes(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir, metadata={"a": 1, "b": {"c": 2}})
    s = await store.patch_session_metadata(s.id, {"b": {"d": 3}, "e": 4})
    assert s.metadata == {"a": 1, "b": {"c": 2, "d": 3}, "e": 4}
    s = await store.patch_session_metadata(s.id, {"a": None})
    assert s.metadata == {"b": {"c": 2, "d": 3}, "e": 4}
    with pytest.raises(StoreError):
        await store.patch_session_metadata("nope", {"a": 1})


async def test_count_messages_before(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    msgs = [await store.add_message(s.id, "user", str(i)) for i in range(5)]
    assert await store.count_messages_before(s.id, msgs[3].id) == 3
    assert await store.count_messages_before(s.id, msgs[0].id) == 0


async def test_memory_queries_walk_the_directory_index(store: Store, workdir: str) -> None:
    """Not a timing test: the plan that keeps selection at the rows returned (see the bench)."""
    rows = [
        (
            workdir if i % 6 == 0 else f"/d{i % 50}",
            f"f{i}",
            "fact",
            1 + i % 5,
            f"2026-01-01T00:00:{i % 60:02d}.000Z",
        )
        for i in range(3000)
    ]
    conn = sqlite3.connect(store.path)
    with conn:
        conn.executemany(
            "INSERT INTO memories (working_dir, fact, category, importance, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        # Some superseded: with ANALYZE's statistics, "superseded_by = ?" then looks
        # selective, and the planner was tempted by memories_superseded for "IS NULL".
        conn.execute("UPDATE memories SET superseded_by = id + 1 WHERE id % 5 = 0 AND id < 3000")
    conn.execute("ANALYZE")
    from threadline.store import memories as ops

    plans = []

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM memories" in sql:
            plans.extend(
                r[3]
                for r in conn.execute(
                    "EXPLAIN QUERY PLAN " + sql.replace("?", "'x'", 1).replace("?", "30")
                )
            )

    conn.set_trace_callback(trace)
    ops.select_memories(conn, workdir, None, 30)
    ops.get_memories(conn, workdir, 30, False)
    conn.set_trace_callback(None)
    conn.close()
    assert plans and all("memories_superseded" not in p for p in plans), plans
    assert any("memories_dir" in p for p in plans)
