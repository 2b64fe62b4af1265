"""The message search index of a first import, built beside it in a process of its own.

Indexing a message's text costs SQLite about as much as storing it. Into a database whose
message index is empty (a first import, a new machine) an import leaves that work to another
process: the rows go in as usual, with the index's own resumable build covering them
(search_build, migration 0007: rows `done < id <= upto` are the build's and the triggers skip
them), while a child process (`python -I -c _CHILD`, on the other core) indexes their text
into a side file of its own, fed after each commit. At the end (or once ADOPT_ROWS rows were
fed, so the copy stays a short transaction) the side file's index is copied into the
database's empty one in one transaction, together with the rows other writers added
meanwhile (they were left to the build too), and the build's marker goes.

The side file is an optimisation only. Whenever it cannot be used as is (the child failed,
another process changed the build's marker or the index, a fed row was deleted meanwhile), it
is dropped and the rows are indexed by the build, in short transactions, before the import
returns (`finish`). A crash leaves the marker: the rows are then indexed by the build that
the app and `threadline db index` run (a search meanwhile finds the rows before them), or by
the next import (`build_left`).

Known limit: the text of an imported row that another process changes in place during the
import, before the copy, stays indexed as it was fed (deletions are caught, not edits).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from threadline.store import search as search_ops
from threadline.store.transfer.bulk import (
    BUILT_LATER,
    messages_index_step,
)

if TYPE_CHECKING:
    from threadline.store.connection import Database

# search_build's `upto` while an import leaves its rows to a side index (another value, or no
# row, means someone else took the build over: the side index is then not used).
SIDE_UPTO = (1 << 62) - 1
# The side index is copied in once it holds this many rows (the copy holds the write lock
# about 2 us a row); the rest of the import is indexed as usual.
ADOPT_ROWS = 200_000
# A load starts its child once this many rows, or this much text, were committed (a smaller
# one leaves its rows to the build, a step or two).
START_ROWS = 2000
START_BYTES = 4 << 20
# Bytes of text waiting for the child, at most (the loader waits beyond).
QUEUE_BYTES = 16 << 20
# The child's FTS5 hashsize: terms pile up in memory and go out in few large segments.
CHILD_HASHSIZE = 32 << 20
# A build step (the fallback) indexes about this much text, then sized to hold the lock
# about BUILD_TARGET seconds.
BUILD_FIRST_BYTES = 4 << 20
BUILD_TARGET = 0.3
SHADOWS = ("data", "idx", "docsize")
END = 0xFFFFFFFF  # the frame length that says the rows are all there
# The side index does what this trigger does (0007_search_index.sql: a row's id, text and its
# session's directory tokens): sha256 of its whitespace-normalised text. A migration that
# changes the trigger turns the side index off until it is brought in line (tests/store flag it).
TRIGGER = "search_messages_ai"
TRIGGER_SHA256 = BUILT_LATER[TRIGGER][1]
# How long the copy waits for the write lock (then the build does the work instead).
ADOPT_PATIENCE = 10.0

_CHILD = r"""
import marshal, os, signal, sqlite3, struct, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the importer decides (Ctrl-C reaches both)
END = 0xFFFFFFFF
path, create, hashsize = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA journal_mode = OFF")
conn.execute("PRAGMA synchronous = OFF")
conn.execute(create)
conn.execute("INSERT INTO search_messages (search_messages, rank) VALUES ('hashsize', ?)",
             (hashsize,))
conn.execute("BEGIN")
insert = "INSERT INTO search_messages (rowid, content, dirs) VALUES (?, ?, ?)"
stdin = sys.stdin.buffer
rows = 0
while True:
    head = stdin.read(4)
    if len(head) < 4:  # the importer died: its file goes with it
        conn.close()
        os.unlink(path)
        sys.exit(1)
    (size,) = struct.unpack("<I", head)
    if size == END:
        break
    ids, texts, dirs = marshal.loads(stdin.read(size))
    conn.executemany(insert, zip(ids, texts, dirs))
    rows += len(ids)
conn.execute("COMMIT")
conn.execute("DELETE FROM search_messages_config WHERE k = 'hashsize'")
conn.close()
sys.stdout.write(f"ok {rows}\n")
"""


def _create_sql(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'search_messages'"
    ).fetchone()
    return None if row is None else str(row[0])


def trigger_known(conn: sqlite3.Connection) -> bool:
    """Whether the index trigger is the one the side index does the work of."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (TRIGGER,)
    ).fetchone()
    if row is None:
        return False
    return hashlib.sha256(" ".join(str(row[0]).split()).encode()).hexdigest() == TRIGGER_SHA256


