"""The search screen (ctrl+f): hits as you type (debounced, off the UI thread, stale answers
dropped), enter as written, scope and order keys, opening a hit at its message, hostile text."""

from __future__ import annotations

import asyncio

import pytest
import sample_data
from apphelpers import (
    find_on_screen,
    make_app,
    screen_segments,
    screen_text,
    settle,
    terminal_output,
    until,
)
from internals import send_raw
from sample_data import HOSTILE_DIR, Sample

from threadline.models import Message, Summary
from threadline.ui.screens.search import SearchScreen, typed_query
from threadline.ui.widgets.search_results import SearchResults


class Recorder:
    """Wraps the app's store.search: records each call and counts those that completed."""

    def __init__(self, app, held: dict[str, asyncio.Event] | None = None) -> None:
        self.store = app.store
        self.real = app.store.search
        self.calls: list[tuple[str, str, bool]] = []
        self.completed: list[str] = []
        self.cancelled: list[str] = []
        self.held = held or {}  # a search for one of these waits until its event is set
        app.store.search = self.search

    async def search(self, query, scope="all", working_dir=None, limit=50, *, rank=False):
        self.calls.append((query, str(scope), rank))
        try:
            if query in self.held:
                await self.held[query].wait()
            hits = await self.real(query, scope, working_dir, limit, rank=rank)
        except asyncio.CancelledError:
            self.cancelled.append(query)
            raise
        self.completed.append(query)
        return hits


async def open_search(pilot) -> SearchScreen:
    await settle(pilot)
    await pilot.press("ctrl+f")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)
    return screen


async def answered(pilot) -> None:
    """Wait until the screen shows the answer to what the field holds (past the debounce)."""
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)

    def done() -> bool:
        return not screen.searching and screen.answered == screen.input.value.strip()

    await until(pilot, done, "the answer to the query")
    await settle(pilot)


async def type_and_wait(pilot, text: str) -> None:
    await pilot.press(*text)
    await answered(pilot)


def hit_texts(screen: SearchScreen) -> list[str]:
    return [hit.snippet for hit in screen.results.hits]


def bar(screen: SearchScreen) -> str:
    return str(screen.query_one("#search-bar").render())


def message(screen: SearchScreen) -> str:
    """The words on screen in place of hits: the help, or why there are none (the list's
    empty state, its title and hint as lines), as drawn."""
    widget = screen.query_one("#search-message")
    if widget.display:
        return str(widget.render())
    results = screen.results
    if not results.display or results.hits:
        return ""
    lines = [results.render_line(y).text.strip() for y in range(results.size.height)]
    return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------- the query while typing


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("retr", "retr*"),
        ("flaky retr", "flaky retr*"),
        ("retry ", "retry "),  # a space ends the word
        ("a", "a"),  # one letter: no prefix (no index for it, and it matches half the language)
        ("ab", "ab*"),
        ("dark OR", "dark OR"),
        ("-draft", "-draft"),
        ("retr*", "retr*"),
        ('"the yo', '"the yo"*'),
        ('"the y', '"the y'),
        ('"the you"', '"the you"'),
        ("3.13", "3.13"),
        ("naïve", "naïve*"),
        ("", ""),
    ],
)
def test_the_last_word_is_a_prefix_while_typing(typed: str, searched: str):
    assert typed_query(typed) == searched


# ---------------------------------------------------------------------- opening and closing


