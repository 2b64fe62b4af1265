"""The pipe between the loader's reading thread and the store's writer.

The reading thread iterates the batches (a source reads its files there), prepares each
(transfer/batches.py) and puts the parts in; the writer takes about a transaction's worth at a
time. At most PIPE_BYTES wait in it, so memory stays flat however large the history.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from threadline.records import IncomingSession
from threadline.store.errors import StoreError
from threadline.store.transfer.batches import Part, prepare

# Bytes of prepared rows waiting for the writer, at most.
PIPE_BYTES = 32 << 20
# When the pipe holds less than this share of a budget, the writer waits up to FILL_WAIT
# seconds for more before writing (fewer, fuller transactions: each commit costs an fsync).
FILL_SHARE = 0.25
FILL_WAIT = 0.05


class End:
    """The batches are exhausted (or the reader raised `error`)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Refused:
    """A batch that failed its checks."""

    def __init__(self, batch: Any, error: StoreError) -> None:
        self.batch = batch
        self.error = error


class Pipe:
    """Prepared parts from the reading thread to the writer, at most `limit` bytes in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cond = threading.Condition()
        self.items: deque[tuple[Any, int]] = deque()
        self.bytes = 0
        self.cancelled = False

    def put(self, item: Any, cost: int) -> bool:
        """Add an item (waiting for room); False once the writer has given up."""
        with self.cond:
            while self.items and self.bytes + cost > self.limit and not self.cancelled:
                self.cond.wait()
            if self.cancelled:
                return False
            self.items.append((item, cost))
            self.bytes += cost
            self.cond.notify_all()
            return True

    def take(self, budget: int) -> list[Any]:
        """At least one item, then more while they fit in `budget` (waiting briefly to fill)."""
        with self.cond:
            while not self.items and not self.cancelled:
                self.cond.wait()
            if self.cancelled:
                return []
            taken: list[Any] = []
            used = 0
            deadline = time.monotonic() + FILL_WAIT
            while True:
                while self.items and (not taken or used + self.items[0][1] <= budget):
                    item, cost = self.items.popleft()
                    self.bytes -= cost
                    taken.append(item)
                    used += cost
                    if not isinstance(item, Part):
                        break
                self.cond.notify_all()
                if not isinstance(taken[-1], Part) or used >= budget * FILL_SHARE:
                    return taken
                if self.items and used + self.items[0][1] > budget:
                    return taken
                left = deadline - time.monotonic()
                if left <= 0:
                    return taken
                self.cond.wait(left)

    def unget(self, items: list[Any]) -> None:
        """Put items back at the front, in order (the writer could not take them yet)."""
        with self.cond:
            for item in reversed(items):
                cost = item.cost if isinstance(item, Part) else 0
                self.items.appendleft((item, cost))
                self.bytes += cost
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.items.clear()
            self.bytes = 0
            self.cond.notify_all()


class Gate:
    """Keeps the reading thread's Python off the GIL while the writer binds rows.

    The writer's executemany gives the GIL up for each row's step and takes it back for the
    next row's values: a thread running Python beside it keeps it each time until forced to
    let go (sys.getswitchinterval(), 5 ms), so a transaction of a few hundred rows would hold
    the write lock for seconds. So the reading thread waits while the writer inserts rows,
    and works while SQLite indexes and commits them (C, without the GIL).
    """

    def __init__(self) -> None:
        self._free = threading.Event()
        self._free.set()

    def busy(self) -> None:
        self._free.clear()

    def free(self) -> None:
        self._free.set()

    def wait(self) -> None:
        self._free.wait()


def produce(batches: Iterable[IncomingSession], pipe: Pipe, gate: Gate) -> None:
    """The reading thread: iterate the batches, prepare each, hand the parts to the writer."""
    error: BaseException | None = None
    try:
        iterator: Iterator[IncomingSession] = iter(batches)
        index = 0
        projects: dict[str, tuple[str, str] | None] = {}  # a directory's project, once a load
        for batch in iterator:
            gate.wait()
            try:
                parts: list[Any] = prepare(batch, index, gate.wait, projects)
            except StoreError as exc:
                parts = [Refused(batch, exc)]
            index += 1
            for part in parts:
                if not pipe.put(part, part.cost if isinstance(part, Part) else 0):
                    return
    except BaseException as exc:  # the reader's error ends the load once what came before is in
        error = exc
    pipe.put(End(error), 0)
