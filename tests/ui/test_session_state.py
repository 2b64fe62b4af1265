"""What belongs to one session stays with it: a reply being written (marked in the list, esc
cancels it only there), a reply that failed part-way (marked), the memories of its directory
(M); and where keys go is shown (the focused pane lit, esc leaves the composer, the opened
conversation takes its keys)."""

from __future__ import annotations

from apphelpers import make_app, settle, until, widget_lines
from composer_helpers import (
    ScriptedProvider,
    scripted_settings,
    turn_done,
    use_provider,
)
from memory_data import add_memories
from sample_data import WEB, Sample

from threadline.chat.provider import ProviderError
from threadline.models import Scope
from threadline.ui.screens.main import filter_hint
from threadline.ui.screens.memories import MemoriesScreen
from threadline.ui.screens.search import SearchScreen
from threadline.ui.summaries import nothing_to_summarise
from threadline.ui.widgets.composer import Composer, ComposerInput

SIZE = (110, 36)


async def open_session(pilot, session_id: str, *, streaming: bool = False) -> None:
    """Open a session and wait until it is shown (and, unless a reply is streaming, until the
    app is quiet: a streaming reply's worker never is)."""
    screen = pilot.app.main_screen
    screen.open_session(session_id)
    await until(
        pilot,
        lambda: (
            screen.conversation.session is not None and screen.conversation.session.id == session_id
        ),
    )
    if not streaming:
        await settle(pilot)


def sidebar_text(app) -> str:
    return "\n".join(widget_lines(app.main_screen.sessions))


def status_text(app) -> str:
    return "\n".join(widget_lines(app.main_screen.query_one("#composer-status")))


async def test_a_reply_written_in_one_session_stays_with_it(plain_db: Sample):
    untitled, fix = plain_db.ids["untitled"], plain_db.ids["fix"]
    provider = ScriptedProvider(["a ", "b ", "c "], then="hang")
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        use_provider(app, provider)
        screen = app.main_screen
        runner = screen.runner
        await open_session(pilot, untitled)
        await pilot.press("i", *"go", "enter")
        await until(pilot, lambda: runner.running is not None and runner.running.reply)
        await until(pilot, lambda: "● writing…" in sidebar_text(app), "the writing mark")
        assert screen.sessions.writing_id == untitled
        await until(pilot, lambda: "esc cancels" in status_text(app))
        await open_session(pilot, fix, streaming=True)
        # Under the other session: no "generating…", a word that a reply is written elsewhere.
        await until(pilot, lambda: "another session" in status_text(app))
        assert "esc cancels" not in status_text(app)
        assert "● writing…" in sidebar_text(app)  # the list still says which one
        assert isinstance(app.focused, ComposerInput)  # still there since sending
        await pilot.press(*"draft", "escape")  # esc leaves the composer: no cancel
        assert runner.busy and not app.focused.id == "composer-input"
        await pilot.press("escape")  # from the conversation to the list: still no cancel
        await pilot.pause()
        assert runner.busy
        assert app.main_screen.query_one(Composer).text == "draft"
        await open_session(pilot, untitled, streaming=True)
        await until(pilot, lambda: "esc cancels" in status_text(app))
        await pilot.press("escape")  # here it cancels
        await turn_done(pilot)
        assert not runner.busy and screen.sessions.writing_id is None
        await until(pilot, lambda: "● writing…" not in sidebar_text(app))


async def test_a_reply_that_failed_part_way_is_marked_in_the_list(plain_db: Sample):
    provider = ScriptedProvider(
        ["half ", "an "], then=ProviderError("the connection dropped", "connection")
    )
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        use_provider(app, provider)
        await open_session(pilot, plain_db.ids["untitled"])
        assert "reply failed" not in sidebar_text(app)
        await pilot.press("i", *"go", "enter")
        await turn_done(pilot)
        await settle(pilot)
        await until(pilot, lambda: "⚠ reply failed" in sidebar_text(app), "the failed mark")
        row = app.main_screen.sessions.loaded_rows[1]
        assert row.id == plain_db.ids["untitled"] and row.reply_failed


