"""The composer: writing a turn from the app, the reply streaming in, errors, cancel, retry,
the new-session form, the sidebar following the turn, and keys while a reply streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from apphelpers import make_app, screen_text, settle, terminal_output, until, widget_lines
from composer_helpers import (
    ScriptedProvider,
    chat_settings,
    composer_text,
    pane_text,
    scripted_settings,
    turn_done,
    type_and_send,
    use_provider,
    wait_for,
)
from internals import notifications
from sample_data import API, HOSTILE, HOSTILE_SHOWN, Sample
from test_untrusted_text import assert_no_control_bytes

from fakes.openai_server import FakeOpenAIServer
from threadline.models import Message
from threadline.store import Store
from threadline.ui.screens.new_session import NewSessionScreen
from threadline.ui.screens.setup import ProviderSetupScreen
from threadline.ui.widgets.composer import Composer, ComposerInput
from threadline.ui.widgets.conversation import ConversationView
from threadline.ui.widgets.session_list import SessionList

SIZE = (110, 36)


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible server on 127.0.0.1 (the model name picks its behaviour)."""
    with FakeOpenAIServer() as server:
        yield server


async def messages_of(db: Sample, session_id: str) -> list[Message]:
    async with await Store.open(db.path) as store:
        return await store.get_messages(session_id)


def titles(app) -> list[str]:
    return [row.display_title for row in app.main_screen.sessions.loaded_rows]


def notes(app) -> list[str]:
    return notifications(app)


async def open_untitled(pilot, db: Sample) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(db.ids["untitled"])
    await settle(pilot)


async def test_enter_sends_the_reply_streams_in_and_both_are_saved(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    model = "slow?tokens=60&delay=0.03"
    app = make_app(plain_db, settings=chat_settings(fake_server, model))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        screen = app.main_screen
        view = screen.conversation
        await type_and_send(pilot, "Why keyset?")
        # The message shows at once, the composer empties, and the reply streams in.
        await wait_for(pilot, lambda: "Why keyset?" in pane_text(app))
        assert screen.query_one(Composer).text == ""
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 10)
        middle = pane_text(app)
        assert "● writing…" in middle
        assert "t59" not in middle  # still streaming: an intermediate state
        assert "generating…" in composer_text(app)
        assert "esc cancels" in composer_text(app)
        await turn_done(pilot)
        end = pane_text(app)
        assert "t0 t1 t2" in end and "t59" in end
        assert "● writing…" not in end
        assert "generating" not in composer_text(app)
        # Both messages are in the database, the reply complete.
        saved = await messages_of(plain_db, plain_db.ids["untitled"])
        assert [m.role for m in saved[-2:]] == ["user", "assistant"]
        assert saved[-2].content == "Why keyset?"
        assert saved[-1].content == "".join(f"t{i} " for i in range(60))
        assert saved[-1].complete and saved[-1].stop_reason == "stop"
        # The view follows the end of the conversation.
        assert view.scroll_y == view.max_scroll_y
        # The sidebar moved the session up (below the pinned one) with its new count.
        rows = screen.sessions.loaded_rows
        assert rows[1].id == plain_db.ids["untitled"] and rows[1].message_count == 4


async def test_the_stream_repaints_at_a_pace_not_per_token(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server, "fast?tokens=2000"))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        view = app.main_screen.conversation
        captured = []
        real = view.stream_begin

        async def spy(message, text=""):
            await real(message, text)
            captured.append(view.live)

        view.stream_begin = spy  # type: ignore[method-assign]
        await type_and_send(pilot, "go")
        await turn_done(pilot)
        live = captured[0]
        assert live.deltas == 2000
        assert 1 <= live.renders < live.deltas  # paced (the rule is tested below)
        # The stored reply's last frame follows the turn's end: wait for it to be painted.
        await until(pilot, lambda: "t1999" in pane_text(app), "the reply's end on screen")


