"""The migration runner: fresh, re-open, upgrade with data, refusals that leave the file alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.store import Store, StoreError
from threadline.store.migrate import (
    Migration,
    latest_version,
    load_migrations,
    open_and_migrate,
    split_statements,
)
from threadline.store.scope import dir_tokens
from threadline.store.util import fmt_ts, uuid7

ALL = list(range(1, latest_version() + 1))


def versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        conn.close()


def snapshot(path: Path) -> dict[str, bytes | None]:
    """The bytes of the database and its -wal/-shm companions (None when absent)."""
    out: dict[str, bytes | None] = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        out[suffix] = p.read_bytes() if p.exists() else None
    return out


def build_v1(path: Path, clock: FakeClock, sessions: int = 3) -> list[str]:
    """A database at schema version 1 holding sessions and messages, written as version 1's
    code wrote them (plain rows; the version 1 triggers keep counts and previews)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        open_and_migrate(conn, path, clock, migrations=load_migrations()[:1])
        ids = []
        for i in range(sessions):
            session_id = uuid7(clock())
            stamp = fmt_ts(clock())
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO sessions (id, working_dir, dir_tokens, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, f"/proj/{i}", dir_tokens(f"/proj/{i}"), stamp, stamp),
            )
            for j in range(4):
                role = "user" if j % 2 == 0 else "assistant"
                text = f"oldword{i} message {j} of session {i}"
                conn.execute(
                    "INSERT INTO messages (session_id, role, content, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (session_id, role, text, stamp),
                )
            conn.execute("COMMIT")
            ids.append(session_id)
            clock.advance(minutes=1)
        return ids
    finally:
        conn.close()


def test_migrations_are_numbered_and_split() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert len(migrations) >= 2
    assert latest_version() == migrations[-1].version
    for m in migrations:
        assert split_statements(m.sql), m.name
    # Trigger bodies stay whole.
    triggers = [s for s in split_statements(migrations[0].sql) if "CREATE TRIGGER" in s]
    assert all(s.rstrip().endswith("END;") for s in triggers)


