"""The database file and its connections: one writer, a small pool of readers, each on a thread.

Store code is written as plain functions that take a `sqlite3.Connection`; `Database.write` runs
one inside `BEGIN IMMEDIATE ... COMMIT` on the writer's aiosqlite thread, `Database.read` runs one
on a reader's thread. Either way a whole operation costs the event loop a single await.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from threadline.store.errors import StoreError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# How long a write keeps retrying when another process holds the lock past busy_timeout.
WRITE_RETRY_SECONDS = 60.0
SQLITE_HEADER = b"SQLite format 3\x00"


def is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def describe_encoding_error(exc: UnicodeEncodeError) -> str:
    return (
        f"cannot store text that is not valid Unicode ({exc.reason} at position {exc.start});"
        " nothing was written"
    )


def describe_sqlite_error(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    lowered = text.lower()
    if "file is not a database" in lowered or "not a database" in lowered:
        return f"{path}: not a SQLite database, or it is encrypted or corrupt (left untouched)"
    if "malformed" in lowered or "corrupt" in lowered:
        return f"{path}: the database is corrupt ({text}); restore a backup (left untouched)"
    if "unable to open" in lowered:
        return f"{path}: cannot open the database file ({text})"
    if "readonly" in lowered or "read-only" in lowered:
        return f"{path}: the database is read-only ({text})"
    if "disk i/o" in lowered or "full" in lowered:
        return f"{path}: {text}"
    return f"{path}: database error: {text}"


def prepare_file(path: Path) -> bool:
    """Create the directory (0700) and an empty database file (0600) if missing.

    Returns True when the file was created here. An existing file is checked to be a file and,
    when not empty, to start with the SQLite header; nothing existing is ever written to.
    """
    directory = path.parent
    if not directory.exists():
        try:
            directory.mkdir(parents=True, mode=0o700)
            os.chmod(directory, 0o700)
        except OSError as exc:
            raise StoreError(
                f"{directory}: cannot create the data directory ({exc.strerror})"
            ) from None
    elif not directory.is_dir():
        raise StoreError(f"{directory}: not a directory")
    try:
        info = path.stat()
    except FileNotFoundError:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the database ({exc.strerror})") from None
        os.close(fd)
        return True
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the database ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path}: not a regular file")
    if info.st_size > 0:
        try:
            with open(path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the database ({exc.strerror})") from None
        if header != SQLITE_HEADER:
            raise StoreError(f"{path}: not a SQLite database (left untouched)")
    return False


def tighten_permissions(path: Path) -> None:
    """Make the database and its -wal/-shm files private to the user (0600)."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if stat.S_IMODE(candidate.stat().st_mode) != 0o600:
                os.chmod(candidate, 0o600)
        except FileNotFoundError:
            pass
        except PermissionError:
            pass


