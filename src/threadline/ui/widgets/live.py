"""The reply being streamed, drawn incrementally: finished Markdown blocks are drawn once.

A reply grows at its end, so everything before its last block is final. The text is cut at
block boundaries (a blank line outside a code fence, followed by a line that starts a new
top-level block); each finished chunk is rendered as Markdown once and kept, and only the last,
growing chunk is rendered again on each repaint. For the replies models write (paragraphs,
code blocks, lists, headings) the chunks drawn one after another look like the whole text
drawn at once, so nothing moves when the finished reply is drawn whole at the end.

Every piece of text goes through `safe.clean` (inside `safe_markdown`), like stored text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console, ConsoleOptions
from textual.strip import Strip

from threadline.models import Message
from threadline.ui.widgets.blocks import (
    ROLE_LABELS,
    BlockState,
    BlockStyles,
    _header,
    _meta_line,
    _render,
)

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line that continues the block above it even after a blank line: indented text (a list
# item's paragraph, indented code) or another list item (a loose list is one list).
_CONTINUES = re.compile(r"^(\s|[-*+]\s|\d{1,9}[.)]\s)")
# Rich draws a thematic break with a blank line of its own after it.
_RULE = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$")


def split_blocks(text: str) -> tuple[list[str], str]:
    """(finished chunks, the growing last chunk) of a Markdown text that may grow at its end.

    A chunk ends at a blank line that is outside any code fence and followed by a line that
    starts a new top-level block; chunks exclude the blank lines between them.
    """
    lines = text.split("\n")
    chunks: list[str] = []
    start = 0
    fence: str | None = None
    for i, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not line.strip().strip(fence[0]):
                fence = None
            continue
        if fence is not None or line.strip() or i + 1 >= len(lines):
            continue
        following = lines[i + 1]
        if not following.strip() or _CONTINUES.match(following):
            continue
        if i and _RULE.match(lines[i - 1]):
            continue
        chunk = "\n".join(lines[start:i]).strip("\n")
        if chunk.strip():
            chunks.append(chunk)
        start = i + 1
    return chunks, "\n".join(lines[start:])


@dataclass
class LiveReply:
    """The text of a reply as it streams, and its drawing cache.

    `render` returns what `render_block` would for the same message, built from cached chunks.
    """

    message: Message
    parts: list[str] = field(default_factory=list)
    deltas: int = 0
    render_seconds: float = 0.0  # the last render's cost (the view paces repaints by it)
    renders: int = 0
    # Lines at the start of the last drawing that the next one draws the same (the header
    # and the finished blocks): a repaint needs only the lines after them.
    stable_lines: int = 0
    _text: str = ""
    _stale: bool = False
    _chunks: list[tuple[str, list[Strip]]] = field(default_factory=list)
    _cache_key: tuple[object, ...] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return ("m", self.message.id)

    @property
    def text(self) -> str:
        if self._stale:
            self._text = "".join(self.parts)
            self._stale = False
        return self._text

    def append(self, text: str) -> None:
        self.parts.append(text)
        self.deltas += 1
        self._stale = True

    def render(
        self,
        width: int,
        state: BlockState,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
        now: datetime,
    ) -> list[Strip]:
        """The block's lines: header ("● writing…"), optional metadata, body, spacer."""
        started = time.perf_counter()
        lines = self._block(self.message, True, width, state, styles, console, options, now)
        self.render_seconds = time.perf_counter() - started
        self.renders += 1
        return lines

    def render_final(
        self,
        message: Message,
        width: int,
        state: BlockState,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
        now: datetime,
    ) -> list[Strip] | None:
        """What `render_block` draws for the finished `message`, from the chunks already drawn
        (only the last block is drawn again: no re-highlighting every code block at the end).
        None when it cannot stand in for `render_block` (other text, or an ending to show)."""
        if (
            message.content != self.text
            or not message.complete
            or state.mark is not None
            or not message.content.strip()
        ):
            return None
        return self._block(message, False, width, state, styles, console, options, now)

    def _block(
        self,
        message: Message,
        writing: bool,
        width: int,
        state: BlockState,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
        now: datetime,
    ) -> list[Strip]:
        width = max(4, width)
        key = (width, id(styles))
        if key != self._cache_key:
            self._cache_key = key
            self._chunks = []
        label = styles.labels.get(message.role, styles.meta)
        right = [("● writing…", styles.streaming)] if writing else []
        lines = [
            _header(
                [(ROLE_LABELS.get(message.role, message.role), label)], right, width, styles.base
            )
        ]
        if state.show_meta:
            lines.append(_meta_line(message, styles, width, now))
        body, stable = self._body(width, styles, console, options)
        self.stable_lines = len(lines) + stable
        lines += body
        lines.append(Strip.blank(width, styles.base))
        return lines

    def _body(
        self, width: int, styles: BlockStyles, console: Console, options: ConsoleOptions
    ) -> tuple[list[Strip], int]:
        """The body's lines, and how many of them are the finished blocks'."""
        from threadline.ui.safe import safe_markdown

        chunks, tail = split_blocks(self.text)
        # Chunks only ever grow in number; a cached chunk whose text changed (it cannot, but
        # be safe) is drawn again.
        for i, chunk in enumerate(chunks):
            if i < len(self._chunks) and self._chunks[i][0] == chunk:
                continue
            del self._chunks[i:]
            drawn = _render(
                safe_markdown(chunk, code_theme=styles.code_theme),
                width,
                styles.body,
                console,
                options,
            )
            self._chunks.append((chunk, drawn))
        del self._chunks[len(chunks) :]
        blank = Strip.blank(width, styles.base)
        body: list[Strip] = []
        for _, drawn in self._chunks:
            if body:
                body.append(blank)
            body += drawn
        stable = len(body)
        if tail.strip():
            drawn = _render(
                safe_markdown(tail, code_theme=styles.code_theme),
                width,
                styles.body,
                console,
                options,
            )
            if body and drawn:
                body.append(blank)
            body += drawn
        if not body:
            # Nothing visible yet (the first tokens were blank).
            body = [Strip.blank(width, styles.base)]
        return body, stable
