"""Small hand-written histories in other tools' formats, for the `threadline import` tests.

Modelled on the real files in ../shared/import-samples (their README describes the formats);
nothing here is copied from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOSTILE = "[bold red]not markup[/] \x1b[2J\x1b]0;pwned\x07 [@click=app.quit]x[/] \x9b31m"


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def claude_code_lines(session_id: str, cwd: str, turns: list[tuple[str, str]]) -> list[str]:
    """A Claude Code session: per turn a typed prompt and a reply split over two lines (text,
    then a tool call of the same API message) with its tool result, plus bookkeeping lines."""
    lines = [
        _line(
            {
                "type": "file-history-snapshot",
                "messageId": f"{session_id}-snap",
                "snapshot": {"trackedFileBackups": {}, "timestamp": "2026-01-05T10:00:00.000Z"},
            }
        )
    ]
    parent = None
    for n, (prompt, reply) in enumerate(turns):
        base = {"sessionId": session_id, "cwd": cwd, "version": "2.1.0", "isSidechain": False}
        t = f"2026-01-05T10:{n:02d}"
        user = f"{session_id}-u{n}"
        lines.append(
            _line(
                {
                    **base,
                    "type": "user",
                    "uuid": user,
                    "parentUuid": parent,
                    "timestamp": f"{t}:00.000Z",
                    "message": {"role": "user", "content": prompt},
                }
            )
        )
        lines.append(
            _line(
                {
                    **base,
                    "type": "progress",
                    "uuid": f"{user}-p",
                    "parentUuid": user,
                    "timestamp": f"{t}:01.000Z",
                    "data": {"type": "hook_progress"},
                }
            )
        )
        msg_id = f"msg_{session_id[:8]}_{n}"
        call = f"toolu_{session_id[:8]}_{n}"
        usage = {"input_tokens": 100 + n, "output_tokens": 20 + n}
        for part, content in enumerate(
            [
                [{"type": "text", "text": reply}],
                [{"type": "tool_use", "id": call, "name": "Bash", "input": {"command": "ls"}}],
            ]
        ):
            lines.append(
                _line(
                    {
                        **base,
                        "type": "assistant",
                        "uuid": f"{user}-a{part}",
                        "parentUuid": user,
                        "timestamp": f"{t}:0{2 + part}.000Z",
                        "message": {
                            "id": msg_id,
                            "type": "message",
                            "role": "assistant",
                            "model": "claude-test-1",
                            "content": content,
                            "stop_reason": "tool_use" if part else None,
                            "usage": usage,
                        },
                    }
                )
            )
        result = f"{user}-r"
        lines.append(
            _line(
                {
                    **base,
                    "type": "user",
                    "uuid": result,
                    "parentUuid": f"{user}-a1",
                    "timestamp": f"{t}:05.000Z",
                    "message": {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": call, "content": "a\nb\n"}
                        ],
                    },
                    "toolUseResult": {"stdout": "a\nb\n", "stderr": ""},
                }
            )
        )
        parent = result
    return lines


def write_claude_code(root: Path, session_id: str, cwd: str, turns: list[tuple[str, str]]) -> Path:
    """The session under `root/<encoded cwd>/<session id>.jsonl`, as Claude Code lays it out."""
    folder = root / cwd.replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{session_id}.jsonl"
    path.write_text("".join(claude_code_lines(session_id, cwd, turns)), encoding="utf-8")
    return path


def chatgpt_conversation(cid: str, title: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    """A ChatGPT export conversation: a hidden system root, then prompt/reply nodes."""
    mapping: dict[str, Any] = {
        "root": {"id": "root", "message": None, "parent": None, "children": ["sys"]},
        "sys": {
            "id": "sys",
            "parent": "root",
            "children": [],
            "message": {
                "id": "sys",
                "author": {"role": "system"},
                "create_time": None,
                "content": {"content_type": "text", "parts": [""]},
                "metadata": {"is_visually_hidden_from_conversation": True},
            },
        },
    }
    parent = "sys"
    clock = 1_700_000_000.0
    for n, (prompt, reply) in enumerate(turns):
        for role, text in (("user", prompt), ("assistant", reply)):
            node = f"{cid}-{role}-{n}"
            mapping[parent]["children"].append(node)
            clock += 10
            mapping[node] = {
                "id": node,
                "parent": parent,
                "children": [],
                "message": {
                    "id": node,
                    "author": {"role": role},
                    "create_time": clock,
                    "content": {"content_type": "text", "parts": [text]},
                    "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
                },
            }
            parent = node
    return {
        "id": cid,
        "conversation_id": cid,
        "title": title,
        "create_time": 1_700_000_000.0,
        "update_time": clock,
        "current_node": parent,
        "mapping": mapping,
    }


def write_chatgpt(path: Path, conversations: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return path


def claude_ai_conversation(uuid: str, name: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    messages = []
    for n, (prompt, reply) in enumerate(turns):
        for i, (sender, text) in enumerate((("human", prompt), ("assistant", reply))):
            messages.append(
                {
                    "uuid": f"{uuid}-{n}-{i}",
                    "sender": sender,
                    "text": text,
                    "created_at": f"2024-05-01T10:{n:02d}:{i:02d}.000000Z",
                    "updated_at": f"2024-05-01T10:{n:02d}:{i:02d}.000000Z",
                    "attachments": [],
                    "files": [],
                }
            )
    return {
        "uuid": uuid,
        "name": name,
        "created_at": "2024-05-01T10:00:00.000000Z",
        "updated_at": "2024-05-01T11:00:00.000000Z",
        "chat_messages": messages,
    }


def codex_rollout(path: Path, session_id: str, cwd: str, turns: list[tuple[str, str]]) -> Path:
    """A Codex rollout in the current envelope format: session_meta, a turn_context per turn,
    the typed prompt (response item and its user_message event) and the reply."""
    lines = [
        {
            "timestamp": "2026-03-01T09:00:00.000Z",
            "type": "session_meta",
            "payload": {
                "id": session_id,
                "timestamp": "2026-03-01T09:00:00.000Z",
                "cwd": cwd,
                "originator": "codex_cli_rs",
                "cli_version": "0.99.0",
            },
        }
    ]
    for n, (prompt, reply) in enumerate(turns):
        t = f"2026-03-01T09:{n:02d}"
        lines += [
            {
                "timestamp": f"{t}:00.000Z",
                "type": "turn_context",
                "payload": {"cwd": cwd, "model": "gpt-test", "approval_policy": "never"},
            },
            {
                "timestamp": f"{t}:01.000Z",
                "type": "response_item",
                "payload": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": prompt}],
                },
            },
            {
                "timestamp": f"{t}:01.000Z",
                "type": "event_msg",
                "payload": {"type": "user_message", "message": prompt, "kind": "plain"},
            },
            {
                "timestamp": f"{t}:05.000Z",
                "type": "response_item",
                "payload": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply}],
                },
            },
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(_line(obj) for obj in lines), encoding="utf-8")
    return path


def gemini_session(path: Path, session_id: str, turns: list[tuple[str, str]]) -> Path:
    """A Gemini CLI chat recording in the single-object shape."""
    messages: list[dict[str, Any]] = []
    for n, (prompt, reply) in enumerate(turns):
        t = f"2026-02-01T08:{n:02d}"
        messages.append(
            {"id": f"u{n}", "timestamp": f"{t}:00.000Z", "type": "user", "content": prompt}
        )
        messages.append(
            {
                "id": f"g{n}",
                "timestamp": f"{t}:03.000Z",
                "type": "gemini",
                "content": reply,
                "model": "gemini-test",
                "tokens": {"input": 10, "output": 5, "total": 15},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "sessionId": session_id,
                "projectHash": "0" * 64,
                "startTime": "2026-02-01T08:00:00.000Z",
                "lastUpdated": "2026-02-01T09:00:00.000Z",
                "messages": messages,
            }
        ),
        encoding="utf-8",
    )
    return path
