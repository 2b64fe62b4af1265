"""Pictures of summaries in place and the memories screen (pytest-textual-snapshot).

Same fixed database, clock (NOW), time zone and home as test_snapshots.py, plus the memories
and sessions of memory_data.py. Each docstring says what a reviewer should see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from apphelpers import make_app, settle
from memory_data import add_failed_extraction, add_memories, add_summarised_session
from sample_data import Sample
from test_memory_upkeep import with_provider

from fakes.openai_server import FakeOpenAIServer

SMALL = (80, 24)
MEDIUM = (120, 32)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def memory_db(plain_db: Sample) -> Sample:
    asyncio.run(add_memories(plain_db))
    return plain_db


def press(*keys: str):
    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return run


def test_memories_screen(snap_compare, memory_db):
    """M at 120x32: the header says "memories ~/src/api · 4 memories · 1 superseded hidden
    (s shows them)"; four rows by importance: ★★★★★ decision (the writer connection), two
    ★★★★☆ (preference "Flaky tests…", correction "Replies are checkpointed every second…"),
    ★★☆☆☆ context "added by hand · 1 h"; each second line says where it came from ("from
    “Design: the session store” · 3 d · #2"). The first row is highlighted; under the list,
    its whole fact, "★★★★★ importance 5 · decision · from “Design: the session store”,
    message #5 · 3 d ago" and "enter opens the session at this message"; the extraction panel
    says it is unavailable here (no model provider configured). Footer: esc Back, ⏎ Source,
    a Add, e Edit, d Delete, s Superseded, x Extract now."""
    assert snap_compare(make_app(memory_db), terminal_size=MEDIUM, run_before=press("M"))


def test_memories_screen_with_superseded_shown(snap_compare, memory_db):
    """M then s and three downs at 120x32: five rows; the fourth, "Replies are checkpointed
    every five seconds." (★★★☆☆ fact), is greyed out with "superseded by #3 · from “Design:
    the session store”"; the header says "1 superseded shown". The cursor is on the
    superseded one: the panel shows its fact and "Superseded by #3: Replies are checkpointed
    every second while they stream, not every five seconds.\""""
    app = make_app(memory_db)
    assert snap_compare(
        app, terminal_size=MEDIUM, run_before=press("M", "s", "down", "down", "down")
    )


def test_memories_screen_empty(snap_compare, plain_db):
    """M on a directory without memories at 80x24: "No memories for ~/src/api yet." and how
    they come (extracted from quiet sessions, x on the open session, a adds one by hand); the
    header says "0 memories"; the extraction panel says it is unavailable here and that
    memories added with a are still given to new sessions."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=press("M"))


def test_add_memory_form(snap_compare, memory_db):
    """a on the memories screen at 80x24: an "Add a memory" dialog over the dimmed list with a
    focused, empty Fact field (its placeholder an example sentence), a Category select showing
    "fact" and an Importance select showing "3 ★★★☆☆"; the bottom edge says "enter or ^s
    saves · tab moves · esc cancels"."""
    assert snap_compare(make_app(memory_db), terminal_size=SMALL, run_before=press("M", "a"))


def test_delete_asks_first(snap_compare, memory_db):
    """d on the correction at 120x32: a "Delete memory #3" dialog asks "Forget this memory for
    good?", shows the fact in bold, says the memory it superseded will be current again, and
    offers Delete (red) and Keep (focused); its edge says "y yes · n or esc no"."""
    app = make_app(memory_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=press("M", "down", "down", "d"))


def _summarised(plain_db: Sample, *keys: str):
    session = asyncio.run(add_summarised_session(plain_db.path, 300, 280))

    async def run(pilot) -> None:
        await settle(pilot)
        pilot.app.main_screen.open_session(session)
        await settle(pilot)
        await pilot.press("tab", "home", *keys)
        await settle(pilot)

    return run


def test_conversation_with_a_folded_summary(snap_compare, plain_db):
    """A 300-message session whose first 280 are summarised, at 120x32, scrolled to the top
    (home): the first line says "▸ 280 earlier messages folded into the summary below · f
    shows them" (in the accent colour); then the collapsed summary "≡ Summary of messages
    1–280 · 64 tokens" with its first lines, then "Message 281", "Message 282"… in full
    colour. The sidebar has "Summarised session (300 messages)" open."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=_summarised(plain_db))


def test_conversation_with_the_summarised_range_shown(snap_compare, plain_db):
    """The same after f and twelve lines up: the messages the summary stands for are back
    above it, faded (greyer labels, text and gutters, hues kept), "Message 276"… "Message
    280"; the summary "≡ Summary of messages 1–280" (the cursor on it) and "Message 281"…
    after it are drawn normally."""
    app = make_app(plain_db)
    assert snap_compare(
        app, terminal_size=MEDIUM, run_before=_summarised(plain_db, "f", *["up"] * 12)
    )


def test_extraction_failed_status(snap_compare, memory_db, server):
    """The memories screen at 120x32 with a provider configured and two queued extractions:
    the panel says "Extraction 1 queued · 1 failed", then "✖ failed “Fix the flaky retry test” 3
    attempts of 3 · the model replied with text that is not JSON" (red) and "● retrying
    “Design: the session store” 1 attempt of 3 · next in 3 min · the provider answered 500:
    internal error"."""
    asyncio.run(add_failed_extraction(memory_db, "the model replied with text that is not JSON"))
    app = make_app(memory_db, settings=with_provider(server))
    assert snap_compare(app, terminal_size=MEDIUM, run_before=press("M"))


def test_header_says_extractions_failed(snap_compare, plain_db, server):
    """The main screen at 120x32 with the same queue: the header ends with "memory: 1 queued ·
    1 failed" ("1 failed" in bold red)."""
    asyncio.run(add_failed_extraction(plain_db, "boom"))
    app = make_app(plain_db, settings=with_provider(server))
    assert snap_compare(app, terminal_size=MEDIUM, run_before=press())
