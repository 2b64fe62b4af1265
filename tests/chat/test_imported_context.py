"""Continuing an imported session: its messages form the context, as text a model can take.

Tool calls become `[called NAME with {...}]` in the reply, tool results user messages naming the
call, reasoning and injected context are left out. Records are hand-written, modelled on what the
Claude Code reader makes; one test loads a real Claude Code file and continues it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from threadline import sources
from threadline.chat.context import as_chat, build_context, load_context, message_tokens, sendable
from threadline.chat.provider import ChatMessage
from threadline.models import Message
from threadline.store import Store
from threadline.transcript import CONTEXT_OUTPUT_CHARS

WHEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SAMPLES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "import-samples").resolve()


def payload(kind: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"source": "claude-code", "records": [], "kind": kind, "parts": list(parts)}


def msg(id: int, role: str, content: str, data: Any = None, **kw: Any) -> Message:
    return Message(
        id=id, session_id="s", role=role, content=content, payload=data, created_at=WHEN, **kw
    )


PROMPT = msg(
    1, "user", "run the tests", payload("prompt", {"type": "text", "text": "run the tests"})
)
REPLY = msg(
    2,
    "assistant",
    "Running them.",
    payload(
        "reply",
        {"type": "thinking", "text": "SECRET-REASONING the user wants pytest"},
        {"type": "text", "text": "Running them."},
        {
            "type": "tool_call",
            "id": "toolu_1",
            "name": "Bash",
            "input": {"command": "pytest -q"},
            "summary": "pytest -q",
        },
    ),
    output_tokens=900,  # counted the reasoning: not what is sent
)
RESULT = msg(
    3,
    "tool",
    "3 passed in 0.2s",
    payload(
        "tool_result",
        {
            "type": "tool_result",
            "call_id": "toolu_1",
            "name": "Bash",
            "summary": "exit 0",
            "is_error": False,
        },
    ),
)
META = msg(
    4,
    "user",
    "<ide_opened_file>x.py</ide_opened_file>",
    payload("meta", {"type": "text", "text": "<ide_opened_file>x.py</ide_opened_file>"}),
)
INFO = msg(
    5,
    "system",
    "[Request interrupted by user]",
    payload("info", {"type": "text", "text": "[Request interrupted by user]"}),
)
COMMAND = msg(
    6,
    "user",
    "/model\nKept model as Default",
    payload(
        "command",
        {"type": "command", "name": "/model", "args": "", "output": "Kept model as Default"},
    ),
)
NEW = msg(7, "user", "and now lint it")


def test_tool_calls_and_results_become_text_and_reasoning_stays_out() -> None:
    history = [PROMPT, REPLY, RESULT, META, INFO, COMMAND, NEW]
    window = build_context(history, system_prompt=None, summary=None, max_tokens=10_000)
    assert window.messages == [
        ChatMessage("user", "run the tests"),
        ChatMessage("assistant", 'Running them.\n\n[called Bash with {"command": "pytest -q"}]'),
        ChatMessage("user", "[result of Bash (toolu_1)]\n3 passed in 0.2s"),
        ChatMessage("user", "/model\nKept model as Default"),
        ChatMessage("user", "and now lint it"),
    ]
    assert not any("SECRET-REASONING" in m.content for m in window.messages)
    assert window.first_message_id == 1


def test_an_imported_reply_costs_the_text_sent_not_its_usage() -> None:
    sent = as_chat(REPLY)
    assert sent is not None
    assert message_tokens(REPLY) < 900
    assert message_tokens(REPLY) == -(-len(sent.content) // 4) + 4


def test_a_failed_tool_result_says_so_and_long_output_keeps_its_ends() -> None:
    output = "START " + "x" * 10_000 + " END"
    failed = msg(
        3,
        "tool",
        output,
        payload(
            "tool_result",
            {
                "type": "tool_result",
                "call_id": "c9",
                "name": "Read",
                "summary": "no such file",
                "is_error": True,
            },
        ),
    )
    sent = as_chat(failed)
    assert sent is not None and sent.role == "user"
    assert sent.content.startswith("[result of Read (c9), an error]\nSTART ")
    assert sent.content.endswith(" END")
    assert len(sent.content) < CONTEXT_OUTPUT_CHARS + 200
    assert "characters left out" in sent.content


def test_a_reply_of_only_thinking_is_not_sent_and_one_of_only_calls_is() -> None:
    thinking_only = msg(2, "assistant", "", payload("reply", {"type": "thinking", "text": "hmm"}))
    calls_only = msg(
        2,
        "assistant",
        "⚙ Glob  *.py",
        payload(
            "reply",
            {
                "type": "tool_call",
                "id": "c",
                "name": "Glob",
                "input": {"pattern": "*.py"},
                "summary": "*.py",
            },
        ),
    )
    assert as_chat(thinking_only) is None
    assert as_chat(calls_only) == ChatMessage("assistant", '[called Glob with {"pattern": "*.py"}]')


def test_messages_threadline_wrote_are_sent_as_before() -> None:
    mine = msg(9, "assistant", "plain", {"error": "x", "partial_chars": 2})
    assert as_chat(mine) == ChatMessage("assistant", "plain")


async def test_continuing_a_real_claude_code_session_sends_it_as_text(store: Store) -> None:
    """spotter/short.jsonl: a prompt, a reply with thinking and two Bash/Glob calls, two
    rejected results, an interruption and a /model command; then the person's new message."""
    path = SAMPLES / "claude-code" / "spotter" / "short.jsonl"
    await store.load_history(sources.get("claude-code").read(path))
    (summary,) = await store.list_sessions("all")
    session = await store.get_session(summary.id)
    assert session is not None
    new = await store.add_message(session.id, "user", "why did it not start?")
    window = await load_context(store, session, upto_id=new.id, max_tokens=50_000)
    roles = [m.role for m in window.messages]
    texts = [m.content for m in window.messages]
    assert roles == ["user", "assistant", "user", "user", "user", "user"]
    assert texts[0] == "mix phx.server doesnt seem to start"
    assert "[called Bash with" in texts[1] and "mix phx.server 2>&1 | head -80" in texts[1]
    assert "[called Glob with" in texts[1]
    assert texts[2].startswith("[result of Bash (toolu_0116Hyi5v8ut7Ffb7d8qV1Sc), an error]")
    assert texts[3].startswith("[result of Glob")
    assert texts[4].startswith("/model")
    assert texts[5] == "why did it not start?"
    assert not any("Request interrupted" in t for t in texts)
    assert not any("The user is having trouble" in t for t in texts)  # its thinking


def test_summaries_and_memory_extraction_read_imported_messages_as_text() -> None:
    """What a summariser or a memory extractor is shown of an imported session is what a
    model continuing it is sent: tool calls and results as text, no reasoning, no injected
    context."""
    from threadline.chat.summarise import render_message, summary_request

    history = [PROMPT, REPLY, RESULT, META, INFO, COMMAND]
    (_, prompt) = summary_request(None, [m for m in history if sendable(m)], max_tokens=16_000)
    assert (
        '[message 2, assistant]\nRunning them.\n\n[called Bash with {"command": "pytest -q"}]'
        in (prompt.content)
    )
    assert "[message 3, tool]\n[result of Bash (toolu_1)]\n3 passed in 0.2s" in prompt.content
    assert "SECRET-REASONING" not in prompt.content
    assert "ide_opened_file" not in prompt.content and "interrupted" not in prompt.content
    assert render_message(REPLY).startswith("[assistant #2]\nRunning them.\n\n[called Bash")
