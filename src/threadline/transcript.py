"""Imported messages read through their parts: one-line tool calls, thinking, and text for a model.

An imported message (threadline.records) keeps what it holds in `payload["parts"]` and what it is
in `payload["kind"]`. Every face reads them through this module, which knows no source: the
conversation view (collapsed tool lines, a thinking toggle), `sessions show`, and the context
sent when a person continues an imported session with threadline's own provider (a model that
cannot take another tool's calls, results or reasoning gets them as text).

Nothing here sanitises: what it returns is stored text, untrusted, for the caller to clean
(`text.sanitize_terminal`) before it reaches a terminal. Nothing heavy is imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from threadline.source_table import BY_SOURCE
from threadline.text import collapse_whitespace, plural

CALL_MARK = "⚙"
ERROR_MARK = "✖"
ARROW = "→"
THINKING_MARK = "∴"
# A tool's output sent to a model as text keeps its start and end (most of the signal).
CONTEXT_OUTPUT_CHARS = 2000


def source_tag(source: str | None) -> str | None:
    """The sidebar tag of a session's source (None: threadline wrote it)."""
    if not source:
        return None
    tool = BY_SOURCE.get(source)
    return tool.tag if tool is not None else source[:8]


def source_name(source: str) -> str:
    """A source as people call it ("Claude Code")."""
    tool = BY_SOURCE.get(source)
    return tool.label if tool is not None else source


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made (a `tool_call` part)."""

    id: str
    name: str
    summary: str
    input: Any


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's answer (a `tool_result` part); `output` is its message's content."""

    call_id: str
    name: str
    summary: str
    is_error: bool
    output: str


@dataclass(frozen=True, slots=True)
class Piece:
    """One thing an imported message holds, in order, in the shape the faces draw.

    `kind`: text (words of the role), thinking, call, result, attachment, subagent, command.
    `text` is the words (the thinking, a subagent's transcript as lines, a command's output).
    """

    kind: Literal["text", "thinking", "call", "result", "attachment", "subagent", "command"]
    text: str = ""
    call: ToolCall | None = None
    result: ToolResult | None = None
    name: str = ""
    count: int = 0  # a subagent's messages


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def message_kind(payload: Any) -> str | None:
    """The `kind` of an imported message's payload (None: not an imported message)."""
    if isinstance(payload, dict) and isinstance(payload.get("parts"), list):
        kind = payload.get("kind")
        return kind if isinstance(kind, str) else None
    return None


def is_imported(payload: Any) -> bool:
    return message_kind(payload) is not None


# The pieces of the messages read lately, by the identity of their parts list and content (the
# view asks for a message's pieces at each repaint; a stored message never changes). Holding
# the parts list and content keeps their ids from being reused; a few hundred entries are a
# window's worth (the source records in a payload are not held).
_PIECES: dict[tuple[int, int], tuple[Any, str, tuple[Piece, ...]]] = {}
_PIECES_KEPT = 256


def pieces(content: str, payload: Any) -> list[Piece]:
    """What an imported message holds, in order (empty for a message threadline wrote).

    A tool message's output is its `content`; a text part's words are the part's own.
    """
    if not is_imported(payload):
        return []
    parts = payload["parts"]
    key = (id(parts), id(content))
    cached = _PIECES.get(key)
    if cached is not None and cached[0] is parts and cached[1] is content:
        return list(cached[2])
    out = _read_pieces(content, payload)
    if len(_PIECES) >= _PIECES_KEPT:
        _PIECES.clear()
    _PIECES[key] = (parts, content, tuple(out))
    return out


