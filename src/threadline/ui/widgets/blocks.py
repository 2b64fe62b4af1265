"""Timeline items (messages, summaries) drawn as blocks of Strips at a given width.

Pure functions of (item, width, state, styles): the conversation view caches their output and
never builds a widget per message. Assistant text and summaries go through `SafeMarkdown`
(code fences highlighted, wrapped, nothing cropped); user, system and tool text is shown as
written. Every piece of stored text passes through `safe.clean` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len
from rich.color import Color, blend_rgb
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from threadline.models import Message, Summary, SummarySpan, TimelineItem
from threadline.ui.format import clock_time, duration_ms, plural, tokens
from threadline.ui.message_layout import Layout, Row, layout_message
from threadline.ui.safe import clean, one_line, safe_markdown
from threadline.ui.timeline import BlockState, item_key

__all__ = ["BlockState", "BlockStyles", "item_key", "render_block", "estimate_height"]

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}
COLLAPSED_LINES = 3


@dataclass(frozen=True, eq=False)
class BlockStyles:
    """Rich styles resolved from the view's component classes (so themes apply)."""

    base: Style
    labels: dict[str, Style]
    meta: Style
    body: Style
    dim_body: Style
    interrupted: Style
    streaming: Style
    summary_label: Style
    summary_body: Style
    more: Style
    code_theme: str
    # Imported messages: tool call lines, and the model's reasoning when shown.
    tool: Style | None = None
    thinking: Style | None = None


def render_block(
    item: TimelineItem,
    width: int,
    state: BlockState,
    styles: BlockStyles,
    console: Console,
    options: ConsoleOptions,
    now: datetime,
) -> list[Strip]:
    """The item's lines: a header, an optional metadata line, the body, a blank spacer."""
    width = max(4, width)
    spacer = True
    if isinstance(item, Summary):
        lines = _summary_block(item, width, state, styles, console, options, now)
    else:
        layout = layout_message(item, state)
        if layout is None:
            lines = _message_block(item, width, state, styles, console, options, now)
        else:
            lines = _imported_block(item, layout, width, state, styles, console, options, now)
            spacer = layout.spacer
    if state.covered:
        lines = fade(lines, styles.base)
    if spacer:
        lines.append(Strip.blank(width, styles.base))
    return lines


def _row_style(row: Row, styles: BlockStyles) -> Style:
    return {
        "body": styles.body,
        "dim": styles.dim_body,
        "meta": styles.meta,
        "tool": styles.tool or styles.meta,
        "error": styles.interrupted,
        "thinking": styles.thinking or styles.dim_body,
        "more": styles.more,
    }[row.style]


