"""Loading a checked threadline export in short transactions, resumable after a crash.

`import_export` reads and checks the whole file first (reader.check: no lock, nothing written;
a bad line imports nothing), then loads it from the spool in transactions that each hold the
write lock about bulk.LOCK_TARGET seconds, leaving the lock free in between (bulk.Pacer), so
the app and `threadline chat` keep writing during a long import.

Rules (as before the import was split): sessions are matched by id, and one already present is
skipped with its messages and summaries (so importing the same file twice adds nothing).
Message, summary and memory ids are kept where no row holds them (export -> import into an
empty database -> export is byte-identical); a session whose ids are taken gets new ids above
every existing one, moved by one offset, so its order, its summaries' ranges and its memories'
sources stay consistent. The first transaction reserves the file's id range (AUTOINCREMENT's
sequence moves past it), so rows written meanwhile by others never take a kept id.

A crash mid-way: the file is identified by the hash of its bytes (import_runs), and every
session put in is recorded in the same transaction (import_run_sessions, with how far its ids
moved and, for a session loaded in parts, how far it got). Running the same import again
finishes it: the recorded sessions count as imported by it (not skipped), a session cut in the
middle continues after its last loaded message, and the memories, which come last, go in with
the run's end. Sessions already complete stay as they are meanwhile: nothing is rolled back.

A first import (a database without messages): the message search index is built by a process
of its own (transfer/side_index.py), fed while the file is read and checked, and copied in
after the load; when the load cannot keep the file's message ids, by one fed as the rows go in.
A crash leaves the rows to the index's resumable build, which running the import again (or the
app, or `threadline db index`) does.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from threadline.store.columns import MEMORY, MESSAGE, SESSION, SUMMARY
from threadline.store.transfer import side_index
from threadline.store.transfer.bulk import (
    ROW_COST,
    Bulk,
    Checkpointer,
    Pacer,
    pause_autocheckpoint,
)
from threadline.store.transfer.format import ImportResult, ImportTimings
from threadline.store.transfer.reader import (
    MEMORY_COLS,
    MEMORY_FIXES,
    MESSAGE_COLS,
    SESSION_COLS,
    SUMMARY_COLS,
    Checked,
    SessionPlan,
    to_row,
)
from threadline.store.util import Clock, fmt_ts

if TYPE_CHECKING:
    from threadline.store.connection import Database

# phase ("loading": messages done of total), done, total
LoadProgress = Callable[[str, int, int | None], None]

# Whether an import into a database without messages builds their search index in a process
# of its own (transfer/side_index.py), when it brings at least this many; tests set it to 0
# (always) or None (never) to compare.
SIDE_INDEX_ROWS: int | None = 2000

# When set (tests), a transaction takes no further spool item once it has held the lock this
# long; otherwise the pacer's cutoff (about the time the bulk work that follows will leave).
CUTOFF: float | None = None

# Derived session columns the loader sets itself: counters start at zero and follow the rows.
_COUNTERS = ("message_count", "total_input_tokens", "total_output_tokens")
_SESSION_INSERT = [c for c in SESSION_COLS if c not in _COUNTERS] + ["dir_tokens"]
_SESSION_SQL = (
    f"INSERT INTO sessions ({', '.join(_SESSION_INSERT)})"
    f" VALUES ({', '.join('?' * len(_SESSION_INSERT))})"
)
_SESSION_TAKE = [SESSION_COLS.index(c) for c in _SESSION_INSERT[:-1]]
_MESSAGE_STORED = [c for c in MESSAGE_COLS if MESSAGE.by_name[c].stored]
_MESSAGE_SQL = (
    f"INSERT INTO messages ({', '.join(_MESSAGE_STORED)})"
    f" VALUES ({', '.join('?' * len(_MESSAGE_STORED))})"
)
_KEY = MESSAGE_COLS.index("source_key")
_STORED_CONTENT = _MESSAGE_STORED.index("content")
_CONTENT = MESSAGE_COLS.index("content")
_PAYLOAD = MESSAGE_COLS.index("payload")
_SUMMARY_SQL = (
    f"INSERT INTO summaries ({', '.join(SUMMARY_COLS)})"
    f" VALUES ({', '.join('?' * len(SUMMARY_COLS))})"
)
_FIRST = SUMMARY_COLS.index("first_message_id")
_MEMORY_SQL = (
    f"INSERT INTO memories ({', '.join(MEMORY_COLS)}) VALUES ({', '.join('?' * len(MEMORY_COLS))})"
)
_MEMORY_AT = {name: i for i, name in enumerate(MEMORY_COLS)}
_LAST = SUMMARY_COLS.index("last_message_id")
# Rows are spooled in the export's column order: the stored columns first, then source_key.
assert MESSAGE_COLS[: len(_MESSAGE_STORED)] == _MESSAGE_STORED and _MESSAGE_STORED[0] == "id"
assert SUMMARY_COLS[0] == "id" and all(SUMMARY.by_name[c].stored for c in SUMMARY_COLS)
assert all(MEMORY.by_name[c].stored for c in MEMORY_COLS)
assert all(SESSION.by_name[c].stored for c in SESSION_COLS)


@dataclass
class _Session:
    """The session being loaded (it may span transactions)."""

    plan: SessionPlan
    mode: str  # "new", "resume" (cut by a crash), "done" (in by an earlier run), "skip"
    shift: int = 0  # message ids: file id + shift
    summary_shift: int = 0
    loaded: int = 0  # its messages in the database (the first ones in the file's order)
    seen: int = 0  # its messages read from the spool in this run


@dataclass
class _Run:
    id: int
    resumed: bool
    # session id -> [message shift, summary shift, rows loaded (None: complete)]
    tags: dict[str, list[Any]] = field(default_factory=dict)
    imported: dict[str, int] = field(default_factory=dict)  # session id -> message shift
    moved: set[str] = field(default_factory=set)  # sessions whose ids were moved
    current: _Session | None = None
    exact: bool = True  # every session new, with the file's message ids (so far)
    loaded: int = 0  # messages inserted by this run (not an earlier one)
    done: int = 0  # messages of the file accounted for (for progress)


def _begin(conn: sqlite3.Connection, checked: Checked, now: str) -> _Run:
    """Find the run of this file (an interrupted one) or start one; reserve the file's ids."""
    row = conn.execute("SELECT id FROM import_runs WHERE digest = ?", (checked.digest,)).fetchone()
    if row is None:
        run_id = conn.execute(
            "INSERT INTO import_runs (digest, name, started_at) VALUES (?, ?, ?)",
            (checked.digest, checked.name, now),
        ).lastrowid
        assert run_id is not None
        run = _Run(id=run_id, resumed=False)
    else:
        run = _Run(id=int(row[0]), resumed=True)
        for sid, shift, summary_shift, upto in conn.execute(
            "SELECT session_id, message_shift, summary_shift, loaded_rows"
            " FROM import_run_sessions WHERE run_id = ?",
            (run.id,),
        ):
            run.tags[sid] = [shift, summary_shift, upto]
    _reserve(conn, "messages", checked.message_top)
    _reserve(conn, "summaries", checked.summary_top)
    return run


