"""How imported messages are laid out (ui/message_layout.py) and paired in the window
(ui/timeline.py), without Textual: tool calls one line each with their answer when the window
holds it, tool output one tight line that opens, thinking behind its toggle, context and notices
dimmed. Messages are hand-written in the shape the readers make (threadline.records)."""

from __future__ import annotations

from typing import Any

from threadline.models import Message
from threadline.transcript import call_line, context_message, source_tag, transcript_lines
from threadline.ui.message_layout import Row, has_spacer, layout_message
from threadline.ui.timeline import BODY, BlockState, TimelineWindow, expandable
from ui.test_timeline import NOW, FakeSession, session


def payload(kind: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"source": "claude-code", "records": [], "kind": kind, "parts": list(parts)}


def call(cid: str, name: str, summary: str, **inp: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": cid, "name": name, "input": inp, "summary": summary}


def reply(mid: int, *parts: dict[str, Any], content: str = "") -> Message:
    return Message(
        id=mid,
        session_id="s1",
        role="assistant",
        content=content,
        created_at=NOW,
        payload=payload("reply", *parts),
    )


def result(mid: int, cid: str, name: str, output: str, summary: str = "", error: bool = False):
    part = {
        "type": "tool_result",
        "call_id": cid,
        "name": name,
        "summary": summary,
        "is_error": error,
    }
    return Message(
        id=mid,
        session_id="s1",
        role="tool",
        content=output,
        created_at=NOW,
        payload=payload("tool_result", part),
    )


THINK = {"type": "thinking", "text": "first idea\nsecond idea\nthird"}
TEXT = {"type": "text", "text": "Running the tests."}
BASH = call("c1", "Bash", "pytest -q", command="pytest -q")
READ = call("c2", "Read", "/src/app.py", file_path="/src/app.py")


def rows(item: Message, **state: Any) -> list[tuple[str, str, str]]:
    layout = layout_message(item, BlockState(**state))
    assert layout is not None
    return [(r.kind, r.text + r.tail, r.style) for r in layout.rows]


def test_a_reply_shows_thinking_as_one_line_text_then_one_line_per_call() -> None:
    item = reply(2, THINK, TEXT, BASH, READ, content="Running the tests.")
    assert rows(item, results=(("c1", "exit 0"),)) == [
        ("line", "∴ Thinking · 3 lines · t shows", "meta"),
        ("markdown", "Running the tests.", "body"),
        ("line", "⚙ Bash  pytest -q  → exit 0", "tool"),
        ("line", "⚙ Read  /src/app.py", "tool"),  # its answer is not in the window
    ]


def test_thinking_shown_and_calls_opened() -> None:
    item = reply(2, THINK, BASH, READ)
    assert rows(item, show_thinking=True, expanded=True) == [
        ("line", "∴ Thinking · t hides", "meta"),
        ("text", "first idea\nsecond idea\nthird", "thinking"),
        ("line", "⚙ Bash  pytest -q", "tool"),
        ("text", "pytest -q", "dim"),
        ("line", "⚙ Read  /src/app.py", "tool"),
        ("text", '{\n  "file_path": "/src/app.py"\n}', "dim"),
    ]
    layout = layout_message(item, BlockState(expanded=True))
    assert layout is not None and [r.indent for r in layout.rows][1:3] == [0, 4]


def test_a_text_only_reply_and_a_prompt_draw_as_any_message() -> None:
    assert layout_message(reply(2, TEXT, content="Running the tests."), BlockState()) is None
    prompt = Message(
        id=1,
        session_id="s1",
        role="user",
        content="hi",
        created_at=NOW,
        payload=payload("prompt", {"type": "text", "text": "hi"}),
    )
    assert layout_message(prompt, BlockState()) is None
    mine = Message(
        id=1,
        session_id="s1",
        role="assistant",
        content="x",
        created_at=NOW,
        payload={"error": "boom", "partial_chars": 0},
    )
    assert layout_message(mine, BlockState()) is None and not expandable(mine)


def test_a_tool_result_is_one_line_that_opens_to_its_output() -> None:
    out = result(3, "c1", "Bash", "3 passed\nin 0.2s\n", summary="exit 0")
    assert rows(out) == [("line", "↳ Bash  3 passed  (+1 line)", "dim")]
    assert rows(out, paired=True) == [("line", "↳ 3 passed  (+1 line)", "dim")]
    assert rows(out, paired=True, expanded=True) == [
        ("line", "↳ 2 lines of output", "dim"),
        ("text", "3 passed\nin 0.2s", "dim"),
    ]
    failed = result(4, "c2", "Read", "", summary="File does not exist.", error=True)
    assert rows(failed, paired=True) == [("line", "↳ File does not exist.", "error")]
    assert has_spacer(out, BlockState()) and not has_spacer(out, BlockState(tight=True))


def test_context_notices_and_commands() -> None:
    def msg(kind: str, role: str, content: str, *parts: dict[str, Any]) -> Message:
        return Message(
            id=5,
            session_id="s1",
            role=role,
            content=content,
            created_at=NOW,
            payload=payload(kind, *parts),
        )

    meta = msg("meta", "user", "<env>\ncwd: /x\n</env>", {"type": "text", "text": "…"})
    assert rows(meta) == [("line", "· context added by the tool: <env>  (+2 lines)", "meta")]
    assert rows(meta, expanded=True)[1] == ("text", "<env>\ncwd: /x\n</env>", "dim")
    info = msg("info", "system", "[Request interrupted by user]", {"type": "text", "text": "…"})
    assert rows(info) == [("line", "· [Request interrupted by user]", "meta")]
    assert not expandable(info) and expandable(meta)
    command = msg(
        "command",
        "user",
        "/model\nKept",
        {"type": "command", "name": "/model", "args": "", "output": "Kept"},
    )
    assert rows(command) == [("line", "$ /model", "tool"), ("text", "Kept", "dim")]
    layout = layout_message(command, BlockState())
    assert layout is not None and layout.header and not layout_message(info, BlockState()).header


async def test_the_window_pairs_calls_with_the_results_it_holds() -> None:
    fake = FakeSession()
    prompt = Message(id=1, session_id="s1", role="user", content="go", created_at=NOW)
    fake.add(
        prompt,
        reply(2, TEXT, BASH, READ),
        result(3, "c1", "Bash", "ok", "exit 0"),
        result(4, "c2", "Read", "nope", "no such file", error=True),
        Message(id=5, session_id="s1", role="assistant", content="done", created_at=NOW),
    )
    window = TimelineWindow(summaries=fake)
    assert await window.open(session(), fake.timeline)
    states = [window.state(i) for i in range(len(window))]
    assert states[1].results == (("c1", "exit 0"), ("c2", "✖ no such file"))
    assert (states[2].paired, states[2].tight) == (True, True)  # another result follows
    assert (states[3].paired, states[3].tight) == (True, False)
    assert states[0].results == () and not states[4].paired
    # Opening: a tool result opens, a plain message does not; the reply's calls open.
    assert window.toggle(2, BODY) and window.state(2).expanded
    assert window.toggle(1, BODY) and window.state(1).expanded
    assert not window.toggle(0, BODY)


async def test_a_result_whose_call_is_not_in_the_window_names_its_tool() -> None:
    fake = FakeSession()
    fake.add(
        result(7, "c1", "Bash", "ok", "exit 0"),
        Message(id=8, session_id="s1", role="user", content="hm", created_at=NOW),
    )
    window = TimelineWindow(summaries=fake)
    assert await window.open(session(), fake.timeline)
    assert not window.state(0).paired
    assert rows(window.entries[0].item, **{"paired": False}) == [("line", "↳ Bash  ok", "dim")]


async def test_thinking_toggles_for_the_whole_window() -> None:
    fake = FakeSession()
    fake.add(
        reply(2, THINK, TEXT),
        Message(id=3, session_id="s1", role="user", content="x", created_at=NOW),
    )
    window = TimelineWindow(summaries=fake)
    assert await window.open(session(), fake.timeline)
    window.entries[0].height = 4
    assert not window.state(0).show_thinking
    assert window.toggle_thinking()  # a reply with thinking is there: it is laid out again
    assert window.state(0).show_thinking and window.entries[0].height is None
    assert not window.state(1).show_thinking  # only replies carry it
    assert window.toggle_thinking() and window.show_thinking is False
    assert not window.state(0).show_thinking


def test_one_liners_and_tags_for_every_face() -> None:
    assert source_tag("claude-code") == "cc" and source_tag("chatgpt") == "gpt"
    assert source_tag(None) is None
    item = reply(2, THINK, TEXT, BASH)
    assert transcript_lines(item.content, item.payload) == [
        "∴ thinking (3 lines)",
        "Running the tests.",
        "⚙ Bash  pytest -q",
    ]
    assert context_message("assistant", "", item.payload) == (
        "assistant",
        'Running the tests.\n\n[called Bash with {"command": "pytest -q"}]',
    )
    assert call_line(None) == "⚙ tool"
    assert Row("line", "x").tail == ""


def test_opened_output_and_subagents_are_bounded() -> None:
    from threadline.ui.message_layout import OPEN_LINES

    big = "\n".join(f"line {i}" for i in range(OPEN_LINES + 25))
    out = result(3, "c1", "Read", big, summary=f"{OPEN_LINES + 25} lines")
    opened = rows(out, paired=True, expanded=True)
    assert opened[0] == ("line", f"↳ {OPEN_LINES + 25} lines of output", "dim")
    assert opened[1][1].count("\n") == OPEN_LINES - 1
    assert opened[2] == ("line", "… 25 more lines (c copies it all)", "more")
    sub = {
        "type": "subagent",
        "agent": "Explore",
        "call_id": "t1",
        "messages": [{"role": "user", "text": "look\naround"}, {"role": "assistant", "text": "ok"}],
    }
    task = call("t1", "Task", "Explore the repo", prompt="look around")
    item = reply(2, task, sub)
    assert rows(item)[-1] == ("line", "⤷ Explore subagent · 2 messages", "tool")
    assert rows(item, expanded=True)[-1] == (
        "text",
        "user: look\naround\n\nassistant: ok",
        "dim",
    )
    orphan = Message(
        id=9,
        session_id="s1",
        role="system",
        content="Subagent transcript",
        created_at=NOW,
        payload=payload("info", {**sub, "call_id": ""}),
    )
    assert expandable(orphan)
    assert rows(orphan, expanded=True)[1:] == [
        ("line", "⤷ Explore subagent · 2 messages", "tool"),
        ("text", "user: look\naround\n\nassistant: ok", "dim"),
    ]


async def test_a_tool_result_is_measured_again_when_another_follows_it() -> None:
    fake = FakeSession()
    fake.add(reply(2, BASH, READ), result(3, "c1", "Bash", "ok", "exit 0"))
    window = TimelineWindow(summaries=fake)
    assert await window.open(session(), fake.timeline)
    tool = window.entries[1]
    tool.height, tool.exact = 2, True  # as drawn: its line and its spacer
    assert not window.state(1).tight
    assert await window.append([result(4, "c2", "Read", "gone", "no such file", error=True)])
    assert window.state(1).tight and tool.height is None  # it loses its spacer: measured again
    assert window.state(0).results == (("c1", "exit 0"), ("c2", "✖ no such file"))


def test_encrypted_thinking_is_a_marker_only_when_thinking_is_shown() -> None:
    item = reply(2, {"type": "thinking", "text": ""}, TEXT, BASH)
    assert [r[1] for r in rows(item)] == ["Running the tests.", "⚙ Bash  pytest -q"]
    assert rows(item, show_thinking=True)[0] == (
        "line",
        "∴ Thinking (not kept readable by the source)",
        "meta",
    )
    assert transcript_lines(item.content, item.payload) == [
        "Running the tests.",
        "⚙ Bash  pytest -q",
    ]