def _imported_block(
    item: Message,
    layout: Layout,
    width: int,
    state: BlockState,
    styles: BlockStyles,
    console,
    options,
    now,
) -> list[Strip]:
    """An imported message from its layout rows (ui.message_layout): every text cleaned."""
    lines: list[Strip] = []
    if layout.header:
        label_style = styles.labels.get(item.role, styles.meta)
        label = ROLE_LABELS.get(item.role, item.role)
        lines.append(_header([(label, label_style)], [], width, styles.base))
    if state.show_meta:
        lines.append(_meta_line(item, styles, width, now))
    for row in layout.rows:
        style = _row_style(row, styles)
        room = max(1, width - row.indent)
        pad = [Segment(" " * row.indent, styles.base)] if row.indent else []
        if row.kind == "line":
            line = clean(row.text.replace("\n", " "))  # one line, its spacing kept
            tail = clean(row.tail.replace("\n", " "))
            # The tail (a call's answer) stays in sight: the line before it is cut first, down
            # to half the room; past that the tail is cut too.
            keep = max(room // 2, room - cell_len(tail))
            text = Text(line, style=style, no_wrap=True, overflow="ellipsis", end="")
            text.truncate(keep, overflow="ellipsis")
            if tail:
                end = Text(tail, style=style, no_wrap=True, overflow="ellipsis", end="")
                end.truncate(max(1, room - text.cell_len), overflow="ellipsis")
                text.append_text(end)
            drawn = _render(text, room, styles.base, console, options)[:1]
        elif row.kind == "markdown":
            drawn = _body(row.text, True, room, style, styles, console, options)
        else:
            drawn = _render(
                Text(clean(row.text).rstrip("\n"), style=style, overflow="fold", end=""),
                room,
                styles.base,
                console,
                options,
            )
        for strip in drawn:
            lines.append(Strip([*pad, *strip], width) if pad else strip)
    if not lines:
        lines.append(_line([("(empty)", styles.meta)], width, styles.base))
    return lines


def fade_style(style: Style | None, base: Style, amount: float = 0.5) -> Style:
    """`style` (over `base`) with its foreground blended `amount` of the way to its
    background: hues kept, contrast halved (dim when the colours are not known)."""
    full = base + style if style is not None else base
    fg, bg = full.color, full.bgcolor
    if fg is None or bg is None:
        return full + Style(dim=True)
    mixed = blend_rgb(fg.get_truecolor(), bg.get_truecolor(), amount)
    return full + Style(color=Color.from_triplet(mixed))


def fade(lines: list[Strip], base: Style, amount: float = 0.5) -> list[Strip]:
    """The lines with every foreground colour faded (`fade_style`): how an item the latest
    summary stands for is drawn."""
    faded: dict[Style | None, Style] = {}

    def faded_style(style: Style | None) -> Style:
        result = faded.get(style)
        if result is None:
            result = faded[style] = fade_style(style, base, amount)
        return result

    return [
        Strip(
            [Segment(text, faded_style(style), control) for text, style, control in line],
            line.cell_length,
        )
        for line in lines
    ]


def _line(parts: list[tuple[str, Style]], width: int, base: Style) -> Strip:
    segments = [Segment(text, style) for text, style in parts if text]
    return Strip(segments).crop(0, width).adjust_cell_length(width, base)


def _header(
    left: list[tuple[str, Style]], right: list[tuple[str, Style]], width: int, base: Style
) -> Strip:
    right_len = sum(len(t) for t, _ in right)
    left_strip = _line(left, max(1, width - right_len - 1), base)
    right_strip = Strip([Segment(t, s) for t, s in right])
    return Strip.join([left_strip.crop(0, width - right_len), right_strip]).adjust_cell_length(
        width, base
    )


def _render(
    renderable: RenderableType,
    width: int,
    base: Style,
    console: Console,
    options: ConsoleOptions,
) -> list[Strip]:
    render_options = options.update(width=width, height=None, highlight=False)
    segments = console.render(renderable, render_options)
    lines = Segment.split_and_crop_lines(
        segments, width, style=base, pad=True, include_new_lines=False
    )
    return [Strip(Segment.apply_style(line, base), width) for line in lines]


def _body(
    content: str, markdown: bool, width: int, style: Style, styles: BlockStyles, console, options
) -> list[Strip]:
    if not content.strip():
        return [_line([("(empty)", styles.meta)], width, styles.base)]
    if markdown:
        renderable: RenderableType = safe_markdown(content, code_theme=styles.code_theme)
    else:
        renderable = Text(clean(content).rstrip("\n"), overflow="fold", end="")
    return _render(renderable, width, style, console, options)


def _meta_line(item: TimelineItem, styles: BlockStyles, width: int, now: datetime) -> Strip:
    parts = [clock_time(item.created_at, now)]
    if item.model:
        parts.append(one_line(item.model))
    if isinstance(item, Message):
        if item.input_tokens is not None or item.output_tokens is not None:
            parts.append(
                f"{tokens(item.input_tokens)} in / {tokens(item.output_tokens)} out tokens"
            )
        if item.response_ms is not None:
            parts.append(duration_ms(item.response_ms))
        if item.stop_reason and item.stop_reason not in ("stop", "end_turn"):
            parts.append(f"stop: {one_line(item.stop_reason)}")
    return _line([(" · ".join(parts), styles.meta)], width, styles.base)


def _message_block(
    item: Message, width: int, state: BlockState, styles: BlockStyles, console, options, now
) -> list[Strip]:
    label_style = styles.labels.get(item.role, styles.meta)
    right: list[tuple[str, Style]] = []
    if state.mark == "interrupted":
        right = [("⚠ interrupted", styles.interrupted)]
    elif state.mark == "streaming":
        right = [("● writing…", styles.streaming)]
    elif state.mark == "error":
        right = [("✖ error", styles.interrupted)]
    elif state.mark == "cancelled":
        right = [("■ cancelled", styles.meta)]
    lines = [
        _header([(ROLE_LABELS.get(item.role, item.role), label_style)], right, width, styles.base)
    ]
    if state.show_meta:
        lines.append(_meta_line(item, styles, width, now))
    body_style = styles.body if item.role in ("user", "assistant") else styles.dim_body
    if state.mark in ("error", "cancelled"):
        lines += _ended_body(item, state.mark, width, body_style, styles, console, options)
        return lines
    lines += _body(
        item.content, item.role == "assistant", width, body_style, styles, console, options
    )
    if state.mark == "interrupted":
        note = Text("⚠ the reply broke off here; the rest was not saved", style=styles.interrupted)
        lines += _render(note, width, styles.base, console, options)
    return lines


def error_parts(item: Message) -> tuple[str, str]:
    """(the text that arrived, the error) of a reply that ended with stop_reason 'error'."""
    payload = item.payload if isinstance(item.payload, dict) else {}
    error = payload.get("error")
    partial_chars = payload.get("partial_chars")
    if isinstance(error, str) and isinstance(partial_chars, int):
        return item.content[:partial_chars], error
    head, sep, tail = item.content.rpartition("Error: ")
    if sep and "\n" not in tail:
        return head.rstrip("\n"), tail
    return "", item.content


def _ended_body(
    item: Message, mark: str, width: int, style: Style, styles: BlockStyles, console, options
) -> list[Strip]:
    """A reply that failed or was cancelled: what arrived, then why it stops there."""
    if mark == "error":
        partial, error = error_parts(item)
        note = Text(f"✖ {clean(error)}", style=styles.interrupted, overflow="fold")
    else:
        partial = item.content
        note = Text("■ cancelled: the reply stops here", style=styles.meta)
    lines: list[Strip] = []
    if partial.strip():
        lines += _body(partial, item.role == "assistant", width, style, styles, console, options)
    return lines + _render(note, width, styles.base, console, options)


def summary_title(item: Summary, span: SummarySpan | None) -> str:
    """ "≡ Summary of messages 12–48 · 1,240 tokens": positions among the session's messages."""
    if span is None:
        title = f"≡ Summary of messages #{item.first_message_id}–#{item.last_message_id}"
    elif span.compacted:
        title = "≡ Summary of earlier messages (compacted)"
    elif span.first_position == span.last_position:
        title = f"≡ Summary of message {span.first_position:,}"
    else:
        title = f"≡ Summary of messages {span.first_position:,}–{span.last_position:,}"
    if item.token_count is not None:
        title += f" · {tokens(item.token_count)} tokens"
    return title


COMPACTED_NOTE = (
    "The messages it stands for were removed (compacted); this summary is what is left of them."
)
# An older summary of messages since removed: the latest one (further down) stands for them too.
EARLIER_NOTE = "An earlier summary: the latest one, further down, stands for the same messages."


def summary_note(span: SummarySpan | None, covered: bool) -> str | None:
    """The note under a summary's title: a compacted range says it was removed once, on the
    latest summary; an older summary of it says the latest stands for it."""
    if span is None or not span.compacted:
        return None
    return EARLIER_NOTE if covered else COMPACTED_NOTE


def _summary_block(
    item: Summary, width: int, state: BlockState, styles: BlockStyles, console, options, now
) -> list[Strip]:
    title = summary_title(item, state.span)
    lines = [_header([(title, styles.summary_label)], [], width, styles.base)]
    if state.show_meta:
        lines.append(_meta_line(item, styles, width, now))
    note_text = summary_note(state.span, state.covered)
    if note_text is not None:
        note = Text(note_text, style=styles.meta)
        lines += _render(note, width, styles.base, console, options)
    body = _body(item.content, True, width, styles.summary_body, styles, console, options)
    if state.expanded or len(body) <= COLLAPSED_LINES + 1:
        lines += body
        if len(body) > COLLAPSED_LINES + 1:
            lines.append(_line([("▴ collapse (enter or click)", styles.more)], width, styles.base))
    else:
        shown = body[:COLLAPSED_LINES]
        while len(shown) > 1 and not shown[-1].text.strip():
            shown.pop()  # a paragraph break would look like the end
        lines += shown
        more = len(body) - len(shown)
        lines.append(
            _line(
                [(f"▸ {plural(more, 'more line')} (enter or click to expand)", styles.more)],
                width,
                styles.base,
            )
        )
    return lines


_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)