async def test_shift_enter_and_ctrl_j_insert_a_new_line_and_blank_is_not_sent(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        composer = app.main_screen.query_one(Composer)
        await pilot.press("i", "a", "ctrl+j", "b", "shift+enter", "c")
        assert composer.text == "a\nb\nc"
        await pilot.press("ctrl+a")  # TextArea: start of the line
        composer.text = "   \n  "
        await pilot.press("enter")
        await app.workers.wait_for_complete()  # a turn, had one started, would have sent
        assert fake_server.requests == []  # whitespace is not sent
        assert composer.text == "   \n  "
        composer.text = ""
        await type_and_send(pilot, "one\ntwo")
        await turn_done(pilot)
        saved = await messages_of(plain_db, plain_db.ids["untitled"])
        assert saved[-2].content == "one\ntwo"
        assert saved[-1].content == "You said: one\ntwo"


async def test_app_keys_are_text_in_the_composer(plain_db: Sample, fake_server: FakeOpenAIServer):
    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.main_screen
        await pilot.press("i")
        assert isinstance(app.focused, ComposerInput)
        await pilot.press("q", "slash", "d", "n", "s", "r", "p", "question_mark", "i", "m")
        await settle(pilot)
        assert screen.query_one(Composer).text == "q/dnsrp?im"
        assert app.is_running and app.screen is screen  # no quit, no dialog
        assert not screen.filter_input.display  # / did not open the filter
        assert len(screen.sessions.loaded_rows) == 4  # d deleted nothing
        assert not screen.conversation.show_meta


async def test_tab_order_is_list_pane_composer_and_i_focuses_the_composer(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, SessionList)
        await pilot.press("tab")
        assert isinstance(app.focused, ConversationView)
        await pilot.press("tab")
        assert isinstance(app.focused, ComposerInput)
        await pilot.press("tab")
        assert isinstance(app.focused, SessionList)
        await pilot.press("shift+tab")
        assert isinstance(app.focused, ComposerInput)
        await pilot.press("shift+tab", "shift+tab")
        assert isinstance(app.focused, SessionList)
        await pilot.press("i")
        assert isinstance(app.focused, ComposerInput)


async def test_without_a_provider_the_composer_is_off_and_says_how_to_set_one(
    plain_db: Sample,
):
    app = make_app(plain_db)  # default settings: no provider
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        composer = app.main_screen.query_one(Composer)
        assert not composer.enabled
        assert composer.input.disabled
        hint = composer_text(app)
        flat = " ".join(hint.split())
        assert "No model provider yet: press i to set one up" in flat
        assert "ctrl+p: Set up a model provider" in flat
        await pilot.press("tab", "tab")
        assert isinstance(app.focused, SessionList)  # skipped: not focusable
        await pilot.press("i")  # opens the setup form (tests/ui/test_setup.py)
        await until(pilot, lambda: isinstance(app.screen, ProviderSetupScreen), "the form")
        assert not isinstance(app.focused, ComposerInput)


async def test_a_provider_error_shows_in_the_conversation_and_ctrl_r_retries(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    # "flaky": the first request gets a 500 (no retries in these settings), the next succeeds.
    app = make_app(plain_db, settings=chat_settings(fake_server, "flaky?fail=1"))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        await type_and_send(pilot, "Will it fail?")
        await turn_done(pilot)
        text = pane_text(app)
        assert "Will it fail?" in text
        assert "✖ error" in text
        assert "500" in text
        assert "ctrl+r answers your last message again" in composer_text(app)
        assert app.is_running
        saved = await messages_of(plain_db, plain_db.ids["untitled"])
        assert saved[-1].stop_reason == "error" and saved[-1].role == "assistant"
        await pilot.press("ctrl+r")
        await turn_done(pilot)
        saved = await messages_of(plain_db, plain_db.ids["untitled"])
        assert [m.role for m in saved[-3:]] == ["user", "assistant", "assistant"]
        assert saved[-1].content == "You said: Will it fail?" and saved[-1].complete
        text = pane_text(app)
        assert text.count("Will it fail?") == 2  # the question once, the answer echoing it
        assert "You said: Will it fail?" in text
        assert "ctrl+r" not in composer_text(app)


async def test_esc_cancels_and_keeps_the_partial_reply(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server, "slow?tokens=300&delay=0.02"))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        view = app.main_screen.conversation
        await type_and_send(pilot, "Go on")
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 5)
        await pilot.press("escape")
        await turn_done(pilot)
        saved = await messages_of(plain_db, plain_db.ids["untitled"])
        reply = saved[-1]
        assert reply.role == "assistant" and reply.stop_reason == "cancelled"
        assert reply.content.startswith("t0 t1 t2 t3 t4 ")
        assert "t299" not in reply.content
        text = pane_text(app)
        assert "■ cancelled" in text
        assert reply.content.split()[-1] in text
        assert "ctrl+r answers your last message again" in composer_text(app)


