"""Pictures of the search screen (ctrl+f). Each docstring says what to look for.

Same fixed sample database, clock, time zone and home as tests/ui/test_snapshots.py.
"""

from __future__ import annotations

import asyncio

import pytest
import sample_data
from apphelpers import make_app, settle
from sample_data import Sample
from test_search_screen import answered

SMALL = (80, 24)
LARGE = (160, 48)


def search(*keys: str, then: tuple[str, ...] = ()):
    """Open the search, type `keys` (waiting out the debounce), then press `then`."""

    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+f")
        await settle(pilot)
        await pilot.press(*keys)
        await answered(pilot)
        for key in then:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.fixture
def long_db(plain_db: Sample) -> Sample:
    """The sample plus a 300-message session in ~/src/api ("Message 0" … "Message 299")."""
    plain_db.ids["long"] = asyncio.run(sample_data.add_long_session(plain_db.path, 300))
    return plain_db


def test_search_no_query(snap_compare, plain_db):
    """ctrl+f at 80x24 before typing: the header "Search  this directory  ~/src/api  ·  newest
    first"; an empty query field with its placeholder; the syntax hints (words, "a phrase",
    word*, -word, a OR b) with the keys (enter, ↓, ctrl+s, ctrl+r, esc); the footer shows esc
    Close, ^s Scope, ^r Rank."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=search())


def test_search_results(snap_compare, plain_db):
    """ "store" typed at 80x24: the header ends "2 matches"; two hits from "Design: the session
    store", the summary first ("Summary · 3 d") and then the user's question ("You · 3 d"),
    each with a one-line snippet in which "store" is bold, underlined and coloured; the first
    hit is highlighted; the hits are two lines each with no rule between them, as in the
    sidebar. No directory is shown (one-directory scope)."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=search(*"store"))


def test_search_results_all_directories_large(snap_compare, plain_db):
    """ "how" typed at 160x48 after ctrl+s twice: the header says "all directories" and
    "3 matches"; the hits come from three sessions, newest first ("How do I page through…" 5 h,
    "Dark mode for the dashboard" 2 d with ~/src/web, "Design: the session store" 3 d), each
    title followed by the role, age and the directory (~/src/api or ~/src/web); "How" is
    highlighted in each snippet."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=LARGE, run_before=search("ctrl+s", "ctrl+s", *"how"))


def test_search_no_results(snap_compare, plain_db):
    """ "zebra" typed at 80x24: the header ends "0 matches"; the list's empty state (as the
    sidebar draws it) says, in bold, No matches for “zebra” in this directory (~/src/api). and,
    after a blank line, dimmer, that ctrl+s widens the search to this workspace."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=search(*"zebra"))


def test_search_invalid_query(snap_compare, plain_db):
    """ "-draft" typed at 80x24 (only a word to leave out): one message in the body (wrapped at
    this width), in bold red "Cannot search for that: a search needs at least one word to
    find, not only words to exclude"; no count in the header, no traceback, the field still
    holds -draft."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=search(*"-draft"))


def test_search_jumped_to_message_small(snap_compare, long_db):
    """ "150" searched and its hit opened at 80x24: the main screen with "Long session (300
    messages)" open (its title above the pane), the pane focused and scrolled to the middle of
    the session: "Message 149" (and its paragraph) above, then the "You" message "Message 150"
    marked as found — an orange ▌ gutter and an orange band across its header line — then
    "Message 151". The sidebar still shows ~/src/api's sessions."""
    app = make_app(long_db)
    run = search(*"150", then=("down", "enter"))
    assert snap_compare(app, terminal_size=SMALL, run_before=run)


def test_search_jumped_to_message_large(snap_compare, long_db):
    """The same at 160x48: the found "Message 150" sits two lines below the top of the pane
    (Message 149's paragraph above it), marked with the orange gutter and header band, and the
    messages after it down to about Message 160 fill the rest of the pane."""
    app = make_app(long_db)
    run = search(*"150", then=("down", "enter"))
    assert snap_compare(app, terminal_size=LARGE, run_before=run)