def _reserve(conn: sqlite3.Connection, table: str, top: int) -> None:
    """Move AUTOINCREMENT's sequence past `top`: new rows written by others go above it."""
    if top <= 0:
        return
    cur = conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (top, table))
    if cur.rowcount == 0:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, top))


def _next_free(conn: sqlite3.Connection, table: str) -> int:
    """An id above every id `table` holds or ever handed out."""
    top = int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return max(top, int(seq[0]) if seq else 0) + 1


def _taken(conn: sqlite3.Connection, table: str, ids: list[int]) -> bool:
    """Whether a row of `table` holds one of `ids`."""
    if not ids:
        return False
    lo, hi = min(ids), max(ids)
    if conn.execute(f"SELECT 1 FROM {table} WHERE id BETWEEN ? AND ? LIMIT 1", (lo, hi)).fetchone():
        for start in range(0, len(ids), 50_000):
            chunk = json.dumps(ids[start : start + 50_000])
            if conn.execute(
                f"SELECT 1 FROM {table} WHERE id IN (SELECT value FROM json_each(?)) LIMIT 1",
                (chunk,),
            ).fetchone():
                return True
    return False


class _Writer:
    """Applies spool items inside one transaction."""

    def __init__(
        self, conn: sqlite3.Connection, checked: Checked, run: _Run, feeding: bool = False
    ) -> None:
        self.conn = conn
        self.checked = checked
        self.run = run
        self.bulk: Bulk | None = None
        # The rows inserted, for a side index: ids, texts, directory tokens.
        self.fed: tuple[list[int], list[str], list[str]] | None = ([], [], []) if feeding else None
        self.tokens: tuple[str, str] | None = None  # (session id, its directory tokens)

    def apply(self, items: list[tuple[Any, ...]], deadline: float) -> tuple[float, int]:
        """Write items until `deadline` (perf_counter time) has passed.

        Returns the time the bulk index work took and how many items were written.
        """
        done = 0
        for item in items:
            if done and time.perf_counter() > deadline:
                break
            done += 1
            kind = item[0]
            if kind == "s":
                self._session(item[1], item[2], item[3])
            elif kind == "m":
                self._messages(item[2])
            elif kind == "y":
                self._summaries(item[2])
            elif kind == "e":
                self._complete()
        if self.bulk is not None:
            self.bulk.finish()
            return self.bulk.seconds, done
        return 0.0, done

    def _bulk(self) -> Bulk:
        if self.bulk is None:
            self.bulk = Bulk(self.conn)
        return self.bulk

    def _session(self, ordinal: int, row: list[Any], tokens: str) -> None:
        conn, run = self.conn, self.run
        plan = self.checked.sessions[ordinal]
        sid = plan.id
        present = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone()
        tag = run.tags.get(sid)
        if tag is not None and present:
            run.exact = False
            shift, summary_shift, upto = tag
            mode = "done" if upto is None else "resume"
            run.current = _Session(plan, mode, shift, summary_shift, upto or 0)
            if shift or summary_shift:
                run.moved.add(sid)
            if mode == "done":
                run.imported[sid] = shift
                run.done += plan.messages
            return
        if present:
            run.exact = False
            run.current = _Session(plan, "skip")
            run.done += plan.messages
            return
        shift, summary_shift = plan.shift, plan.summary_shift
        ids = self._ids(plan)
        if _taken(conn, "messages", [i + plan.shift for i in ids]):
            base = _next_free(conn, "messages")
            shift = base - (plan.msg_lo - plan.shift)
            _reserve(conn, "messages", plan.msg_hi - plan.shift + shift)
        sum_ids = self._summary_ids(plan)
        if _taken(conn, "summaries", [i + plan.summary_shift for i in sum_ids]):
            base = _next_free(conn, "summaries")
            summary_shift = base - (plan.sum_lo - plan.summary_shift)
            _reserve(conn, "summaries", plan.sum_hi - plan.summary_shift + summary_shift)
        values = [row[i] for i in _SESSION_TAKE]
        values.append(tokens)
        bulk = self._bulk()
        cur = conn.execute(_SESSION_SQL, values)
        assert cur.lastrowid is not None
        bulk.added_rowid("sessions", cur.lastrowid)
        conn.execute(
            "INSERT OR REPLACE INTO import_run_sessions (run_id, session_id, message_shift,"
            " summary_shift, loaded_rows) VALUES (?, ?, ?, ?, 0)",
            (run.id, sid, shift, summary_shift),
        )
        run.current = _Session(plan, "new", shift, summary_shift, 0)
        if shift:
            run.exact = False
        if shift or summary_shift:
            run.moved.add(sid)

    def _ids(self, plan: SessionPlan) -> list[int]:
        """The session's message ids in the file (before any move): from the ids spool."""
        return list(self.checked.message_ids(plan))

    def _summary_ids(self, plan: SessionPlan) -> list[int]:
        return list(plan.summary_ids)

    def _messages(self, rows: list[list[Any]]) -> None:
        current = self.run.current
        assert current is not None
        if current.mode in ("skip", "done"):
            return
        if current.seen < current.loaded:  # loaded by the interrupted run already
            skip = min(current.loaded - current.seen, len(rows))
            current.seen += skip
            rows = rows[skip:]
            if not rows:
                return
        sid, shift = current.plan.id, current.shift
        values = []
        keys = []
        for row in rows:
            stored = row[: len(_MESSAGE_STORED)]
            stored[0] += shift
            values.append(stored)
            if row[_KEY] is not None:
                keys.append((sid, row[_KEY], stored[0]))
        bulk = self._bulk()
        self.conn.executemany(_MESSAGE_SQL, values)
        bulk.added("messages", min(v[0] for v in values), max(v[0] for v in values), sid)
        if self.fed is not None:
            if self.tokens is None or self.tokens[0] != sid:
                row = self.conn.execute(
                    "SELECT dir_tokens FROM sessions WHERE id = ?", (sid,)
                ).fetchone()
                self.tokens = (sid, row[0])
            ids, texts, dirs = self.fed
            ids.extend(v[0] for v in values)
            texts.extend(v[_STORED_CONTENT] for v in values)
            dirs.extend([self.tokens[1]] * len(values))
        if keys:
            self.conn.executemany(
                "INSERT INTO message_keys (session_id, key, message_id) VALUES (?, ?, ?)", keys
            )
        current.seen += len(rows)
        current.loaded = current.seen
        self.run.loaded += len(rows)
        self.run.done += len(rows)
        self.conn.execute(
            "UPDATE import_run_sessions SET loaded_rows = ? WHERE run_id = ? AND session_id = ?",
            (current.loaded, self.run.id, sid),
        )

    def _summaries(self, rows: list[list[Any]]) -> None:
        current = self.run.current
        assert current is not None
        if current.mode in ("skip", "done"):
            return
        values = []
        for row in rows:
            row = list(row)
            row[0] += current.summary_shift
            row[_FIRST] += current.shift
            row[_LAST] += current.shift
            values.append(row)
        bulk = self._bulk()
        self.conn.executemany(_SUMMARY_SQL, values)
        bulk.added(
            "summaries", min(v[0] for v in values), max(v[0] for v in values), current.plan.id
        )
        self._complete()

    def _complete(self) -> None:
        current = self.run.current
        assert current is not None
        if current.mode in ("new", "resume"):
            sid = current.plan.id
            self.conn.execute(
                "UPDATE import_run_sessions SET loaded_rows = NULL"
                " WHERE run_id = ? AND session_id = ?",
                (self.run.id, sid),
            )
            self.run.imported[sid] = current.shift
            current.mode = "done"