def _estimate_imported(layout: Layout, width: int, state: BlockState) -> int:
    height = (1 if layout.header else 0) + (1 if state.show_meta else 0)
    height += 1 if layout.spacer else 0
    for row in layout.rows:
        if row.kind == "line":
            height += 1
            continue
        room = max(1, width - row.indent)
        height += sum(max(1, -(-len(line) // room)) for line in row.text.split("\n"))
        if row.kind == "markdown":
            height += 2 * len(_FENCE.findall(row.text)) // 2
    return max(1, height)


def estimate_height(item: TimelineItem, width: int, state: BlockState) -> int:
    """A cheap guess of render_block's height, for items not drawn yet (refined on drawing)."""
    width = max(4, width)
    if isinstance(item, Message):
        layout = layout_message(item, state)
        if layout is not None:
            return _estimate_imported(layout, width, state)
    extra = 2 + (1 if state.show_meta else 0)  # header + spacer (+ meta)
    text = item.content
    body = 0
    for line in text.split("\n"):
        body += max(1, -(-len(line) // width))
    if isinstance(item, Summary):
        note_text = summary_note(state.span, state.covered)
        if note_text is not None:
            extra += -(-len(note_text) // width)
        if not state.expanded:
            return extra + min(body, COLLAPSED_LINES + 1)
        return extra + body + 1
    if isinstance(item, Message) and item.role == "assistant":
        body += len(_FENCE.findall(text))  # code blocks gain a padding line at each end
    if state.mark in ("interrupted", "error", "cancelled"):
        body += 1
    return extra + max(1, body)


def code_blocks(markdown_text: str) -> list[str]:
    """The fenced and indented code blocks of a Markdown text, in order."""
    from markdown_it import MarkdownIt

    tokens_ = MarkdownIt("commonmark", {"html": False}).parse(markdown_text)
    return [t.content.rstrip("\n") for t in tokens_ if t.type in ("fence", "code_block")]
