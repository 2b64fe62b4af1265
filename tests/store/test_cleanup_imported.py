"""Retention does not eat imported history (issue 10): sessions from other tools are left alone
unless the person opts them in, and even then age counts from when threadline received them and
nothing received in the last day is moved."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from fakes.clock import FakeClock
from threadline.config import SessionConfig
from threadline.records import IncomingMessage, IncomingSession
from threadline.store import Store


def imported(source_id: str, when: datetime, messages: int = 2) -> IncomingSession:
    """A session another tool wrote at `when` (its messages a minute apart)."""
    return IncomingSession(
        source="chatgpt",
        source_id=source_id,
        working_dir="/work/project",
        created_at=when,
        title=f"imported {source_id}",
        messages=[
            IncomingMessage(
                key=f"{source_id}-{i}",
                role="user" if i % 2 == 0 else "assistant",
                content=f"message {i}",
                created_at=when + timedelta(minutes=i),
                payload={"source": "chatgpt", "records": [{"n": i}]},
            )
            for i in range(messages)
        ],
    )


async def own_session(store: Store, clock: FakeClock, days_ago: int) -> str:
    start = clock()
    clock.current = start - timedelta(days=days_ago)
    s = await store.create_session("/work/project")
    await store.add_message(s.id, "user", f"{days_ago} days old")
    clock.current = start
    return s.id


async def imported_ids(store: Store) -> set[str]:
    """Imported sessions not in the trash (read beside the store, as another process would)."""
    conn = sqlite3.connect(store.path)
    try:
        sql = "SELECT id FROM sessions WHERE source IS NOT NULL AND deleted_at IS NULL"
        return {r[0] for r in conn.execute(sql)}
    finally:
        conn.close()


async def test_an_old_export_imported_today_is_not_trashed(store: Store, clock: FakeClock) -> None:
    # A 2023 export: every session two years old by its messages, and more of them than kept.
    old = clock() - timedelta(days=800)
    report = await store.load_history(
        imported(f"c{i}", old + timedelta(hours=i)) for i in range(12)
    )
    assert report.sessions == 12
    mine = await own_session(store, clock, 100)
    settings = SessionConfig(retention_days=90, max_sessions=5)
    for include in (False, True):
        result = await store.cleanup(settings, dry_run=True, include_imported=include)
        # Only threadline's own old session goes, whether imported ones are opted in or not:
        # what was received today is neither old nor pushed out by the limit.
        assert result.trashed_ids == [mine]
    assert len(await imported_ids(store)) == 12


async def test_imported_sessions_are_opted_in_by_config(store: Store, clock: FakeClock) -> None:
    old = clock() - timedelta(days=800)
    await store.load_history(imported(f"c{i}", old + timedelta(hours=i)) for i in range(3))
    clock.advance(days=91)  # received 91 days ago, last message 891 days ago
    mine = await own_session(store, clock, 10)
    assert (await store.cleanup(SessionConfig(retention_days=90))).sessions_deleted == 0
    assert len(await imported_ids(store)) == 3
    result = await store.cleanup(SessionConfig(retention_days=90, cleanup_imported=True))
    assert result.by_retention == 3 and mine not in result.trashed_ids
    assert await imported_ids(store) == set()
    assert {s.id for s in await store.list_sessions("all")} == {mine}


async def test_age_counts_from_receipt_as_well_as_last_message(
    store: Store, clock: FakeClock
) -> None:
    old = clock() - timedelta(days=800)
    await store.load_history([imported("a", old)])
    clock.advance(days=30)  # received 30 days ago: younger than 90 days by receipt
    settings = SessionConfig(retention_days=90, cleanup_imported=True)
    assert (await store.cleanup(settings, dry_run=True)).sessions_deleted == 0
    assert (await store.cleanup(settings, older_than=timedelta(days=20))).by_retention == 1


async def test_the_session_limit_counts_only_what_cleanup_may_move(
    store: Store, clock: FakeClock
) -> None:
    # 2,001 imported sessions and three of threadline's own with max_sessions = 2: imported
    # ones neither count nor go, so only the oldest own session is beyond the limit.
    old = clock() - timedelta(days=10)
    await store.load_history(imported(f"c{i}", old, messages=1) for i in range(2001))
    clock.advance(days=2)
    ids = [await own_session(store, clock, d) for d in (3, 2, 1)]
    result = await store.cleanup(SessionConfig(max_sessions=2), dry_run=True)
    assert (result.by_max_limit, result.trashed_ids) == (1, [ids[0]])
    # Opted in, the limit counts all 2,004 and the oldest (by the later of last message and
    # receipt: the imported ones, received two days ago) go first.
    result = await store.cleanup(SessionConfig(max_sessions=2, cleanup_imported=True))
    assert result.by_max_limit == 2002
    assert set(ids[1:]) == {s.id for s in await store.list_sessions("all")}
