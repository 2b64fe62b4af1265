"""How a message imported from another tool is laid out in the conversation (no Textual here).

A message threadline wrote is drawn as it always was (header, Markdown or plain body); this
module decides the rows of an imported one from its parts (threadline.transcript) and its
`BlockState`, so the rules have millisecond tests and `blocks.py` only turns rows into Strips:

- a reply: its thinking as one line ("∴ Thinking · 3 lines · t shows") unless shown, its text
  (Markdown), then each tool call on one line with its answer when the window holds it
  ("⚙ Bash  pytest -q  → exit 0"); opened (enter), each call's input under it;
- a tool result: no header, one line of its output under the call ("↳ 3 passed (+2 lines)");
  opened, the whole output; no spacer when another tool result follows (a tight run);
- injected context (meta) and the tool's notices (info): one dimmed line, context opens;
- a slash command: `$ /model` and what it printed;
- a prompt: as any user message (None: the usual drawing).

Row text is stored text: the drawing sanitises it (`safe.clean`) like every other text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from threadline.models import Message
from threadline.text import collapse_whitespace, plural
from threadline.transcript import (
    ARROW,
    THINKING_MARK,
    Piece,
    call_line,
    input_text,
    line_count,
    message_kind,
    pieces,
)
from threadline.ui.timeline import BlockState

RowKind = Literal["line", "text", "markdown"]
RowStyle = Literal["body", "dim", "meta", "tool", "error", "thinking", "more"]
RESULT_MARK = "↳"
META_MARK = "·"
# An opened output or transcript shows this many lines at most (a 50,000-line file read would
# otherwise be drawn whole); `c` copies a tool's whole output.
OPEN_LINES = 400


@dataclass(frozen=True, slots=True)
class Row:
    """One piece of a block: a `line` (one screen line, cut to the width), `text` (plain,
    wrapped) or `markdown`; drawn in `style`, `indent` cells in."""

    kind: RowKind
    text: str
    style: RowStyle = "body"
    indent: int = 0
    # A `line`'s end that is kept when the line is cut (a call's answer: "  → exit 0").
    tail: str = ""


@dataclass(frozen=True, slots=True)
class Layout:
    """An imported message's block: whether it has the role header, its rows, a spacer."""

    header: bool
    rows: tuple[Row, ...]
    spacer: bool = True


def _opened(text: str, style: RowStyle, indent: int, what: str = "c copies it all") -> list[Row]:
    """Opened text as rows: at most OPEN_LINES lines, then a line saying what was left out."""
    lines = text.split("\n")
    if len(lines) <= OPEN_LINES:
        return [Row("text", text, style, indent)]
    rest = len(lines) - OPEN_LINES
    return [
        Row("text", "\n".join(lines[:OPEN_LINES]), style, indent),
        Row("line", f"… {plural(rest, 'more line')} ({what})", "more", indent),
    ]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return collapse_whitespace(line)
    return ""


def _more(text: str) -> str:
    extra = line_count(text.strip()) - 1
    return f"  (+{plural(extra, 'line')})" if extra > 0 else ""


def has_spacer(item: Message, state: BlockState) -> bool:
    """Whether the block ends with a blank line (a tool result followed by another does not)."""
    return not (state.tight and message_kind(item.payload) == "tool_result")


