"""The conversation's window of timeline items (ui/timeline.py), without Textual: paging both
ways and the bound on what it holds, the fold, opening at an item, merging the end of the
session, the cursor and the search mark, parts that open, and the one staleness token.

A fake session stands in for the store (same keyset paging as `Store.timeline`); each test
runs in milliseconds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from threadline.models import Message, Session, Summary, SummarySpan, TimelineItem
from threadline.ui.timeline import (
    AROUND_RADIUS,
    BODY,
    MAX_ITEMS,
    OLDER_PAGE,
    PAGE_SIZE,
    TAIL_SIZE,
    TimelineWindow,
    item_key,
    order_key,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def session(sid: str = "s1", status: str = "active") -> Session:
    return Session(
        id=sid,
        working_dir="/home/dev/src/api",
        title=None,
        preview=None,
        provider=None,
        model=None,
        status=status,
        pinned=False,
        created_at=NOW,
        updated_at=NOW,
        message_count=0,
        system_prompt=None,
        ended_at=None,
        total_input_tokens=0,
        total_output_tokens=0,
    )


def message(mid: int, sid: str = "s1", content: str | None = None, **kw) -> Message:
    return Message(
        id=mid,
        session_id=sid,
        role=kw.pop("role", "user" if mid % 2 else "assistant"),
        content=content if content is not None else f"Message {mid}",
        created_at=NOW,
        **kw,
    )


class FakeSession:
    """A session's timeline and summaries, paged like the store; reads can be held (gates)."""

    def __init__(self, sid: str = "s1", messages: int = 0) -> None:
        self.sid = sid
        self.items: list[TimelineItem] = [message(i, sid) for i in range(1, messages + 1)]
        self.gate: asyncio.Event | None = None  # set: reads wait for it
        self.reads = 0

    def add(self, *items: TimelineItem) -> None:
        self.items = sorted([*self.items, *items], key=order_key)

    def summarise(self, first: int, last: int, sid: int = 1) -> Summary:
        summary = Summary(
            id=sid,
            session_id=self.sid,
            content=f"Summary of {first}-{last}",
            first_message_id=first,
            last_message_id=last,
            created_at=NOW,
        )
        self.add(summary)
        return summary

    async def _wait(self) -> None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()

    async def timeline(self, before, after, limit) -> list[TimelineItem]:
        await self._wait()
        items = self.items
        if before is not None:
            return [i for i in items if i.position < before][-limit:]
        if after is not None:
            return [i for i in items if i.position > after][:limit]
        return items[-limit:]

    async def around(self, message_id: int, radius: int) -> list[TimelineItem]:
        await self._wait()
        head = [i for i in self.items if i.position < (message_id, 1)][-(radius + 1) :]
        tail = [i for i in self.items if i.position > (message_id, 0)][:radius]
        return head + tail

    # SummarySource
    async def latest_summary(self, session_id: str) -> Summary | None:
        summaries = [i for i in self.items if isinstance(i, Summary)]
        return max(summaries, key=order_key) if summaries else None

    async def summary_spans(self, session_id: str, summaries) -> dict[int, SummarySpan]:
        messages = [i for i in self.items if isinstance(i, Message)]
        spans = {}
        for s in summaries:
            before = sum(1 for m in messages if m.id < s.first_message_id)
            covered = sum(1 for m in messages if s.first_message_id <= m.id <= s.last_message_id)
            spans[s.id] = SummarySpan(summary_id=s.id, before=before, covered=covered)
        return spans


def contents(window: TimelineWindow) -> list[str]:
    return [item.content for item in window.items]


def ids(window: TimelineWindow) -> list[int]:
    return [item.id for item in window.items if isinstance(item, Message)]


async def opened(fake: FakeSession, sid: str | None = None) -> TimelineWindow:
    window = TimelineWindow(summaries=fake)
    assert await window.open(session(sid or fake.sid), fake.timeline)
    return window


async def older(window: TimelineWindow) -> int | None:
    read = window.load_older()
    assert read is not None
    return await read


async def newer(window: TimelineWindow) -> int | None:
    read = window.load_newer()
    assert read is not None
    return await read


