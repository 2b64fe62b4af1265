"""Change capture: every change that matters becomes a journal record, whoever writes it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from threadline.store import Store
from threadline.store.journal import Batch


async def _records(store: Store) -> list[dict]:
    while True:
        made, more = await store.journal.render()
        if not made and not more:
            break
    return [json.loads(line) for _seq, _at, line in await store.journal.pending(0, 100_000)]


async def _drain(store: Store) -> None:
    await _records(store)
    state = await store.journal.state()
    await store.journal.drop_pending(state.next_seq)


async def test_nothing_is_captured_before_sync_is_set_up(store: Store, workdir: str) -> None:
    session = await store.create_session(workdir)
    await store.add_message(session.id, "user", "hello")
    await store.update_session(session.id, title="named")
    state = await store.journal.state()
    assert state.outbox == 0
    assert not state.capture


async def test_existing_history_is_published_first(store: Store, workdir: str) -> None:
    session = await store.create_session(workdir, title="old")
    await store.add_message(session.id, "user", "from before")
    await store.journal.enable("/nowhere", "/remote")
    ops = [(r["op"], r.get("content") or r.get("title")) for r in await _records(store)]
    assert ops == [("session", "old"), ("message", "from before")]


async def test_each_change_becomes_a_record(store: Store, workdir: str) -> None:
    await store.journal.enable("/nowhere", "/remote")
    session = await store.create_session(workdir)
    user = await store.add_message(session.id, "user", "question")
    reply = await store.add_message(session.id, "assistant", "", complete=False)
    await store.update_message(reply.id, content="half an ans")  # a checkpoint: not synced
    records = await _records(store)
    assert [r["op"] for r in records] == ["session", "message"]
    await _drain(store)

    await store.update_message(reply.id, content="half an answer", complete=True)
    await store.update_session(session.id, title="Named", pinned=True)
    await store.save_summary(session.id, "the gist", user.id, reply.id)
    memory = await store.save_memory(workdir, "likes tea", "preference", 3, session_id=session.id)
    assert await _ops(store) == [
        ("message", "half an answer"),
        ("session.set", {"pinned": True, "title": "Named"}),
        ("summary", "the gist"),
        ("memory", "likes tea"),
    ]
    await _drain(store)

    await store.update_memory(memory.id, fact="likes green tea")
    newer = await store.save_memory(workdir, "likes coffee", "correction", 4, supersedes=memory.id)
    assert await _ops(store) == [
        ("memory.set", {"fact": "likes green tea", "superseded_by": newer.id and ANY_UID}),
        ("memory", "likes coffee"),
    ]
    await _drain(store)

    await store.delete_memory(newer.id)
    await store.delete_messages_before(session.id, reply.id)
    await store.delete_session(session.id)
    await store.restore_session(session.id)
    records = await _records(store)
    assert [(r["op"], r.get("fields")) for r in records] == [
        ("memory.set", {"superseded_by": None}),  # the newer one is gone: the link is cleared
        ("memory.delete", None),
        ("message.delete", None),
        ("session.set", {"deleted_at": None}),  # trashed then restored before this sync
    ]
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    await _drain(store)

    await store.purge_session(session.id)
    assert await _ops(store) == [("session.purge", None)]


class _AnyUid:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and ":" in other


ANY_UID = _AnyUid()


async def _ops(store: Store) -> list[tuple]:
    return [
        (r["op"], r.get("fields") or r.get("content") or r.get("fact"))
        for r in await _records(store)
    ]


async def test_a_script_writing_sql_directly_is_captured(store: Store, workdir: str) -> None:
    await store.journal.enable("/nowhere", "/remote")
    session = await store.create_session(workdir)
    await _drain(store)
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(
            "INSERT INTO messages (session_id, role, content, created_at)"
            " VALUES (?, 'user', 'typed by a script', '2026-11-23T10:00:00.000Z')",
            (session.id,),
        )
    conn.close()
    assert [r.get("content") for r in await _records(store)] == ["typed by a script"]


async def test_applying_another_machine_captures_nothing(store: Store, workdir: str) -> None:
    await store.journal.enable("/nowhere", "/remote")
    sid = "01a20000-0000-7000-8000-000000000001"
    record = {
        "v": 1, "seq": 1, "at": "2026-11-23T10:00:00.000Z", "op": "session", "id": sid,
        "created_at": "2026-11-23T10:00:00.000Z", "working_dir": workdir, "title": "theirs",
    }  # fmt: skip
    message = {
        "v": 1, "seq": 2, "at": "2026-11-23T10:00:00.000Z", "op": "message",
        "uid": "0123456789abcdef:1", "session": sid, "role": "user", "content": "hi",
        "created_at": "2026-11-23T10:00:00.000Z",
    }  # fmt: skip
    await store.journal.apply(
        Batch(records=[("0123456789abcdef", record), ("0123456789abcdef", message)])
    )
    assert (await store.journal.state()).outbox == 0
    assert [m.content for m in await store.get_messages(sid)] == ["hi"]
    # Applying the same records again changes nothing.
    await store.journal.apply(
        Batch(records=[("0123456789abcdef", record), ("0123456789abcdef", message)])
    )
    assert [m.content for m in await store.get_messages(sid)] == ["hi"]


def test_capture_survives_a_reopen(tmp_path: Path) -> None:
    import asyncio

    async def run() -> int:
        db = tmp_path / "t.db"
        async with await Store.open(db) as store:
            await store.journal.enable("/nowhere", "/remote")
        async with await Store.open(db) as store:
            session = await store.create_session(str(tmp_path))
            await store.add_message(session.id, "user", "after reopen")
            return (await store.journal.state()).outbox

    assert asyncio.run(run()) == 2