async def test_fresh_database_gets_every_migration(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        assert store.migration.from_version == 0
        assert store.migration.applied == [m.version for m in load_migrations()]
        assert store.migration.backup_path is None
    assert versions(db_path) == ALL
    conn = sqlite3.connect(db_path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    for table in (
        "sessions",
        "messages",
        "summaries",
        "memories",
        "pending_memory_extractions",
        "schema_version",
        "search_messages",
        "search_summaries",
        "search_sessions",
    ):
        assert table in names


async def test_reopen_applies_nothing_twice(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock):
        pass
    async with await Store.open(db_path, clock=clock) as store:
        assert store.migration.applied == []
        assert store.migration.from_version == store.migration.to_version == latest_version()
        assert store.migration.backup_path is None
    assert versions(db_path) == ALL


async def test_upgrade_of_v1_with_data_loses_nothing(db_path: Path, clock: FakeClock) -> None:
    ids = build_v1(db_path, clock)
    assert versions(db_path) == [1]
    async with await Store.open(db_path, clock=clock) as store:
        assert store.migration.from_version == 1
        assert store.migration.applied == ALL[1:]
        for i, session_id in enumerate(ids):
            session = await store.get_session(session_id)
            assert session is not None
            assert session.message_count == 4
            assert session.preview == f"oldword{i} message 0 of session {i}"
            assert len(await store.get_messages(session_id)) == 4
            # The new FTS index was built from what version 1 held.
            hits = await store.search(f"oldword{i}")
            assert {h.message_id for h in hits} == {
                m.id for m in await store.get_messages(session_id)
            }
            scoped = await store.search(f"oldword{i}", "directory", f"/proj/{i}")
            assert len(scoped) == 4
        # ... and it keeps up with new writes.
        await store.add_message(ids[0], "user", "freshword after upgrade")
        assert len(await store.search("freshword")) == 1
        assert await store.integrity_check() == []
    assert versions(db_path) == ALL


async def test_backup_before_migrating_data(db_path: Path, clock: FakeClock) -> None:
    ids = build_v1(db_path, clock)
    async with await Store.open(db_path, clock=clock) as store:
        backup = store.migration.backup_path
    assert backup is not None and backup.exists()
    assert backup.parent == db_path.parent
    assert ".v1-" in backup.name  # named with the version it holds
    assert backup.stat().st_mode & 0o777 == 0o600
    assert versions(backup) == [1]
    conn = sqlite3.connect(backup)
    try:
        assert {r[0] for r in conn.execute("SELECT id FROM sessions")} == set(ids)
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 12
    finally:
        conn.close()


async def test_no_backup_of_a_v1_database_without_sessions(db_path: Path, clock: FakeClock) -> None:
    build_v1(db_path, clock, sessions=0)
    async with await Store.open(db_path, clock=clock) as store:
        assert store.migration.applied == ALL[1:]
        assert store.migration.backup_path is None
    assert list(db_path.parent.glob("*.bak")) == []


async def test_newer_database_is_refused_and_untouched(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        s = await store.create_session("/tmp")
        await store.add_message(s.id, "user", "from the future")
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01T00:00:00.000Z')")
    conn.commit()
    conn.close()
    before = snapshot(db_path)
    assert before["-wal"] is None  # a clean close left no WAL
    with pytest.raises(StoreError, match="schema version 99") as info:
        await Store.open(db_path, clock=clock)
    assert "untouched" in str(info.value)
    assert "\n" not in str(info.value)
    after = snapshot(db_path)
    assert after[""] == before[""]
    assert after["-wal"] in (None, b"")
    assert list(db_path.parent.glob("*.bak")) == []


async def test_not_a_database_is_refused_and_untouched(db_path: Path) -> None:
    content = b"these are my notes, not a database\n" * 100
    db_path.write_bytes(content)
    with pytest.raises(StoreError, match="not a SQLite database"):
        await Store.open(db_path)
    assert db_path.read_bytes() == content
    assert not Path(f"{db_path}-wal").exists()
    assert not Path(f"{db_path}-shm").exists()


async def test_corrupt_database_is_refused_and_untouched(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        s = await store.create_session("/tmp")
        for i in range(50):
            await store.add_message(s.id, "user", f"message {i} " + "x" * 500)
    data = bytearray(db_path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 4 * page
    garbage = b"\xde\xad\xbe\xef" * (len(data) // 4)
    data[page:] = garbage[: len(data) - page]  # every page after the first
    db_path.write_bytes(bytes(data))
    before = snapshot(db_path)
    with pytest.raises(StoreError, match="corrupt") as info:
        await Store.open(db_path, clock=clock)
    assert "\n" not in str(info.value)
    after = snapshot(db_path)
    assert after[""] == before[""]
    assert after["-wal"] in (None, b"")


async def test_empty_file_is_migrated(db_path: Path, clock: FakeClock) -> None:
    db_path.touch()
    async with await Store.open(db_path, clock=clock) as store:
        assert store.migration.applied == ALL
        s = await store.create_session("/tmp")
        assert await store.get_session(s.id) is not None


async def test_failed_migration_leaves_database_as_it_was(db_path: Path, clock: FakeClock) -> None:
    build_v1(db_path, clock)
    bad = Migration(
        2,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        with pytest.raises(StoreError, match="0002_broken failed"):
            open_and_migrate(conn, db_path, clock, migrations=[load_migrations()[0], bad])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "half_done" not in tables
    assert versions(db_path) == [1]


async def test_two_processes_opening_a_fresh_file_migrate_once(tmp_path: Path) -> None:
    """Two stores racing to migrate the same new file: one applies, the other sees it done."""
    db = tmp_path / "race.db"
    a, b = await Store.open(db), await Store.open(db)
    try:
        assert a.migration.applied == ALL
        assert b.migration.applied == []
    finally:
        await a.close()
        await b.close()
    assert versions(db) == ALL