# ---------------------------------------------------------------------- paging


async def test_opening_reads_the_newest_page_with_the_cursor_on_the_last():
    fake = FakeSession(messages=250)
    window = await opened(fake)
    assert ids(window) == list(range(151, 251))
    assert window.has_older and not window.has_newer
    assert window.cursor == PAGE_SIZE - 1
    assert window.cursor_item == fake.items[-1]


async def test_a_short_session_has_nothing_older():
    window = await opened(FakeSession(messages=30))
    assert len(window) == 30 and not window.has_older
    assert window.load_older() is None  # nothing to read


async def test_older_pages_come_in_order_and_the_cursor_keeps_its_item():
    fake = FakeSession(messages=170)
    window = await opened(fake)
    window.select(5)
    before = window.cursor_item
    assert await older(window) == OLDER_PAGE
    assert window.cursor_item == before and window.cursor == 5 + OLDER_PAGE
    assert await older(window) == 70 - OLDER_PAGE  # the last, short page
    assert ids(window) == list(range(1, 171))
    assert not window.has_older


async def test_a_page_is_read_once_at_a_time():
    fake = FakeSession(messages=300)
    window = await opened(fake)
    fake.gate = asyncio.Event()
    read = window.load_older()
    assert read is not None and window.loading_older
    assert window.load_older() is None  # the same page is not asked for twice
    task = asyncio.ensure_future(read)
    await asyncio.sleep(0)
    fake.gate.set()
    assert await task == OLDER_PAGE
    assert not window.loading_older


async def test_the_window_is_bounded_and_far_pages_are_read_again():
    fake = FakeSession(messages=1000)
    window = await opened(fake)
    while window.has_older and (window.items[0].id > 400):
        await older(window)
    # Scrolling back keeps MAX_ITEMS at most: the newest pages went, to be read again.
    assert len(window) == MAX_ITEMS
    assert window.has_newer and window.has_older
    assert ids(window) == list(range(ids(window)[0], ids(window)[0] + MAX_ITEMS))
    assert window.mark(len(window) - 1) is None  # complete messages are never marked
    first = ids(window)[0]
    # Coming back down reads them again, and the oldest go.
    while window.has_newer:
        await newer(window)
    assert len(window) == MAX_ITEMS
    assert ids(window)[-1] == 1000 and ids(window)[0] == 1000 - MAX_ITEMS + 1
    assert window.has_older and first < ids(window)[0]


async def test_the_cursor_goes_to_the_nearest_kept_entry_when_its_own_is_dropped():
    fake = FakeSession(messages=1000)
    window = await opened(fake)
    assert window.cursor_item.id == 1000
    while len(window) < MAX_ITEMS:
        await older(window)
    await older(window)  # the newest entries (the cursor's among them) go
    assert window.has_newer
    assert window.cursor == len(window) - 1
    assert window.cursor_item is window.items[-1]


async def test_jump_to_start_and_end():
    fake = FakeSession(messages=500)
    window = await opened(fake)
    assert await window.jump_to_start()
    assert ids(window) == list(range(1, PAGE_SIZE + 1))
    assert not window.has_older and window.has_newer and window.cursor == 0
    assert await newer(window) == OLDER_PAGE
    assert ids(window)[-1] == PAGE_SIZE + OLDER_PAGE


# ---------------------------------------------------------------------- staleness


async def test_a_page_read_for_a_window_that_was_replaced_is_dropped():
    fake = FakeSession(messages=300)
    other = FakeSession("s2", messages=10)
    window = await opened(fake)
    fake.gate = asyncio.Event()
    read = window.load_older()
    assert read is not None
    paging = asyncio.ensure_future(read)
    await asyncio.sleep(0)
    assert await window.open(session("s2"), other.timeline)  # another session meanwhile
    fake.gate.set()
    assert await paging is None
    assert contents(window) == [f"Message {i}" for i in range(1, 11)]
    assert window.session.id == "s2"


