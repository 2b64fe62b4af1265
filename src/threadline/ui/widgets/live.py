"""The reply being streamed, drawn incrementally: finished Markdown blocks are drawn once.

The text is cut into blocks as it grows (`ui.markdown_blocks`: the rules, without Textual);
each finished block is drawn once (kept by its text, width and styles, so drawing the finished
reply again reuses them) and only the last, growing block is drawn again on each repaint. A
finished code block's height is known without drawing it: it is drawn when one of its lines is
first shown (`LazyStrips`), so a long reply followed at its end draws what is on screen. For the
replies models write the blocks drawn one after another look like the whole text drawn at once,
so nothing moves when the finished reply is drawn whole at the end.

Every piece of text goes through `safe.clean` (inside `safe_markdown`), like stored text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from rich.console import Console, ConsoleOptions
from textual.strip import Strip

from threadline.models import Message
from threadline.ui.code_lines import wrap_code_line
from threadline.ui.markdown_blocks import (
    TAB_SIZE,
    BlockCache,
    BlockSplitter,
    OpenFence,
    code_block_height,
    open_fence,
    split_blocks,
    starts_with_break,
)
from threadline.ui.widgets.blocks import (
    ROLE_LABELS,
    BlockState,
    BlockStyles,
    _header,
    _meta_line,
    _render,
)

__all__ = ["LazyStrips", "LiveReply", "split_blocks"]

# Finished blocks drawn, shared by the live replies (a reply drawn again, at another width or
# from the store once finished, draws only what it has not drawn before).
BLOCKS: BlockCache[tuple[bool, list[Strip]]] = BlockCache(256)


class LazyStrips(list[Strip]):
    """Lines of which some ranges are drawn only when first read (by index, slice or
    iteration): `defer(height, draw)` appends `height` placeholder lines that `draw()`
    replaces. Its length is known from the start. Never `extend` a plain list with it."""

    def __init__(self, lines: list[Strip] | None = None) -> None:
        super().__init__(lines or ())
        self._pending: dict[int, tuple[int, Callable[[], list[Strip]]]] = {}

    def defer(self, height: int, draw: Callable[[], list[Strip]], placeholder: Strip) -> None:
        self._pending[len(self)] = (height, draw)
        super().extend([placeholder] * height)

    @property
    def pending(self) -> int:
        """Lines not drawn yet."""
        return sum(height for height, _ in self._pending.values())

    def _fill(self, start: int, stop: int) -> None:
        for at in [
            at for at, (height, _) in self._pending.items() if at < stop and at + height > start
        ]:
            height, draw = self._pending.pop(at)
            placeholder = super().__getitem__(at)
            # Its height was known (`code_block_height`); should a drawing differ, it is cut or
            # padded with blank lines so that the lines after it stay where they were laid out.
            drawn = (draw() + [placeholder] * height)[:height]
            super().__setitem__(slice(at, at + height), drawn)

    def __getitem__(self, index):  # noqa: ANN001, ANN204
        if self._pending:
            if isinstance(index, slice):
                start, stop, _ = index.indices(len(self))
                self._fill(start, max(start, stop))
            else:
                at = index + len(self) if index < 0 else index
                self._fill(at, at + 1)
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Strip]:
        if self._pending:
            self._fill(0, len(self))
        return super().__iter__()


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
    _splitter: BlockSplitter = field(default_factory=BlockSplitter)
    blocks: BlockCache[tuple[bool, list[Strip]]] = field(default_factory=lambda: BLOCKS)
    # The open code block's drawing so far: (key, its finished lines, the padding line above,
    # those lines' rows, the padding line below).
    _code: tuple[tuple[object, ...], list[str], Strip, list[Strip], Strip] | None = None
    # A finished block's height when it is one code block (None: another block), by width.
    _heights: dict[tuple[str, int], int | None] = field(default_factory=dict)

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
        label = styles.labels.get(message.role, styles.meta)
        right = [("● writing…", styles.streaming)] if writing else []
        lines = [
            _header(
                [(ROLE_LABELS.get(message.role, message.role), label)], right, width, styles.base
            )
        ]
        if state.show_meta:
            lines.append(_meta_line(message, styles, width, now))
        drawn = LazyStrips(lines)
        self._body(drawn, width, styles, console, options)
        drawn.append(Strip.blank(width, styles.base))
        return drawn

    def _growing_code(
        self,
        fence: OpenFence,
        tail: str,
        width: int,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
    ) -> list[Strip]:
        """An open code block's lines: those of its finished code lines kept from the last
        repaint, only the lines after them drawn (highlighted with the whole code, so a string
        running over several lines is coloured as in the whole drawing)."""
        from threadline.ui.markdown import WrappedSyntax
        from threadline.ui.safe import safe_markdown

        key = (tail.split("\n", 1)[0], width, styles.code_theme, styles.body, styles.base)
        kept = self._code
        code = fence.code
        code_lines = code.split("\n")
        inner = max(1, width - 2)
        if kept is None or kept[0] != key or kept[1] != code_lines[: len(kept[1])]:
            drawn = _render(
                safe_markdown(tail, code_theme=styles.code_theme),
                width,
                styles.body,
                console,
                options,
            )
            if len(drawn) < 2:  # not drawn as a padded code block: nothing to keep
                self._code = None
                return drawn
            top, rows, bottom = drawn[0], drawn[1:-1], drawn[-1]
        else:
            _, done, top, done_rows, bottom = kept
            first = len(done)
            syntax = WrappedSyntax(
                code,
                fence.lexer or "text",
                theme=styles.code_theme,
                word_wrap=True,
                padding=1,
                line_range=(first + 1, None),
            )
            syntax.wrap_width = inner
            rows = done_rows + _render(syntax, width, styles.body, console, options)[1:-1]
        # Keep the rows of the lines that cannot change (each line's rows: its pieces).
        stable = fence.stable
        count = sum(
            len(wrap_code_line(line.expandtabs(TAB_SIZE), inner)) for line in code_lines[:stable]
        )
        self._code = (key, code_lines[:stable], top, rows[:count], bottom)
        return [top, *rows, bottom]

    def _body(
        self,
        lines: LazyStrips,
        width: int,
        styles: BlockStyles,
        console: Console,
        options: ConsoleOptions,
    ) -> None:
        """Add the body's lines: the finished blocks (drawn once; a code block when first
        shown), then the growing rest drawn again (an open code block: its new lines only).
        `stable_lines`: where the rest starts."""
        from threadline.ui.safe import clean, safe_markdown

        def draw(block: str) -> tuple[bool, list[Strip]]:
            markdown = safe_markdown(block, code_theme=styles.code_theme)
            drawn = _render(markdown, width, styles.body, console, options)
            return starts_with_break(markdown.parsed), drawn

        def drawn_code(block: str) -> list[Strip]:
            return self.blocks.get(block, width, style_key, partial(draw, block))[1]

        style_key = (styles.code_theme, styles.body, styles.base)
        blocks, tail = self._splitter.update(self.text)
        blank = Strip.blank(width, styles.base)
        start = len(lines)
        heights = self._heights
        for block in blocks:
            height = heights.get((block, width), 0)
            if height == 0:
                height = heights[(block, width)] = code_block_height(block, width)
            if len(lines) > start:
                # (a code block does not start with a break of its own)
                if (
                    height is not None
                    or not self.blocks.get(block, width, style_key, partial(draw, block))[0]
                ):
                    lines.append(blank)
            if height is None:
                lines.extend(self.blocks.get(block, width, style_key, partial(draw, block))[1])
            else:
                lines.defer(height, partial(drawn_code, block), blank)
        self.stable_lines = len(lines)
        if tail.strip():
            fence = open_fence(clean(tail)) if tail.startswith(("```", "~~~")) else None
            if fence is None:
                broken, drawn = draw(tail)
            else:
                broken = False
                drawn = self._growing_code(fence, tail, width, styles, console, options)
            if len(lines) > start and drawn and not broken:
                lines.append(blank)
            lines.extend(drawn)
        if len(lines) == start:
            # Nothing visible yet (the first tokens were blank).
            lines.append(blank)