def _finish(conn: sqlite3.Connection, checked: Checked, run: _Run, result: ImportResult) -> None:
    """The last transaction: the memories, then the run's record goes."""
    wanted: list[Any] = []
    for _, m in checked.memories:
        if m.session_id is not None and m.session_id not in run.imported:
            result.skipped_memories += 1  # its session was already there
            continue
        created = m.created_at if isinstance(m.created_at, str) else fmt_ts(m.created_at)
        duplicate = conn.execute(
            "SELECT 1 FROM memories WHERE working_dir = ? AND fact = ?"
            " AND created_at = ? AND session_id IS ?",
            (m.working_dir, m.fact, created, m.session_id),
        ).fetchone()
        if duplicate:
            result.skipped_memories += 1
            continue
        wanted.append((m, created))
    ids = [m.id for m, _ in wanted]
    offset = _next_free(conn, "memories") - min(ids) if _taken(conn, "memories", ids) else 0
    kept = set(ids)
    for m, _ in wanted:
        source = m.source_message_id
        if source is not None and m.session_id is not None:
            source += run.imported[m.session_id]
            row = conn.execute(
                "SELECT 1 FROM messages WHERE id = ? AND session_id = ?", (source, m.session_id)
            ).fetchone()
            if row is None:
                source = None
        elif source is not None:
            source = None  # a source message without its session cannot be placed
        # Its links are set once every memory is in (superseded_by: below).
        values = to_row(m, MEMORY_COLS, MEMORY_FIXES)
        values[_MEMORY_AT["id"]] += offset
        values[_MEMORY_AT["source_message_id"]] = source
        values[_MEMORY_AT["superseded_by"]] = None
        conn.execute(_MEMORY_SQL, values)
    for m, _ in wanted:
        if m.superseded_by is not None and m.superseded_by in kept:
            conn.execute(
                "UPDATE memories SET superseded_by = ? WHERE id = ?",
                (m.superseded_by + offset, m.id + offset),
            )
    result.memories = len(wanted)
    conn.execute("DELETE FROM import_runs WHERE id = ?", (run.id,))