async def test_a_tail_read_for_the_old_session_never_lands_in_the_new_one():
    # The poller's refresh_tail can start while another session is being opened (after the
    # open began, before it drew): what it read belongs to the old window and is dropped.
    old = FakeSession("s1", messages=20)
    new = FakeSession("s2", messages=0)
    window = await opened(old)
    old.gate, new.gate = asyncio.Event(), asyncio.Event()
    opening = asyncio.ensure_future(window.open(session("s2"), new.timeline))
    await asyncio.sleep(0)
    tail = asyncio.ensure_future(window.refresh_tail(following=True))
    await asyncio.sleep(0)
    new.gate.set()
    assert await opening
    old.gate.set()
    assert not (await tail).changed
    assert window.session.id == "s2" and window.items == [] and window.cursor is None


async def test_an_open_overtaken_by_a_later_one_does_not_apply():
    slow = FakeSession("s1", messages=5)
    fast = FakeSession("s2", messages=3)
    window = TimelineWindow(summaries=None)
    slow.gate = asyncio.Event()
    first = asyncio.ensure_future(window.open(session("s1"), slow.timeline))
    await asyncio.sleep(0)
    assert await window.open(session("s2"), fast.timeline)
    slow.gate.set()
    assert await first is False
    assert window.session.id == "s2" and len(window) == 3


async def test_clearing_drops_reads_under_way():
    fake = FakeSession(messages=300)
    window = await opened(fake)
    fake.gate = asyncio.Event()
    read = window.load_older()
    paging = asyncio.ensure_future(read)
    await asyncio.sleep(0)
    window.clear()
    fake.gate.set()
    assert await paging is None and window.items == [] and window.session is None


# ---------------------------------------------------------------------- the fold


async def test_a_long_summarised_range_opens_folded():
    fake = FakeSession(messages=300)
    summary = fake.summarise(1, 280)
    window = await opened(fake)
    assert window.folded and window.latest_summary == summary
    # The window starts at the summary: nothing it stands for was even read.
    assert window.items[0] == summary and len(window) == 21
    assert not window.has_older


async def test_a_short_range_is_shown_faded_not_folded():
    fake = FakeSession(messages=20)
    fake.summarise(1, 3)
    window = await opened(fake)
    assert not window.folded
    covered = [i for i in range(len(window)) if window.covered(i)]
    assert [window.items[i].id for i in covered] == [1, 2, 3]
    assert window.state(0).covered and not window.state(len(window) - 1).covered


async def test_f_shows_the_range_then_folds_it_away_again():
    fake = FakeSession(messages=300)
    fake.summarise(1, 280)
    window = await opened(fake)
    outcome = window.toggle_fold()
    assert outcome.problem is None and not outcome.jump
    assert not window.folded and window.has_older  # the range loads as one scrolls up
    await older(window)
    assert window.items[0].id == 280 - OLDER_PAGE + 1 and window.covered(0)
    window.select(3)
    chosen = window.cursor_item
    window.found = item_key(window.items[1])  # a search mark among what folds away
    outcome = window.toggle_fold()
    assert window.folded and isinstance(window.items[0], Summary)
    assert window.cursor == 0 and chosen not in window.items  # its item went: the summary
    assert window.found is None
    assert not window.has_older


async def test_folding_when_the_window_lies_inside_the_range_reads_it_again():
    fake = FakeSession(messages=300)
    fake.summarise(1, 280)
    window = await opened(fake)
    window.toggle_fold()  # shown
    assert await window.jump_to_start()  # the very start: inside the range
    outcome = window.toggle_fold()
    assert outcome.jump and window.folded
    assert await window.jump_to_start()
    assert isinstance(window.items[0], Summary) and not window.has_older


async def test_the_fold_chosen_is_kept_while_the_session_stays_open():
    fake = FakeSession(messages=60)
    fake.summarise(1, 40)
    window = await opened(fake)
    assert window.folded
    window.toggle_fold()
    assert await window.open(session(), fake.timeline)  # opened again: the choice stays
    assert not window.folded
    other = FakeSession("s2", messages=3)
    assert await window.open(session("s2"), other.timeline)
    assert await window.open(session(), fake.timeline)  # another in between: the default
    assert window.folded