def lit(screen) -> list[str]:
    """The panes drawn lit (their border or title in the accent colour)."""
    return [pane for pane in screen.LIT_PANES if screen.query_one(pane).has_class("-lit")]


async def test_focus_is_shown_and_esc_leaves_the_composer_keeping_the_draft(plain_db: Sample):
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.main_screen
        composer = screen.query_one(Composer)
        assert screen.lit_pane() == "#sidebar" and lit(screen) == ["#sidebar"]
        await pilot.press("i")
        assert isinstance(app.focused, ComposerInput)
        assert screen.lit_pane() == "#composer" and lit(screen) == ["#composer"]
        assert "esc leaves" in str(composer.border_title)
        await pilot.press(*"q", "escape")
        assert composer.text == "q" and app.is_running  # typed, not quit
        assert app.focused is screen.conversation and lit(screen) == ["#session-title"]
        assert "esc leaves" not in str(composer.border_title)
        await pilot.press("escape")
        assert app.focused is screen.sessions and lit(screen) == ["#sidebar"]
        await pilot.press("i")
        assert composer.text == "q"  # the draft stayed


async def test_the_opened_conversation_takes_its_keys(plain_db: Sample):
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.main_screen
        view = screen.conversation
        # After start-up the list has the focus and the first session is open: a conversation
        # key that means nothing in the list acts on it.
        assert app.focused is screen.sessions
        folded = view.folded
        await pilot.press("f")
        await until(pilot, lambda: view.folded != folded, "f to act on the conversation")
        # enter opens the highlighted session and the keys go to its conversation.
        await pilot.press("j", "enter")
        await settle(pilot)
        assert app.focused is view
        before = view.cursor
        await pilot.press("k")
        assert view.cursor != before and screen.sessions.cursor == 1


async def test_M_shows_the_memories_of_the_open_sessions_directory(plain_db: Sample):
    await add_memories(plain_db)
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["web"])
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MemoriesScreen))
        memories = app.screen
        assert isinstance(memories, MemoriesScreen)
        await until(pilot, lambda: memories.memories is not None)
        assert memories.directory == WEB and memories.memories == []
        assert "~/src/web" in "\n".join(widget_lines(memories.query_one("#memories-header")))
        await pilot.press("escape")
        await open_session(pilot, plain_db.ids["fix"])
        await pilot.press("M")
        await until(pilot, lambda: memories.memories)
        assert memories.directory != WEB and len(memories.memories or []) >= 3


async def test_memory_news_waits_for_the_reply_being_written(plain_db: Sample):
    provider = ScriptedProvider(["a "], then="hang")
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        use_provider(app, provider)
        runner = app.main_screen.runner
        await open_session(pilot, plain_db.ids["untitled"])
        await pilot.press("i", *"go", "enter")
        await until(pilot, lambda: runner.running is not None and runner.running.reply)
        shown = len(app._notifications)
        app.memory_tasks.tell("Remembered 2 new facts from your sessions.")
        await pilot.pause()
        assert len(app._notifications) == shown  # not over the streaming reply
        await pilot.press("escape")
        await turn_done(pilot)
        await until(
            pilot,
            lambda: any("Remembered 2 new facts" in n.message for n in app._notifications),
        )


async def test_ctrl_f_again_offers_the_query_in_its_scope(plain_db: Sample):
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        assert isinstance(search, SearchScreen) and search.scope is Scope.DIRECTORY
        await pilot.press(*"dark", "ctrl+s", "ctrl+s")
        assert search.scope is Scope.ALL
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main_screen)
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        again = app.screen
        assert isinstance(again, SearchScreen)
        assert again.input.value == "dark" and again.scope is Scope.ALL


def test_the_filter_hint_offers_only_keys_that_work_there():
    assert "s widens" in filter_hint(Scope.DIRECTORY, typing=False)
    assert "enter, then s" in filter_hint(Scope.WORKSPACE, typing=True)
    assert "widens" not in filter_hint(Scope.ALL, typing=False)
    assert "widens" not in filter_hint(Scope.ALL, typing=True)


def test_z_on_a_short_session_says_so():
    short = nothing_to_summarise(3, 20)
    assert "has 3 messages" in short and "before them" not in short
    assert "summarised already" in nothing_to_summarise(30, 20)