def layout_message(item: Message, state: BlockState) -> Layout | None:
    """The block of an imported message (None: draw it as any other message)."""
    kind = message_kind(item.payload)
    if kind is None or kind == "prompt":
        return None
    parts = pieces(item.content, item.payload)
    if kind == "tool_result":
        return _tool_result(item, parts, state)
    if kind in ("meta", "info"):
        first = _first_line(item.content) or "(empty)"
        if kind == "meta":
            rows = [Row("line", f"{META_MARK} context added by the tool: {first}", "meta")]
            if state.expanded:
                rows += _opened(item.content, "dim", 2)
            elif line_count(item.content.strip()) > 1:
                rows[0] = Row("line", rows[0].text + _more(item.content), "meta")
        else:
            rows = [Row("line", f"{META_MARK} {first}{_more(item.content)}", "meta")]
            for p in parts:  # a subagent's transcript whose call is not known
                if p.kind == "subagent":
                    line = f"⤷ {p.name} subagent · {plural(p.count, 'message')}"
                    rows.append(Row("line", line, "tool", 2))
                    if state.expanded and p.text:
                        rows += _opened(p.text, "dim", 4, "not shown here")
        return Layout(header=False, rows=tuple(rows))
    if kind == "command":
        rows = []
        for p in parts:
            if p.kind == "command":
                rows.append(Row("line", f"$ {p.name}", "tool"))
                if p.text.strip():
                    rows.append(Row("text", p.text.rstrip("\n"), "dim", 2))
        return Layout(header=True, rows=tuple(rows or [Row("text", item.content, "body")]))
    # a reply (or a kind this version does not know: its parts, read the same way)
    if not any(p.kind in ("thinking", "call", "subagent") for p in parts):
        return None  # text only: drawn as any reply
    answers = dict(state.results)
    rows = []
    text: list[str] = []

    def flush() -> None:
        if text:
            rows.append(Row("markdown", "\n\n".join(text), "body"))
            text.clear()

    for p in parts:
        if p.kind == "text":
            if p.text.strip():
                text.append(p.text)
            continue
        flush()
        if p.kind == "thinking":
            rows += _thinking(p.text, state.show_thinking)
        elif p.kind == "call" and p.call is not None:
            answer = answers.get(p.call.id)
            tail = f"  {ARROW} {answer}" if answer is not None else ""
            rows.append(Row("line", call_line(p.call), "tool", tail=tail))
            if state.expanded:
                rows += _opened(input_text(p.call), "dim", 4, "not shown here")
        elif p.kind == "subagent":
            rows.append(Row("line", f"⤷ {p.name} subagent · {plural(p.count, 'message')}", "tool"))
            if state.expanded and p.text:
                rows += _opened(p.text, "dim", 4, "not shown here")
        elif p.kind == "attachment":
            rows.append(Row("line", f"[attachment: {p.name}]", "meta"))
    flush()
    return Layout(header=True, rows=tuple(rows))


def _thinking(text: str, shown: bool) -> list[Row]:
    if not text.strip():  # kept encrypted by the source: a marker, shown only with t
        if not shown:
            return []
        return [Row("line", f"{THINKING_MARK} Thinking (not kept readable by the source)", "meta")]
    if not shown:
        lines = plural(line_count(text.strip()), "line")
        return [Row("line", f"{THINKING_MARK} Thinking · {lines} · t shows", "meta")]
    return [
        Row("line", f"{THINKING_MARK} Thinking · t hides", "meta"),
        Row("text", text.strip("\n"), "thinking", 2),
    ]


def _tool_result(item: Message, parts: list[Piece], state: BlockState) -> Layout:
    result = next((p.result for p in parts if p.result is not None), None)
    output = item.content
    is_error = result is not None and result.is_error
    first = _first_line(output)
    if not first:
        first = (result.summary if result is not None else "") or "no output"
    name = "" if state.paired or result is None else f"{collapse_whitespace(result.name)}  "
    style: RowStyle = "error" if is_error else "dim"
    lines = line_count(output.strip())
    if state.expanded and lines > 1:
        return Layout(
            header=False,
            rows=(
                Row("line", f"{RESULT_MARK} {name}{plural(lines, 'line')} of output", style),
                *_opened(output.strip("\n"), "dim", 2),
            ),
            spacer=not state.tight,
        )
    rows = [Row("line", f"{RESULT_MARK} {name}{first}{_more(output)}", style)]
    return Layout(header=False, rows=tuple(rows), spacer=not state.tight)
