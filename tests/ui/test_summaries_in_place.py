"""Summaries in place: "Summary of messages A–B" labels, what the latest summary stands for faded
or folded (f), compacted sessions, and Z (summarise now) against the fake server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apphelpers import (
    find_on_screen,
    make_app,
    screen_text,
    settle,
    terminal_output,
    until,
    widget_lines,
)
from memory_data import add_summarised_session, record_notifications, said
from sample_data import API, HOSTILE_SHOWN, Sample
from test_memory_upkeep import with_provider
from test_untrusted_text import assert_inert, assert_no_control_bytes

from fakes.openai_server import FakeOpenAIServer
from threadline.models import Message, Summary
from threadline.store import Store
from threadline.ui.widgets.conversation import FOLD_MIN


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def pane(app) -> str:
    return "\n".join(widget_lines(app.main_screen.conversation))


async def open_session(pilot, session_id: str) -> None:
    pilot.app.main_screen.open_session(session_id)
    await settle(pilot)


@pytest.fixture(autouse=True)
def _notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here reads the notifications through `said`."""
    record_notifications(monkeypatch)


async def notes(pilot) -> str:
    return await said(pilot)


async def test_labels_count_positions_and_short_ranges_are_faded(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = app.main_screen.conversation
        assert app.main_screen.open_session_id == plain_db.ids["design"]
        text = pane(app)
        # The design session's summary stands for its first three messages.
        assert "≡ Summary of messages 1–3 · 1,240 tokens" in text
        assert "#" not in text.split("≡ Summary of messages")[1].split("\n")[0]
        # Three messages are not folded: shown, faded (dimmer than the ones after).
        assert not view.folded
        assert "You are a careful database engineer." in text
        assert "faded = summarised (f folds)" in text
        covered = [i for i, item in enumerate(view.items) if view.window.facts.covers(item)]
        assert [view.items[i].role for i in covered] == ["system", "user", "assistant"]
        assert view.item_state(covered[0]).covered
        assert not view.item_state(len(view.items) - 1).covered


def _colour(app, text: str):
    """The foreground colour `text` is drawn in."""
    from apphelpers import screen_segments

    for segment in screen_segments(app):
        if text in segment.text and segment.style is not None:
            return segment.style.color
    raise AssertionError(f"{text!r} is not on screen")


async def test_faded_messages_are_drawn_dimmer(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        covered = _colour(app, "How should the store handle concurrent writers?")
        after = _colour(app, "And what if the process dies mid-reply?")
        assert covered != after
        c, a = covered.get_truecolor(), after.get_truecolor()
        assert sum(c) < sum(a)  # blended towards the (dark) background


async def test_a_long_range_is_folded_and_f_shows_it(plain_db: Sample):
    session_id = await add_summarised_session(plain_db.path, 300, 280)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        assert view.folded
        # The window starts at the summary: nothing it stands for was even fetched.
        assert isinstance(view.items[0], Summary) and len(view.items) == 21
        assert not view.has_older
        await pilot.press("tab", "home")
        await settle(pilot)
        text = pane(app)
        assert "▸ 280 earlier messages folded into the summary below · f shows them" in text
        assert "≡ Summary of messages 1–280 · 64 tokens" in text
        assert "Message 281" in text and "Message 280" not in text
        # f shows them (faded): at the top, the page before the summary comes in at once.
        await pilot.press("f")
        await settle(pilot)
        assert not view.folded and view.has_older
        assert any(isinstance(i, Message) and i.content == "Message 280" for i in view.items)
        assert view.item_state(0).covered
        # home now goes to the very start.
        await pilot.press("home")
        await settle(pilot)
        text = pane(app)
        assert "start of the session · 300 messages · faded = summarised (f folds)" in text
        assert "Message 1" in [line.strip(" ▎▌▁▂▃▄▅▆▇█") for line in text.split("\n")]
        assert view.has_newer
        # f again folds them away: back to the summary, on top.
        await pilot.press("f")
        await settle(pilot)
        assert view.folded and isinstance(view.items[0], Summary)
        assert "▸ 280 earlier messages folded" in pane(app)
        # A click on the fold line shows them too.
        view.scroll_to(y=0, animate=False)
        await settle(pilot)
        x, y = find_on_screen(app, "▸ 280 earlier messages folded")
        await pilot.click(offset=(x, y))
        await settle(pilot)
        assert not view.folded


async def test_reopening_keeps_the_fold_chosen_for_the_session(plain_db: Sample):
    session_id = await add_summarised_session(plain_db.path, 60, 40)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        assert view.folded
        await pilot.press("tab", "f")
        await settle(pilot)
        assert not view.folded
        await open_session(pilot, session_id)  # e.g. enter on it again
        assert not view.folded
        await open_session(pilot, plain_db.ids["fix"])
        await open_session(pilot, session_id)  # another session in between: the default
        assert view.folded


async def test_f_without_a_summary_says_why(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, plain_db.ids["fix"])
        await pilot.press("tab", "f")
        assert "This session has no summary: nothing to fold." in await notes(pilot)


async def test_a_compacted_session_shows_the_summary_alone_with_a_note(plain_db: Sample):
    session_id = await add_summarised_session(plain_db.path, 30, 20, compact=True)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        await pilot.press("tab", "home")
        await settle(pilot)
        text = pane(app)
        assert "≡ Summary of earlier messages (compacted) · 64 tokens" in text
        assert "The messages it stands for were removed (compacted)" in text
        assert "start of the session · 10 messages" in text
        assert isinstance(view.items[0], Summary)
        await pilot.press("f")
        assert "compacted away" in await notes(pilot)


async def test_a_session_compacted_after_two_summaries_says_removed_once(plain_db: Sample):
    async with await Store.open(plain_db.path) as store:
        session = await store.create_session(API, title="Twice summarised")
        ids = [
            (await store.add_message(session.id, "user", f"Message {i + 1}")).id for i in range(30)
        ]
        await store.save_summary(session.id, "First summary.", ids[0], ids[9], token_count=8)
        await store.save_summary(session.id, "Second summary.", ids[0], ids[19], token_count=9)
        await store.delete_messages_before(session.id, ids[19] + 1)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session.id)
        await pilot.press("tab", "home")
        await settle(pilot)
        text = pane(app)
        assert "First summary." in text and "Second summary." in text
        assert text.count("The messages it stands for were removed (compacted)") == 1
        assert text.count("An earlier summary: the latest one") == 1
        # The note of removal is on the latest summary, the one that stands for them now.
        assert text.index("Second summary.") > text.index("were removed (compacted)")
        assert text.index("were removed (compacted)") > text.index("First summary.")


async def test_hostile_summary_text_stays_literal_with_the_new_label(sample_db: Sample):
    app = make_app(sample_db)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        await open_session(pilot, sample_db.ids["hostile"])
        view = app.main_screen.conversation
        summary = next(i for i, item in enumerate(view.items) if isinstance(item, Summary))
        view.toggle_summary(summary)
        await settle(pilot)
        text = pane(app)
        assert "≡ Summary of messages 2–3 · 9 tokens" in text
        assert f"summary: {HOSTILE_SHOWN[0]}" in text
        for shown in HOSTILE_SHOWN:
            assert shown in text
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)


