"""Issue 13 through the store API: locks held by another connection, foreign, damaged and
read-only files, writers that die mid-turn, turns that start in one transaction, the WAL."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from store.reliability_helpers import (
    files_of,
    flip_page_type,
    read_only_file,
    write_lock_held,
    writer_process,
)
from threadline.store import Store, StoreError, liveness
from threadline.store.errors import DatabaseDamaged, DatabaseReadOnly, LockTimeout


async def _fill(db: Path, workdir: str) -> str:
    async with await Store.open(db) as store:
        session, _, _ = await store.begin_turn(None, "what is a b-tree?", working_dir=workdir)
        for i in range(30):
            await store.add_message(session.id, "assistant", f"answer {i} " + "x" * 300)
        await store.save_memory(workdir, "uses sqlite", "fact", 3)
        return session.id


# ---------------------------------------------------------------------- locks


async def test_open_and_every_read_work_while_another_process_holds_the_write_lock(
    db_path: Path, workdir: str
) -> None:
    session_id = await _fill(db_path, workdir)
    proc, dead = writer_process(db_path, workdir, "kill")
    proc.wait()
    with write_lock_held(db_path):
        # Nothing here may wait for the lock: if anything did, it would fail after 60 s.
        store = await Store.open(db_path)
        try:
            rows = await store.list_sessions("all")
            assert {r.id: r.status for r in rows} == {session_id: "active", dead: "crashed"}
            assert await store.count_sessions("all") == 2
            assert (await store.get_session(dead)).status == "crashed"  # type: ignore[union-attr]
            assert len(await store.get_messages(session_id)) == 31
            # Shown crashed, but nothing was written: the lock was not free.
            assert (await store.get_messages(dead))[-1].stop_reason is None
            assert [h.session_id for h in await store.search("b-tree")] == [session_id]
            assert [m.fact for m in await store.get_memories(workdir)] == ["uses sqlite"]
            out = io.StringIO()
            await store.export_jsonl(out)
            assert session_id in out.getvalue()
            assert (await store.info()).sessions == 2
            report = await store.integrity_report()
            assert report.problems == []
            assert report.skipped and "another process is writing" in report.skipped[0]
            assert await store.data_version() >= 0
            assert await store.outside_data_version() >= 0
        finally:
            await store.close()
    # With the lock free, opening records the dead writer's turn for good (one attempt at the
    # lock that would have given up at once).
    async with await Store.open(db_path) as store:
        reply = (await store.get_messages(dead))[-1]
        assert (reply.content, reply.stop_reason, reply.complete) == (
            "half a rep",
            "interrupted",
            False,
        )


async def test_a_write_waiting_for_the_lock_says_so_and_lands_when_it_is_free(
    db_path: Path, workdir: str
) -> None:
    async with await Store.open(db_path) as store:
        waited: list[float] = []
        told = asyncio.Event()

        def listener(seconds: float) -> None:
            waited.append(seconds)
            told.set()

        store.wait_for_lock(None, listener)
        with write_lock_held(db_path):
            write = asyncio.create_task(store.create_session(workdir, title="kept"))
            await told.wait()
            assert not write.done()
        session = await write
        assert waited and waited[0] > 0
        assert (await store.get_session(session.id)) is not None


async def test_closing_the_store_gives_up_a_write_waiting_for_the_lock(
    db_path: Path, workdir: str
) -> None:
    store = await Store.open(db_path)
    told = asyncio.Event()
    store.wait_for_lock(None, lambda seconds: told.set())
    with write_lock_held(db_path):
        write = asyncio.create_task(store.create_session(workdir))
        await told.wait()
        await store.close()
        with pytest.raises(LockTimeout, match="nothing was written"):
            await write
    async with await Store.open(db_path) as again:
        assert await again.count_sessions("all") == 0


async def test_readers_never_keep_the_wal_from_being_checkpointed(
    db_path: Path, workdir: str
) -> None:
    async with await Store.open(db_path) as store:
        session = await store.create_session(workdir)
        for i in range(200):
            await store.add_message(session.id, "user", f"message {i} " + "y" * 200)
        await store.list_sessions("all")
        await store.get_messages(session.id)
        await store.search("message")
        await store.data_version()
        await store.outside_data_version()  # the app's poll
        conn = sqlite3.connect(db_path)
        try:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
        assert busy == 0 and frames == 0 and done == 0
        assert Path(f"{db_path}-wal").stat().st_size == 0
        assert len(await store.get_messages(session.id)) == 200


# ---------------------------------------------------------------------- files not ours


async def test_another_programs_database_is_refused_and_left_byte_identical(
    tmp_path: Path,
) -> None:
    db = tmp_path / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    os.chmod(db, 0o644)
    before = files_of(db)
    with pytest.raises(StoreError, match="not threadline's") as info:
        await Store.open(db)
    assert "\n" not in str(info.value) and "untouched" in str(info.value)
    assert files_of(db) == before  # same bytes, no -wal or -shm left behind
    assert stat.S_IMODE(db.stat().st_mode) == 0o644


async def test_an_empty_sqlite_file_is_initialised(tmp_path: Path, workdir: str) -> None:
    db = tmp_path / "blank.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 0")
    conn.execute("VACUUM")  # a valid SQLite file with no tables
    conn.close()
    assert db.read_bytes().startswith(b"SQLite format 3\x00")
    async with await Store.open(db) as store:
        session = await store.create_session(workdir)
        assert await store.get_session(session.id) is not None


# ---------------------------------------------------------------------- damage


async def test_a_damaged_page_is_found_on_first_read_and_no_write_follows(
    db_path: Path, workdir: str
) -> None:
    session_id = await _fill(db_path, workdir)
    flip_page_type(db_path, "messages")
    before = files_of(db_path)[""]
    async with await Store.open(db_path) as store:
        seen: list[str] = []
        store.on_damage(seen.append)
        assert store.damaged is None
        with pytest.raises(DatabaseDamaged, match="threadline db check") as info:
            await store.get_messages(session_id)
        assert "\n" not in str(info.value)
        assert store.damaged is not None and seen == [store.damaged]
        # Writes that would not even touch the damaged page are refused from now on.
        with pytest.raises(DatabaseDamaged):
            await store.create_session(workdir)
        with pytest.raises(DatabaseDamaged):
            await store.save_memory(workdir, "more", "fact", 3)
        # Reads are still tried (what can be read can be copied out).
        assert [m.fact for m in await store.get_memories(workdir)] == ["uses sqlite"]
    assert files_of(db_path)[""] == before


async def test_a_turn_on_a_damaged_file_leaves_no_empty_session(
    db_path: Path, workdir: str
) -> None:
    await _fill(db_path, workdir)
    flip_page_type(db_path, "messages")
    async with await Store.open(db_path) as store:
        # The first thing a new `chat` does: the session and its message, in one transaction.
        with pytest.raises(DatabaseDamaged):
            await store.begin_turn(None, "hello?", working_dir=workdir)
        assert await store.count_sessions("all") == 1


async def test_a_read_only_file_is_read_and_never_written(db_path: Path, workdir: str) -> None:
    session_id = await _fill(db_path, workdir)
    before = files_of(db_path)[""]
    with read_only_file(db_path):
        async with await Store.open(db_path) as store:
            assert store.read_only
            assert [r.id for r in await store.list_sessions("all")] == [session_id]
            assert len(await store.get_messages(session_id)) == 31
            with pytest.raises(DatabaseReadOnly, match="read-only"):
                await store.create_session(workdir)
            report = await store.integrity_report()
            assert report.problems == [] and report.read_only
            assert "read-only" in report.skipped[0]
            assert (await store.info()).read_only
    assert files_of(db_path)[""] == before


# ---------------------------------------------------------------------- dead writers


async def test_a_writer_killed_mid_reply_shows_crashed_at_once(db_path: Path, workdir: str) -> None:
    async with await Store.open(db_path) as store:
        proc, session_id = writer_process(db_path, workdir, "kill")
        proc.wait()
        # No clock moved: the writer's pid no longer runs, so nothing waits for the heartbeat.
        assert (await store.get_session(session_id)).status == "crashed"  # type: ignore[union-attr]
        assert [r.status for r in await store.list_sessions("all")] == ["crashed"]
        await store.create_session(workdir)  # the next writer records it
        reply = (await store.get_messages(session_id))[-1]
        assert (reply.content, reply.stop_reason) == ("half a rep", "interrupted")


async def test_a_live_writer_elsewhere_is_writing_until_it_is_gone(
    db_path: Path, workdir: str
) -> None:
    async with await Store.open(db_path) as store:
        proc, session_id = writer_process(db_path, workdir, "wait")
        try:
            assert (await store.get_session(session_id)).status == "active"  # type: ignore[union-attr]
            await store.create_session(workdir)  # writes never settle a live writer's turn
            reply = (await store.get_messages(session_id))[-1]
            assert reply.stop_reason is None
        finally:
            proc.communicate("go\n")
        assert (await store.get_session(session_id)).status == "crashed"  # type: ignore[union-attr]


async def test_a_store_closed_mid_turn_is_gone_to_its_own_process(
    db_path: Path, workdir: str
) -> None:
    writer = await Store.open(db_path)
    session, _, _ = await writer.begin_turn(None, "hi", working_dir=workdir)
    async with await Store.open(db_path) as reader:
        assert (await reader.get_session(session.id)).status == "active"  # type: ignore[union-attr]
        await writer.close()
        assert (await reader.get_session(session.id)).status == "crashed"  # type: ignore[union-attr]


def test_only_a_provably_gone_writer_counts_as_gone() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        me = liveness.owner_of(conn)  # this process, no store tag
    finally:
        conn.close()
    parts = me.split(" ")
    assert liveness.writer_state(me) == "alive"
    reused = " ".join([*parts[:5], "1", parts[6]])  # same pid, an earlier start time
    assert liveness.writer_state(reused) == "gone"
    elsewhere = " ".join([parts[0], "another-host", *parts[2:]])
    assert liveness.writer_state(elsewhere) == "unknown"
    rebooted = " ".join([*parts[:2], "another-boot", *parts[3:]])
    assert liveness.writer_state(rebooted) == "unknown"
    for junk in ("", "p1 x", "p9 a b c 1 2 t", None):
        assert liveness.writer_state(junk) == "unknown"


# ---------------------------------------------------------------------- turns


async def test_a_turn_starts_with_its_session_in_one_transaction(
    store: Store, workdir: str
) -> None:
    with pytest.raises(StoreError):
        await store.begin_turn(None, "broken \ud800 text", working_dir=workdir)
    assert await store.count_sessions("all") == 0  # no empty session left behind
    session, message, created = await store.begin_turn(
        None, "hello", working_dir=workdir, title="Hello", model="m"
    )
    assert created and message is not None and message.content == "hello"
    assert (session.title, session.model, session.message_count) == ("Hello", "m", 1)
    again, second, created = await store.begin_turn(
        None, "more", working_dir=workdir, continue_window_hours=4
    )
    assert again.id == session.id and not created and second is not None
    await store.end_turn(session.id)


async def test_an_unanswered_turn_of_a_dead_writer_reads_crashed(
    db_path: Path, workdir: str, clock
) -> None:  # noqa: ANN001
    writer = await Store.open(db_path, clock=clock)
    session, _, _ = await writer.begin_turn(None, "anyone?", working_dir=workdir)
    await writer.close()  # the writer dies before any reply
    async with await Store.open(db_path, clock=clock) as store:
        got = await store.get_session(session.id)
        assert got is not None and got.status == "crashed"
        messages = await store.get_messages(session.id)
        assert [m.role for m in messages] == ["user"]


# ---------------------------------------------------------------------- directories


async def test_the_default_location_is_created_private_under_any_umask(
    private_env: Path,
) -> None:
    data_home = private_env / "xdg_data_home"
    assert not data_home.exists()
    old = os.umask(0)
    try:
        async with await Store.open() as store:
            assert store.path == data_home / "threadline" / "threadline.db"
    finally:
        os.umask(old)
    for directory in (data_home, data_home / "threadline"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE((data_home / "threadline" / "threadline.db").stat().st_mode) == 0o600


async def test_a_named_database_in_a_missing_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (tmp_path / "nodir" / "sub" / "x.db", None):
        if path is None:
            monkeypatch.setenv("THREADLINE_DB", str(tmp_path / "nodir" / "env.db"))
        with pytest.raises(StoreError, match="no such directory") as info:
            await Store.open(path)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "nodir").exists()