def _apply(
    conn: sqlite3.Connection,
    checked: Checked,
    run: _Run,
    batch: list[Any],
    cutoff: float,
    feeding: bool = False,
) -> tuple[float, int, list[float], Any]:
    """One transaction's worth of spool items.

    Returns the bulk work's time, how many items went in (it stops taking more after `cutoff`
    seconds), [start, end] of the work, and (with `feeding`) the rows for the side index.
    """
    started = time.perf_counter()  # BEGIN IMMEDIATE has the write lock
    writer = _Writer(conn, checked, run, feeding)
    spent, done = writer.apply(batch, started + cutoff)
    return spent, done, [started, time.perf_counter()], writer.fed


def _cost(batch: list[Any]) -> int:
    return sum(
        len(r[_CONTENT]) + (len(r[_PAYLOAD]) if r[_PAYLOAD] else 0) + ROW_COST
        for item in batch
        if item[0] == "m"
        for r in item[2]
    )


def _gather(items: Iterator[tuple[Any, ...]], budget: int, pending: list[Any]) -> list[Any]:
    """The next spool items, about `budget` bytes of text (at least one item)."""
    taken = list(pending)
    pending.clear()
    used = _cost(taken)
    while used < budget or not taken:
        item = next(items, None)
        if item is None:
            break
        taken.append(item)
        used += _cost([item])
    return taken