async def test_sending_while_a_reply_streams_is_refused_and_keys_still_work(plain_db: Sample):
    # The reply streams a few words and then waits (for as long as it takes) until cancelled.
    provider = ScriptedProvider(["a ", "b ", "c ", "d "], then="hang")
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        use_provider(app, provider)
        screen = app.main_screen
        view = screen.conversation
        await type_and_send(pilot, "first")
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 3)
        await pilot.press(*"second", "enter")
        await pilot.pause()
        assert screen.query_one(Composer).text == "second"  # kept
        assert any("still being written" in n for n in notes(app))
        # Keys are answered while the reply streams: to the list, down a row, details on.
        await pilot.press("tab")
        assert isinstance(app.focused, SessionList)
        await pilot.press("j")
        assert screen.sessions.cursor == 2
        await pilot.press("m")
        await wait_for(pilot, lambda: view.show_meta)
        assert screen.runner.busy  # all that while the reply was still streaming
        await pilot.press("escape")
        await turn_done(pilot)
        assert provider.sent == 4  # one turn: "second" was never sent


async def test_n_makes_a_session_with_the_first_message_and_selects_it(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.main_screen
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewSessionScreen)
        await pilot.press(*"echo-model", "tab", *"Be", "space", *"brief.", "enter")
        await settle(pilot)
        assert app.screen is screen
        assert isinstance(app.focused, ComposerInput)
        assert "Model: echo-model" in pane_text(app)
        assert "System prompt: Be brief." in pane_text(app)
        assert len(screen.sessions.loaded_rows) == 4  # nothing written yet
        await pilot.press(*"Plan", "space", *"the", "space", *"release", "ctrl+j", *"today")
        await pilot.press("enter")
        await turn_done(pilot)
        await settle(pilot)
        rows = screen.sessions.loaded_rows
        assert len(rows) == 5
        new = rows[1]  # under the pinned session
        assert new.title == "Plan the release" and new.message_count == 2
        assert screen.open_session_id == new.id
        assert screen.sessions.highlighted.id == new.id
        assert "Plan the release" in screen_text(app)  # the title line
        async with await Store.open(plain_db.path) as store:
            session = await store.get_session(new.id)
        assert session.model == "echo-model" and session.system_prompt == "Be brief."
        assert session.working_dir == API
        body = fake_server.requests_of("chat")[-1]
        assert body["model"] == "echo-model"
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_esc_in_the_new_session_form_cancels(plain_db: Sample, fake_server):
    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        opened = app.main_screen.open_session_id
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main_screen
        assert app.main_screen.open_session_id == opened


async def test_the_sidebar_follows_and_the_poll_does_not_redo_own_writes(
    plain_db: Sample, fake_server: FakeOpenAIServer, monkeypatch
):
    app = make_app(
        plain_db,
        settings=chat_settings(fake_server, "slow?tokens=60&delay=0.03"),
        poll_seconds=0.1,
    )
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        screen = app.main_screen
        assert titles(app)[2].startswith("How do I page")
        calls: list[int] = []
        original = screen.data_changed

        async def counting() -> None:
            calls.append(1)
            await original()

        monkeypatch.setattr(screen, "data_changed", counting)
        polls: list[int] = []
        polled = asyncio.Event()
        real_poll = app.store.outside_data_version

        async def poll() -> int:
            polls.append(1)
            polled.set()
            return await real_poll()

        monkeypatch.setattr(app.store, "outside_data_version", poll)
        await type_and_send(pilot, "More?")
        # Moved up at once (before the reply ends), below the pinned session.
        await wait_for(pilot, lambda: titles(app)[1].startswith("How do I page"))
        assert screen.runner.busy
        await turn_done(pilot)
        seen = len(polls)
        await until(pilot, lambda: len(polls) >= seen + 3, "three more polls", wake=polled)
        await settle(pilot)
        # The reply's writes (user message, reply row, checkpoints, final write) were shown
        # as they were made: the data_version poll saw nothing to refresh.
        assert calls == []
        # A write by another process is still noticed.
        async with await Store.open(plain_db.path) as other:
            await other.update_session(plain_db.ids["fix"], title="Changed elsewhere")
        await wait_for(pilot, lambda: "Changed elsewhere" in titles(app))


async def test_a_reply_streaming_in_another_session_comes_back_live(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server, "slow?tokens=150&delay=0.02"))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        screen = app.main_screen
        view = screen.conversation
        await type_and_send(pilot, "Long one")
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 3)
        fix = plain_db.ids["fix"]
        screen.open_session(fix)
        await until(pilot, lambda: view.session is not None and view.session.id == fix)
        assert view.live is None and "t2 " not in pane_text(app)
        screen.open_session(plain_db.ids["untitled"])
        await wait_for(pilot, lambda: view.live is not None)
        assert "● writing…" in pane_text(app)
        await turn_done(pilot)
        assert "t149" in pane_text(app)


