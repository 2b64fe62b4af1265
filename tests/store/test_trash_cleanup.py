"""Nothing is deleted silently: the trash, restore, purge (cascading) and retention cleanup."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.config import SessionConfig
from threadline.store import Store


async def test_delete_moves_to_trash_and_restore_brings_back(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    s = await store.create_session(workdir, title="precious")
    m = await store.add_message(s.id, "user", "trashword in here")
    keep = await store.create_session(workdir)
    assert await store.delete_session(s.id)
    assert not await store.delete_session(s.id)  # already there
    assert not await store.delete_session("01234567-89ab-7def-8123-456789abcdef")
    # It leaves every list, count, search and continuity lookup ...
    assert [r.id for r in await store.list_sessions("directory", workdir)] == [keep.id]
    assert [r.id for r in await store.list_sessions("all")] == [keep.id]
    assert await store.count_sessions("all") == 1
    assert await store.search("trashword") == []
    assert await store.search("trashword", "directory", workdir) == []
    # ... but keeps its messages, and is listed in the trash.
    trashed = await store.list_sessions("all", trashed=True)
    assert [r.id for r in trashed] == [s.id] and trashed[0].deleted_at == clock()
    assert await store.count_sessions("directory", workdir, trashed=True) == 1
    got = await store.get_session(s.id)
    assert got is not None and got.deleted_at == clock()
    assert [x.id for x in await store.get_messages(s.id)] == [m.id]
    assert await store.restore_session(s.id)
    assert not await store.restore_session(s.id)
    assert {r.id for r in await store.list_sessions("directory", workdir)} == {s.id, keep.id}
    assert [h.message_id for h in await store.search("trashword")] == [m.id]
    assert await store.list_sessions("all", trashed=True) == []


async def count(db: Path, sql: str, *args: object) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


async def test_purge_cascades(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    other = await store.create_session(workdir)
    m1 = await store.add_message(s.id, "user", "purgeword one")
    await store.add_message(s.id, "assistant", "purgeword two")
    await store.add_message(other.id, "user", "purgeword survives")
    await store.save_summary(s.id, "purgeword summary", m1.id, m1.id)
    mem = await store.save_memory(
        workdir, "a fact to keep", "fact", 4, session_id=s.id, source_message_id=m1.id
    )
    await store.save_pending_extraction(s.id)
    assert len(await store.search("purgeword")) == 4
    assert await store.purge_session(s.id)
    assert not await store.purge_session(s.id)
    assert await store.get_session(s.id) is None
    assert await store.get_messages(s.id) == []
    assert await store.list_summaries(s.id) == []
    db = store.path
    assert await count(db, "SELECT count(*) FROM messages WHERE session_id = ?", s.id) == 0
    assert await count(db, "SELECT count(*) FROM summaries WHERE session_id = ?", s.id) == 0
    assert await count(db, "SELECT count(*) FROM pending_memory_extractions") == 0
    # The FTS rows are gone too (not just hidden by the join).
    assert (
        await count(
            db, "SELECT count(*) FROM search_messages WHERE search_messages MATCH 'purgeword'"
        )
        == 1
    )
    assert (
        await count(
            db, "SELECT count(*) FROM search_summaries WHERE search_summaries MATCH 'purgeword'"
        )
        == 0
    )
    assert [h.session_id for h in await store.search("purgeword")] == [other.id]
    # Memories keep the fact, without the session or message link.
    kept = await store.get_memory(mem.id)
    assert kept is not None
    assert (kept.fact, kept.session_id, kept.source_message_id) == ("a fact to keep", None, None)
    assert await store.integrity_check() == []


async def test_purge_trash_by_age(store: Store, clock: FakeClock) -> None:
    old = await store.create_session("/tmp")
    await store.add_message(old.id, "user", "x")
    await store.delete_session(old.id)
    clock.advance(days=20)
    recent = await store.create_session("/tmp")
    await store.delete_session(recent.id)
    clock.advance(days=11)  # old: 31 days in the trash, recent: 11
    assert await store.purge_trash(30) == [old.id]
    assert await store.get_session(old.id) is None
    assert await store.get_session(recent.id) is not None
    assert await store.purge_trash(30) == []
    assert await store.purge_trash(everything=True) == [recent.id]
    assert await store.list_sessions("all", trashed=True) == []


async def aged_sessions(
    store: Store, clock: FakeClock, directory: str, days: list[int]
) -> list[str]:
    """Sessions whose last activity is `days` ago (in order), ending with the clock at now."""
    start = clock()
    ids = []
    for age in sorted(days, reverse=True):
        clock.current = start - timedelta(days=age)
        s = await store.create_session(directory)
        await store.add_message(s.id, "user", f"{age} days old")
        ids.append(s.id)
    clock.current = start
    return ids


async def test_cleanup_by_age_spares_pinned_and_keep(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    ids = await aged_sessions(store, clock, workdir, [200, 150, 100, 91, 89, 10, 1])
    old200, old150, old100, old91, young89, _, _ = ids
    await store.update_session(old150, pinned=True)
    settings = SessionConfig(retention_days=90, max_sessions=1000, trash_days=30)
    dry = await store.cleanup(settings, dry_run=True, keep={old100})
    assert dry.dry_run
    assert (dry.sessions_deleted, dry.by_retention, dry.by_max_limit, dry.purged) == (2, 2, 0, 0)
    assert set(dry.trashed_ids) == {old200, old91}
    assert await store.count_sessions("all") == 7  # the dry run changed nothing
    real = await store.cleanup(settings, keep={old100})
    assert not real.dry_run
    assert (real.sessions_deleted, real.by_retention, real.by_max_limit, real.purged) == (
        dry.sessions_deleted,
        dry.by_retention,
        dry.by_max_limit,
        dry.purged,
    )
    assert real.trashed_ids == dry.trashed_ids
    assert {r.id for r in await store.list_sessions("all", trashed=True)} == {old200, old91}
    remaining = {r.id for r in await store.list_sessions("all", limit=None)}
    assert {old150, old100, young89} <= remaining
    # Trashed, not purged: the messages are still there.
    assert await store.count_messages(old200) == 1


async def test_cleanup_by_count_spares_pinned_and_keep(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    ids = await aged_sessions(store, clock, workdir, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    await store.update_session(ids[0], pinned=True)  # the oldest, pinned
    settings = SessionConfig(retention_days=90, max_sessions=6, trash_days=30)
    dry = await store.cleanup(settings, dry_run=True, keep=[ids[1]])
    real = await store.cleanup(settings, keep=[ids[1]])
    assert (dry.sessions_deleted, dry.by_retention, dry.by_max_limit, dry.purged) == (4, 0, 4, 0)
    assert (real.sessions_deleted, real.by_retention, real.by_max_limit, real.purged) == (
        4,
        0,
        4,
        0,
    )
    # The four oldest that are neither pinned nor kept.
    assert set(real.trashed_ids) == set(ids[2:6])
    assert await store.count_sessions("all") == 6
    again = await store.cleanup(settings, keep=[ids[1]])
    assert again.sessions_deleted == 0


async def test_cleanup_age_then_count_then_purge(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    long_trashed = await store.create_session(workdir)
    await store.delete_session(long_trashed.id)
    clock.advance(days=40)
    ids = await aged_sessions(store, clock, workdir, [120, 100, 5, 4, 3, 2, 1])
    settings = SessionConfig(retention_days=90, max_sessions=3, trash_days=30)
    dry = await store.cleanup(settings, dry_run=True)
    assert await store.get_session(long_trashed.id) is not None  # the dry run purged nothing
    real = await store.cleanup(settings)
    expected = (4, 2, 2, 1)
    for result in (dry, real):
        counts = (result.sessions_deleted, result.by_retention, result.by_max_limit, result.purged)
        assert counts == expected
        assert result.purged_ids == [long_trashed.id]
        assert result.trashed_ids[:2] == ids[:2]  # by age first, then the oldest over the limit
    assert await store.get_session(long_trashed.id) is None
    assert await store.count_sessions("all") == 3


async def test_cleanup_older_than_override(store: Store, workdir: str, clock: FakeClock) -> None:
    await aged_sessions(store, clock, workdir, [20, 5])
    result = await store.cleanup(SessionConfig(), older_than=timedelta(days=10))
    assert result.by_retention == 1


@pytest.mark.parametrize("dry_run", [True, False])
async def test_cleanup_of_empty_database(store: Store, dry_run: bool) -> None:
    result = await store.cleanup(SessionConfig(), dry_run=dry_run)
    assert (result.sessions_deleted, result.purged) == (0, 0)
