"""The reply being streamed into the conversation, kept apart from drawing (no Textual here).

While a reply streams, the view (`widgets/conversation.py`) holds one `LiveStream` (its drawing,
`widgets.live.LiveReply`, builds on it). This module keeps what does not need a screen:

- the text as it arrives, delta by delta, and where its finished Markdown blocks end
  (`split_blocks`: everything before the last block is final, so it is drawn once);
- the pace of repaints: at most LIVE_FPS a second, slower when drawing is slow, never one per
  token (`arrived` says when the next repaint is due, `next_frame` starts one);
- which lines a repaint draws again (`repaint`): only the growing end when the reply kept its
  height, everything below its finished part when it grew.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from threadline.models import Message

LIVE_FPS = 12  # at most this many repaints a second of a reply being streamed

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


def live_delay(painted: float, render_seconds: float, now: float) -> float:
    """How long to wait before drawing the live reply again: at most LIVE_FPS repaints a
    second, and drawing takes at most a third of the time (a slow drawing waits longer)."""
    interval = max(1 / LIVE_FPS, 3 * render_seconds)
    return painted + interval - now


@dataclass(frozen=True)
class Repaint:
    """The virtual lines a repaint of the live reply draws again (`start`, `count`); `grew`:
    its height changed, so the layout below it moved (following the end, the screen scrolls)."""

    start: int
    count: int
    grew: bool


class LiveStream:
    """A reply's text as it streams, and the pace and extent of its repaints.

    Times are given (`now`, from a monotonic clock), never read here.
    """

    def __init__(self, message: Message) -> None:
        self.message = message
        self.parts: list[str] = []
        self.deltas = 0
        self.render_seconds = 0.0  # the last drawing's cost (repaints are paced by it)
        # Lines at the start of the last drawing that the next one draws the same (the header
        # and the finished blocks): a repaint needs only the lines after them.
        self.stable_lines = 0
        self.frame = 0  # bumped by each repaint (the drawing's cache key)
        self.painted = 0.0  # when the last repaint was drawn
        self.due = False  # a repaint is scheduled
        self._text = ""
        self._stale = False

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

    def arrived(self, text: str, now: float) -> float | None:
        """Take a delta. Returns the seconds to wait before the next repaint when one is to be
        scheduled now (0: at once); None when one is scheduled already."""
        self.append(text)
        if self.due:
            return None
        self.due = True
        return max(0.0, live_delay(self.painted, self.render_seconds, now))

    def next_frame(self) -> None:
        """A repaint starts: the next delta schedules another; the drawing is made anew."""
        self.due = False
        self.frame += 1

    def repaint(self, top: int, drawn: int, old_height: int, end: int) -> Repaint:
        """The lines to draw again after drawing the reply (at virtual line `top`) at `drawn`
        lines where it had `old_height`; `end` is the layout's end after it. The lines before
        its growing end are as they were."""
        start = top + min(self.stable_lines, drawn - 1)
        if drawn == old_height:
            return Repaint(start, drawn - (start - top), False)
        return Repaint(start, max(1, end - start), True)
