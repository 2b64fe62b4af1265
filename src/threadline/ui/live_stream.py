"""The live reply's repaints, kept apart from drawing (no Textual here).

While a reply streams into the conversation, the view (`widgets/conversation.py`) keeps its text
and drawing in a `widgets.live.LiveReply` and its repaints in a `LivePace`:

- the pace: at most LIVE_FPS repaints a second, slower when drawing is slow, never one per
  token (`arrived` says when the next repaint is due, `next_frame` starts one);
- the drawing of the current frame, made once however often its lines are asked for (`drawn`);
- which lines a repaint draws again (`repaint`): only the growing end when the reply kept its
  height, everything below its finished part when it grew.

Times are given (`now`, from a monotonic clock), never read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIVE_FPS = 12  # at most this many repaints a second of a reply being streamed


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


class LivePace:
    """When the live reply is drawn again, and what a repaint draws again."""

    def __init__(self, painted: float = 0.0) -> None:
        self.painted = painted  # when the last repaint was drawn (or the reply began)
        self.due = False  # a repaint is scheduled
        self.frame = 0  # bumped by each repaint (the drawing's key)
        self._drawn: tuple[tuple[object, ...], Any] | None = None

    def arrived(self, render_seconds: float, now: float) -> float | None:
        """A delta arrived. Returns the seconds to wait before the next repaint when one is to
        be scheduled now (0: at once); None when one is scheduled already. `render_seconds`:
        what the last drawing cost."""
        if self.due:
            return None
        self.due = True
        return max(0.0, live_delay(self.painted, render_seconds, now))

    def next_frame(self) -> None:
        """A repaint starts: the next delta schedules another; the drawing is made anew."""
        self.due = False
        self.frame += 1

    def drawn(self, key: tuple[object, ...], draw: Callable[[], Any]) -> Any:
        """The drawing of the current frame for `key` (width, state…): `draw()` once per frame
        and key, however often its lines are asked for."""
        key = (self.frame, *key)
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, draw())
        return self._drawn[1]

    def forget(self) -> None:
        """The next `drawn` draws again (the view's layout was replaced)."""
        self._drawn = None

    def repaint(self, stable: int, top: int, drawn: int, old_height: int, end: int) -> Repaint:
        """The lines to draw again after drawing the reply (at virtual line `top`) at `drawn`
        lines where it had `old_height`; `end` is the layout's end after it. Its first
        `stable` lines (the header and the finished blocks) are as they were."""
        start = top + min(stable, drawn - 1)
        if drawn == old_height:
            return Repaint(start, drawn - (start - top), False)
        return Repaint(start, max(1, end - start), True)
