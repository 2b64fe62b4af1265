"""Store.data_version: a stable value while nothing changes, a new one after any commit."""

from __future__ import annotations

import asyncio
import sqlite3

from threadline.store import Store


async def test_data_version_is_stable_when_idle_even_with_reads_in_between(store: Store) -> None:
    first = await store.data_version()
    # Interleave other reads so that a pooled reader would answer some of the calls.
    values = []
    for _ in range(6):
        await store.list_sessions(working_dir="/tmp")
        values.append(await store.data_version())
    assert values == [first] * 6


async def test_data_version_changes_after_other_writers(store: Store, workdir: str) -> None:
    before = await store.data_version()
    await store.create_session(workdir, title="from this process")
    after_own = await store.data_version()
    assert after_own != before

    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("UPDATE sessions SET title = 'from elsewhere'")
    finally:
        other.close()
    # Several concurrent calls all agree on the new value, and it stays put afterwards.
    seen = await asyncio.gather(*(store.data_version() for _ in range(4)))
    assert len(set(seen)) == 1 and seen[0] != after_own
    assert await store.data_version() == seen[0]
