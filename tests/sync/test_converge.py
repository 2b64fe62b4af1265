"""Three machines chatting, renaming, pinning, trashing, restoring, purging and editing memories
at once, syncing in random order: afterwards every database holds the same history."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sync.helpers import Machine, first_difference, machines, snapshot
from threadline.store import Store, StoreError


async def _live_sessions(store: Store) -> list[str]:
    rows = await store.list_sessions("all", limit=None)
    return [r.id for r in rows]


async def _random_op(m: Machine, rng: random.Random, log: dict[str, set[str]], n: int) -> None:
    store = m.store
    assert store is not None
    m.clock.tick(rng.randint(1, 40))
    live = await _live_sessions(store)
    trashed = [r.id for r in await store.list_sessions("all", limit=None, trashed=True)]
    op = rng.choice(
        ["create", "chat", "chat", "chat", "stream", "rename", "pin", "trash", "restore",
         "purge", "memory", "memory_edit", "memory_supersede", "memory_delete", "summary",
         "compact"]
    )  # fmt: skip
    text = f"{m.name}-{n}-{op}"
    try:
        if op == "create" or not live:
            session = await store.create_session(m.project, title=f"t {text}")
            await store.add_message(session.id, "user", f"first {text}")
            log["messages"].add(f"first {text}")
        elif op == "chat":
            sid = rng.choice(live)
            await store.add_message(sid, "user", text)
            m.clock.tick(3)
            await store.add_message(sid, "assistant", f"re {text}")
            log["messages"].update({text, f"re {text}"})
        elif op == "stream":
            sid = rng.choice(live)
            reply = await store.add_message(sid, "assistant", "", complete=False)
            await store.update_message(reply.id, content=f"partial {text}")
            m.clock.tick(5)
            await store.update_message(reply.id, content=f"done {text}", complete=True)
            log["messages"].add(f"done {text}")
        elif op == "rename":
            await store.update_session(rng.choice(live), title=f"renamed {text}")
        elif op == "pin":
            sid = rng.choice(live)
            session = await store.get_session(sid)
            assert session is not None
            await store.update_session(sid, pinned=not session.pinned)
        elif op == "trash":
            await store.delete_session(rng.choice(live))
        elif op == "restore" and trashed:
            await store.restore_session(rng.choice(trashed))
        elif op == "purge" and trashed and rng.random() < 0.5:
            sid = rng.choice(trashed)
            await store.purge_session(sid)
            log["purged"].add(sid)
        elif op == "memory":
            await store.save_memory(m.project, f"fact {text}", "fact", rng.randint(1, 5),
                                    session_id=rng.choice(live))  # fmt: skip
        elif op in ("memory_edit", "memory_supersede", "memory_delete"):
            mems = await store.get_memories(m.project)
            if not mems:
                return
            target = rng.choice(mems)
            if op == "memory_edit":
                await store.update_memory(
                    target.id, fact=f"edited {text}", importance=rng.randint(1, 5)
                )
            elif op == "memory_supersede":
                await store.save_memory(m.project, f"newer {text}", "decision", 3,
                                        supersedes=target.id)  # fmt: skip
            else:
                await store.delete_memory(target.id)
        elif op == "summary":
            sid = rng.choice(live)
            msgs = await store.get_messages(sid)
            if len(msgs) >= 2:
                await store.save_summary(sid, f"summary {text}", msgs[0].id, msgs[-2].id)
        elif op == "compact" and rng.random() < 0.3:
            sid = rng.choice(live)
            msgs = await store.get_messages(sid)
            if len(msgs) > 4:
                await store.delete_messages_before(sid, msgs[2].id)
                log["compacted"].update(x.content for x in msgs[:2])
    except StoreError:
        pass  # e.g. writing to a session another machine's sync just put in the trash


@pytest.mark.parametrize(("seed", "bulk"), [(1, False), (3, True)])
async def test_three_machines_converge(
    tmp_path: Path, seed: int, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bulk`: every batch takes the fast path (triggers off, index and counters per batch)."""
    from threadline.store import journal

    monkeypatch.setattr(journal, "BULK_MIN", 0 if bulk else 10**9)
    rng = random.Random(seed)
    ms = await machines(tmp_path)
    log: dict[str, set[str]] = {"messages": set(), "purged": set(), "compacted": set()}
    try:
        for m in ms:  # some history before sync is set up: published as a snapshot
            await _random_op(m, rng, log, 0)
            await m.init()
        for n in range(1, 60):
            await _random_op(rng.choice(ms), rng, log, n)
            if rng.random() < 0.3:
                await rng.choice(ms).sync()
        for _round in range(2):
            for m in rng.sample(ms, len(ms)):
                report = await m.sync()
                assert report.errors == []
        views = [await snapshot(m.store) for m in ms]  # type: ignore[arg-type]
        for view in views[1:]:
            diff = first_difference(views[0], view)
            assert view == views[0], diff
        contents = [
            msg["content"]
            for session in views[0]["sessions"].values()
            for msg in session["messages"]
        ]
        assert len(contents) == len(set(contents)), "a message was duplicated"
        kept = set(contents)
        for sid in log["purged"]:
            assert sid not in views[0]["sessions"]
        missing = log["messages"] - kept - log["compacted"]
        # A message is only ever absent because its session was purged.
        for text in missing:
            assert not any(
                text in {x["content"] for x in s["messages"]} for s in views[0]["sessions"].values()
            )
        assert all(view["sessions"].keys() == views[0]["sessions"].keys() for view in views)
        assert views[0]["sessions"], "the scenario made no sessions"
        for m in ms:  # what the suspended triggers did per batch: the index and the counters
            assert m.store is not None
            assert await m.store.integrity_check() == [], m.name
            for row in await m.store.list_sessions("all", limit=None):
                assert row.message_count == await m.store.count_messages(row.id), m.name
    finally:
        for m in ms:
            await m.close()
