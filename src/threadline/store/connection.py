"""The database file and its connections: one writer, a small pool of readers, each on a thread.

Store code is written as plain functions that take a `sqlite3.Connection`; `Database.write` runs
one inside `BEGIN IMMEDIATE ... COMMIT` on the writer's thread, `Database.read` runs one on a
reader's thread inside a short read transaction. Either way a whole operation costs the event
loop a single await. Each connection lives on a thread of its own (`_Worker`), so a slow query
never holds up the event loop and one connection is never used from two threads at once.

Opening and reading never take the write lock. A write that cannot get the lock keeps trying
(telling a listener how long it has waited) until the store's patience runs out or the store
closes; a database SQLite reports corrupt is never written to again by this store.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from threadline.store.errors import (
    DatabaseDamaged,
    DatabaseReadOnly,
    LockTimeout,
    StoreError,
)
from threadline.store.liveness import sql_writer_gone

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# A write waiting for another process's lock tries for this long at a time (SQLite's own wait),
# then looks whether to give up (the store closed, its patience ran out) or to say so.
LOCK_STEP_MS = 250
# It says so once it has waited this long (and every step after: listeners pace themselves).
LOCK_NOTICE_SECONDS = BUSY_TIMEOUT_MS / 1000 / 2
# How long a write keeps retrying by default when another process holds the lock.
WRITE_RETRY_SECONDS = 60.0
# The -wal file is cut back to this size whenever SQLite starts it over (after a checkpoint):
# one large write (a vacuum, an import) must not leave a file of its size behind.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
SQLITE_HEADER = b"SQLite format 3\x00"

# Primary result codes (sqlite3.h).
SQLITE_READONLY = 8
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


def error_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of an error (None when it carries none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_damage(exc: BaseException) -> bool:
    """SQLite says the file is corrupt or not a database."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    if error_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


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


def damage_message(path: Path, exc: BaseException) -> str:
    """What to tell someone whose database SQLite reports corrupt."""
    return (
        f"{path}: the database is damaged ({exc}); nothing more will be written to it. "
        "Run `threadline db check` to see what is wrong, then restore a backup "
        "(threadline keeps one beside the database before each upgrade) or copy out what "
        "can be read with `threadline export --all`"
    )


def prepare_file(path: Path, *, create_dirs: bool) -> bool:
    """Check the database's directory and create an empty database file (0600) if missing.

    A missing directory is created (0700, each level) only when `create_dirs` is set (the
    default location); otherwise it is an error. Returns True when the file was created here.
    An existing file is checked to be a file and, when not empty, to start with the SQLite
    header; nothing existing is ever written to.
    """
    from threadline import paths

    directory = path.parent
    if not directory.exists():
        if not create_dirs:
            raise StoreError(
                paths.missing_directory(path)
                or f"{directory}: no such directory (create it first, or fix the path)"
            )
        try:
            paths.make_private_dirs(directory)
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


def is_writable(path: Path) -> bool:
    """Can this process write the database file (not read-only, immutable or on RO media)?"""
    return os.access(path, os.W_OK)


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
    else:
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")


def read_pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    """The settings a connection runs with (for checks and `db info`)."""
    names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only")
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


class LockWait:
    """How a write waits for the lock: for how long, whom it tells, and when it gives up.

    `notify(seconds)` is called on the writer's thread each time the lock is still held after
    another step (LOCK_STEP_MS), from LOCK_NOTICE_SECONDS on; `abandoned` is set when the
    store closes (a write still waiting for the lock then gives up within a step, having
    written nothing).
    """

    def __init__(
        self,
        patience: float | None = WRITE_RETRY_SECONDS,
        notify: Callable[[float], None] | None = None,
        abandoned: threading.Event | None = None,
    ) -> None:
        self.patience = patience
        self.notify = notify
        self.abandoned = abandoned or threading.Event()


class WaitingWrite:
    """A write function that carries how it waits for the lock (see run_transaction)."""

    def __init__(self, fn: Callable[..., Any], lock_wait: LockWait) -> None:
        self.fn = fn
        self.lock_wait = lock_wait

    def __call__(self, conn: sqlite3.Connection, *args: Any) -> Any:
        return self.fn(conn, *args)