async def test_folding_says_why_not():
    window = TimelineWindow()
    assert window.toggle_fold().problem == "No session is open."
    window = await opened(FakeSession(messages=5))
    assert window.toggle_fold().problem == "This session has no summary: nothing to fold."
    fake = FakeSession(messages=30)
    summary = fake.summarise(1, 20)
    fake.items = [i for i in fake.items if not (isinstance(i, Message) and i.id <= 20)]
    window = await opened(fake)
    assert window.items[0] == summary
    assert "compacted away" in window.toggle_fold().problem


# ---------------------------------------------------------------------- opening at an item


async def test_opening_at_a_message_inside_the_folded_range_unfolds_it():
    fake = FakeSession(messages=300)
    fake.summarise(1, 280)
    window = TimelineWindow(summaries=fake)
    found = await window.open_at(session(), fake.timeline, fake.around, 121, ("m", 121))
    assert found is True and not window.folded
    assert window.cursor_item.id == 121 and window.found == ("m", 121)
    assert window.covered(window.cursor)
    assert window.has_older and window.has_newer
    assert len(window) == 2 * AROUND_RADIUS + 1


async def test_opening_at_a_message_after_the_summary_keeps_the_fold():
    fake = FakeSession(messages=300)
    summary = fake.summarise(1, 280)
    window = TimelineWindow(summaries=fake)
    assert await window.open_at(session(), fake.timeline, fake.around, 290, ("m", 290))
    assert window.folded and window.items[0] == summary and not window.has_older
    assert window.cursor_item.id == 290


async def test_opening_at_a_summary_opens_it_expanded():
    fake = FakeSession(messages=300)
    summary = fake.summarise(1, 280)
    window = TimelineWindow(summaries=fake)
    assert await window.open_at(session(), fake.timeline, fake.around, 280, ("s", summary.id))
    assert window.cursor_item == summary and window.is_open(window.cursor)
    assert window.state(window.cursor).expanded


async def test_opening_at_a_message_gone_selects_the_nearest():
    fake = FakeSession(messages=300)
    fake.items = [i for i in fake.items if i.id > 100]
    window = TimelineWindow(summaries=fake)
    assert await window.open_at(session(), fake.timeline, fake.around, 50, ("m", 50)) is False
    assert window.found is None and window.cursor_item.id == 101


async def test_moving_the_cursor_clears_the_search_mark():
    fake = FakeSession(messages=300)
    window = TimelineWindow(summaries=fake)
    await window.open_at(session(), fake.timeline, fake.around, 150, ("m", 150))
    at = window.cursor
    assert not window.select(at)  # staying on it keeps the mark
    assert window.found == ("m", 150)
    assert window.select(at + 1) and window.found is None


# ---------------------------------------------------------------------- the end of the session


async def test_the_tail_merges_changes_new_items_and_a_summary_in_place():
    fake = FakeSession(messages=30)
    window = await opened(fake)
    window.select(10)
    chosen = window.cursor_item
    streaming = message(31, content="On Windows the", complete=False)
    fake.add(streaming)
    assert (await window.refresh_tail(following=True)).changed
    assert window.items[-1] == streaming and window.mark(len(window) - 1) == "streaming"
    entry = window.entries[-1]
    version = entry.version
    entry.height, entry.exact = 5, True  # as the view measured it
    fake.items[-1] = message(31, content="On Windows the same fix works.", complete=True)
    assert (await window.refresh_tail(following=True)).changed
    assert entry.version == version + 1 and entry.height is None  # to be measured again
    assert window.mark(len(window) - 1) is None
    # A summary of messages 1-25, written meanwhile: in place, after message 25; the range
    # (25 > FOLD_MIN) folds when the view follows the end.
    fake.summarise(1, 25)
    assert (await window.refresh_tail(following=False)).changed
    assert not window.folded and window.cursor_item == chosen
    assert isinstance(window.items[25], Summary) and window.covered(0)
    assert not (await window.refresh_tail(following=True)).changed  # nothing new


async def test_a_summary_written_while_following_folds_its_range():
    fake = FakeSession(messages=40)
    window = await opened(fake)
    fake.summarise(1, 25)
    assert (await window.refresh_tail(following=True)).changed
    assert window.folded and isinstance(window.items[0], Summary) and len(window) == 16


