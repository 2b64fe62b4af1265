"""The history loader: `Store.load_history` writes what sources read (threadline.records).

How it runs. The batches (`IncomingSession`s, a plain iterator) are consumed on a thread of
their own, which also checks and converts each one into rows (transfer/batches.py: timestamps,
JSON text, bounds, hashes); the rows go through a bounded pipe (transfer/pipe.py: never more
than PIPE_BYTES in flight, so memory stays flat however large the history) to the store's
writer, which writes them in short transactions (transfer/merge.py). Reading the next files and
converting them overlaps with writing the last ones, and SQLite's work runs without the GIL, so
the two use both cores. Between transactions the writer is free: the app's own writes, queued
on the same writer, go next, and other processes find the lock free (bulk.Pacer's pauses).

Transactions. A batch is atomic: its messages, summaries and file mark are committed together
(a crash loses none of it and records no read whose messages were not saved). Small batches
share a transaction, up to a budget sized so that one holds the write lock about LOCK_TARGET
seconds (measured as it goes; a transaction takes no further batch after the pacer's cutoff); a
larger than a part (PART_BYTES, PART_MESSAGES) is split, each part its own transaction, the
session created by the first and its summaries and mark saved with the last, so a crash mid-way
leaves a session that the next read completes (keys keep it from doubling). Full-text indexing
and counters are done in bulk (transfer/bulk.py); into a database without messages (a first
import) the message index is built by a process of its own beside the load and copied in at the
end (transfer/side_index.py).

Identity. A session is found by (source, source_id) (indexed columns, also kept in its
metadata); a new one gets an id that is the same on every machine (store/util.uuid7_seeded:
its created_at and a hash of source and source id). A message is found by its key
(message_keys): a new key is appended, a present one replaced when what was stored for it
differs (a hash of its stored columns), and left alone otherwise; a key whose message was
deleted since (compacted away) stays deleted. Duplicate keys in one batch: the last wins, at
the place of the first. A title is set on a new session, and on a present one only while the
person has not renamed it (its title is still the one an import set, `imported_title` in the
metadata). Empty model and system prompt are filled in; metadata keys are merged.

Bounds. Everything is checked before it reaches SQLite: a bad value (a 1e30 token count, a
naive timestamp, a relative directory, a summary naming a key that was never loaded) is a
one-line StoreError naming the session, and the batch is not written.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from threadline.records import IncomingSession
from threadline.store.errors import (
    DatabaseDamaged,
    DatabaseReadOnly,
    LockTimeout,
    StoreError,
)
from threadline.store.transfer import side_index
from threadline.store.transfer.batches import Part, imported_session_id
from threadline.store.transfer.bulk import Checkpointer, Pacer, pause_autocheckpoint
from threadline.store.transfer.merge import DryState, Fed, Result, read_marks, write_parts
from threadline.store.transfer.pipe import PIPE_BYTES, End, Gate, Pipe, Refused, produce
from threadline.store.util import Clock, fmt_ts

if TYPE_CHECKING:
    from threadline.store.connection import Database

__all__ = ["LoadReport", "imported_session_id", "load", "read_marks"]

# Errors that are the database's, not a batch's: they end the load whatever `on_error` says.
_NOT_THE_BATCH = (LockTimeout, DatabaseDamaged, DatabaseReadOnly)

# Whether a load into a database without messages builds their search index in a process of
# its own (transfer/side_index.py); tests turn it off to compare.
SIDE_INDEX = True

# When set (tests), a transaction takes no further part once it has held the lock this long;
# otherwise the pacer's cutoff (about the time the bulk work that follows will leave).
CUTOFF: float | None = None


@dataclass
class LoadReport:
    """What `Store.load_history` did (or, with dry_run, would do)."""

    sessions: int = 0  # new sessions
    updated: int = 0  # present sessions that gained or changed messages (or summaries)
    messages: int = 0  # messages added
    replaced: int = 0  # present messages whose stored form changed
    skipped: int = 0  # present sessions left unchanged
    summaries: int = 0  # summaries added
    titled: int = 0  # present sessions given a new title
    marks: int = 0  # file marks saved
    failed: int = 0  # batches refused (see errors)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    transactions: int = 0
    seconds: float = 0.0
    locked_seconds: float = 0.0  # the write lock held, in all
    longest_lock_seconds: float = 0.0  # the longest any one transaction held it
    index_seconds: float = 0.0  # of the lock time, the bulk index and counter work

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Tally:
    """Per-session outcomes across the whole load (a session may come in several parts)."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        self.before: dict[str, bool] = {}  # session id -> it existed before this load
        self.changed: set[str] = set()

    def add(self, results: list[Result]) -> None:
        report = self.report
        for r in results:
            report.index_seconds += r.index_seconds
            report.messages += r.added
            report.replaced += r.replaced
            report.summaries += r.summaries
            report.titled += r.titled
            report.marks += r.marked
            sid = r.session_id
            if sid is None:
                continue
            if sid not in self.before:
                self.before[sid] = r.existed
                if r.existed:
                    report.skipped += 1
                else:
                    report.sessions += 1
            if r.changed and self.before[sid] and sid not in self.changed:
                self.changed.add(sid)
                report.skipped -= 1
                report.updated += 1


