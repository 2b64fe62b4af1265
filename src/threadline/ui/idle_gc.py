"""Full garbage collections while the app is idle, not in the middle of a key press (no Textual).

CPython runs a full (generation 2) collection after ten collections of generation 1, whatever
the program is doing: in the conversation pane that is every few dozen page-ups, and each one
walks every live object (the window's drawings, Textual's caches: tens of thousands of
objects), 30-150 ms on a busy machine that the key press waiting on it pays. The objects the
pane keeps are not cyclic garbage (a full collection frees next to nothing); the younger
generations still collect the short-lived cycles at once.

`IdleCollector` turns the automatic full collections off and runs them from a timer instead:
when one is due (as many generation-1 collections as CPython would wait for) and no key or
mouse event came for `quiet` seconds; or, however busy the app is, once `overdue` of them
have passed (a key held down for a long time): a fifth as many full collections as CPython
runs, and memory stays bounded (deferred much longer, the pane's memory grew by a third:
Textual's caches keep what only a full collection lets go).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# Generation-1 collections since the last full one before a full collection is due (CPython's
# own default threshold), and before it runs even while keys keep coming (page-ups held down:
# one full collection every ~100 of them).
DUE = 10
OVERDUE = 50
QUIET = 1.0  # seconds without a key or mouse event that count as idle
TICK = 0.25  # how often the app asks (seconds)
# The generation-2 threshold while the collector is on: CPython never reaches it by itself.
OFF = 1 << 30


class IdleCollector:
    """When to run a full collection: `tick()` from a timer, `activity()` on each input."""

    def __init__(
        self,
        *,
        due: int = DUE,
        overdue: int = OVERDUE,
        quiet: float = QUIET,
        clock: Callable[[], float] = time.monotonic,
        collect: Callable[[int], object] = gc.collect,
        count: Callable[[], tuple[int, int, int]] = gc.get_count,
    ) -> None:
        self.due = due
        self.overdue = overdue
        self.quiet = quiet
        self._clock = clock
        self._collect = collect
        self._count = count
        self._last_input = clock()
        self._saved: tuple[int, int, int] | None = None
        self.collections = 0  # full collections run by `tick`

    @property
    def started(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        """Turn CPython's automatic full collections off (generations 0 and 1 run as before)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], OFF)

    def stop(self) -> None:
        """Give CPython its thresholds back."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def activity(self) -> None:
        """A key or mouse event came: not idle."""
        self._last_input = self._clock()

    def tick(self) -> bool:
        """Run a full collection if one is due and the app is idle, or if it is overdue;
        returns whether it ran."""
        pending = self._count()[2]
        if pending < self.due:
            return False
        if pending < self.overdue and self._clock() - self._last_input < self.quiet:
            return False
        self._collect(2)
        self.collections += 1
        return True
