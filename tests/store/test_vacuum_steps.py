"""`vacuum` in short steps on an incremental database; one rebuild for --full or an old file
(issue 13)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from threadline.store import Store, facade


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


async def _freed(store: Store) -> None:
    """About 3 MB of messages, then purged: their pages are free, the file as large."""
    s = await store.create_session("/tmp")
    for i in range(6):
        await store.add_message(s.id, "user", f"bulky{i} " + "lorem ipsum dolor " * 30_000)
    await store.purge_session(s.id)
    await store.checkpoint()


async def test_a_new_database_frees_pages_in_steps(store: Store) -> None:
    assert _pragma(store.path, "auto_vacuum") == 2  # INCREMENTAL, set before the first table
    assert await store.vacuum_in_steps_possible()


async def test_a_freed_database_shrinks_in_steps_with_another_writer_between_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facade, "VACUUM_STEP_PAGES", 100)
    keep = await store.create_session("/tmp")
    kept = await store.add_message(keep.id, "user", "survives the vacuum")
    await _freed(store)
    free = _pragma(store.path, "freelist_count")
    size = store.path.stat().st_size
    assert free > 300
    calls: list[tuple[int, int]] = []
    landed: list[int] = []

    def write_between(done: int, total: int) -> None:
        calls.append((done, total))
        if landed:
            return
        # A connection that will not wait at all: "database is locked" if the vacuum held it.
        other = sqlite3.connect(store.path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(
                "INSERT INTO sessions (id, working_dir, created_at, updated_at)"
                " VALUES ('other', '/o', '2030-01-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z')"
            )
            other.execute("COMMIT")
            landed.append(int(other.execute("PRAGMA freelist_count").fetchone()[0]))
        finally:
            other.close()

    assert await store.vacuum(progress=write_between) is True
    # The other writer got in after the first step of 100 pages, with pages still to free.
    assert calls[0] == (100, free) and landed and landed[0] > 0
    assert len(calls) >= 4 and calls[-1][0] >= free
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert _pragma(store.path, "freelist_count") == 0
    assert store.path.stat().st_size < size - 1_000_000
    assert [h.message_id for h in await store.search("survives")] == [kept.id]
    assert await store.get_session("other") is not None
    assert await store.integrity_check() == []


async def test_full_rebuilds_an_old_database_as_incremental(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        s = await store.create_session("/tmp")
        await store.add_message(s.id, "user", "older file")
    finally:
        await store.close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")  # as files made before stepped vacuuming are
    conn.close()
    assert _pragma(db_path, "auto_vacuum") == 0
    async with await Store.open(db_path) as store:
        assert not await store.vacuum_in_steps_possible()
        assert await store.vacuum() is False  # no steps possible: rebuilt whole
        assert await store.vacuum_in_steps_possible()
        assert await store.vacuum() is True
        assert await store.vacuum(full=True) is False
        assert await store.count_messages(s.id) == 1
    assert _pragma(db_path, "auto_vacuum") == 2