def _read_pieces(content: str, payload: Any) -> list[Piece]:
    out: list[Piece] = []
    for part in payload["parts"]:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            out.append(Piece("text", _str(part.get("text"))))
        elif kind == "thinking":
            out.append(Piece("thinking", _str(part.get("text"))))
        elif kind == "tool_call":
            call = ToolCall(
                id=_str(part.get("id")),
                name=_str(part.get("name")) or "tool",
                summary=_str(part.get("summary")),
                input=part.get("input"),
            )
            out.append(Piece("call", call=call, name=call.name))
        elif kind == "tool_result":
            result = ToolResult(
                call_id=_str(part.get("call_id")),
                name=_str(part.get("name")) or "tool",
                summary=_str(part.get("summary")),
                is_error=bool(part.get("is_error")),
                output=content,
            )
            out.append(Piece("result", call=None, result=result, name=result.name))
        elif kind == "attachment":
            out.append(Piece("attachment", name=_str(part.get("name")) or "attachment"))
        elif kind == "subagent":
            lines = []
            for m in part.get("messages") or []:
                if isinstance(m, dict):
                    lines.append(f"{_str(m.get('role')) or '?'}: {_str(m.get('text'))}")
            agent = _str(part.get("agent")) or "subagent"
            out.append(Piece("subagent", "\n\n".join(lines), name=agent, count=len(lines)))
        elif kind == "command":
            name = _str(part.get("name")) or "command"
            args = _str(part.get("args"))
            out.append(Piece("command", _str(part.get("output")), name=f"{name} {args}".rstrip()))
    return out


def calls_of(payload: Any) -> list[ToolCall]:
    """The tool calls an imported reply made, in order."""
    return [p.call for p in pieces("", payload) if p.kind == "call" and p.call is not None]


def result_of(content: str, payload: Any) -> ToolResult | None:
    """The (first) tool result an imported tool message holds."""
    for p in pieces(content, payload):
        if p.kind == "result" and p.result is not None:
            return p.result
    return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return collapse_whitespace(line)
    return ""


def result_summary(result: ToolResult) -> str:
    """A result in a few words: its summary, else its output's first line, else a count."""
    text = collapse_whitespace(result.summary) or _first_line(result.output)
    if not text:
        text = "no output"
    return f"{ERROR_MARK} {text}" if result.is_error else text


def call_line(call: ToolCall | None, result: ToolResult | None = None) -> str:
    """ "⚙ Bash  pytest -q  → exit 0": a call (and its answer when known) on one line."""
    name = call.name if call is not None else (result.name if result is not None else "tool")
    line = f"{CALL_MARK} {collapse_whitespace(name)}"
    summary = collapse_whitespace(call.summary) if call is not None else ""
    if summary:
        line += f"  {summary}"
    if result is not None:
        line += f"  {ARROW} {result_summary(result)}"
    return line


def input_text(call: ToolCall) -> str:
    """A call's arguments for reading: a lone command or string as it is, else indented JSON."""
    value = call.input
    if isinstance(value, dict):
        for key in ("command", "cmd", "patch", "input"):
            if isinstance(value.get(key), str) and len(value) <= 3:
                return value[key]
        if isinstance(value.get("command"), list) and all(
            isinstance(v, str) for v in value["command"]
        ):
            return " ".join(value["command"])
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def thinking_text(content: str, payload: Any) -> str:
    """All the thinking of an imported reply, joined (empty when none or only markers)."""
    return "\n\n".join(p.text for p in pieces(content, payload) if p.kind == "thinking" and p.text)


def has_thinking(payload: Any) -> bool:
    return any(p.kind == "thinking" for p in pieces("", payload))


def line_count(text: str) -> int:
    return text.count("\n") + 1 if text else 0


# ---------------------------------------------------------------------- for a model


