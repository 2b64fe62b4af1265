"""Memories (storage only) and the extraction retry queue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.store import NotFoundError, Store, StoreError


async def test_save_and_order_by_importance_then_newest(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    s = await store.create_session(workdir)
    m = await store.add_message(s.id, "user", "I prefer tabs")
    low = await store.save_memory(workdir, "likes coffee", "fact", 1)
    clock.advance(minutes=1)
    old_high = await store.save_memory(
        workdir, "  uses tabs  ", "preference", 5, session_id=s.id, source_message_id=m.id
    )
    clock.advance(minutes=1)
    new_high = await store.save_memory(workdir, "deploys on fridays", "decision", 5, is_manual=True)
    mid = await store.save_memory(workdir, "python 3.12", "context", 3)
    assert old_high.fact == "uses tabs"  # trimmed
    assert (old_high.session_id, old_high.source_message_id) == (s.id, m.id)
    assert new_high.is_manual and not old_high.is_manual
    assert [x.id for x in await store.get_memories(workdir)] == [
        new_high.id,
        old_high.id,
        mid.id,
        low.id,
    ]
    assert [x.id for x in await store.get_memories(workdir, limit=2)] == [new_high.id, old_high.id]
    assert await store.get_memories_by_session(s.id) == [old_high]
    assert await store.get_memory(low.id) == low
    assert await store.get_memory(999) is None


async def test_memories_belong_to_a_directory(store: Store, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    ma = await store.save_memory(str(a), "in a", "fact", 3)
    await store.save_memory(str(b), "in b", "fact", 3)
    assert await store.get_memories(str(a)) == [ma]
    assert await store.get_memories(str(a / ".." / "a")) == [ma]  # resolved like sessions


async def test_memory_validation(store: Store, workdir: str) -> None:
    with pytest.raises(StoreError, match="category"):
        await store.save_memory(workdir, "x", "gossip", 3)
    for bad in (0, 6, -1):
        with pytest.raises(StoreError, match="importance"):
            await store.save_memory(workdir, "x", "fact", bad)
    with pytest.raises(StoreError, match="needs some text"):
        await store.save_memory(workdir, "   ", "fact", 3)
    assert await store.get_memories(workdir) == []


async def test_supersede_update_delete(store: Store, workdir: str) -> None:
    old = await store.save_memory(workdir, "uses python 3.11", "context", 3)
    new = await store.save_memory(workdir, "uses python 3.12", "correction", 4, supersedes=old.id)
    assert [x.id for x in await store.get_memories(workdir)] == [new.id]
    everything = await store.get_memories(workdir, include_superseded=True)
    assert {x.id for x in everything} == {old.id, new.id}
    got = await store.get_memory(old.id)
    assert got is not None and got.superseded_by == new.id
    third = await store.save_memory(workdir, "uses python 3.13", "correction", 4)
    await store.supersede_memory(new.id, third.id)
    assert [x.id for x in await store.get_memories(workdir)] == [third.id]
    with pytest.raises(StoreError, match="itself"):
        await store.supersede_memory(third.id, third.id)
    with pytest.raises(NotFoundError):
        await store.supersede_memory(12345, third.id)
    with pytest.raises(NotFoundError):
        await store.supersede_memory(third.id, 12345)
    updated = await store.update_memory(third.id, fact="uses python 3.14", importance=5)
    assert (updated.fact, updated.importance, updated.category) == (
        "uses python 3.14",
        5,
        "correction",
    )
    with pytest.raises(StoreError, match="importance"):
        await store.update_memory(third.id, importance=9)
    # Deleting a memory clears the links that pointed at it.
    assert await store.delete_memory(third.id)
    assert not await store.delete_memory(third.id)
    got = await store.get_memory(new.id)
    assert got is not None and got.superseded_by is None


async def test_delete_all_memories(store: Store, workdir: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    a = await store.save_memory(workdir, "one", "fact", 1)
    await store.save_memory(workdir, "two", "fact", 2, supersedes=a.id)
    keep = await store.save_memory(str(other), "three", "fact", 3)
    assert await store.delete_all_memories(workdir) == 2
    assert await store.get_memories(workdir, include_superseded=True) == []
    assert await store.get_memories(str(other)) == [keep]


async def test_pending_extractions_queue(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    due = await store.save_pending_extraction(s.id, from_message_id=1, to_message_id=4)
    later = await store.save_pending_extraction(
        s.id, next_attempt_at=clock() + timedelta(minutes=10)
    )
    assert (due.attempt_count, due.from_message_id, due.to_message_id) == (0, 1, 4)
    assert [p.id for p in await store.get_pending_extractions()] == [due.id]
    clock.advance(minutes=11)
    assert [p.id for p in await store.get_pending_extractions()] == [due.id, later.id]
    assert [p.id for p in await store.get_pending_extractions(limit=1)] == [due.id]
    # Each failure is recorded; after 3 attempts it is given up on (but still listed).
    for attempt in (1, 2, 3):
        updated = await store.update_pending_extraction(
            due.id,
            attempt_count=attempt,
            last_attempt_at=clock(),
            next_attempt_at=clock(),
            error_message=f"timeout {attempt}",
        )
        assert updated.attempt_count == attempt and updated.error_message == f"timeout {attempt}"
    assert [p.id for p in await store.get_pending_extractions()] == [later.id]
    assert {p.id for p in await store.list_pending_extractions()} == {due.id, later.id}
    assert (await store.update_pending_extraction(later.id, to_message_id=9)).to_message_id == 9
    assert await store.delete_pending_extraction(later.id)
    assert not await store.delete_pending_extraction(later.id)
    with pytest.raises(NotFoundError):
        await store.update_pending_extraction(later.id, attempt_count=1)
    with pytest.raises(NotFoundError):
        await store.save_pending_extraction("01234567-89ab-7def-8123-456789abcdef")
    # A purged session takes its queue entries with it.
    await store.purge_session(s.id)
    assert await store.list_pending_extractions() == []