async def early_feed(db: Database) -> side_index.EarlyFeed | None:
    """Before pass 1: a side index fed as the file is read, on a first import (else None)."""
    if SIDE_INDEX_ROWS is None:
        return None
    create = await db.read(side_index.eligible)
    if create is None:
        return None
    return side_index.EarlyFeed(str(db.path), create, SIDE_INDEX_ROWS)


async def import_export(
    db: Database,
    clock: Clock,
    checked: Checked,
    progress: LoadProgress | None,
    timings_read: float,
    early: side_index.EarlyFeed | None = None,
) -> ImportResult:
    """Pass 2: load a checked export (see the module docstring).

    `early`: the side index fed while the file was read (used when the load keeps every
    message id of the file; otherwise given up, and the load feeds one of its own)."""
    started = time.perf_counter()
    result = ImportResult()
    t = result.timings
    try:  # the rows read and not yet handed over go first
        ready = None if early is None else await asyncio.to_thread(early.ready)
        run = await db.write(_begin, checked, fmt_ts(clock()))
    except BaseException:
        if early is not None:
            early.give_up()
        raise
    result.resumed = run.resumed
    if progress:
        progress("loading", 0, checked.messages)
    autocheckpoint = await db.on_writer(pause_autocheckpoint, 0)
    checkpointer = Checkpointer(str(db.path))
    side = None
    try:
        if ready is not None:  # read already: it takes no rows from the load
            if await db.write(side_index.claim) is None:  # no longer a first import
                assert early is not None
                early.give_up()
                ready = None
        wanted = SIDE_INDEX_ROWS is not None and checked.messages >= SIDE_INDEX_ROWS
        if ready is None:
            side = await side_index.start(db, wanted=wanted)
        side = await _load(db, checked, run, progress, checkpointer, t, side)
        if progress:
            progress("loading", checked.messages, checked.messages)
        started_index = time.perf_counter()

        def indexing(done: int, total: int) -> None:
            if progress:
                progress("indexing", done, total)

        if ready is not None and run.exact:  # the file's rows, all kept: copied in
            read_side, ready, early = ready, None, None
            _, side_held = await read_side.finish(db, indexing)
        elif side is not None:  # its index copied in (or built, if it cannot be)
            done_side, side = side, None
            _, side_held = await done_side.finish(db, indexing)
        else:  # rows a crashed import left to the build (this one's with them)
            side_held = await side_index.build_left(db, indexing)
        if side_held:
            t.index_seconds += time.perf_counter() - started_index
            t.locked_seconds += side_held
            t.transactions += 1
            t.longest_lock_seconds = max(t.longest_lock_seconds, side_held)
        held = await _timed_write(db, t, _finish, checked, run, result)
    finally:
        if side is not None:  # the import failed: its rows are left to the build
            side.kill()
        if early is not None:
            early.give_up()
        await asyncio.to_thread(checkpointer.stop)
        await db.on_writer(pause_autocheckpoint, autocheckpoint)
    t.locked_seconds += held
    for plan in checked.sessions:
        if plan.id in run.imported:
            result.sessions += 1
            result.messages += plan.messages
            result.summaries += plan.summaries
            if plan.id in run.moved:
                result.renumbered_sessions.append(plan.id)
        else:
            result.skipped_sessions.append(plan.id)
    result.skipped = len(result.skipped_sessions)
    for name in ("load", "index", "commit", "locked", "longest_lock", "wait"):
        key = f"{name}_seconds"
        setattr(t, key, round(getattr(t, key), 3))
    t.read_seconds = round(timings_read, 3)
    t.total_seconds = round(time.perf_counter() - started + timings_read, 3)
    return result