def _clip(text: str, limit: int = CONTEXT_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[… {cut:,} characters left out …]\n{text[-half:]}"


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def context_message(role: str, content: str, payload: Any) -> tuple[str, str] | None:
    """(role, text) an imported message becomes in a request to a model that cannot take another
    tool's records; None when it is not sent.

    - prompts and commands: what the person typed (a command with what it printed);
    - replies: their text, then each tool call as `[called NAME with {...}]`; the reasoning is
      left out (the model did not write it; providers drop earlier turns' reasoning anyway);
    - tool results: a user message `[result of NAME (call id)]` and the output, its middle left
      out when long (the start and end carry most of it);
    - meta (injected context) and info (the tool's own notices): not sent, as records.py says.
    A message threadline wrote is sent as it is.
    """
    kind = message_kind(payload)
    if kind is None:
        return (role, content) if content.strip() else None
    if kind in ("meta", "info"):
        return None
    parts = pieces(content, payload)
    if kind == "tool_result" or role == "tool":
        results = [p.result for p in parts if p.result is not None]
        if not results:
            return ("user", f"[tool result]\n{_clip(content)}") if content.strip() else None
        head = "\n".join(
            f"[result of {r.name}"
            + (f" ({r.call_id})" if r.call_id else "")
            + (", an error" if r.is_error else "")
            + "]"
            for r in results
        )
        return ("user", f"{head}\n{_clip(content)}" if content.strip() else head)
    if kind == "command":
        lines = []
        for p in parts:
            if p.kind == "command":
                lines.append(p.name)
                if p.text.strip():
                    lines.append(p.text)
        text = "\n".join(lines) or content
        return ("user", text) if text.strip() else None
    chunks: list[str] = []
    for p in parts:
        if p.kind == "text" and p.text.strip():
            chunks.append(p.text)
        elif p.kind == "call" and p.call is not None:
            chunks.append(f"[called {p.call.name} with {_clip(_json(p.call.input), 1000)}]")
        elif p.kind == "attachment":
            chunks.append(f"[attachment: {p.name}]")
        elif p.kind == "subagent" and p.text.strip():
            chunks.append(f"[{p.name} subagent]\n{_clip(p.text)}")
    text = "\n\n".join(chunks)
    if not text.strip():
        text = content if not any(p.kind == "thinking" for p in parts) else ""
    if not text.strip():
        return None
    out_role = role if role in ("user", "assistant", "system") else "user"
    return (out_role, text)


# ---------------------------------------------------------------------- for a reader


def transcript_lines(content: str, payload: Any, *, thinking: bool = False) -> list[str] | None:
    """An imported message as lines for `sessions show` (None: show its content as it is).

    Tool calls and results are one line each; thinking is one marker line unless `thinking`;
    meta and info messages are one line. Text is stored text: the caller sanitises.
    """
    kind = message_kind(payload)
    if kind is None:
        return None
    parts = pieces(content, payload)
    if kind in ("meta", "info"):
        first = _first_line(content)
        more = line_count(content.strip()) - 1
        return [first + (f"  (+{more} lines)" if more > 0 else "")]
    lines: list[str] = []
    for p in parts:
        if p.kind == "text":
            if p.text.strip():
                lines.append(p.text)
        elif p.kind == "thinking":
            if thinking and p.text.strip():
                lines.append(f"{THINKING_MARK} thinking:")
                lines += ["  " + line for line in p.text.splitlines()]
            elif p.text.strip():  # an empty one (kept encrypted) is only a marker: left out
                n = line_count(p.text.strip())
                lines.append(f"{THINKING_MARK} thinking ({plural(n, 'line')})")
        elif p.kind == "call":
            lines.append(call_line(p.call))
        elif p.kind == "result" and p.result is not None:
            lines.append(
                f"{ARROW} {collapse_whitespace(p.result.name)}  {result_summary(p.result)}"
            )
        elif p.kind == "attachment":
            lines.append(f"[attachment: {p.name}]")
        elif p.kind == "subagent":
            lines.append(f"⤷ {p.name} subagent ({plural(p.count, 'message')})")
        elif p.kind == "command":
            lines.append(f"$ {p.name}")
            lines += ["  " + line for line in p.text.splitlines()]
    if not lines and content.strip():
        lines.append(content)
    return lines