def claim(conn: sqlite3.Connection) -> str | None:
    """In a write transaction: leave new messages to the build, for a side index, when the
    database holds no message and its index is empty. Returns the index's CREATE statement
    (None: not possible here)."""
    create = eligible(conn)
    if create is None:
        return None
    if conn.execute("SELECT 1 FROM search_messages_docsize LIMIT 1").fetchone() is not None:
        return None
    conn.execute(
        "INSERT INTO search_build (name, done, upto) VALUES ('messages', 0, ?)", (SIDE_UPTO,)
    )
    return create


class SideIndex:
    """The child process building the side index, and the thread feeding it."""

    def __init__(self, db_path: str, create: str) -> None:
        self.create = create
        self.path = f"{db_path}.side-index-{os.getpid()}-{id(self):x}"
        self.rows = 0  # rows fed (handed to the feeding thread)
        self.failed: str | None = None
        self.ending = False  # the rows are all fed: the child keeps its file
        self._remove()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD, self.path, create, str(CHILD_HASHSIZE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._room = threading.Condition()
        self._waiting = 0  # bytes queued
        self._thread = threading.Thread(target=self._feed, name="threadline-side-index")
        self._thread.daemon = True
        self._thread.start()

    def _remove(self) -> None:
        for suffix in ("", "-journal"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while True:
            frame = self._queue.get()
            if frame is None:
                break
            try:
                if self.failed is None:
                    stdin.write(frame)
            except OSError as exc:  # the child died: the build will do it
                self.failed = f"the indexing process stopped ({exc})"
            with self._room:
                self._waiting -= len(frame)
                self._room.notify_all()
        try:
            if self.failed is None and self.ending:
                stdin.write(struct.pack("<I", END))
            stdin.close()
        except OSError:
            pass

    def feed(self, ids: Sequence[int], texts: Sequence[str], dirs: Sequence[str]) -> None:
        """Rows just committed (waits while QUEUE_BYTES are already on their way)."""
        if not ids:
            return
        import marshal

        body = marshal.dumps((list(ids), list(texts), list(dirs)))
        frame = struct.pack("<I", len(body)) + body
        with self._room:
            while self._waiting and self._waiting + len(frame) > QUEUE_BYTES:
                self._room.wait()
            self._waiting += len(frame)
        self._queue.put(frame)
        self.rows += len(ids)

    def close(self) -> bool:
        """No more rows: wait for the child to finish its file; whether it is usable."""
        self.ending = True
        self._queue.put(None)
        self._thread.join()
        out, err = self._outputs()
        if self.failed is None and (self.proc.returncode != 0 or not out.startswith(b"ok ")):
            last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            self.failed = f"the indexing process failed: {last}"
        if self.failed is None and int(out.split()[1]) != self.rows:
            self.failed = "the indexing process lost rows"
        return self.failed is None

    def kill(self) -> None:
        """Give up (the import failed): stop the child, remove its file."""
        if self.proc.returncode is not None:
            self._remove()
            return
        self.failed = self.failed or "given up"
        self._queue.put(None)
        try:
            self.proc.kill()
        except OSError:
            pass
        self._thread.join()
        self._outputs()
        self._remove()

    def _outputs(self) -> tuple[bytes, bytes]:
        """The child's stdout and stderr, once it has ended (it writes a line or a traceback)."""
        out = err = b""
        if self.proc.stdout is not None:
            out = self.proc.stdout.read()
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            err = self.proc.stderr.read()
            self.proc.stderr.close()
        self.proc.wait()
        return out, err

    async def finish(
        self, db: Database, progress: Callable[[int, int], None] | None = None
    ) -> tuple[bool, float]:
        """Copy the side index in (or leave the rows to the build and run it, calling
        `progress(rows done, rows in all)`).

        Returns (whether the side index was used, the longest the write lock was held).
        """
        try:
            usable = await asyncio.to_thread(self.close)
            held = 0.0
            if usable:
                adopted, held = await asyncio.to_thread(
                    _adopt, str(db.path), self.path, self.create
                )
                if adopted:
                    return True, held
            return False, max(held, await build_left(db, progress))
        except BaseException:
            self.kill()
            raise
        finally:
            self._remove()


def _adopt(path: str, side: str, create: str) -> tuple[bool, float]:
    """Copy the side file's index into the database's empty one (one transaction), with the
    rows others wrote meanwhile; False (nothing done) when the marker or the index changed,
    or the lock could not be had.

    On a connection of its own: FTS5 keeps an index's structure cached per connection and
    reloads it when another connection has committed, never after writes to its shadow
    tables on the same one.
    """
    try:
        conn = sqlite3.connect(path, timeout=ADOPT_PATIENCE, isolation_level=None)
    except sqlite3.Error:
        return False, 0.0
    try:
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("ATTACH DATABASE ? AS side", (side,))
        conn.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        try:
            adopted = _copy(conn, create)
            conn.execute("COMMIT" if adopted else "ROLLBACK")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return adopted, time.perf_counter() - started
    except sqlite3.OperationalError:  # busy past patience, or the side file unreadable
        return False, 0.0
    finally:
        conn.close()


def _copy(conn: sqlite3.Connection, create: str) -> bool:
    row = conn.execute("SELECT done, upto FROM search_build WHERE name = 'messages'").fetchone()
    if row is None or int(row[1]) != SIDE_UPTO or _create_sql(conn) != create:
        return False
    if not trigger_known(conn):
        return False
    if conn.execute("SELECT 1 FROM main.search_messages_docsize LIMIT 1").fetchone() is not None:
        return False
    # The messages' ids from their compact (session_id, id) index, not the table itself
    # (reading a few hundred MB of rows for their ids would hold the lock for seconds).
    done = int(row[0])
    conn.execute("CREATE TEMP TABLE threadline_side_ids (id INTEGER PRIMARY KEY)")
    try:
        conn.execute(
            "INSERT INTO temp.threadline_side_ids (id) SELECT id FROM main.messages"
            " INDEXED BY messages_session WHERE id > ? ORDER BY id",
            (done,),
        )
        fed, present = conn.execute(
            "SELECT count(*), count(t.id) FROM side.search_messages_docsize AS d"
            " LEFT JOIN temp.threadline_side_ids AS t ON t.id = d.id"
        ).fetchone()
        if fed != present:  # a fed row was deleted meanwhile: its terms would stay behind
            return False
        for shadow in SHADOWS:
            conn.execute(f"DELETE FROM main.search_messages_{shadow}")
            conn.execute(
                f"INSERT INTO main.search_messages_{shadow}"
                f" SELECT * FROM side.search_messages_{shadow}"
            )
        # Rows other writers added meanwhile (left to the build too): indexed now, in order.
        conn.execute(
            "INSERT INTO main.search_messages (rowid, content, dirs)"
            " SELECT id, content, dirs FROM main.search_messages_source WHERE id IN"
            " (SELECT t.id FROM temp.threadline_side_ids AS t WHERE NOT EXISTS"
            "  (SELECT 1 FROM side.search_messages_docsize AS d WHERE d.id = t.id))"
            " ORDER BY id"
        )
    finally:
        conn.execute("DROP TABLE temp.threadline_side_ids")
    conn.execute("DELETE FROM search_build WHERE name = 'messages'")
    return True


def _close_range(conn: sqlite3.Connection) -> int:
    """A side index's range left open (given up, or a crash): it ends at the last message.
    Returns about how many rows are left to build (0: none, or not a side index's)."""
    closed = conn.execute(
        "UPDATE search_build SET upto = (SELECT coalesce(max(id), 0) FROM messages)"
        " WHERE name = 'messages' AND upto = ?",
        (SIDE_UPTO,),
    ).rowcount
    conn.execute("DELETE FROM search_build WHERE name = 'messages' AND upto <= done")
    pending = conn.execute(
        "SELECT upto - done FROM search_build WHERE name = 'messages'"
    ).fetchone()
    return int(pending[0]) if closed and pending is not None else 0


def _left_open(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM search_build WHERE name = 'messages' AND upto = ?", (SIDE_UPTO,)
    ).fetchone()
    return row is not None


async def build_left(db: Database, progress: Callable[[int, int], None] | None = None) -> float:
    """Index the messages a side index left to the build, if one did (this import's, given
    up, or a crashed one's), in short transactions pausing between them; returns the longest
    a transaction held the lock. `progress(rows done, rows in all)` after each step."""
    longest = 0.0
    if not await db.read(_left_open):
        return longest
    total = await db.write(_close_range)
    if not total:
        return longest
    longest = await search_ops.build_in_steps(
        db,
        messages_index_step,
        total,
        progress,
        first_bytes=BUILD_FIRST_BYTES,
        target=BUILD_TARGET,
        max_bytes=64 << 20,
    )
    if progress is not None:
        progress(total, total)
    return longest


def _remove_orphans(db_path: str) -> None:
    """Side files of importers that died with their child (both killed at once)."""
    folder, name = os.path.split(db_path)
    prefix = f"{name}.side-index-"
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return
    for found in names:
        if not found.startswith(prefix):
            continue
        try:
            os.kill(int(found[len(prefix) :].split("-")[0]), 0)
            continue  # its importer is alive
        except ProcessLookupError:
            pass
        except (ValueError, OSError):
            continue
        try:
            os.unlink(os.path.join(folder, found))
        except OSError:
            pass


def eligible(conn: sqlite3.Connection) -> str | None:
    """The index's CREATE statement when the database holds no message, no build is under
    way and the index trigger is the one known (None: no side index here)."""
    create = _create_sql(conn)
    if create is None or not trigger_known(conn):
        return None
    if conn.execute("SELECT 1 FROM search_build").fetchone() is not None:
        return None
    old = search_ops.OLD["messages"].table
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (old,)).fetchone():
        return None
    if conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None:
        return None
    return create


class EarlyFeed:
    """Rows handed over while a file is still being read and checked (before the database is
    written): their ids are the file's, so the side index fits only an import that keeps them
    all (`usable`). The child starts once `start_rows` rows are in (smaller imports go
    without); past ADOPT_ROWS it is given up (the load then feeds one of its own)."""

    def __init__(self, db_path: str, create: str, start_rows: int) -> None:
        self.db_path = db_path
        self.create = create
        self.start_rows = start_rows
        self.side: SideIndex | None = None
        self.usable = True
        self.rows = 0
        self.buffer: tuple[list[int], list[str], list[str]] = ([], [], [])

    def add(self, ids: list[int], texts: list[str], dirs: list[str]) -> None:
        """Rows read (on the reading thread)."""
        if not self.usable:
            return
        self.rows += len(ids)
        if self.rows > ADOPT_ROWS:
            self.give_up()
            return
        buffer = self.buffer
        buffer[0].extend(ids)
        buffer[1].extend(texts)
        buffer[2].extend(dirs)
        if len(buffer[0]) >= 2048 and self.rows >= self.start_rows:
            self._flush()

    def _flush(self) -> None:
        if self.side is None:
            try:
                self.side = SideIndex(self.db_path, self.create)
            except OSError:
                self.give_up()
                return
        self.side.feed(*self.buffer)
        self.buffer = ([], [], [])

    def moved(self) -> None:
        """A session's ids were moved inside the file: they are not the ids read."""
        self.give_up()

    def give_up(self) -> None:
        self.usable = False
        self.buffer = ([], [], [])
        if self.side is not None:
            self.side.kill()
            self.side = None

    def ready(self) -> SideIndex | None:
        """The file is read: the side index holding every row of it (None: none)."""
        if not self.usable or self.rows < self.start_rows:
            self.give_up()
            return None
        if self.buffer[0]:
            self._flush()
        return self.side


class Deferred:
    """A side index whose child starts once START_ROWS rows (or START_BYTES of text) came:
    a small load goes without one (its few rows are then indexed by the build)."""

    def __init__(self, db_path: str, create: str) -> None:
        self.db_path = db_path
        self.create = create
        self.side: SideIndex | None = None
        self.rows = 0
        self.text = 0  # bytes of text held until the child starts
        self.failed = False
        self.buffer: tuple[list[int], list[str], list[str]] = ([], [], [])

    def feed(self, ids: Sequence[int], texts: Sequence[str], dirs: Sequence[str]) -> None:
        """Rows just committed (see SideIndex.feed)."""
        self.rows += len(ids)
        if self.side is not None:
            self.side.feed(ids, texts, dirs)
            return
        if self.failed:
            return
        self.buffer[0].extend(ids)
        self.buffer[1].extend(texts)
        self.buffer[2].extend(dirs)
        self.text += sum(len(t) for t in texts)
        if self.rows >= START_ROWS or self.text >= START_BYTES:
            buffer, self.buffer = self.buffer, ([], [], [])
            try:
                self.side = SideIndex(self.db_path, self.create)
            except OSError:  # no process to be had: the build will do it
                self.failed = True
                return
            self.side.feed(*buffer)

    async def finish(
        self, db: Database, progress: Callable[[int, int], None] | None = None
    ) -> tuple[bool, float]:
        """See SideIndex.finish; without a child, the build indexes the rows."""
        if self.side is None:
            self.buffer = ([], [], [])
            return False, await build_left(db, progress)
        return await self.side.finish(db, progress)

    def kill(self) -> None:
        self.buffer = ([], [], [])
        if self.side is not None:
            self.side.kill()


async def start(db: Database, *, wanted: bool = True) -> Deferred | None:
    """Claim the build for a side index, when the database allows it (see Deferred)."""
    if not wanted:
        return None
    if await db.read(eligible) is None:  # most loads: no write transaction for nothing
        return None
    await asyncio.to_thread(_remove_orphans, str(db.path))
    create = await db.write(claim)
    if create is None:
        return None
    return Deferred(str(db.path), create)
