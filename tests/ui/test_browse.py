"""Browsing: the sidebar's order and marks, opening sessions by key and mouse, scopes, focus."""

from __future__ import annotations

from pathlib import Path

from apphelpers import find_on_screen, make_app, screen_text, settle, widget_lines
from sample_data import API, HOSTILE_DIR, WEB, Sample, done_filling, fill_quickly

from threadline.models import Scope
from threadline.ui.widgets.conversation import ConversationView
from threadline.ui.widgets.session_list import SessionList


def titles(app) -> list[str]:
    return [row.display_title for row in app.main_screen.sessions.loaded_rows]


async def test_opens_on_the_directory_sessions_newest_first_pinned_on_top(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert titles(app) == [
            "Design: the session store",  # pinned, 3 days old
            "Fix the flaky retry test",
            "How do I page through a SQLite table by keyset instead of OFFSET?",
            "Upgrade to Python 3.13",
        ]
        text = screen_text(app)
        assert "this directory  ~/src/api" in text
        assert "4 sessions" in text
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        assert "★ Design: the session s…" in sidebar
        assert "⚠ interrupted" in sidebar  # the design session's reply broke off
        assert "2 h" in sidebar and "3 d" in sidebar and "6 w" in sidebar
        # The newest session opens by itself.
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        assert isinstance(app.focused, SessionList)


async def test_keys_move_the_cursor_and_enter_opens(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        sessions = app.main_screen.sessions
        await pilot.press("down")
        assert sessions.cursor == 1
        await pilot.press("j", "j")
        assert sessions.cursor == 3
        await pilot.press("j")  # stays on the last row
        assert sessions.cursor == 3
        await pilot.press("k", "up")
        assert sessions.cursor == 1
        await pilot.press("enter")
        await settle(pilot)
        assert app.main_screen.open_session_id == plain_db.ids["fix"]
        assert "def retry(fn, attempts=5, delay=0.1):" in screen_text(app)
        # The opened conversation takes the keys; esc goes back to the list.
        assert app.focused is app.main_screen.conversation
        await pilot.press("escape")
        assert app.focused is sessions
        await pilot.press("end")
        assert sessions.cursor == 3
        await pilot.press("home")
        assert sessions.cursor == 0


async def test_clicking_a_row_opens_it(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        x, y = find_on_screen(app, "Upgrade to Python 3.13")
        await pilot.click(offset=(x + 2, y))
        await settle(pilot)
        assert app.main_screen.open_session_id == plain_db.ids["old"]
        assert app.main_screen.sessions.cursor == 3
        assert "datetime.utcnow()" in screen_text(app)


async def test_tab_moves_focus_between_the_list_and_the_conversation(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, SessionList)
        await pilot.press("tab")
        assert isinstance(app.focused, ConversationView)
        await pilot.press("tab")
        assert isinstance(app.focused, SessionList)
        await pilot.press("shift+tab")
        assert isinstance(app.focused, ConversationView)


async def test_the_scope_key_cycles_directory_workspace_all(sample_db: Sample):
    app = make_app(sample_db)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert len(titles(app)) == 5
        await pilot.press("s")
        await settle(pilot)
        assert app.main_screen.scope is Scope.WORKSPACE
        assert "this workspace" in screen_text(app)
        await pilot.press("s")
        await settle(pilot)
        assert app.main_screen.scope is Scope.ALL
        text = screen_text(app)
        assert "all directories" in text and "7 sessions" in text
        assert "Dark mode for the dashboard" in titles(app)
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        # Each entry shows its directory, shortened with ~.
        assert "~/src/web" in sidebar and "~/src/api" in sidebar
        await pilot.press("s")
        await settle(pilot)
        assert app.main_screen.scope is Scope.DIRECTORY
        assert len(titles(app)) == 5


async def test_workspace_scope_is_the_git_root_and_below(tmp_path: Path):

    from threadline.store import Store

    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    sub = root / "pkg" / "core"
    sub.mkdir(parents=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    db = tmp_path / "w.db"

    async def fill() -> None:
        store = await Store.open(db)
        for directory, title in ((root, "at the root"), (sub, "in pkg/core"), (other, "outside")):
            s = await store.create_session(str(directory), title=title)
            await store.add_message(s.id, "user", "hi")
        await store.close()

    await fill()
    app = make_app(db, working_dir=str(sub.resolve()))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert titles(app) == ["in pkg/core"]
        await pilot.press("s")
        await settle(pilot)
        assert sorted(titles(app)) == ["at the root", "in pkg/core"]
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        assert "./pkg/core" in sidebar  # shown relative to the workspace root
        assert str(root.resolve()).replace("/home/dev", "~")[-20:] in screen_text(app)


async def test_the_sidebar_pages_rows_in_as_it_scrolls(tmp_path: Path):

    from threadline.store import Store

    db = tmp_path / "many.db"

    async def fill() -> None:
        store = await Store.open(db)
        await fill_quickly(store)
        for i in range(350):
            await store.create_session(API, title=f"session {i:03d}")
        await done_filling(store)
        await store.close()

    await fill()
    app = make_app(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        sessions = app.main_screen.sessions
        assert sessions.total == 350
        assert len(sessions.loaded_rows) == 100  # one page, not the whole list
        await pilot.press("end")
        await settle(pilot)
        assert sessions.cursor == 349
        assert "session 000" in screen_text(app)  # the oldest, at the bottom
        assert len(sessions.loaded_rows) <= 200
        await pilot.press("home")
        await settle(pilot)
        for _ in range(6):
            await pilot.press("pagedown")
        await settle(pilot)
        # Rows are the right ones after keyset pages following offset pages.
        rows = sessions.loaded_rows
        expected = [f"session {349 - i:03d}" for i in range(350)]
        by_index = {}
        for page, page_rows in sessions.pages.loaded().items():
            for i, row in enumerate(page_rows):
                by_index[page * 100 + i] = row.display_title
        assert all(expected[i] == title for i, title in by_index.items())
        assert rows


async def test_a_directory_name_from_the_database_is_shown_literally(sample_db: Sample):
    app = make_app(sample_db, working_dir=HOSTILE_DIR)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "~/src/[bold]x[/bold]^[]0;pwned^G" in text
        assert titles(app) == ["A session in a strange directory"]


def test_web_constant_is_a_different_directory():
    assert WEB != API
