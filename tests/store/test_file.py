"""The database file: where it goes, its permissions, the connection settings, open and close."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from threadline.store import Store, StoreError
from threadline.store.migrate import latest_version


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_directory_0700_and_database_wal_shm_0600(tmp_path: Path) -> None:
    os.umask(0o022)  # a typical umask, which alone would give 0755 / 0644
    db = tmp_path / "threadline.db"
    store = await Store.open(db)
    try:
        session = await store.create_session(str(tmp_path))
        await store.add_message(session.id, "user", "hello")
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        # While the store is open and has written, all three files exist and are private.
        assert wal.exists() and shm.exists()
        assert mode(db.parent) == 0o700
        assert mode(db) == 0o600
        assert mode(wal) == 0o600
        assert mode(shm) == 0o600
    finally:
        await store.close()
    assert mode(db) == 0o600


async def test_existing_loose_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "threadline.db"
    store = await Store.open(db)
    await store.close()
    os.chmod(db, 0o644)
    store = await Store.open(db)
    await store.close()
    assert mode(db) == 0o600


async def test_default_location_is_platform_data_dir(private_env: Path) -> None:
    async with await Store.open() as store:
        expected = private_env / "xdg_data_home" / "threadline" / "threadline.db"
        assert store.path == expected
        assert expected.exists()


async def test_threadline_db_env_overrides_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere.db"
    monkeypatch.setenv("THREADLINE_DB", str(target))
    async with await Store.open() as store:
        assert store.path == target
    assert target.exists()


async def test_pragmas_on_writer_and_every_reader(store: Store) -> None:
    settings = await store.pragmas()
    writer, readers = settings["writer"], settings["readers"]
    assert len(readers) >= 1
    for conn in [writer, *readers]:
        assert conn["journal_mode"] == "wal"
        assert conn["synchronous"] == 2  # FULL
        assert conn["foreign_keys"] == 1
        assert conn["busy_timeout"] == 5000
    assert writer["query_only"] == 0
    assert all(r["query_only"] == 1 for r in readers)


async def test_readers_pool_size(db_path: Path) -> None:
    async with await Store.open(db_path, readers=3) as store:
        assert len((await store.pragmas())["readers"]) == 3


async def test_context_manager_closes(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await store.create_session("/tmp")
    with pytest.raises(StoreError, match="closed"):
        await store.list_sessions("all")
    await store.close()  # closing twice is harmless


async def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a regular file"):
        await Store.open(tmp_path)


async def test_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        await Store.open(blocker / "threadline.db")


async def test_unwritable_directory_gives_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores directory permissions; use a path under a file instead, which no one can.
        target = tmp_path / "f"
        target.write_text("")
        with pytest.raises(StoreError):
            await Store.open(target / "sub" / "threadline.db")
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError) as info:
        await Store.open(locked / "sub" / "threadline.db")
    assert "\n" not in str(info.value)


async def test_data_version_moves_on_outside_write(db_path: Path) -> None:
    async with await Store.open(db_path) as a, await Store.open(db_path) as b:
        before = await a.data_version()
        await b.create_session("/tmp")
        assert await a.data_version() != before


async def test_info_counts(store: Store, workdir: str) -> None:
    s1 = await store.create_session(workdir)
    s2 = await store.create_session(workdir)
    await store.add_message(s1.id, "user", "one")
    await store.add_message(s1.id, "assistant", "two")
    await store.save_summary(s1.id, "sum", 1, 2)
    await store.save_memory(workdir, "uses tabs", "preference", 3)
    await store.save_pending_extraction(s1.id)
    await store.delete_session(s2.id)
    info = await store.info()
    assert (info.sessions, info.trashed_sessions) == (1, 1)
    assert (info.messages, info.summaries, info.memories, info.pending_extractions) == (2, 1, 1, 1)
    assert info.schema_version == latest_version()
    assert info.size_bytes > 0
    assert info.path == str(store.path)


async def test_integrity_check_healthy(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    await store.add_message(s.id, "user", "hello world")
    assert await store.integrity_check() == []


async def test_backup_copies_data_and_refuses_overwrite(store: Store, tmp_path: Path) -> None:
    s = await store.create_session("/tmp", title="kept")
    await store.add_message(s.id, "user", "backed up")
    dest = await store.backup(tmp_path / "copy.db")
    assert mode(dest) == 0o600
    async with await Store.open(dest) as copy:
        got = await copy.get_session(s.id)
        assert got is not None and got.title == "kept"
        assert [m.content for m in await copy.get_messages(s.id)] == ["backed up"]
    with pytest.raises(StoreError, match="already exists"):
        await store.backup(dest)
    with pytest.raises(StoreError, match="no such directory"):
        await store.backup(tmp_path / "missing" / "x.db")


async def test_vacuum_keeps_data(store: Store) -> None:
    s = await store.create_session("/tmp")
    await store.add_message(s.id, "user", "still here after vacuum")
    await store.vacuum()
    assert await store.count_messages(s.id) == 1
    assert [h.message_id for h in await store.search("vacuum")] != []


async def test_now_is_the_injected_clock(store: Store, clock) -> None:  # noqa: ANN001
    assert store.now() == clock()
    clock.advance(minutes=1)
    assert store.now() == clock()


async def test_rebuild_and_optimize_search_index(store: Store) -> None:
    import sqlite3

    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "user", "indexword here")
    await store.save_summary(s.id, "summaryword", m.id, m.id)
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO search_messages (search_messages) VALUES ('delete-all')")
    conn.execute("INSERT INTO search_summaries (search_summaries) VALUES ('delete-all')")
    conn.commit()
    conn.close()
    assert await store.search("indexword") == []
    await store.rebuild_search_index()
    assert [h.message_id for h in await store.search("indexword")] == [m.id]
    assert [h.kind for h in await store.search("summaryword")] == ["summary"]
    await store.optimize_search_index()
    assert [h.message_id for h in await store.search("indexword")] == [m.id]
    assert await store.integrity_check() == []


async def test_cancelled_read_releases_its_reader(store: Store) -> None:
    import asyncio

    s = await store.create_session("/tmp")
    for i in range(20):
        await store.add_message(s.id, "user", f"cancelword {i}")
    for _ in range(6):  # more cancellations than there are readers
        task = asyncio.create_task(store.search("cancelword"))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    results = await asyncio.wait_for(
        asyncio.gather(*(store.count_messages(s.id) for _ in range(8))), timeout=10
    )
    assert results == [20] * 8


async def test_cancelled_write_still_lands(store: Store) -> None:
    import asyncio

    s = await store.create_session("/tmp")
    task = asyncio.create_task(store.add_message(s.id, "user", "written anyway"))
    await asyncio.sleep(0)  # the write is queued on the writer thread
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await store.touch_session(s.id)  # queued behind it on the one writer
    assert [m.content for m in await store.get_messages(s.id)] == ["written anyway"]