async def load(
    db: Database,
    clock: Clock,
    batches: Iterable[IncomingSession],
    *,
    dry_run: bool = False,
    progress: Callable[[LoadReport], None] | None = None,
    on_error: Callable[[IncomingSession, StoreError], None] | None = None,
) -> LoadReport:
    """Load batches in short transactions; see the module docstring and Store.load_history."""
    started = time.perf_counter()
    report = LoadReport(dry_run=dry_run)
    tally = _Tally(report)
    dry = DryState() if dry_run else None
    pipe = Pipe(PIPE_BYTES)
    gate = Gate()
    reader = threading.Thread(
        target=produce, args=(batches, pipe, gate), name="threadline-load", daemon=True
    )
    reader.start()
    pacer = Pacer()
    pause = 0.0
    checkpointer = None
    autocheckpoint = None
    side = None
    if not dry_run:
        autocheckpoint = await db.on_writer(pause_autocheckpoint, 0)
        checkpointer = Checkpointer(str(db.path))
    try:
        if not dry_run:
            side = await side_index.start(db, wanted=SIDE_INDEX)
        while True:
            items = await asyncio.to_thread(pipe.take, pacer.budget)
            parts = [item for item in items if isinstance(item, Part)]
            if parts:
                index = report.index_seconds
                cutoff = pacer.cutoff if CUTOFF is None else CUTOFF
                held, left = await _write(
                    db, clock, parts, dry, tally, on_error, gate, cutoff, side
                )
                if left:  # the transaction ran long: the rest goes in the next one
                    pipe.unget([*left, *items[len(parts) :]])
                    items = []
                done = parts[: len(parts) - len(left)]
                pause = pacer.done(sum(p.cost for p in done), held, report.index_seconds - index)
                if checkpointer is not None:
                    checkpointer.poke()
                if held > 0:
                    report.transactions += 1
                    report.locked_seconds += held
                    report.longest_lock_seconds = max(report.longest_lock_seconds, held)
                if side is not None and side.rows >= side_index.ADOPT_ROWS:
                    done_side, side = side, None
                    await _side_done(done_side, db, report)  # the rest is indexed as usual
                if progress is not None:
                    progress(report)
            for item in items:
                if isinstance(item, Refused):
                    _refuse(report, item.batch, item.error, on_error)
            end = next((item for item in items if isinstance(item, End)), None)
            if end is not None:
                if end.error is not None:
                    raise end.error
                break
            if parts and not dry_run:
                await asyncio.sleep(pause)  # the lock is free: other writers go now
        if side is not None:
            done_side, side = side, None
            await _side_done(done_side, db, report)
        elif not dry_run:  # rows a crashed import left to the build (and this one's with them)
            started = time.perf_counter()
            held = await side_index.build_left(db)
            if held:
                report.index_seconds += time.perf_counter() - started
                report.locked_seconds += held
                report.longest_lock_seconds = max(report.longest_lock_seconds, held)
    finally:
        if side is not None:  # the load failed: its rows are left to the build
            side.kill()
        pipe.cancel()
        gate.free()
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
            await db.on_writer(pause_autocheckpoint, autocheckpoint)
        report.seconds = time.perf_counter() - started
    return report


async def _side_done(side: side_index.Deferred, db: Database, report: LoadReport) -> None:
    """Copy the side index in (or build what it leaves); the time counts as index work."""
    started = time.perf_counter()
    _, held = await side.finish(db)
    report.index_seconds += time.perf_counter() - started
    report.locked_seconds += held
    report.longest_lock_seconds = max(report.longest_lock_seconds, held)


def _refuse(
    report: LoadReport,
    batch: Any,
    error: StoreError,
    on_error: Callable[[IncomingSession, StoreError], None] | None,
) -> None:
    if on_error is None:
        raise error
    report.failed += 1
    report.errors.append(str(error))
    on_error(batch, error)


async def _write(
    db: Database,
    clock: Clock,
    parts: list[Part],
    dry: DryState | None,
    tally: _Tally,
    on_error: Callable[[IncomingSession, StoreError], None] | None,
    gate: Gate,
    cutoff: float,
    side: side_index.Deferred | None = None,
) -> tuple[float, list[Part]]:
    """Write parts in one transaction (one at a time if one fails).

    Returns the time the write lock was held and the parts left for the next transaction
    (a transaction stops taking parts once it has held the lock `cutoff` seconds).
    """

    async def once(group: list[Part]) -> tuple[float, int]:
        locked: list[float] = []
        fed: list[Fed] = []

        def run(conn: sqlite3.Connection) -> list[Result]:
            locked.append(time.perf_counter())  # BEGIN IMMEDIATE has the write lock
            gate.busy()
            fed[:] = [([], [], [])] if side is not None else []  # this attempt's rows only
            try:
                return write_parts(
                    conn,
                    group,
                    fmt_ts(clock()),
                    dry,
                    locked[-1] + cutoff,
                    gate,
                    fed[0] if fed else None,
                )
            finally:
                gate.free()

        results = await (db.read(run) if dry is not None else db.write(run))
        if side is not None and fed and fed[0][0]:  # committed: the side index may have them
            await asyncio.to_thread(side.feed, *fed[0])
        tally.add(results)
        return time.perf_counter() - locked[-1], len(results)  # up to the end of COMMIT

    try:
        held, done = await once(parts)
        return held, parts[done:]
    except _NOT_THE_BATCH:
        raise
    except StoreError as exc:
        if len(parts) == 1:
            _refuse(tally.report, parts[0].batch, _named(parts[0], exc), on_error)
            return 0.0, []
    # One of them is bad: write them one at a time, so the others still go in.
    total = 0.0
    for part in parts:
        try:
            held, _ = await once([part])
            total += held
        except _NOT_THE_BATCH:
            raise
        except StoreError as exc:
            _refuse(tally.report, part.batch, _named(part, exc), on_error)
    return total, []


def _named(part: Part, exc: StoreError) -> StoreError:
    text = str(exc)
    if part.label in text:
        return exc
    return StoreError(f"{part.label}: {text}")
