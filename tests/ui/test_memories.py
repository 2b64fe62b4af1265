"""The memories screen (M): the list by importance, superseded ones, add / edit / delete,
jumping to a memory's source message, hostile facts, and the extraction queue's status."""

from __future__ import annotations

import pytest
from apphelpers import make_app, screen_text, settle, terminal_output, until, widget_lines
from memory_data import (
    HOSTILE_FACT,
    add_failed_extraction,
    add_memories,
    add_summarised_session,
    record_notifications,
    said,
)
from sample_data import API, HOSTILE_SHOWN, Sample
from test_untrusted_text import assert_inert, assert_no_control_bytes

from threadline.models import Message
from threadline.store import Store
from threadline.ui.screens.confirm import ConfirmScreen
from threadline.ui.screens.memories import MemoriesScreen
from threadline.ui.screens.memory_form import MemoryForm


async def open_memories(pilot) -> MemoriesScreen:
    await settle(pilot)
    await pilot.press("M")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MemoriesScreen)
    return screen


def list_text(screen: MemoriesScreen) -> str:
    return "\n".join(widget_lines(screen.memory_list))


def facts_shown(screen: MemoriesScreen) -> list[str]:
    return [row.memory.fact for row in screen.memory_list.rows or []]


async def stored(sample: Sample) -> list:
    async with await Store.open(sample.path) as store:
        return await store.get_memories(API, include_superseded=True)


