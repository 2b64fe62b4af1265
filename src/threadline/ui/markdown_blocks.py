"""A Markdown text that grows at its end, cut into blocks that are laid out once (no Textual here).

A reply streams in at its end, so everything before its last block is final. The text is cut
at block boundaries (a blank line outside a code fence, followed by a line that starts a new
top-level block); each finished block is laid out once (`BlockCache`, by its text, the width
and the styles) and only the last, growing block is laid out again on each repaint. For the
replies models write (paragraphs, code blocks, lists, headings, tables, quotes) the blocks laid
out one after another, one blank line between them (`starts_with_break`), are the whole text
laid out at once.

- `split_blocks(text)`: (finished blocks, the growing rest) of a text;
- `BlockSplitter`: the same for a text that only grows, scanning only from the start of its
  last block on each update (a long reply is not scanned again from the start every frame);
- `code_block_height(block, width)`: how many lines a finished fenced code block takes, known
  without drawing it (so a code block off the screen is drawn only when it comes into view).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from threadline.ui.code_lines import wrap_code_line

if TYPE_CHECKING:
    from markdown_it.token import Token

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line that continues the block above it even after a blank line: indented text (a list
# item's paragraph, indented code) or another list item (a loose list is one list).
_CONTINUES = re.compile(r"^(\s|[-*+]\s|\d{1,9}[.)]\s)")
# Rich draws a thematic break with a blank line of its own after it.
_RULE = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$")
TAB_SIZE = 4  # Rich's Syntax expands tabs to this many columns

# A growing line that starts with one of these (or nothing yet) may still turn out to continue
# the block above it (an indented line, a list item).
_UNDECIDED = frozenset(("", " ", "\t", "-", "*", "+", *"0123456789"))


def _scan(lines: list[str], fence: str | None, final: bool) -> tuple[list[int], str | None]:
    """The indexes of the blank lines that end a block, and the fence open after the last line.

    With `final`, the last line is complete; else it may still grow, and a blank line before
    it does not end a block yet (what the last line starts with decides)."""
    ends: list[int] = []
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
        if i + 2 >= len(lines) and not final and following[:1] in _UNDECIDED:
            continue  # the next line is the growing one, and its start does not say yet
        if not following.strip() or _CONTINUES.match(following):
            continue
        if i and _RULE.match(lines[i - 1]):
            continue
        ends.append(i)
    return ends, fence


def split_blocks(text: str) -> tuple[list[str], str]:
    """(finished blocks, the growing last block) of a Markdown text that may grow at its end.

    A block ends at a blank line that is outside any code fence and followed by a line that
    starts a new top-level block; blocks exclude the blank lines between them.
    """
    lines = text.split("\n")
    ends, _ = _scan(lines, None, final=True)
    return _cut(lines, ends)


def _cut(lines: list[str], ends: list[int]) -> tuple[list[str], str]:
    chunks: list[str] = []
    start = 0
    for i in ends:
        chunk = "\n".join(lines[start:i]).strip("\n")
        if chunk.strip():
            chunks.append(chunk)
        start = i + 1
    return chunks, "\n".join(lines[start:])


class BlockSplitter:
    """`split_blocks` for a text that only grows: `update` scans from the last block's start.

    A boundary is taken only once the line after the blank one says it starts a new block
    (complete, or its first character says so), so a block never changes after it was returned
    as finished."""

    def __init__(self) -> None:
        self.blocks: list[str] = []  # finished, in order
        self._text = ""
        self._start = 0  # where the unfinished rest begins in the text
        self.scanned = 0  # characters scanned by the last update (for tests)

    def update(self, text: str) -> tuple[list[str], str]:
        """(finished blocks, the rest) of `text`, which starts with the text seen before (else
        it is split again from the start)."""
        if not text.startswith(self._text):
            self.blocks, self._start = [], 0
        self._text = text
        rest = text[self._start :]
        self.scanned = len(rest)
        lines = rest.split("\n")
        # Only complete lines are scanned for boundaries: the last one is still growing. The
        # rest starts outside any fence (a boundary is never inside one).
        ends, _ = _scan(lines, None, final=False)
        if ends:
            chunks, _tail = _cut(lines, ends)
            self.blocks.extend(chunks)
            self._start += sum(len(line) + 1 for line in lines[: ends[-1] + 1])
        return list(self.blocks), text[self._start :]


# Blocks that Rich draws with a blank line of its own above them (a container's first child
# leaves its "new line" flag set): after another block, that line is the one between them.
_CONTAINERS = frozenset(("blockquote_open", "bullet_list_open", "ordered_list_open", "table_open"))


def starts_with_break(tokens: Sequence[Token]) -> bool:
    """Whether Rich draws a block parsed into `tokens` with a blank line above it; the blank
    line between two blocks is then that one, not another."""
    return (
        len(tokens) > 1
        and tokens[0].type in _CONTAINERS
        and tokens[1].type != tokens[0].type.replace("_open", "_close")
    )


@dataclass(frozen=True)
class OpenFence:
    """A growing rest that is one fenced code block not closed yet, as it is drawn so far."""

    lexer: str  # the first word of the info string ("" : none)
    code: str  # what `WrappedCodeBlock` draws: the lines after the fence, trailing space cut
    # Lines of `code` whose drawing cannot change as the code grows: all but the last one (it
    # may grow, and its trailing spaces are cut only while it is the last).
    stable: int


def open_fence(rest: str) -> OpenFence | None:
    """The growing rest as an open fenced code block (None: anything else)."""
    lines = rest.split("\n")
    opening = _FENCE.match(lines[0])
    if opening is None or lines[0].startswith(" ") or len(lines) < 2:
        return None
    fence = opening.group(1)
    info = lines[0][len(fence) :]
    if fence[0] == "`" and "`" in info:
        return None
    for line in lines[1:]:
        match = _FENCE.match(line)
        if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            return None  # closed (or closing): not growing as code any more
    code = "\n".join(lines[1:]).rstrip()
    return OpenFence(info.strip().partition(" ")[0], code, code.count("\n"))


def code_block_height(block: str, width: int) -> int | None:
    """The lines a finished block that is one fenced code block takes at `width` as drawn
    (`WrappedCodeBlock`: a padding line above and below, each code line cut by
    `wrap_code_line` inside one cell of padding each side); None for any other block, or one
    whose drawing is not known this way (tabs)."""
    lines = block.split("\n")
    if len(lines) < 2:
        return None
    opening = _FENCE.match(lines[0])
    if opening is None or lines[0].startswith(" ") or "\t" in block:
        return None
    fence = opening.group(1)
    info = lines[0][len(fence) :]
    if fence[0] == "`" and "`" in info:
        return None  # not a fence opening (a code span)
    closing = _FENCE.match(lines[-1])
    if (
        closing is None
        or lines[-1].startswith(" ")
        or closing.group(1)[0] != fence[0]
        or len(closing.group(1)) < len(fence)
        or lines[-1].strip().strip(fence[0])
    ):
        return None
    body = lines[1:-1]
    for line in body:  # a fence closed early: more than one block
        match = _FENCE.match(line)
        if (
            match
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
            and not line.strip().strip(fence[0])
        ):
            return None
    code = "\n".join(body).rstrip()
    inner = max(1, width - 2)
    return 2 + sum(len(wrap_code_line(line, inner)) for line in code.split("\n"))


L = TypeVar("L")


class BlockCache(Generic[L]):
    """Laid-out blocks, by (block text, width, styles key): the least recently used go first."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, Hashable], L] = OrderedDict()
        self.misses = 0

    def get(self, block: str, width: int, styles: Hashable, lay_out: Callable[[], L]) -> L:
        key = (block, width, styles)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            return found
        self.misses += 1
        laid = lay_out()
        self._items[key] = laid
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return laid

    def clear(self) -> None:
        self._items.clear()