async def test_hostile_deltas_are_shown_literally(plain_db: Sample, fake_server: FakeOpenAIServer):
    # The fake server echoes the message word by word: markup, SGR, BEL, OSC 0 and OSC 8
    # arrive as deltas of the reply.
    app = make_app(plain_db, settings=chat_settings(fake_server, "echo?delay=0.05"))
    async with app.run_test(size=(200, 50)) as pilot:
        await open_untitled(pilot, plain_db)
        view = app.main_screen.conversation
        app.main_screen.runner.send(HOSTILE)
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 8)
        assert_no_control_bytes(terminal_output(app))  # mid-stream
        await turn_done(pilot)
        assert_no_control_bytes(terminal_output(app))
        flat = " ".join(pane_text(app).replace("▎", " ").split())
        for shown in HOSTILE_SHOWN:
            assert flat.count(" ".join(shown.split())) >= 2, shown  # the message and the echo
        assert app.is_running


async def test_pastes_are_made_visible(plain_db: Sample, fake_server: FakeOpenAIServer):
    from textual import events

    app = make_app(plain_db, settings=chat_settings(fake_server))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        area = app.main_screen.query_one(ComposerInput)
        area.post_message(events.Paste("one\r\ntwo \x1b]0;pwned\x07 [bold]x[/bold]"))
        await pilot.pause()
        assert area.text == "one\ntwo ^[]0;pwned^G [bold]x[/bold]"
        assert_no_control_bytes(terminal_output(app))


async def test_quitting_mid_reply_saves_the_partial_reply(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    app = make_app(plain_db, settings=chat_settings(fake_server, "slow?tokens=300&delay=0.02"))
    async with app.run_test(size=SIZE) as pilot:
        await open_untitled(pilot, plain_db)
        view = app.main_screen.conversation
        await type_and_send(pilot, "Bye")
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas >= 5)
        await pilot.press("ctrl+q")
    saved = await messages_of(plain_db, plain_db.ids["untitled"])
    assert saved[-2].content == "Bye"
    assert saved[-1].stop_reason == "cancelled" and saved[-1].content.startswith("t0 t1 t2 t3 ")


async def test_no_model_for_a_session_is_explained(plain_db: Sample, fake_server):
    settings = chat_settings(fake_server)
    settings.provider.model = None
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the design session (model gpt-4o) is open: writable
        assert app.main_screen.query_one(Composer).enabled
        assert "gpt-4o" in composer_text(app)
        await open_untitled(pilot, plain_db)  # no model of its own, none configured
        composer = app.main_screen.query_one(Composer)
        assert not composer.enabled
        assert "No model chosen yet: press i to choose one" in " ".join(composer_text(app).split())
        lines = widget_lines(composer)
        assert lines


async def long_session(db: Sample, count: int = 30) -> str:
    """A session in ~/src/api of `count` long messages (more than a small context holds)."""
    body = "word " * 400
    async with await Store.open(db.path) as store:
        session = await store.create_session(API, title="A long talk")
        for i in range(count):
            await store.add_message(session.id, "user" if i % 2 == 0 else "assistant", body)
    return session.id


async def test_summarising_shows_in_the_composer_and_the_summary_in_the_pane(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    session_id = await long_session(plain_db)
    settings = chat_settings(fake_server, "slow?tokens=20&delay=0.02")
    settings.context.max_context_tokens = 3000
    settings.context.keep_recent_messages = 6
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.main_screen
        screen.open_session(session_id)
        await settle(pilot)
        labels: list[str] = []
        real = screen.runner.show_progress

        def busy(label=None, tokens=None):
            if label:
                labels.append(label)
            real(label, tokens)

        screen.runner.show_progress = busy  # type: ignore[method-assign]
        await type_and_send(pilot, "Sum it up?")
        await turn_done(pilot)
        assert "summarising earlier messages" in labels
        assert labels.index("summarising earlier messages") < labels.index("generating")
        view = screen.conversation
        assert any(item.kind == "summary" for item in view.items)
        assert "t19" in pane_text(app)  # the reply came after the summary
        assert fake_server.kinds[0] == "summary" and fake_server.kinds[-1] == "chat"


async def test_a_failed_summary_is_a_notice_and_the_turn_goes_on(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    session_id = await long_session(plain_db)
    settings = chat_settings(fake_server)
    settings.context.max_context_tokens = 3000
    settings.context.keep_recent_messages = 6
    fake_server.script("summary", 500)
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main_screen.open_session(session_id)
        await settle(pilot)
        await type_and_send(pilot, "Still there?")
        await turn_done(pilot)
        assert any("could not summarise the earlier messages" in n for n in notes(app))
        assert "You said: Still there?" in pane_text(app)
