"""The conversation pane: roles, markdown and code, summaries, interrupted replies, metadata,
the message cursor and copying, and paging through a long session."""

from __future__ import annotations

from pathlib import Path

from apphelpers import find_on_screen, make_app, screen_text, settle, widget_lines
from internals import notifications
from sample_data import FIX_ANSWER, Sample, add_long_session

from threadline.models import Message, Summary
from threadline.ui.markdown import CONTINUATION
from threadline.ui.timeline import MAX_ITEMS
from threadline.ui.widgets import conversation


def pane_text(app) -> str:
    return "\n".join(widget_lines(app.main_screen.conversation))


async def open_session(pilot, session_id: str) -> None:
    app = pilot.app
    app.main_screen.open_session(session_id)
    await settle(pilot)


async def test_roles_markdown_and_code(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        text = pane_text(app)
        assert "You" in text and "Assistant" in text
        # User text is shown as written (its newline kept); assistant text as Markdown:
        # backticks and ** are gone, the code fence is a highlighted block.
        assert "tests/test_retry.py fails one run in ten on CI." in text
        assert "`retry()`" not in text and "retry() sleeps" in text
        assert "**pin the seed**" not in text and "pin the seed" in text
        assert "```" not in text
        assert "def retry(fn, attempts=5, delay=0.1):" in text
        # A link is shown with its address, as text.
        assert "the pytest docs (https://docs.pytest.org/)" in text


async def test_long_code_lines_wrap_without_losing_characters(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        lines = widget_lines(app.main_screen.conversation)
        # The long line of the code block is wider than the pane: it wraps, each continued
        # piece at the line's indent after a marker; every character of it is on screen
        # across the wrapped lines.
        long_line = (
            "time.sleep(delay * 2**attempt)  # 0.1, 0.2, 0.4, 0.8 s: a slow runner still passes"
        )
        assert long_line in FIX_ANSWER
        continued = [line for line in lines if CONTINUATION in line]
        assert continued
        start = next(i for i, line in enumerate(lines) if "time.sleep(" in line)
        indent = lines[start].index("time.sleep(")
        assert lines[start + 1].index(CONTINUATION) == indent  # at the line's own indent
        joined = "".join(line.replace(CONTINUATION, "").strip(" ▎▌▁▂▃▄▅▆▇█") for line in lines)
        assert long_line.replace(" ", "") in joined.replace(" ", "")


async def test_summaries_collapse_and_expand_by_key_and_click(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        view = app.main_screen.conversation
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        text = pane_text(app)
        assert "≡ Summary of messages" in text and "1,240 tokens" in text
        assert "▸ 7 more lines (enter or click to expand)" in text  # collapsed
        assert "Keyset paging keeps the sidebar fast" not in text
        summary_index = next(i for i, it in enumerate(view.items) if isinstance(it, Summary))
        await pilot.press("tab")
        while view.cursor != summary_index:
            await pilot.press("k")
        await pilot.press("enter")
        await pilot.pause()
        text = pane_text(app)
        assert "Keyset paging keeps the sidebar fast" in text
        assert "▴ collapse" in text
        await pilot.press("e")
        await pilot.pause()
        assert "Keyset paging keeps the sidebar fast" not in pane_text(app)
        # A click on the summary expands it too.
        x, y = find_on_screen(app, "≡ Summary of messages")
        await pilot.click(offset=(x, y))
        await pilot.pause()
        assert "Keyset paging keeps the sidebar fast" in pane_text(app)


async def test_an_incomplete_reply_is_marked_interrupted(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        text = pane_text(app)
        assert "⚠ interrupted" in text
        assert "the reply broke off here" in text
        assert "The reply is checkpointed every second" in text


async def test_m_toggles_a_metadata_line_per_message(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        assert "1,530 in / 412 out tokens" not in pane_text(app)
        await pilot.press("m")
        await pilot.pause()
        text = pane_text(app)
        assert "07:01 · gpt-4o-mini · 1,530 in / 412 out tokens · 5.2 s" in text
        assert "07:00" in text  # the user message's time (NOW - 2 h, UTC)
        await pilot.press("m")
        await pilot.pause()
        assert "1,530 in / 412 out tokens" not in pane_text(app)


async def test_message_cursor_moves_and_copies(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        view = app.main_screen.conversation
        await pilot.press("tab")
        assert view.has_focus
        assert view.cursor == 1  # the last message
        assert "▌ Assistant" in pane_text(app)  # the cursor's mark
        await pilot.press("c")
        assert app.clipboard == FIX_ANSWER
        assert any("Copied the message" in n for n in notifications(app))
        await pilot.press("y")
        assert app.clipboard.startswith("import time\n\ndef retry(")
        assert app.clipboard.endswith("pytest -p no:randomly tests/test_retry.py")
        assert any("Copied 2 code blocks" in n for n in notifications(app))
        await pilot.press("k")
        assert view.cursor == 0
        assert "▌ You" in pane_text(app)
        await pilot.press("c")
        assert app.clipboard == "tests/test_retry.py fails one run in ten on CI.\nWhy?"
        await pilot.press("y")
        assert any("no code blocks" in n for n in notifications(app))
        await pilot.press("j", "j")
        assert view.cursor == 1


async def test_clicking_a_message_selects_it(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        view = app.main_screen.conversation
        x, y = find_on_screen(app, "fails one run in ten")
        await pilot.click(offset=(x, y))
        await pilot.pause()
        assert view.cursor == 0


async def test_a_long_session_opens_at_the_end_and_pages_back(plain_db: Sample, tmp_path: Path):
    session_id = await add_long_session(plain_db.path, 300)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        assert len(view.items) == 100  # one page, not the whole session
        assert "Message 299" in pane_text(app)
        await pilot.press("tab")
        # Scroll back up to the start; older pages arrive as the top comes near, and the
        # newest go (the window is bounded), to be read again on the way back.
        while view.has_older or view.scroll_y > 0:
            await pilot.press("pageup")
            await settle(pilot)
        assert view.items[0].content.startswith("Message 0")
        assert len(view.items) == MAX_ITEMS and view.has_newer
        # The view's window is contiguous and in order.
        ids = [item.id for item in view.items if isinstance(item, Message)]
        assert ids == sorted(ids) and ids[-1] - ids[0] == len(ids) - 1
        await pilot.press("end")
        await settle(pilot)
        assert "Message 299" in pane_text(app)


async def test_prepending_an_older_page_keeps_the_screen_still(plain_db: Sample):
    session_id = await add_long_session(plain_db.path, 400)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        await pilot.press("tab")
        height = view.scrollable_content_region.height
        # Come close to the top of the first page (older pages load within 2 screens of it).
        view.scroll_to(y=2 * height + 5, animate=False)
        await settle(pilot)
        assert len(view.items) == 100
        while len(view.items) == 100:
            before = pane_text(app)
            await pilot.press("up")
            await settle(pilot)
        after = pane_text(app)

        def without_scrollbar(text: str) -> list[str]:
            return [line[:-2] for line in text.split("\n")]

        # The page arrived during the last scroll by one line: the screen shows what it did
        # before, moved down by exactly one line.
        assert without_scrollbar(before)[:-1] == without_scrollbar(after)[1:]
        assert len(view.items) == 150  # the first page and one older page


async def test_home_jumps_to_the_start_of_a_long_session(plain_db: Sample):
    session_id = await add_long_session(plain_db.path, 500)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        await pilot.press("tab", "home")
        await settle(pilot)
        text = pane_text(app)
        assert "start of the session · 500 messages" in text
        assert "Message 0" in text
        assert view.has_newer
        for _ in range(80):
            await pilot.press("pagedown")
            await settle(pilot)
            if len(view.items) > 100:
                break
        assert len(view.items) > 100  # newer pages were added below
        assert "Message 0" not in pane_text(app)
        await pilot.press("end")
        await settle(pilot)
        assert "Message 499" in pane_text(app)


async def test_an_empty_session_says_how_to_write_to_it(plain_db: Sample):
    # An empty session (made by a script): the hint points at the composer, or at the shell
    # when no provider is configured (the composer is off).
    from threadline.store import Store

    async with await Store.open(plain_db.path) as store:
        empty = await store.create_session("/home/dev/src/api")
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_session(pilot, empty.id)
        text = screen_text(app)
        assert "No messages yet." in text
        assert "threadline chat --session" in text  # no provider in these settings


async def test_a_page_up_finds_the_screen_above_drawn_already(plain_db: Sample, monkeypatch):
    session_id = await add_long_session(plain_db.path, 300)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        await pilot.press("tab")
        await settle(pilot)
        height = view.scrollable_content_region.height
        drawn: list[object] = []
        real = conversation.render_block

        def counted(item, *args, **kwargs):
            drawn.append(item)
            return real(item, *args, **kwargs)

        monkeypatch.setattr(conversation, "render_block", counted)
        for _ in range(6):
            top = int(view.scroll_y)
            entries = view.window.entries
            near = [
                entry
                for i, entry in enumerate(entries)
                if view.region_of(i).bottom > top - height and view.region_of(i).y < top + height
            ]
            # After the paint, the screen above and the one below were drawn (each entry's
            # height is its drawing's, not a guess) ...
            assert near and all(entry.exact for entry in near)
            # ... and not everything: entries far above are still guesses.
            assert not all(entry.exact for entry in entries)
            drawn.clear()
            view.action_scroll_pages(-1)  # what page-up runs, before its paint
            # The page-up draws nothing: what it brings on screen was drawn already.
            assert drawn == []
            assert int(view.scroll_y) == top - (height - 1)
            await settle(pilot)
            assert drawn  # the next screen above is drawn after the paint