# ---------------------------------------------------------------------- Z


async def test_Z_summarises_now_and_the_range_folds_in_place(
    plain_db: Sample, server: FakeOpenAIServer
):
    session_id = await add_summarised_session(plain_db.path, 40, 0)
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        await pilot.press("tab", "Z")
        await settle(pilot)
        assert server.kinds == ["summary"]
        said = await notes(pilot)
        assert "Summarising “Summarised session (40 messages)”…" in said
        assert "Summarised messages 1–20 of “Summarised session (40 messages)”" in said
        # In place: the summary after message 20, what it stands for folded (20 > FOLD_MIN).
        assert 20 > FOLD_MIN
        assert view.folded
        assert isinstance(view.items[0], Summary)
        assert view.items[0].content.startswith("Summary of messages #")
        await pilot.press("home")
        await settle(pilot)
        text = pane(app)
        assert "▸ 20 earlier messages folded into the summary below" in text
        assert "≡ Summary of messages 1–20" in text
        assert "summarising…" not in screen_text(app)
        # Nothing left to do: said so, no request.
        await pilot.press("Z")
        await settle(pilot)
        assert "Nothing to summarise: the newest 20 messages stay as they are" in (
            await notes(pilot)
        )
        assert server.kinds == ["summary"]


async def test_Z_failing_is_a_one_line_notification(plain_db: Sample, server: FakeOpenAIServer):
    session_id = await add_summarised_session(plain_db.path, 30, 0)
    server.script("summary", 500)
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        await pilot.press("tab", "Z")
        await settle(pilot)
        errors = (await said(pilot, "error")).split("\n")
        assert len(errors) == 1
        assert errors[0].startswith("Summarising failed:")
        async with await Store.open(plain_db.path) as store:
            assert await store.latest_summary(session_id) is None
        assert app.is_running


async def test_Z_without_a_provider_says_how_to_set_one(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("Z")
        await settle(pilot)
        said = await notes(pilot)
        assert "Cannot summarise: no model provider configured" in said
        assert app.is_running


async def test_a_summary_written_elsewhere_appears_in_place(plain_db: Sample):
    """Another process (threadline chat, sessions summarize) writes a summary: the open view
    takes it in where it belongs, and its range folds when the view is at the end."""
    session_id = await add_summarised_session(plain_db.path, 40, 0)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_session(pilot, session_id)
        view = app.main_screen.conversation
        assert not any(isinstance(i, Summary) for i in view.items)
        async with await Store.open(plain_db.path) as store:
            messages = await store.get_messages(session_id)
            await store.save_summary(
                session_id, "Written elsewhere.", messages[0].id, messages[24].id, token_count=5
            )
        await until(pilot, lambda: view.latest_summary is not None, "the poll to see it")
        await settle(pilot)
        assert view.latest_summary is not None and view.folded
        assert isinstance(view.items[0], Summary) and view.items[0].content == "Written elsewhere."
        assert len(view.items) == 16
