"""A hand-written imported session, modelled on what the Claude Code reader makes: a prompt, a
reply with thinking, text and two tool calls, their results (one failed), a compaction summary,
injected context, a notice and a slash command. `hostile` puts markup, escape sequences and a
bidi override in the title, the tool output, the thinking and a call's summary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.records import IncomingMessage, IncomingSession, IncomingSummary

ANSWER = "The import fails: `app` is not installed. Run `pip install -e .` first."
HOSTILE = "[bold red]not markup[/] \x1b]0;pwned\x07 \x1b[31mred \u202egnp.exe [@click=app.quit]q[/]"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _payload(kind: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "claude-code",
        "records": [{"fake": True}],
        "kind": kind,
        "parts": list(parts),
    }


def imported_session(
    *,
    hostile: bool = False,
    source_id: str = "cc-1",
    working_dir: str = "/work/demo",
    compacted: bool = True,
) -> IncomingSession:
    evil = f" {HOSTILE}" if hostile else ""
    at = iter(START + timedelta(seconds=10 * i) for i in range(100))

    def message(key: str, role: str, content: str, payload: dict[str, Any], **kw: Any):
        return IncomingMessage(
            key=key, role=role, content=content, created_at=next(at), payload=payload, **kw
        )

    thinking = (
        "The tests probably fail on the import path.\nCheck pytest first, then the config." + evil
    )
    messages = [
        message(
            "u1",
            "user",
            "Why do the tests fail?",
            _payload("prompt", {"type": "text", "text": "Why do the tests fail?"}),
        ),
        message(
            "a1",
            "assistant",
            "Let me run them and look at the config.",
            _payload(
                "reply",
                {"type": "thinking", "text": thinking},
                {"type": "text", "text": "Let me run them and look at the config."},
                {
                    "type": "tool_call",
                    "id": "call-1",
                    "name": "Bash",
                    "input": {"command": "pytest -q", "description": "Run the tests"},
                    "summary": "pytest -q",
                },
                {
                    "type": "tool_call",
                    "id": "call-2",
                    "name": "Read",
                    "input": {"file_path": "/work/demo/setup.cfg" + evil},
                    "summary": "/work/demo/setup.cfg" + evil,
                },
            ),
            model="claude-opus-4-6",
            input_tokens=1200,
            output_tokens=80,
        ),
        message(
            "r1",
            "tool",
            "F.\n\nFAILED tests/test_app.py::test_start - ImportError"
            + evil
            + "\n1 failed, 1 passed",
            _payload(
                "tool_result",
                {
                    "type": "tool_result",
                    "call_id": "call-1",
                    "name": "Bash",
                    "summary": "exit 1",
                    "is_error": False,
                },
            ),
        ),
        message(
            "r2",
            "tool",
            "File does not exist.",
            _payload(
                "tool_result",
                {
                    "type": "tool_result",
                    "call_id": "call-2",
                    "name": "Read",
                    "summary": "File does not exist.",
                    "is_error": True,
                },
            ),
        ),
        message(
            "a2",
            "assistant",
            ANSWER,
            _payload(
                "reply",
                {
                    "type": "text",
                    "text": ANSWER,
                },
            ),
            model="claude-opus-4-6",
        ),
        message(
            "m1",
            "user",
            "<system-reminder>The user opened setup.py</system-reminder>",
            _payload(
                "meta",
                {
                    "type": "text",
                    "text": "<system-reminder>The user opened setup.py</system-reminder>",
                },
            ),
        ),
        message(
            "u2",
            "user",
            "Thanks, that fixed it.",
            _payload("prompt", {"type": "text", "text": "Thanks, that fixed it."}),
        ),
        message(
            "i1",
            "system",
            "[Request interrupted by user]",
            _payload("info", {"type": "text", "text": "[Request interrupted by user]"}),
        ),
        message(
            "c1",
            "user",
            "/model\nKept model as Default",
            _payload(
                "command",
                {
                    "type": "command",
                    "name": "/model",
                    "args": "",
                    "output": "Kept model as Default",
                },
            ),
        ),
    ]
    summaries = [
        IncomingSummary(
            content="The person asked why the tests failed; the import path was broken.",
            first_key="u1",
            last_key="a2",
            created_at=START + timedelta(seconds=55),
        )
    ]
    return IncomingSession(
        source="claude-code",
        source_id=source_id,
        working_dir=working_dir,
        created_at=START,
        title=("Fix the failing tests" + evil),
        model="claude-opus-4-6",
        metadata={"version": "2.1.38"},
        messages=messages,
        summaries=summaries if compacted else [],
    )