def apply_pragmas(conn: sqlite3.Connection, *, reader: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    if reader:
        conn.execute("PRAGMA query_only = ON")


def read_pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    """The settings a connection runs with (for checks and `db info`)."""
    names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only")
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


def run_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(conn, *args) inside BEGIN IMMEDIATE/COMMIT, retrying while another process writes."""
    deadline = time.monotonic() + WRITE_RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if is_busy(exc) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            raise


def run_read(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(conn, *args) in one read transaction (a consistent snapshot), retrying on busy."""
    deadline = time.monotonic() + WRITE_RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if is_busy(exc) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            raise


class _Thread:
    """One sqlite3 connection living on its own aiosqlite worker thread."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.aconn = conn
        self.raw: sqlite3.Connection = conn._conn  # the sqlite3 connection behind aiosqlite

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite runs queued functions on the connection's thread; a whole store operation
        # is one such function, so it costs the event loop one await.
        return await self.aconn._execute(fn, *args)

    async def close(self) -> None:
        await self.aconn.close()


async def _connect(path: Path) -> _Thread:
    conn = await aiosqlite.connect(
        str(path), isolation_level=None, cached_statements=256, check_same_thread=False
    )
    return _Thread(conn)


class Database:
    """The writer and reader connections of one database file."""

    def __init__(self, path: Path, writer: _Thread, readers: list[_Thread]) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._idle: asyncio.Queue[_Thread] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)
        self._closed = False

    @classmethod
    async def connect(
        cls, path: Path, setup: Callable[[sqlite3.Connection], None], readers: int = 2
    ) -> Database:
        """Open the writer, run `setup` on it (pragmas, migrations), then open the readers."""
        try:
            writer = await _connect(path)
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(path, exc)) from None
        try:
            await writer.call(setup, writer.raw)
            pool = []
            for _ in range(max(1, readers)):
                reader = await _connect(path)
                pool.append(reader)
                await reader.call(partial(apply_pragmas, reader=True), reader.raw)
        except BaseException as exc:
            await writer.close()
            for reader in locals().get("pool", []):
                await reader.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(describe_sqlite_error(path, exc)) from None
            raise
        return cls(path, writer, pool)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) as one durable write transaction."""
        if self._closed:
            raise StoreError("the store is closed")
        # Shielded: once queued, a write completes even if the caller is cancelled.
        task = asyncio.ensure_future(
            self._writer.call(run_transaction, self._writer.raw, fn, *args)
        )
        try:
            return await asyncio.shield(task)
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(self.path, exc)) from None
        except UnicodeEncodeError as exc:  # a lone surrogate cannot be encoded as UTF-8
            raise StoreError(describe_encoding_error(exc)) from None

    async def write_outside_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the writer with no transaction around it (VACUUM)."""
        if self._closed:
            raise StoreError("the store is closed")
        task = asyncio.ensure_future(self._writer.call(fn, self._writer.raw, *args))
        try:
            return await asyncio.shield(task)
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(self.path, exc)) from None

    async def read(self, fn: Callable[..., T], *args: Any, snapshot: bool = True) -> T:
        """Run fn(conn, *args) on an idle reader; a cancelled caller interrupts the query.

        With snapshot=True (the default) fn runs inside one read transaction, so several
        queries see the same state; snapshot=False leaves the connection in autocommit (backup).
        """
        if self._closed:
            raise StoreError("the store is closed")
        reader = await self._idle.get()
        if snapshot:
            job = reader.call(run_read, reader.raw, fn, *args)
        else:
            job = reader.call(fn, reader.raw, *args)
        task = asyncio.ensure_future(job)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            reader.raw.interrupt()
            task.add_done_callback(lambda t: self._release_after(reader, t))
            raise
        except sqlite3.Error as exc:
            self._release(reader)
            raise StoreError(describe_sqlite_error(self.path, exc)) from None
        except UnicodeEncodeError as exc:
            self._release(reader)
            raise StoreError(describe_encoding_error(exc)) from None
        except BaseException:
            self._release(reader)
            raise
        self._release(reader)
        return result

    async def read_pinned(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the first reader, always the same connection, outside a
        transaction.

        For per-connection state such as `PRAGMA data_version`, whose values can only be compared
        with earlier values from the same connection. It waits behind that reader's current work.
        """
        if self._closed:
            raise StoreError("the store is closed")
        reader = self._readers[0]
        task = asyncio.ensure_future(reader.call(fn, reader.raw, *args))
        try:
            return await asyncio.shield(task)
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(self.path, exc)) from None

    async def on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the writer, outside any transaction (settings, checks)."""
        if self._closed:
            raise StoreError("the store is closed")
        return await self._writer.call(fn, self._writer.raw, *args)

    async def on_each_reader(self, fn: Callable[..., T], *args: Any) -> list[T]:
        """Run fn(conn, *args) once on every reader connection, waiting for each to be idle."""
        if self._closed:
            raise StoreError("the store is closed")
        taken = [await self._idle.get() for _ in self._readers]
        try:
            return [await reader.call(fn, reader.raw, *args) for reader in taken]
        finally:
            for reader in taken:
                self._release(reader)

    def _release(self, reader: _Thread) -> None:
        self._idle.put_nowait(reader)

    def _release_after(self, reader: _Thread, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved, so an interrupted query is not reported as unhandled
        self._release(reader)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for reader in self._readers:
            await reader.close()
        await self._writer.close()
        tighten_permissions(self.path)
