"""Store.outside_data_version: moves for other connections' commits, never for the store's own."""

from __future__ import annotations

import sqlite3

from threadline.store import Store


async def test_own_writes_leave_it_alone(store: Store, workdir: str) -> None:
    before = await store.outside_data_version()
    session = await store.create_session(workdir)
    message = await store.add_message(session.id, "assistant", "par", complete=False)
    for i in range(3):  # checkpoints of a streaming reply
        await store.update_message(message.id, content="partial " * i)
    await store.update_message(message.id, complete=True)
    assert await store.outside_data_version() == before


async def test_other_connections_move_it(store: Store, workdir: str) -> None:
    await store.create_session(workdir)
    before = await store.outside_data_version()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("UPDATE sessions SET title = 'from elsewhere'")
    finally:
        other.close()
    after_raw = await store.outside_data_version()
    assert after_raw != before
    async with await Store.open(store.path) as second:
        await second.create_session(workdir)
    assert await store.outside_data_version() != after_raw
