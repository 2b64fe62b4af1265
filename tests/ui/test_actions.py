"""Session actions and app keys: filter, new, rename, pin, delete with undo, help, palette, quit."""

from __future__ import annotations

from apphelpers import make_app, screen_text, settle, until, widget_lines
from internals import notifications
from sample_data import API, Sample

from threadline.models import Scope
from threadline.store import Store
from threadline.ui.screens.help import HelpScreen
from threadline.ui.screens.main import MainScreen
from threadline.ui.screens.new_session import NewSessionScreen
from threadline.ui.screens.rename import RenameScreen
from threadline.ui.widgets.session_list import SessionList


def titles(app) -> list[str]:
    return [row.display_title for row in app.main_screen.sessions.loaded_rows]


def notes(app) -> list[str]:
    return notifications(app)


async def filtered(pilot, text: str) -> None:
    """Wait until the filter (applied after a pause in typing) is `text`, and its rows shown."""
    await until(pilot, lambda: pilot.app.main_screen.query_text == text, f"the filter {text!r}")
    await settle(pilot)


async def test_slash_filters_as_you_type_and_escape_clears(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert app.focused is app.main_screen.filter_input
        await pilot.press(*"flaky")
        await filtered(pilot, "flaky")
        assert titles(app) == ["Fix the flaky retry test"]
        assert "filter “flaky”" in screen_text(app)
        # Previews (the first user message) match too.
        await pilot.press(*["backspace"] * 5, *"keyset")
        await filtered(pilot, "keyset")
        assert titles(app) == ["How do I page through a SQLite table by keyset instead of OFFSET?"]
        await pilot.press("enter")
        assert isinstance(app.focused, SessionList)
        await pilot.press("escape")
        await settle(pilot)
        assert len(titles(app)) == 4
        assert not app.main_screen.filter_input.display
        assert "filter" not in screen_text(app).split("\n")[0]


async def test_q_typed_into_the_filter_is_text_not_quit(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "q")
        await pilot.pause()
        assert app.is_running
        assert app.main_screen.filter_input.value == "q"


async def test_no_match_for_the_filter_says_so(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"zzz")
        await filtered(pilot, "zzz")
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        assert "No session matches “zzz”." in sidebar
        assert "esc clears the filter" in sidebar


async def test_an_empty_database_says_how_to_start(empty_db):
    app = make_app(empty_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        assert "No sessions in ~/src/api yet." in sidebar
        assert 'threadline chat "…"' in sidebar
        assert "0 sessions" in screen_text(app)


async def test_n_opens_the_form_and_writes_nothing_until_a_message_is_sent(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewSessionScreen)
        await pilot.press("enter")  # the defaults
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        # A draft: no row yet (the session is created with its first message).
        assert len(app.main_screen.sessions.loaded_rows) == 4
        assert app.main_screen.open_session_id is None
        assert "New session in ~/src/api" in screen_text(app)
        assert "New session (not saved yet)" in screen_text(app)
        store = app.store
        assert await store.count_sessions(Scope.DIRECTORY, API) == 4


async def test_r_renames_in_a_modal_and_esc_cancels(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("j")  # "Fix the flaky retry test"
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RenameScreen)
        field = app.screen.query_one("#rename-input")
        assert field.value == "Fix the flaky retry test"
        await pilot.press("ctrl+u", *"Retry backoff")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Retry backoff" in titles(app)
        assert any("Renamed to “Retry backoff”" in n for n in notes(app))
        # Esc leaves the title alone.
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+u", *"Never mind", "escape")
        await settle(pilot)
        assert "Retry backoff" in titles(app)
        # An empty title brings the first message back as the title.
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+u", "enter")
        await settle(pilot)
        assert "tests/test_retry.py fails one run in ten on CI. Why?" in titles(app)


async def test_p_pins_and_unpins(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("end", "p")  # pin the oldest
        await settle(pilot)
        rows = app.main_screen.sessions.loaded_rows
        assert [r.title for r in rows[:2]] == [
            "Design: the session store",
            "Upgrade to Python 3.13",
        ]
        assert rows[1].pinned
        # The cursor followed the session to its new place.
        assert app.main_screen.sessions.highlighted.title == "Upgrade to Python 3.13"
        await pilot.press("p")
        await settle(pilot)
        rows = app.main_screen.sessions.loaded_rows
        assert rows[-1].title == "Upgrade to Python 3.13" and not rows[-1].pinned


async def test_d_moves_to_the_trash_and_u_undoes(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        await pilot.press("d")
        await settle(pilot)
        assert "Design: the session store" not in titles(app)
        assert any("to the trash. Press u to undo." in n for n in notes(app))
        # The pane no longer shows the deleted session; focus is on the list, on the next one.
        assert app.main_screen.open_session_id is None
        assert "is in the trash" in screen_text(app)
        assert isinstance(app.focused, SessionList)
        assert app.main_screen.sessions.highlighted.title == "Fix the flaky retry test"
        store = app.store
        assert (await store.get_session(plain_db.ids["design"])).deleted_at is not None
        await pilot.press("u")
        await settle(pilot)
        assert titles(app)[0] == "Design: the session store"
        assert (await store.get_session(plain_db.ids["design"])).deleted_at is None
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        await pilot.press("u")  # nothing left to undo
        await settle(pilot)
        assert any("Nothing to undo" in n for n in notes(app))


async def test_actions_apply_to_the_open_session_when_the_pane_has_focus(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # highlight another row, keep the design session open
        await pilot.press("tab", "p")  # unpin: acts on the open session
        await settle(pilot)
        store = app.store
        assert not (await store.get_session(plain_db.ids["design"])).pinned


async def test_question_mark_shows_every_key(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 64)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        box = app.screen.query_one("#help-box")
        while box.scroll_y < box.max_scroll_y:  # taller than the screen: read it all
            box.scroll_to(y=box.scroll_y + box.size.height - 2, animate=False)
            await pilot.pause()
            text += "\n" + screen_text(app)
        flat = " ".join(text.replace("│", " ").split())
        for section in app.main_screen.key_sections():
            assert section.title in text
            for entry in section.entries:
                assert f"{entry.keys} {entry.description}" in flat, entry
        for key in ("q", "?", "/", "s", "n", "r", "p", "d", "u", "m", "c", "y", "esc"):
            assert f" {key} " in flat, key
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_every_key_is_in_the_command_palette(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        commands = {c.title for c in app.get_system_commands(app.screen)}
        from textual.binding import Binding

        from threadline.ui.widgets.composer_input import ComposerInput
        from threadline.ui.widgets.conversation import ConversationView

        for owner in (MainScreen, SessionList, ConversationView, ComposerInput):
            for binding in owner.BINDINGS:
                assert isinstance(binding, Binding)
                assert (binding.tooltip or binding.description) in commands, binding
        # Run one through the palette's own UI.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pin or unpin")

        def offered() -> bool:
            found = app.screen.query("CommandList")
            return bool(found) and found.first().highlighted is not None

        await until(pilot, offered, "the palette to offer the command")
        await pilot.press("enter")
        await settle(pilot)
        store = app.store
        assert not (await store.get_session(plain_db.ids["design"])).pinned


async def test_q_quits(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


async def test_theme_from_config_and_switching(plain_db: Sample):
    from apphelpers import quiet_settings

    settings = quiet_settings()
    settings.ui.theme = "nord"
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "nord"
        before = app.main_screen.conversation.block_styles.labels["assistant"]
        app.theme = "textual-light"
        await pilot.pause()
        after = app.main_screen.conversation.block_styles.labels["assistant"]
        assert before != after  # the pane picked up the new theme's colours
        assert "Design: the session store" in screen_text(app)


async def test_an_unknown_theme_is_a_warning_not_a_crash(plain_db: Sample):
    from apphelpers import quiet_settings

    from threadline.config import UIConfig

    settings = quiet_settings()
    # config.toml refuses unknown themes (tests/test_config.py); the app still survives one
    # it does not have (settings made in code, a Textual without that theme).
    settings.ui = UIConfig.model_construct(theme="no-such-theme")
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        assert any("Unknown theme 'no-such-theme'" in n for n in notes(app))


async def test_auto_cleanup_on_start_says_what_it_moved(plain_db: Sample):
    from apphelpers import quiet_settings

    settings = quiet_settings()
    settings.session.auto_cleanup = True
    settings.session.retention_days = 30  # the 40-day-old session goes to the trash
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("Auto-cleanup" in n for n in notes(app)))
        await settle(pilot)
        message = next(n for n in notes(app) if "Auto-cleanup" in n)
        assert "moved 1 session to the trash" in message
        assert "threadline sessions restore" in message
        assert "auto_cleanup = false" in message
        assert "Upgrade to Python 3.13" not in titles(app)
        # The open session is never cleaned up, and nothing is deleted for good.
        store = app.store
        assert (await store.get_session(plain_db.ids["old"])).deleted_at is not None


async def test_auto_cleanup_off_leaves_everything(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "Upgrade to Python 3.13" in titles(app)
        assert not any("Auto-cleanup" in n for n in notes(app))


async def test_the_ui_never_runs_sql_on_its_own_thread(plain_db: Sample, monkeypatch):
    # Every store call is awaited and its SQL runs on the store's threads; record the thread
    # of every read and write transaction while browsing and acting.
    import threading

    from threadline.store import connection

    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_read, real_write = connection.run_read, connection.run_transaction

    def read(conn, fn, *args):
        threads.append(threading.get_ident())
        return real_read(conn, fn, *args)

    def write(conn, fn, *args):
        threads.append(threading.get_ident())
        return real_write(conn, fn, *args)

    monkeypatch.setattr(connection, "run_read", read)
    monkeypatch.setattr(connection, "run_transaction", write)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter", "p", "s", "s", "slash", "x")
        await filtered(pilot, "x")
    assert len(threads) > 10
    assert loop_thread not in threads


def database_rows(path) -> dict[str, list[tuple]]:
    """Every row of every table (but the search index's own), read on a connection of its own."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_") and "_fts" not in name
        ]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"'), key=repr) for name in names}
    finally:
        conn.close()


async def test_store_is_written_by_other_processes_only_through_the_store(plain_db: Sample):
    """While the app is open, another process writes through the store and the app shows it;
    the app's own browsing (opening, paging, search, memories, help, scopes, the filter) writes
    nothing: after it quits, the database holds exactly what it held after that write."""
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        async with await Store.open(plain_db.path) as other:
            await other.add_message(plain_db.ids["design"], "user", "Written by a script")
        await until(pilot, lambda: "Written by a script" in screen_text(app))
        await settle(pilot)
        before = database_rows(plain_db.path)
        assert any("Written by a script" in row for row in before["messages"])
        screen = app.main_screen
        for session_id in (plain_db.ids["fix"], plain_db.ids["design"]):
            screen.open_session(session_id)
            await settle(pilot)
        await pilot.press("tab", "home", "end", "m", "k", "c", "f", "question_mark", "escape")
        await pilot.press("M")
        await settle(pilot)
        await pilot.press("escape", "ctrl+f", *"store", "escape", "s", "s", "s")
        await settle(pilot)
        await pilot.press("slash", *"flaky")
        await filtered(pilot, "flaky")
        await pilot.press("escape")
        await settle(pilot)
    assert database_rows(plain_db.path) == before