@pytest.fixture(autouse=True)
def _notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here reads the notifications through `said`."""
    record_notifications(monkeypatch)


async def notifications(pilot) -> str:
    return await said(pilot)


async def test_M_lists_memories_by_importance_and_s_shows_superseded(plain_db: Sample):
    ids = await add_memories(plain_db)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memories(pilot)
        rows = screen.memory_list.rows
        assert [r.memory.id for r in rows] == [
            ids["writer"],  # 5
            ids["backoff"],  # 4, newer
            ids["correction"],  # 4
            ids["manual"],  # 2
        ]
        text = screen_text(app)
        assert "memories  ~/src/api  ·  4 memories  ·  1 superseded hidden (s shows them)" in text
        shown = list_text(screen)
        assert "★★★★★  decision    The store uses one writer connection" in shown
        assert "from “Design: the session store” · 3 d · #" in shown
        assert "added by hand · 1 h" in shown
        assert "checkpointed every five seconds" not in shown
        # The highlighted memory's whole fact and provenance are under the list.
        detail = "\n".join(widget_lines(screen.query_one("#memory-detail")))
        assert "readers use WAL." in detail
        assert "importance 5 · decision · from “Design: the session store”, message #" in detail
        assert "enter opens the session at this message" in detail
        await pilot.press("s")
        await settle(pilot)
        assert len(screen.memory_list.rows) == 5
        shown = list_text(screen)
        assert "Replies are checkpointed every five seconds." in shown
        assert f"superseded by #{ids['correction']}" in shown
        assert "1 superseded shown" in screen_text(app)
        # The superseded one's detail names what replaced it.
        while screen.memory_list.highlighted.memory.id != ids["old"]:
            await pilot.press("down")
        detail = "\n".join(widget_lines(screen.query_one("#memory-detail")))
        assert f"Superseded by #{ids['correction']}: Replies are checkpointed every second" in (
            detail
        )
        await pilot.press("s")
        await settle(pilot)
        assert ids["old"] not in [r.memory.id for r in screen.memory_list.rows]
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main_screen


async def test_an_empty_directory_says_how_memories_come(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_memories(pilot)
        assert screen.memory_list.rows == []
        text = screen_text(app)
        assert "No memories for ~/src/api yet." in text
        assert "a adds one by hand" in text
        assert "0 memories" in text


async def test_a_adds_a_memory_with_category_and_importance(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_memories(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, MemoryForm)
        # Saving an empty fact is refused, with a reason; the form stays.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MemoryForm)
        assert "Write the fact first" in screen_text(app)
        await pilot.press(*"Deploys go out on Tuesdays")
        await pilot.press("tab", "enter")  # the category: open the list
        await settle(pilot)
        await pilot.press("down", "enter")  # fact -> decision
        await pilot.press("tab", "enter")  # importance: open the list (5 first)
        await settle(pilot)
        await pilot.press("up", "up", "enter")  # 3 -> 5
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        (memory,) = await stored(plain_db)
        assert (memory.fact, memory.category, memory.importance, memory.is_manual) == (
            "Deploys go out on Tuesdays",
            "decision",
            5,
            True,
        )
        assert "Deploys go out on Tuesdays" in list_text(screen)
        assert screen.memory_list.highlighted.memory.id == memory.id
        assert "Remembered #" in await notifications(pilot)
        # Its provenance says "added" once: by hand, and when.
        detail = "\n".join(widget_lines(screen.query_one("#memory-detail")))
        assert "added by hand now" in detail and "added by hand · added" not in detail
        # esc cancels: nothing is written.
        await pilot.press("a")
        await settle(pilot)
        await pilot.press(*"never saved", "escape")
        await settle(pilot)
        assert len(await stored(plain_db)) == 1


async def test_e_edits_and_d_deletes_after_confirmation(plain_db: Sample):
    ids = await add_memories(plain_db)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memories(pilot)
        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, MemoryForm)
        assert "Edit memory #" in screen_text(app)
        # Unchanged: nothing is written.
        await pilot.press("enter")
        await settle(pilot)
        assert "Nothing changed." in await notifications(pilot)
        await pilot.press("e")
        await settle(pilot)
        await pilot.press("end", *" (decided in March)", "enter")
        await settle(pilot)
        memories = {m.id: m for m in await stored(plain_db)}
        assert memories[ids["writer"]].fact.endswith("readers use WAL. (decided in March)")
        assert memories[ids["writer"]].importance == 5
        assert "(decided in March)" in list_text(screen)
        # Delete the correction: asked first; n keeps it.
        while screen.memory_list.highlighted.memory.id != ids["correction"]:
            await pilot.press("down")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "Forget this memory for good?" in text
        assert "The memory it superseded will be current again." in text
        await pilot.press("n")
        await settle(pilot)
        assert ids["correction"] in {m.id for m in await stored(plain_db)}
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        memories = {m.id: m for m in await stored(plain_db)}
        assert ids["correction"] not in memories
        assert memories[ids["old"]].superseded_by is None  # current again
        assert "Replies are checkpointed every five seconds." in list_text(screen)
        assert "Forgot #" in await notifications(pilot)


async def test_enter_jumps_to_the_source_message(plain_db: Sample):
    ids = await add_memories(plain_db)
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # Start from another session, so the jump has to open the right one.
        app.main_screen.open_session(plain_db.ids["untitled"])
        await settle(pilot)
        screen = await open_memories(pilot)
        while screen.memory_list.highlighted.memory.id != ids["backoff"]:
            await pilot.press("down")
        source = screen.memory_list.highlighted.memory.source_message_id
        await pilot.press("enter")
        await settle(pilot)
        main = app.main_screen
        assert app.screen is main
        assert main.open_session_id == plain_db.ids["fix"]
        view = main.conversation
        assert view.has_focus
        item = view.cursor_item
        assert isinstance(item, Message) and item.id == source
        assert view.found == ("m", source)  # marked, as a search hit is, until the cursor moves
        text = "\n".join(widget_lines(view))
        assert "▌ Assistant" in text  # the mark on the source message
        # A manual memory has no source: a warning, and the screen stays.
        screen = await open_memories(pilot)
        while screen.memory_list.highlighted.memory.id != ids["manual"]:
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert "Added by hand: it has no source message." in await notifications(pilot)


async def test_jumping_into_a_folded_range_shows_it(plain_db: Sample):
    session_id = await add_summarised_session(plain_db.path, 300, 280)
    async with await Store.open(plain_db.path) as store:
        messages = await store.get_messages(session_id)
        target = messages[120]
        await store.save_memory(
            API,
            "Message 121 said something",
            "fact",
            3,
            session_id=session_id,
            source_message_id=target.id,
        )
    app = make_app(plain_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_memories(pilot)
        await pilot.press("enter")
        await settle(pilot)
        view = app.main_screen.conversation
        assert app.main_screen.open_session_id == session_id
        assert not view.folded
        assert view.cursor_item.id == target.id and view.found == ("m", target.id)
        lines = widget_lines(view)
        assert any("Message 121" in line for line in lines)
        assert view.has_older and view.has_newer


async def test_hostile_facts_are_shown_literally_everywhere(plain_db: Sample):
    ids = await add_memories(plain_db, hostile=True)
    app = make_app(plain_db)
    async with app.run_test(size=(220, 50), notifications=True) as pilot:
        screen = await open_memories(pilot)
        assert screen.memory_list.highlighted.memory.id == ids["hostile"]
        text = screen_text(app)
        for shown in HOSTILE_SHOWN:
            assert shown in list_text(screen), shown
            assert shown in "\n".join(widget_lines(screen.query_one("#memory-detail"))), shown
        assert "fact: [bold]x[/bold]" in text
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        # The edit form shows it on one line, control characters visible; saving it unchanged
        # writes nothing.
        await pilot.press("e")
        await settle(pilot)
        assert_no_control_bytes(terminal_output(app))
        assert "fact: [bold]x[/bold]" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        memories = {m.id: m for m in await stored(plain_db)}
        assert memories[ids["hostile"]].fact == HOSTILE_FACT
        # The delete dialog and the notification after it.
        await pilot.press("d")
        await settle(pilot)
        assert "fact: [bold]x[/bold] [link=https://evil.example]x[/link]" in screen_text(app)
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        await pilot.press("y")
        await settle(pilot)
        await until(pilot, lambda: "Forgot #" in screen_text(app))  # its toast is shown
        assert "[@click=app.quit]x[/]" in screen_text(app)
        assert_no_control_bytes(terminal_output(app))
        assert app.is_running


async def test_the_queue_status_shows_failed_and_retrying_extractions(plain_db: Sample):
    await add_failed_extraction(plain_db, "the model replied with text that is not JSON [/]")
    app = make_app(plain_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        header = screen_text(app).split("\n")[0]
        assert "memory: 1 queued · 1 failed (no extraction here)" in header
        screen = await open_memories(pilot)
        status = "\n".join(widget_lines(screen.query_one("#memory-status")))
        assert "unavailable here: no model provider configured" in status
        assert "✖ failed" in status and "“Fix the flaky retry test”" in status
        assert "3 attempts of 3" in status
        assert "not JSON [/]" in status
        assert "● retrying" in status and "next in 3 min" in status
        assert "1 attempt of 3" in status and "internal error" in status


async def test_x_without_a_provider_says_so(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_memories(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert "Cannot extract: no model provider configured" in await notifications(pilot)
        assert app.is_running


async def test_the_palette_and_help_list_the_memory_keys(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(140, 60)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "The project's memories" in text
        assert "Summarise the session's older messages now" in text
        await pilot.press("escape")
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "The project's memories (what new sessions are told)" in commands
        assert any(c.startswith("Summarise the session") for c in commands)
        # On the memories screen, ? is about that screen, and its keys are palette commands.
        screen = await open_memories(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "Memories screen (M)" in text
        for what in ("Add a memory by hand", "Open the session at the memory's message"):
            assert what in text
        assert "Scope" not in text  # the main screen's keys are not listed here
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        commands = {c.title: c for c in app.get_system_commands(screen)}
        assert "Add a memory by hand" in commands
        await commands["Add a memory by hand"].callback()
        await settle(pilot)
        assert isinstance(app.screen, MemoryForm)


async def test_the_list_draws_only_what_is_on_screen(plain_db: Sample):
    async with await Store.open(plain_db.path) as store:
        items = [
            {"fact": f"Fact number {i}", "category": "fact", "importance": 1 + i % 5}
            for i in range(3000)
        ]
        await store.save_memories(API, items)
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_memories(pilot)
        memory_list = screen.memory_list
        assert len(memory_list.rows) == 3000
        assert memory_list.virtual_size.height == 6000
        assert memory_list.drawn_lines < 60  # the screenful drawn, not 3,000 rows
        await pilot.press("end")
        await settle(pilot)
        assert memory_list.cursor == 2999
        assert "Fact number" in list_text(screen)
        assert memory_list.drawn_lines < 120


def test_importance_stars():
    from threadline.ui.widgets.memory_list import stars

    assert [stars(i) for i in (1, 3, 5)] == ["★☆☆☆☆", "★★★☆☆", "★★★★★"]
