"""The reply being streamed, drawn incrementally: finished Markdown blocks are drawn once.

A reply grows at its end, so everything before its last block is final. The text is cut at
block boundaries (`live_stream.split_blocks`: a blank line outside a code fence, followed by a
line that starts a new top-level block); each finished chunk is rendered as Markdown once and
kept, and only the last, growing chunk is rendered again on each repaint. For the replies models
write (paragraphs, code blocks, lists, headings) the chunks drawn one after another look like
the whole text drawn at once, so nothing moves when the finished reply is drawn whole at the end.

The text, the pace of repaints and which lines they draw again are `ui.live_stream`'s (no
Textual there); this module draws. Every piece of text goes through `safe.clean` (inside
`safe_markdown`), like stored text.
"""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console, ConsoleOptions
from textual.strip import Strip

from threadline.models import Message
from threadline.ui.live_stream import LiveStream, split_blocks
from threadline.ui.widgets.blocks import (
    ROLE_LABELS,
    BlockState,
    BlockStyles,
    _header,
    _meta_line,
    _render,
)

__all__ = ["LiveReply", "split_blocks"]


class LiveReply(LiveStream):
    """The text of a reply as it streams (`LiveStream`), and its drawing cache.

    `render` returns what `render_block` would for the same message, built from cached chunks;
    `drawing` returns the drawing of the current frame (made once per repaint).
    """

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.renders = 0
        self._chunks: list[tuple[str, list[Strip]]] = []
        self._cache_key: tuple[object, ...] | None = None
        self._frame_drawn: tuple[tuple[object, ...], list[Strip]] | None = None

    def drawing(
        self,
        width: int,
        state: BlockState,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
        now: datetime,
    ) -> list[Strip]:
        """The lines of the current frame (drawn by its first call: `render`)."""
        key = (self.frame, width, state)
        if self._frame_drawn is not None and self._frame_drawn[0] == key:
            return self._frame_drawn[1]
        drawn = self.render(width, state, styles, console, options, now)
        self._frame_drawn = (key, drawn)
        return drawn

    def forget_drawing(self) -> None:
        """The next `drawing` draws again (the view's layout was replaced)."""
        self._frame_drawn = None

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
