"""Summaries and the timeline: messages and summaries interleaved in conversation order."""

from __future__ import annotations

import pytest

from fakes.clock import FakeClock
from threadline.models import Message, Summary
from threadline.store import NotFoundError, Store, StoreError


async def test_save_latest_list_summaries(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    ms = [await store.add_message(s.id, "user", f"m{i}") for i in range(6)]
    assert await store.latest_summary(s.id) is None
    first = await store.save_summary(s.id, "early part", ms[0].id, ms[2].id, 42, "small")
    clock.advance(minutes=1)
    second = await store.save_summary(s.id, "later part", ms[3].id, ms[4].id)
    assert (first.first_message_id, first.last_message_id, first.token_count, first.model) == (
        ms[0].id,
        ms[2].id,
        42,
        "small",
    )
    assert await store.latest_summary(s.id) == second
    assert await store.list_summaries(s.id) == [first, second]
    with pytest.raises(StoreError, match="before its first"):
        await store.save_summary(s.id, "bad", ms[3].id, ms[1].id)
    with pytest.raises(NotFoundError):
        await store.save_summary("01234567-89ab-7def-8123-456789abcdef", "x", 1, 1)


async def test_timeline_interleaves_in_order(store: Store) -> None:
    s = await store.create_session("/tmp")
    ms = [await store.add_message(s.id, "user", f"m{i}") for i in range(10)]
    s1 = await store.save_summary(s.id, "sum 0-3", ms[0].id, ms[3].id)
    s2 = await store.save_summary(s.id, "sum 4-6", ms[4].id, ms[6].id)
    items = await store.timeline(s.id)
    labels = [i.content for i in items]
    assert labels == [
        "m0", "m1", "m2", "m3", "sum 0-3", "m4", "m5", "m6", "sum 4-6", "m7", "m8", "m9",
    ]  # fmt: skip
    assert isinstance(items[4], Summary) and items[4] == s1
    assert isinstance(items[8], Summary) and items[8] == s2
    assert all(isinstance(i, Message) for i in items if i.kind == "message")


async def test_timeline_paging_backwards_and_forwards(store: Store) -> None:
    s = await store.create_session("/tmp")
    other = await store.create_session("/tmp")
    ms = []
    for i in range(30):
        ms.append(await store.add_message(s.id, "user", f"m{i}"))
        await store.add_message(other.id, "user", "noise")
        if i % 7 == 6:
            await store.save_summary(s.id, f"sum to {i}", ms[i - 6].id, ms[i].id)
    await store.save_summary(other.id, "other summary", 1, 2)
    everything = await store.timeline(s.id)
    assert len(everything) == 30 + 4
    assert [i.position for i in everything] == sorted(i.position for i in everything)
    for size in (1, 2, 3, 5, 8, 34, 50):
        # From the end backwards (how the conversation view scrolls up).
        pages: list = []
        before = None
        while True:
            page = await store.timeline(s.id, before=before, limit=size)
            pages = page + pages
            if len(page) < size:
                break
            before = page[0].position
        assert pages == everything, size
        # And forwards from the start (what came since).
        forward: list = []
        after = None
        page = await store.timeline(s.id, limit=size)
        first_page = await store.timeline(s.id, after=(0, 0), limit=size)
        assert first_page == everything[:size]
        after = (0, 0)
        while page := await store.timeline(s.id, after=after, limit=size):
            forward += page
            after = page[-1].position
        assert forward == everything, size
    last = await store.timeline(s.id, limit=5)
    assert last == everything[-5:]
    assert await store.timeline(s.id, after=everything[-1].position) == []


async def test_timeline_after_compaction(store: Store) -> None:
    """After compacting, the summary stands for the removed messages at the head."""
    s = await store.create_session("/tmp")
    ms = [await store.add_message(s.id, "user", f"m{i}") for i in range(8)]
    await store.save_summary(s.id, "the first five", ms[0].id, ms[4].id)
    await store.delete_messages_before(s.id, ms[5].id)
    items = await store.timeline(s.id)
    assert [i.content for i in items] == ["the first five", "m5", "m6", "m7"]


async def test_summaries_are_searchable(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir, title="t")
    m = await store.add_message(s.id, "user", "hello")
    summary = await store.save_summary(s.id, "discussed the zanzibar migration", m.id, m.id)
    hits = await store.search("zanzibar")
    assert len(hits) == 1
    hit = hits[0]
    assert hit.kind == "summary" and hit.summary_id == summary.id
    assert hit.message_id == m.id and hit.role is None and hit.session_id == s.id
    assert [h.kind for h in await store.search("zanzibar", "directory", workdir)] == ["summary"]