async def test_ctrl_f_opens_search_with_syntax_help_and_esc_goes_back(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("tab")  # the conversation has focus
        main = app.main_screen
        opened, focused = main.open_session_id, app.focused
        screen = await open_search(pilot)
        assert screen.input.has_focus
        text = screen_text(app)
        for hint in ("words", '"a phrase"', "word*", "-word", "a OR b", "this directory"):
            assert hint in text, hint
        assert "Search  this directory  ~/src/api  ·  newest first" in text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is main
        assert main.open_session_id == opened
        assert app.focused is focused


async def test_search_is_in_the_palette_and_in_help(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert any(t.startswith("Search every message") for t in titles)
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "^f" in text and "Search every message" in text
        await pilot.press("escape")
        await pilot.pause()
        # Through the palette's own UI.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Search every")

        def offered() -> bool:
            found = app.screen.query("CommandList")
            return bool(found) and found.first().highlighted is not None

        await until(pilot, offered, "the palette to offer the command")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)


async def test_reopening_offers_the_last_query(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "flaky")
        await pilot.press("escape")
        await settle(pilot)
        screen = await open_search(pilot)
        assert screen.input.value == "flaky"
        assert screen.results.hits  # searched again at once
        await pilot.press(*"dark")  # typing replaces the selected old query
        await answered(pilot)
        assert screen.input.value == "dark"


# ---------------------------------------------------------------------- as you type


async def test_typing_updates_the_hits_debounced(plain_db: Sample, monkeypatch: pytest.MonkeyPatch):
    # The keys come faster than the debounce on however busy a machine (it is short: 60 ms).
    from threadline.ui.screens import search as search_screen

    monkeypatch.setattr(search_screen, "DEBOUNCE", 1.0)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        recorder = Recorder(app)
        await type_and_wait(pilot, "concurrent")
        # Ten keystrokes, one search run to completion (the debounce waits for a pause).
        assert 1 <= len(recorder.completed) <= 2, recorder.calls
        assert recorder.completed[-1] == "concurrent*"
        assert [h.snippet_parts() for h in screen.results.hits] == [
            [("How should the store handle ", False), ("concurrent", True), (" writers?", False)]
        ]
        assert "1 match" in bar(screen)
        # The last word is a prefix while typing: "retr" finds "retry".
        await pilot.press("ctrl+u")
        await type_and_wait(pilot, "retr")
        assert screen.results.hits
        assert all("retry" in s.lower() for s in hit_texts(screen))
        assert {h.session_id for h in screen.results.hits} == {plain_db.ids["fix"]}
        assert "Fix the flaky retry test" in screen_text(app)


async def test_enter_searches_as_written_then_moves_to_the_hits(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        recorder = Recorder(app)
        await type_and_wait(pilot, "retr")
        assert screen.results.hits  # retr* while typing
        await pilot.press("enter")
        await settle(pilot)
        assert recorder.completed[-1] == "retr"
        assert not screen.results.hits and screen.input.has_focus
        text = message(screen)
        assert "No matches for “retr” in this directory (~/src/api)." in text
        assert "ctrl+s widens the search to this workspace" in text
        # A full word: enter runs it and moves to the hits; typing goes back to the query.
        await pilot.press("ctrl+u")
        await type_and_wait(pilot, "retry")
        await pilot.press("enter")
        await settle(pilot)
        assert recorder.completed[-1] == "retry"
        assert screen.results.has_focus
        await pilot.press("s")
        assert screen.input.has_focus
        assert screen.input.value == "retrys"
        await pilot.press("down", "up", "backspace", "!")  # a burst of keys: focus keeps up
        assert screen.input.has_focus
        assert screen.input.value == "retry!"


async def test_a_newer_search_cancels_the_older_one_and_its_answer_is_dropped(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        slow = asyncio.Event()
        recorder = Recorder(app, held={"flaky*": slow})
        await pilot.press(*"flaky")
        # The search for flaky* has started and is slow.
        await until(pilot, lambda: "searching…" in bar(screen))
        assert recorder.calls[-1][0] == "flaky*"
        await pilot.press("ctrl+u", *"dark")
        await answered(pilot)
        assert recorder.cancelled == ["flaky*"]
        assert "flaky*" not in recorder.completed
        assert screen.shown_query == "dark"
        assert {h.session_id for h in screen.results.hits} == set()  # ~/src/web, not here
        assert "No matches for “dark”" in message(screen)
        slow.set()
        await settle(pilot)
        assert screen.shown_query == "dark"  # nothing stale arrived later


async def test_clearing_the_query_shows_the_help_again(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "store")
        assert screen.results.display
        await pilot.press("ctrl+u")
        await answered(pilot)
        assert not screen.results.display
        assert "Type to search every message" in message(screen)
        assert "match" not in bar(screen)


# ---------------------------------------------------------------------- scope and order


async def test_the_scope_starts_as_the_sidebar_and_a_key_widens_it(sample_db: Sample):
    app = make_app(sample_db)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_search(pilot)
        recorder = Recorder(app)
        await type_and_wait(pilot, "dark")
        assert not screen.results.hits
        assert "ctrl+s widens the search to this workspace" in message(screen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Search  this workspace  ~/src/api" in bar(screen)
        assert recorder.calls[-1][1] == "workspace"
        assert "ctrl+s widens the search to all directories" in message(screen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Search  all directories  ·" in bar(screen)
        assert recorder.calls[-1] == ("dark*", "all", False)
        assert [h.session_id for h in screen.results.hits] == [sample_db.ids["web"]]
        # Wider scopes show each hit's directory.
        assert "Dark mode for the dashboard  You · 2 d · ~/src/web" in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Search  this directory  ~/src/api" in bar(screen)


async def test_the_sidebar_scope_is_where_search_starts(sample_db: Sample):
    app = make_app(sample_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("s", "s")  # the sidebar shows all directories
        screen = await open_search(pilot)
        assert "Search  all directories" in bar(screen)
        await type_and_wait(pilot, "dark")
        assert [h.session_id for h in screen.results.hits] == [sample_db.ids["web"]]


async def test_ctrl_r_orders_by_relevance(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        recorder = Recorder(app)
        await type_and_wait(pilot, "store")
        assert "newest first" in bar(screen)
        newest = [h.created_at for h in screen.results.hits]
        assert newest == sorted(newest, reverse=True)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "by relevance" in bar(screen)
        assert recorder.calls[-1] == ("store*", "directory", True)
        ranks = [h.rank for h in screen.results.hits]
        assert None not in ranks and ranks == sorted(ranks)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "newest first" in bar(screen)
        assert recorder.calls[-1] == ("store*", "directory", False)


# ---------------------------------------------------------------------- opening a hit


@pytest.fixture
def long_db(plain_db: Sample) -> Sample:
    """The sample plus a 300-message session in ~/src/api ("Message 0" … "Message 299")."""
    plain_db.ids["long"] = asyncio.run(sample_data.add_long_session(plain_db.path, 300))
    return plain_db


async def test_enter_opens_the_session_scrolled_to_the_message_and_marks_it(long_db: Sample):
    app = make_app(long_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "150")
        hits = screen.results.hits
        assert len(hits) == 1 and hits[0].session_id == long_db.ids["long"]
        hit = hits[0]
        await pilot.press("down", "enter")  # to the hits, then open the highlighted one
        await settle(pilot)
        main = app.main_screen
        assert app.screen is main
        assert main.open_session_id == long_db.ids["long"]
        view = main.conversation
        item = view.cursor_item
        assert isinstance(item, Message) and item.id == hit.message_id
        assert item.content.startswith("Message 150")
        assert view.found == ("m", hit.message_id)
        assert view.has_focus
        # Within the visible region, with older and newer pages still to load around it.
        region = view.region_of(view.cursor)
        top, height = int(view.scroll_y), view.scrollable_content_region.height
        assert top <= region.y and region.y + 2 <= top + height
        assert view.has_older and view.has_newer
        position = find_on_screen(app, "Message 150")
        assert position is not None
        x, y = position
        line = screen_text(app).splitlines()[y - 1]  # the header above the text
        assert "▌ You" in line
        # Marked with the found style (not only the cursor's).
        found_style = view.component_style("conversation--found-header")
        assert any(
            seg.style is not None and seg.style.bgcolor == found_style.bgcolor
            for seg in screen_segments(app)
        )
        # Moving the cursor clears the mark; scrolling back pages older messages in.
        await pilot.press("j")
        assert view.found is None
        assert view.cursor_item.content.startswith("Message 151")
        await pilot.press("home")
        await settle(pilot)
        assert view.items[0].content == "Message 0\n\nwith a second paragraph"


async def test_a_summary_hit_opens_at_the_summary_expanded(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # Open another session first: the hit must switch to the right one.
        app.main_screen.open_session(plain_db.ids["fix"])
        await settle(pilot)
        screen = await open_search(pilot)
        await type_and_wait(pilot, "trash")
        hits = screen.results.hits
        assert [h.kind for h in hits] == ["summary"]
        assert "Design: the session store  Summary · 3 d" in screen_text(app)
        await pilot.press("enter")  # as written, moves to the hits
        await settle(pilot)
        await pilot.press("enter")  # opens
        await settle(pilot)
        view = app.main_screen.conversation
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        item = view.cursor_item
        assert isinstance(item, Summary) and item.id == hits[0].summary_id
        assert view.found == ("s", item.id)
        assert "Deleting moves a session to a trash" in screen_text(app)  # expanded
        region = view.region_of(view.cursor)
        assert int(view.scroll_y) <= region.y < int(view.scroll_y) + view.size.height


async def test_keys_typed_ahead_in_a_burst_land_where_they_should(plain_db: Sample):
    # ↓ ↓ ⏎ arriving together (typed ahead, or a fast terminal): the focus moves with the
    # first ↓, so the second moves the highlight and ⏎ opens the second hit.
    from textual import events

    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "how")
        hits = screen.results.hits
        assert len(hits) == 2
        for key in ("down", "down", "enter"):
            send_raw(app, events.Key(key, "\r" if key == "enter" else None))
        await settle(pilot)
        assert app.screen is app.main_screen
        assert app.main_screen.open_session_id == hits[1].session_id


async def test_clicking_a_hit_opens_it(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "keyset")
        hits = screen.results.hits
        assert hits and hits[0].session_id == plain_db.ids["untitled"]
        x, y = find_on_screen(app, "How do I page through")
        await pilot.click(offset=(x + 2, y))
        await settle(pilot)
        assert app.screen is app.main_screen
        assert app.main_screen.open_session_id == plain_db.ids["untitled"]


# ---------------------------------------------------------------------- hostile text


HOSTILE_QUERIES = [
    "[@click=app.quit]x[/]",
    "[bold]",
    "a stray [/]",
    '"unclosed phrase',
    "NEAR(",
    "(a OR",
    "*",
    "-",
    "--",
    '""',
    "OR",
    "-store",
    "col:umn",
    "x" * 1200,
    "\x1b]0;pwned\x07",
    "bell\x07\x00",
    "\ud800",
]


async def test_hostile_queries_are_searched_or_refused_in_one_line(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        for query in HOSTILE_QUERIES:
            field = screen.input
            field.value = ""
            if query.isprintable() and len(query) < 40:
                await pilot.press(*query)
            else:
                field.insert_text_at_cursor(query)  # as a paste would
            await answered(pilot)
            assert app.is_running and app.screen is screen, query
            assert screen.shown_query is not None or "Type to search" in message(screen), query
            text = message(screen)
            if text.startswith("Cannot search"):
                assert "\n" not in text, query
            output = terminal_output(app)
            assert "\x1b]0;" not in output and "\x07" not in output, query
            await pilot.press("enter")
            await settle(pilot)
            assert app.is_running and app.screen is screen, query
        # The errors say what is wrong.
        field = screen.input
        field.value = ""
        await pilot.press(*"-store")
        await answered(pilot)
        assert message(screen) == (
            "Cannot search for that: a search needs at least one word to find, "
            "not only words to exclude"
        )
        field.value = ""
        field.insert_text_at_cursor("x" * 1200)
        await answered(pilot)
        assert "the search is too long (1,200 characters; at most 1,000)" in message(screen)
        # A query with markup is echoed literally.
        field.value = ""
        await pilot.press(*"[@click=app.quit]zebra[/]")
        await answered(pilot)
        assert "No matches for “[@click=app.quit]zebra[/]”" in message(screen)


async def test_hostile_titles_snippets_and_directories_are_literal_and_inert(sample_db: Sample):
    app = make_app(sample_db)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s", "s")  # all directories
        screen = await open_search(pilot)
        await type_and_wait(pilot, "click")
        hits = screen.results.hits
        assert hits and all(h.session_id == sample_db.ids["hostile"] for h in hits)
        text = screen_text(app)
        assert "Hostile [bold]x[/bold] [link=https://evil.example]x[/link]" in text
        shown = "tool: [bold]x[/bold] [link=https://evil.example]x[/link] [@click=app.quit]x[/]"
        assert shown in text
        output = terminal_output(app)
        for bad in ("\x1b]0;", "\x1b]8;;", "\x07", "\x1b[31m"):
            assert bad not in output
        for segment in screen_segments(app):
            meta = segment.style.meta if segment.style else {}
            assert "@click" not in meta and not (segment.style and segment.style.link)
        # The hostile directory is shown as text too.
        await pilot.press("ctrl+u")
        await type_and_wait(pilot, "hello")
        text = screen_text(app)
        assert "~/src/[bold]x[/bold]^[]0;pwned^G" in text
        assert [h.working_dir for h in screen.results.hits] == [HOSTILE_DIR]
        # Clicking the markup selects the hit (opens its session): it runs nothing.
        await pilot.press("ctrl+u")
        await type_and_wait(pilot, "click")
        x, y = find_on_screen(app, "[@click=app.quit]")
        await pilot.click(offset=(x + 3, y))
        await settle(pilot)
        assert app.is_running
        assert app.screen is app.main_screen
        assert app.main_screen.open_session_id == sample_db.ids["hostile"]


async def test_hits_are_drawn_line_by_line_with_the_matches_highlighted(plain_db: Sample):
    # One line-drawn list like the sidebar's (no widget per hit): two lines a hit, the matched
    # word (and only it) in the match style, on the highlighted row too.
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_search(pilot)
        results = screen.query_one(SearchResults)
        await type_and_wait(pilot, "store")
        assert len(results.hits) == 2 and not results.children
        assert results.virtual_size.height == 4
        for y in (1, 3):  # the snippets of the first (highlighted) and the second hit
            line = results.render_line(y)
            marked = [seg.text for seg in line if seg.style and seg.style.underline]
            assert marked and all(text.lower() == "store" for text in marked), marked
            assert all(seg.style.bold for seg in line if seg.style and seg.style.underline)
        title = results.render_line(0)
        assert title.text.startswith(" Design: the session store  Summary · 3 d")
        assert not any(seg.style and seg.style.underline for seg in title)


async def test_the_hit_keys_move_a_page_and_to_either_end(long_db: Sample):
    app = make_app(long_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "message")
        results = screen.results
        hits = results.hits
        assert len(hits) == 100  # the newest hundred
        await pilot.press("down")  # to the hits
        assert results.has_focus and results.cursor == 0
        page = results.size.height // 2 - 1
        assert page >= 5
        await pilot.press("pagedown")
        assert results.cursor == page
        await pilot.press("end")
        await settle(pilot)
        assert results.cursor == 99
        top = int(results.scroll_y)  # scrolled to it
        assert top <= 99 * 2 and 99 * 2 + 2 <= top + results.size.height
        await pilot.press("pageup")
        assert results.cursor == 99 - page
        await pilot.press("home", "down", "down")
        assert results.cursor == 2
        await pilot.press("enter")
        await settle(pilot)
        view = app.main_screen.conversation
        assert app.screen is app.main_screen
        item = view.cursor_item
        assert isinstance(item, Message) and item.id == hits[2].message_id