async def test_more_than_the_tail_holds_reads_the_newest_page_again():
    fake = FakeSession(messages=30)
    window = await opened(fake)
    fake.add(*[message(i) for i in range(31, 31 + TAIL_SIZE + 5)])
    outcome = await window.refresh_tail(following=True)
    assert outcome.reopened
    assert ids(window)[-1] == 30 + TAIL_SIZE + 5 and ids(window)[0] == 1


async def test_the_live_reply_is_not_overwritten_by_its_checkpoint():
    fake = FakeSession(messages=4)
    window = await opened(fake)
    reply = message(5, content="", complete=False)
    assert await window.append([reply])
    window.live = item_key(reply)
    fake.add(message(5, content="checkpointed so far", complete=False))
    await window.refresh_tail(following=True)
    assert window.items[-1].content == ""  # the view draws the stream, ahead of the store


async def test_items_written_here_are_appended_and_replaced_by_id():
    fake = FakeSession(messages=3)
    window = await opened(fake)
    assert await window.append([message(4, content="hello")])
    assert window.cursor == 3  # the cursor was on the last: it follows
    assert await window.append([message(4, content="hello again")])
    assert contents(window)[-1] == "hello again" and len(window) == 4
    assert not await window.append([message(9, sid="elsewhere")])


async def test_appending_after_home_reads_the_newest_page():
    fake = FakeSession(messages=500)
    window = await opened(fake)
    await window.jump_to_start()
    fake.add(message(501, content="new"))
    assert await window.append([fake.items[-1]])
    assert contents(window)[-1] == "new" and not window.has_newer


async def test_a_finished_reply_replaces_its_entry_or_comes_at_the_end():
    fake = FakeSession(messages=4)
    window = await opened(fake)
    await window.append([message(5, content="", complete=False)])
    window.live = ("m", 5)
    assert await window.finish(message(5, content="done")) == 4
    assert window.live is None and contents(window)[-1] == "done"
    # A reply that never streamed (an error before its first token) comes at the end.
    failed = message(6, content="", complete=False, stop_reason="error")
    assert await window.finish(failed) == 5
    assert window.mark(5) == "error"
    # Not when the window does not reach the end: it shows when scrolled to.
    await window.jump_to_start()
    window.has_newer = True
    assert await window.finish(message(7, content="later")) is None


async def test_an_unfinished_reply_is_interrupted_once_the_session_is_not_active():
    fake = FakeSession(messages=2)
    fake.add(message(3, content="cut", complete=False))
    window = await opened(fake)
    assert window.mark(2) == "streaming"
    entry = window.entries[2]
    entry.height = 4
    assert window.set_session(session(status="crashed"))
    assert window.mark(2) == "interrupted" and entry.height is None
    assert not window.set_session(session("other"))


# ---------------------------------------------------------------------- parts


async def test_parts_open_and_close_per_item():
    fake = FakeSession(messages=12)
    fake.summarise(1, 3)
    window = await opened(fake)
    summary_at = next(i for i, item in enumerate(window.items) if isinstance(item, Summary))
    assert not window.state(summary_at).expanded
    assert window.toggle(summary_at)
    assert window.state(summary_at).expanded and window.entries[summary_at].height is None
    assert window.toggle(summary_at) and not window.state(summary_at).expanded
    # A message has no body to expand; named parts (a tool call, thinking) open on any item.
    assert not window.toggle(0)
    assert window.toggle(0, "tool-1")
    assert window.state(0).open_parts == frozenset({"tool-1"})
    assert window.state(1).open_parts == frozenset()
    assert not window.toggle(len(window) + 3)
    assert BODY not in window.state(0).open_parts


@pytest.mark.parametrize("stop", ["error", "cancelled"])
async def test_ended_replies_are_marked_by_how_they_ended(stop: str):
    fake = FakeSession(messages=2)
    fake.add(message(3, content="part", complete=False, stop_reason=stop))
    window = await opened(fake)
    assert window.mark(2) == stop
