"""Imported sessions in the app: the sidebar tags their source; tool calls are one line with
their answer, a tool's output one line that enter, e or a click opens; thinking shows with t;
the compaction summary sits in place; hostile text in titles, tool output and thinking is shown
literally and no control byte reaches the terminal."""

from __future__ import annotations

from pathlib import Path

import imported_data
import pytest
from apphelpers import (
    find_on_screen,
    make_app,
    screen_text,
    settle,
    terminal_output,
    widget_lines,
)
from sample_data import copied
from test_untrusted_text import assert_inert, assert_no_control_bytes

from threadline.ui.screens.help import HelpScreen


@pytest.fixture
def imported_db(built):  # noqa: ANN001
    return copied(built, "imported.db", imported_data.build)


@pytest.fixture
def hostile_imported_db(built):  # noqa: ANN001
    return copied(built, "hostile-imported.db", imported_data.build, hostile=True)


async def open_cc(pilot, sample) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(sample.ids["cc"])
    await settle(pilot)


def pane(app) -> str:
    return "\n".join(widget_lines(app.main_screen.conversation))


async def test_the_sidebar_tags_imported_sessions(imported_db) -> None:
    app = make_app(imported_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        sidebar = widget_lines(app.main_screen.sessions)
        details = {
            sidebar[i].strip(" ▌"): sidebar[i + 1].strip(" ▌")
            for i, line in enumerate(sidebar[:-1])
            if any(t in line for t in ("Fix the failing", "CSV reading", "Quick question"))
        }
        tags = sorted(d.split(" · ")[0] for d in details.values())
        assert tags == ["cc", "gpt", "llm"], details
        # Sessions threadline wrote carry no tag.
        assert any(line.strip(" ▌").startswith("6 msgs") for line in sidebar)


async def test_tools_collapse_and_open_with_enter_e_and_a_click(imported_db) -> None:
    app = make_app(imported_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_cc(pilot, imported_db)
        text = pane(app)
        assert "⚙ Bash  pytest -q  → exit 1" in text
        assert "⚙ Read  /work/demo/setup.cfg  → ✖ File does not exist." in text
        assert "↳ F.  (+3 lines)" in text
        assert "FAILED tests/test_app.py" not in text
        assert "≡ Summary of messages 1–5" in text  # the compaction, in place
        header = "\n".join(widget_lines(app.main_screen.query_one("SessionTitle")))
        assert "Fix the failing tests" in header and "from Claude Code" in header
        view = app.main_screen.conversation
        tool = next(i for i, item in enumerate(view.items) if item.role == "tool")
        await pilot.press("tab")
        view._set_cursor(tool)
        await pilot.press("enter")
        await settle(pilot)
        assert "FAILED tests/test_app.py::test_start - ImportError" in pane(app)
        assert "↳ 4 lines of output" in pane(app)
        await pilot.press("e")
        await settle(pilot)
        assert "FAILED tests/test_app.py" not in pane(app)
        # A click on the reply's call line opens its calls' input.
        where = find_on_screen(app, "⚙ Read")
        assert where is not None
        await pilot.click(offset=where)
        await settle(pilot)
        assert '"file_path": "/work/demo/setup.cfg"' in pane(app)


async def test_t_shows_and_hides_thinking(imported_db) -> None:
    app = make_app(imported_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_cc(pilot, imported_db)
        assert "∴ Thinking · 2 lines · t shows" in pane(app)
        assert "Check pytest first" not in pane(app)
        await pilot.press("t")
        await settle(pilot)
        assert "∴ Thinking · t hides" in pane(app)
        assert "Check pytest first, then the config." in pane(app)
        await pilot.press("t")
        await settle(pilot)
        assert "Check pytest first" not in pane(app)


async def test_help_lists_the_thinking_and_expand_keys(imported_db) -> None:
    app = make_app(imported_db)
    async with app.run_test(size=(120, 64)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        box = app.screen.query_one("#help-box")
        while box.scroll_y < box.max_scroll_y:
            box.scroll_to(y=box.scroll_y + box.size.height - 2, animate=False)
            await pilot.pause()
            text += "\n" + screen_text(app)
        flat = " ".join(text.replace("│", " ").split())
        assert "t Show or hide the model's reasoning in sessions imported from other tools" in flat
        assert "an imported reply's tool calls (their input), a tool's output" in flat


async def test_hostile_imported_text_is_literal_and_inert(hostile_imported_db) -> None:
    app = make_app(hostile_imported_db)
    async with app.run_test(size=(200, 60)) as pilot:
        app.main_screen.query_one("#sidebar").styles.width = 120  # whole titles
        await open_cc(pilot, hostile_imported_db)
        view = app.main_screen.conversation
        await pilot.press("tab", "t")
        for i, item in enumerate(view.items):
            if item.kind == "message" and item.role == "tool":
                view.toggle_summary(i)
        await settle(pilot)
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        app.main_screen.query_one("#sidebar").styles.width = 30  # a wide pane: lines whole
        await settle(pilot)
        text = pane(app)
        shown = (
            "[bold red]not markup[/] ^[]0;pwned^G ^[[31mred <U+202E>gnp.exe [@click=app.quit]q[/]"
        )
        assert "Fix the failing tests " + shown in sidebar
        assert "Check pytest first, then the config. " + shown in text  # thinking
        assert "FAILED tests/test_app.py::test_start - ImportError " + shown in text  # output
        assert "⚙ Read  /work/demo/setup.cfg [bold red]not markup[/] ^[]0;pwned^G" in text
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        where = find_on_screen(app, "[@click=app.quit]q[/]")
        assert where is not None
        await pilot.click(offset=(where[0] + 3, where[1]))
        await settle(pilot)
        assert app.is_running and app.return_code is None


@pytest.mark.parametrize("width", [30, 60, 120])
def test_a_call_line_keeps_its_answer_in_sight(width: int) -> None:
    """A long call summary is cut before its answer is; the height estimate matches."""
    from rich.console import Console
    from test_live_reply import STYLES

    from threadline.models import Message
    from threadline.ui.widgets.blocks import BlockState, estimate_height, render_block

    path = "/home/dev/" + "very-long-directory/" * 8 + "file.py"
    reply = Message(
        id=2,
        session_id="s",
        role="assistant",
        content="",
        created_at=imported_data.NOW,
        payload={
            "source": "claude-code",
            "records": [],
            "kind": "reply",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "Edit", "input": {}, "summary": path}
            ],
        },
    )
    state = BlockState(results=(("c1", "exit 0"),))
    console = Console(width=width, color_system=None)
    lines = render_block(reply, width, state, STYLES, console, console.options, imported_data.NOW)
    texts = [line.text.rstrip() for line in lines]
    assert texts[0] == "Assistant"
    assert texts[1].startswith("⚙ Edit  /home/dev/v") and texts[1].endswith("…  → exit 0")
    assert all(line.cell_length == width for line in lines)
    assert len(lines) == estimate_height(reply, width, state) == 3  # header, call, spacer


async def test_continuing_an_imported_session_sends_its_tools_as_text(tmp_path: Path) -> None:
    """The composer writes the next turn of the imported session (without its compaction
    here) with threadline's provider: the request carries the session as text (calls and
    results bracketed, no thinking, no injected context or notice), the reply streams in and is
    saved after the imported ones."""
    from composer_helpers import chat_settings, pane_text, turn_done, type_and_send

    from fakes.openai_server import FakeOpenAIServer
    from threadline.store import Store

    imported_db = await imported_data.build(tmp_path / "whole.db", compacted=False)
    with FakeOpenAIServer() as server:
        app = make_app(imported_db, settings=chat_settings(server))
        async with app.run_test(size=(120, 36)) as pilot:
            await open_cc(pilot, imported_db)
            await type_and_send(pilot, "Now lint it")
            await turn_done(pilot)
            assert "Now lint it" in pane_text(app)
        (body,) = server.requests_of("chat")
    sent = [(m["role"], m["content"]) for m in body["messages"]]
    texts = "\n".join(content for _, content in sent)
    assert ("user", "Now lint it") == sent[-1]
    assert '[called Bash with {"command": "pytest -q", "description": "Run the tests"}]' in texts
    assert "[result of Bash (call-1)]\nF." in texts
    assert "[result of Read (call-2), an error]\nFile does not exist." in texts
    assert "Check pytest first" not in texts  # the thinking
    assert "system-reminder" not in texts and "Request interrupted" not in texts
    async with await Store.open(imported_db.path) as store:
        saved = await store.get_messages(imported_db.ids["cc"])
    assert [m.role for m in saved[-2:]] == ["user", "assistant"]
    assert saved[-2].content == "Now lint it" and saved[-1].complete


async def test_a_real_claude_code_compaction_sits_in_place_folded(tmp_path: Path) -> None:
    """The spotter sample (a compact_boundary and its isCompactSummary line, read from
    ../shared/import-samples): the session opens at the summary standing for the 132 messages
    before it, folded (one line says so), tools as one-liners after it; f shows them."""
    from sources.helpers import sample
    from threadline import sources
    from threadline.store import Store

    path = sample(
        "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl.gz", tmp_path / "s"
    )
    db = tmp_path / "real.db"
    async with await Store.open(db) as store:
        await store.load_history(sources.get("claude-code").read(path))
        (row,) = await store.list_sessions("all")
    app = make_app(db, working_dir=row.working_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(row.id)
        await settle(pilot)
        await pilot.press("tab", "home")
        await settle(pilot)
        text = pane(app)
        assert "▸ 132 earlier messages folded into the summary below · f shows them" in text
        assert "≡ Summary of messages 1–132" in text
        assert "· Conversation compacted" in text
        assert "⚙ Edit  /home/USER/projects/" in text
        assert "cc · 293 msgs" in "\n".join(widget_lines(app.main_screen.sessions))
        await pilot.press("f")
        await settle(pilot)
        assert "folded into the summary below" not in pane(app)