def run_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(conn, *args) inside BEGIN IMMEDIATE/COMMIT, retrying while another process writes.

    How long it keeps trying, and whom it tells, comes from `fn.lock_wait` (a WaitingWrite);
    a plain function waits WRITE_RETRY_SECONDS.

    Raises:
        LockTimeout: the lock stayed taken for longer than the patience, or the store was
            closed while waiting. Nothing was written.
    """
    wait: LockWait = getattr(fn, "lock_wait", None) or LockWait()
    started = time.monotonic()
    delay = 0.005
    while True:
        try:
            _begin_immediate(conn)
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            waited = time.monotonic() - started
            if wait.abandoned.is_set():
                raise LockTimeout(
                    "gave up waiting for the database lock (the store was closed); "
                    "nothing was written"
                ) from None
            if wait.patience is not None and waited >= wait.patience:
                raise LockTimeout(
                    f"another process kept the database locked for {waited:.0f} s; "
                    "nothing was written (try again when it is done)"
                ) from None
            if wait.notify is not None and waited >= LOCK_NOTICE_SECONDS:
                wait.notify(waited)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting at most LOCK_STEP_MS for another process's lock (the caller
    retries): a write given up (the store closed) stops within a step, not a busy timeout."""
    conn.execute(f"PRAGMA busy_timeout = {LOCK_STEP_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def run_read(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(conn, *args) in one read transaction (a consistent snapshot), retrying on busy.

    The transaction ends as soon as fn returns, so a reader never keeps the WAL from being
    checkpointed for longer than one operation.
    """
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


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller stopped waiting (a cancelled read)
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _Worker:
    """One sqlite3 connection and the thread that runs everything done with it, in order."""

    def __init__(self, name: str) -> None:
        self.raw: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def conn(self) -> sqlite3.Connection:
        assert self.raw is not None
        return self.raw

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, fn, args = job
            try:
                value, ok = fn(*args), True
            except BaseException as exc:  # handed to the awaiting coroutine
                value, ok = exc, False
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:  # the event loop is closed: nobody is waiting any more
                pass

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue fn(*args) on this connection's thread; the future settles on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def open(self, target: str, uri: bool) -> None:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                target,
                uri=uri,
                isolation_level=None,
                cached_statements=256,
                check_same_thread=False,  # interrupt() comes from the event loop's thread
            )
            conn.create_function("threadline_writer_gone", 1, sql_writer_gone)
            return conn

        self.raw = await self.call(connect)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.raw is not None:
            try:
                await self.call(self.raw.close)
            except sqlite3.Error:
                pass
        self._jobs.put(None)


def _target(path: Path, mode: str) -> tuple[str, bool]:
    """What sqlite3.connect is given: the plain path, or a URI for a read-only open."""
    if mode == "rw":
        return str(path), False
    suffix = "mode=ro" if mode == "ro" else "immutable=1"
    return f"file:{quote(str(path.resolve()))}?{suffix}", True


class Database:
    """The writer and reader connections of one database file."""

    def __init__(
        self, path: Path, writer: _Worker, readers: list[_Worker], *, read_only: bool
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._writer = writer
        self._readers = readers
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)
        self._closed = False
        self._abandon = threading.Event()
        # Runs inside every write transaction, before the write itself (see Store.open).
        self.prelude: Callable[[sqlite3.Connection], None] | None = None
        # How long a write waits for the lock (None: until the store closes), and who hears
        # about the wait (called on the event loop with the seconds waited so far).
        self.lock_patience: float | None = WRITE_RETRY_SECONDS
        self.lock_listener: Callable[[float], None] | None = None
        # Set once SQLite has reported the file corrupt: writes are refused from then on.
        self.damaged: str | None = None
        self.damage_reason = ""  # SQLite's own words
        self.damage_listeners: list[Callable[[str], None]] = []

    @classmethod
    async def connect(
        cls,
        path: Path,
        setup: Callable[[sqlite3.Connection, bool], None],
        readers: int = 2,
    ) -> Database:
        """Open the writer, run `setup(conn, read_only)` on it (pragmas, migrations), then open
        the readers. A file this process cannot write is opened read-only."""
        modes = ["rw"] if is_writable(path) else ["ro", "immutable"]
        for attempt, mode in enumerate(modes):
            try:
                return await cls._connect(path, setup, readers, mode)
            except sqlite3.Error as exc:
                last = attempt == len(modes) - 1
                if not last and error_code(exc) == SQLITE_CANTOPEN:
                    continue  # read-only media with no -shm: read it as an immutable file
                raise StoreError(describe_sqlite_error(path, exc)) from None
        raise AssertionError("unreachable")

    @classmethod
    async def _connect(
        cls,
        path: Path,
        setup: Callable[[sqlite3.Connection, bool], None],
        readers: int,
        mode: str,
    ) -> Database:
        target, uri = _target(path, mode)
        read_only = mode != "rw"
        writer = _Worker("threadline-writer")
        pool: list[_Worker] = []
        try:
            await writer.open(target, uri)
            await writer.call(setup, writer.conn, read_only)
            for n in range(max(1, readers)):
                reader = _Worker(f"threadline-reader-{n}")
                pool.append(reader)
                await reader.open(target, uri)
                await reader.call(_reader_setup, reader.conn)
        except BaseException:
            await writer.close()
            for reader in pool:
                await reader.close()
            raise
        return cls(path, writer, pool, read_only=read_only)

    @property
    def writer_connection(self) -> sqlite3.Connection:
        """The writer's sqlite3 connection (an identity: use it only on the writer's thread)."""
        return self._writer.conn

    # ------------------------------------------------------------------ errors

    def _fail(self, exc: BaseException) -> BaseException:
        """The StoreError to raise for an error from SQLite (or text it cannot encode)."""
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, UnicodeEncodeError):  # a lone surrogate cannot be encoded as UTF-8
            return StoreError(describe_encoding_error(exc))
        if isinstance(exc, sqlite3.Error):
            if is_damage(exc):
                return self._mark_damaged(exc)
            if error_code(exc) == SQLITE_READONLY:
                return DatabaseReadOnly(describe_sqlite_error(self.path, exc))
            return StoreError(describe_sqlite_error(self.path, exc))
        return exc

    def _mark_damaged(self, exc: BaseException) -> DatabaseDamaged:
        first = self.damaged is None
        if first:
            self.damaged = damage_message(self.path, exc)
            self.damage_reason = str(exc)
        error = DatabaseDamaged(self.damaged or "")
        if first:
            for listener in list(self.damage_listeners):
                listener(self.damaged or "")
        return error

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self.damaged is not None:
            raise DatabaseDamaged(self.damaged)
        if self.read_only:
            raise DatabaseReadOnly(
                f"{self.path}: the database is read-only (its file cannot be written); "
                "nothing was written"
            )

    def _lock_wait(self) -> LockWait:
        listener = self.lock_listener
        notify = None
        if listener is not None:
            loop = asyncio.get_running_loop()

            def notify(seconds: float) -> None:
                try:
                    loop.call_soon_threadsafe(listener, seconds)
                except RuntimeError:
                    pass

        return LockWait(self.lock_patience, notify, self._abandon)

    # ------------------------------------------------------------------ operations

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) as one durable write transaction."""
        self._check_writable()
        prelude = self.prelude
        if prelude is not None:
            args = (fn, prelude, *args)
            fn = _after_prelude
        job = WaitingWrite(fn, self._lock_wait())
        # Shielded: once queued, a write completes even if the caller is cancelled.
        future = self._writer.submit(_transaction, self._writer.conn, job, args)
        try:
            return await asyncio.shield(future)
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._fail(exc) from None

    async def write_outside_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the writer with no transaction around it (VACUUM, imports)."""
        self._check_writable()
        future = self._writer.submit(fn, self._writer.conn, *args)
        try:
            return await asyncio.shield(future)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    async def read(self, fn: Callable[..., T], *args: Any, snapshot: bool = True) -> T:
        """Run fn(conn, *args) on an idle reader; a cancelled caller interrupts the query.

        With snapshot=True (the default) fn runs inside one read transaction, so several
        queries see the same state; snapshot=False leaves the connection in autocommit (backup).
        """
        if self._closed:
            raise StoreError("the store is closed")
        reader = await self._idle.get()
        if snapshot:
            future = reader.submit(run_read, reader.conn, fn, *args)
        else:
            future = reader.submit(fn, reader.conn, *args)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            reader.conn.interrupt()
            future.add_done_callback(lambda f: self._release_after(reader, f))
            raise
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            self._release(reader)
            raise self._fail(exc) from None
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
        try:
            return await asyncio.shield(reader.submit(fn, reader.conn, *args))
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    async def on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the writer, outside any transaction (settings, checks)."""
        if self._closed:
            raise StoreError("the store is closed")
        try:
            return await self._writer.call(fn, self._writer.conn, *args)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    async def on_each_reader(self, fn: Callable[..., T], *args: Any) -> list[T]:
        """Run fn(conn, *args) once on every reader connection, waiting for each to be idle."""
        if self._closed:
            raise StoreError("the store is closed")
        taken = [await self._idle.get() for _ in self._readers]
        try:
            return [await reader.call(fn, reader.conn, *args) for reader in taken]
        finally:
            for reader in taken:
                self._release(reader)

    def _release(self, reader: _Worker) -> None:
        self._idle.put_nowait(reader)

    def _release_after(self, reader: _Worker, future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved, so an interrupted query is not reported as unhandled
        self._release(reader)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._abandon.set()  # a write still waiting for the lock gives up (it wrote nothing)
        for reader in self._readers:
            await reader.close()
        await self._writer.close()
        if not self.read_only:
            tighten_permissions(self.path)


def _reader_setup(conn: sqlite3.Connection) -> None:
    apply_pragmas(conn, reader=True)


def _transaction(conn: sqlite3.Connection, job: WaitingWrite, args: tuple[Any, ...]) -> Any:
    return run_transaction(conn, job, *args)  # looked up when called (tests wrap it)


def _after_prelude(
    conn: sqlite3.Connection,
    fn: Callable[..., T],
    prelude: Callable[[sqlite3.Connection], None],
    *args: Any,
) -> T:
    prelude(conn)
    return fn(conn, *args)