async def _load(
    db: Database,
    checked: Checked,
    run: _Run,
    progress: LoadProgress | None,
    checkpointer: Checkpointer,
    t: ImportTimings,
    side: side_index.Deferred | None = None,
) -> side_index.Deferred | None:
    """The spool, in transactions of about the pacer's budget, pausing between them.

    Returns the side index still being fed (None: none, or copied in on the way)."""
    items = checked.items()
    pacer = Pacer()
    pending: list[Any] = []
    while True:
        batch = await asyncio.to_thread(_gather, items, pacer.budget, pending)
        if not batch:
            return side
        before = run.loaded
        asked = time.perf_counter()
        cutoff = pacer.cutoff if CUTOFF is None else CUTOFF
        spent, done, marks, fed = await db.write(
            _apply, checked, run, batch, cutoff, side is not None
        )
        pending[:0] = batch[done:]  # what did not fit goes first in the next one
        if side is not None and fed[0]:  # committed: the side index may have them
            await asyncio.to_thread(side.feed, *fed)
            if side.rows >= side_index.ADOPT_ROWS:  # copied in now; the rest as usual
                done_side, side = side, None
                copy_started = time.perf_counter()
                _, side_held = await done_side.finish(db)
                t.index_seconds += time.perf_counter() - copy_started
                t.locked_seconds += side_held
                t.longest_lock_seconds = max(t.longest_lock_seconds, side_held)
        end = time.perf_counter()
        held = end - marks[0]
        t.wait_seconds += marks[0] - asked
        t.load_seconds += marks[1] - marks[0] - spent
        t.index_seconds += spent
        t.commit_seconds += end - marks[1]
        t.locked_seconds += held
        t.transactions += 1
        t.longest_lock_seconds = max(t.longest_lock_seconds, held)
        pause = pacer.done(_cost(batch[:done]), held, spent)
        checkpointer.poke()
        if progress and run.loaded != before:
            progress("loading", run.done, checked.messages)
        await asyncio.sleep(pause)  # the lock is free: other writers go now


async def _timed_write(db: Database, t: ImportTimings, fn: Any, *args: Any) -> float:
    """One more transaction, counted in the timings; returns how long it held the lock."""
    marks: list[float] = []

    def run(conn: sqlite3.Connection) -> None:
        marks.append(time.perf_counter())
        fn(conn, *args)

    await db.write(run)
    held = time.perf_counter() - marks[0]
    t.transactions += 1
    t.longest_lock_seconds = max(t.longest_lock_seconds, held)
    return held
