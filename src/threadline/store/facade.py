"""`Store`: the async facade every other part of threadline reads and writes through."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from threadline import paths
from threadline.models import (
    CleanupResult,
    DatabaseInfo,
    IntegrityReport,
    Memory,
    Message,
    PendingExtraction,
    Scope,
    SearchHit,
    Session,
    SessionCursor,
    SessionSummary,
    Summary,
    SummarySpan,
    TimelineItem,
)
from threadline.store import cleanup as cleanup_ops
from threadline.store import liveness
from threadline.store import memories as memory_ops
from threadline.store import messages as message_ops
from threadline.store import scope as scopes
from threadline.store import search as search_ops
from threadline.store import sessions as session_ops
from threadline.store import summaries as summary_ops
from threadline.store import turns as turn_ops
from threadline.store.connection import (
    Database,
    prepare_file,
    read_pragmas,
)
from threadline.store.errors import DatabaseDamaged, StoreError
from threadline.store.migrate import MigrationReport, backup_database, open_and_migrate
from threadline.store.project import project_of
from threadline.store.util import Clock, fmt_ts, system_clock

if TYPE_CHECKING:
    from threadline.records import FileMark, IncomingSession
    from threadline.store import journal as journal_ops
    from threadline.store import transfer

UNSET: Any = message_ops.UNSET


def _project_key(directory: str) -> tuple[str, str] | None:
    """(normalised git remote, path inside the repository) of a session's directory."""
    project = project_of(directory)
    return None if project is None else (project.remote, project.path)


def _given(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not UNSET}


# `PRAGMA auto_vacuum` of a file whose free pages are given back on request, in steps.
_INCREMENTAL = 2
# A stepped vacuum's transaction frees at most this many pages (4 KiB each) and stops taking
# more after about this long, so it never holds the write lock near a second.
VACUUM_STEP_PAGES = 4096
VACUUM_STEP_SECONDS = 0.3


def _free_pages(conn: sqlite3.Connection) -> int:
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the header as it is now
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])


def _vacuum_step(conn: sqlite3.Connection, most: int) -> tuple[int, int]:
    """Free up to `most` pages in the caller's transaction; returns (freed, still free).

    One page per statement: Python's sqlite3 steps a statement that returns no columns only
    once, and `PRAGMA incremental_vacuum(N)` frees one page per step."""
    started = time.perf_counter()
    before = left = _free_pages(conn)
    while left and before - left < most and time.perf_counter() - started < VACUUM_STEP_SECONDS:
        for _ in range(min(64, left, most - (before - left))):
            conn.execute("PRAGMA incremental_vacuum(1)")
        left = _free_pages(conn)
    return before - left, left


class Store:
    """Async access to one threadline database. Open with `await Store.open(...)`.

    Every method is one await: the work runs on the writer's or a reader's thread. Writes are
    `BEGIN IMMEDIATE` transactions, durable (WAL, synchronous=FULL) when the await returns.
    """

    def __init__(self, db: Database, clock: Clock, report: MigrationReport) -> None:
        self._db = db
        self._clock = clock
        self.migration = report
        self._tag: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        readers: int = 2,
    ) -> Store:
        """Open (creating if needed) and migrate the database; `path=None` uses paths.db_path().

        Opening never waits for the write lock unless a migration must run: a database another
        process is writing to (an import, a vacuum) opens and reads at once. The directory is
        created (0700) only for the default location; a path whose directory does not exist
        is an error. A file this process cannot write opens read-only (writes are refused).

        Raises:
            StoreError: not a database, another program's database, newer than this code,
                corrupt at its first page, or a directory that does not exist.
        """
        db_file = paths.db_path(path)
        clock = clock or system_clock
        created = prepare_file(db_file, create_dirs=paths.may_create_parent(db_file))
        holder: dict[str, MigrationReport] = {}

        def setup(conn: sqlite3.Connection, read_only: bool) -> None:
            holder["report"] = open_and_migrate(conn, db_file, clock, read_only=read_only)
            if 7 in holder["report"].applied:
                search_ops.finish_small_build(conn)
            if not read_only:
                session_ops.try_settle_streams(conn, clock())

        try:
            db = await Database.connect(db_file, setup, readers=readers)
        except BaseException:
            if created and db_file.exists() and db_file.stat().st_size == 0:
                db_file.unlink()
            raise
        store = cls(db, clock, holder["report"])
        store._tag = liveness.new_tag()
        liveness.register(store._tag, db.writer_connection)
        db.prelude = store._settle
        return store

    @classmethod
    def open_in_background(
        cls,
        path: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
    ) -> concurrent.futures.Future[Store]:
        """Start `Store.open` on a thread of its own (with an event loop of its own) and return
        at once: the app starts opening its database before it imports Textual and builds its
        screen, and awaits the result (`asyncio.wrap_future`) on its own loop. The store is
        then used from that loop only. An error opening is the future's exception."""
        future: concurrent.futures.Future[Store] = concurrent.futures.Future()

        def run() -> None:
            try:
                store = asyncio.run(cls.open(path, clock=clock))
            except BaseException as exc:  # handed to whoever waits
                future.set_exception(exc)
            else:
                future.set_result(store)

        threading.Thread(target=run, name="threadline-open", daemon=True).start()
        return future

    def _settle(self, conn: sqlite3.Connection) -> None:
        session_ops.settle_streams(conn, self._clock())

    @property
    def read_only(self) -> bool:
        """The file cannot be written by this process: reads work, writes are refused."""
        return self._db.read_only

    @property
    def damaged(self) -> str | None:
        """Why the database is taken to be damaged (SQLite reported corruption), else None.

        Once set, every write is refused with DatabaseDamaged; reads are still tried.
        """
        return self._db.damaged

    def on_damage(self, listener: Callable[[str], None]) -> None:
        """Call `listener(message)` (on the event loop) the first time SQLite reports the file
        corrupt, whichever operation saw it."""
        self._db.damage_listeners.append(listener)

    def wait_for_lock(
        self,
        patience: float | None,
        listener: Callable[[float], None] | None = None,
    ) -> None:
        """How writes wait while another process holds the write lock.

        Args:
            patience: seconds a write keeps trying before it fails with LockTimeout (nothing
                written); None: until it gets the lock or the store is closed.
            listener: called on the event loop with the seconds waited so far, every few
                seconds while a write waits (to tell the person why nothing happens).
        """
        self._db.lock_patience = patience
        self._db.lock_listener = listener

    async def close(self) -> None:
        if self._tag is not None:
            liveness.unregister(self._tag, self._db.writer_connection)
            self._tag = None
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def journal(self) -> journal_ops.Journal:
        """The sync tables: this machine's journal, other machines' records (store/journal.py)."""
        from threadline.store import journal as ops

        return ops.Journal(self._db, self._clock)

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self,
        working_dir: str,
        title: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        directory = paths.resolve_dir(working_dir)
        return await self._db.write(
            session_ops.create_session,
            self._clock(),
            directory,
            title,
            provider,
            model,
            system_prompt,
            metadata,
            _project_key(directory),
        )

    async def get_session(self, session_id: str) -> Session | None:
        return await self._db.read(session_ops.get_session, self._clock(), session_id)

    async def get_session_summaries(self, session_ids: Sequence[str]) -> dict[str, SessionSummary]:
        """The list rows of these sessions by id (trash included; unknown ids left out)."""
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return {}
        rows = await self._db.read(session_ops.get_session_summaries, self._clock(), ids)
        return {row.id: row for row in rows}

    async def resolve_session_id(self, prefix: str) -> str:
        """The id of the one session whose id, or whose short id, starts with `prefix` (trash
        included): a whole id (dashes optional), a prefix of one, or a short id from short_ids().

        Raises:
            NotFoundError: nothing matches. AmbiguousIdError: several do.
        """
        return await self._db.read(session_ops.resolve_session_id, prefix)

    async def short_ids(self, ids: list[str], minimum: int = 8) -> dict[str, str]:
        """The id to print for each session: the start of its id's random last group (at least
        `minimum` hex digits), unique now and, unlike a prefix of the time-ordered id, still
        unique as history grows. resolve_session_id() takes it back."""
        return await self._db.read(session_ops.short_ids, list(ids), minimum)

    async def get_or_create_session(
        self,
        working_dir: str,
        continue_window_hours: float = 4.0,
        *,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> Session:
        """Continue the directory's newest session if its last message is recent, else make one."""
        session, _created = await self.get_or_create_session_ex(
            working_dir,
            continue_window_hours,
            provider=provider,
            model=model,
            system_prompt=system_prompt,
        )
        return session

    async def get_or_create_session_ex(
        self,
        working_dir: str,
        continue_window_hours: float = 4.0,
        *,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> tuple[Session, bool]:
        """Like get_or_create_session, also saying whether the session was created."""
        directory = paths.resolve_dir(working_dir)
        create = {
            "provider": provider,
            "model": model,
            "system_prompt": system_prompt,
            "project": _project_key(directory),
        }
        return await self._db.write(
            session_ops.get_or_create_session,
            self._clock(),
            directory,
            timedelta(hours=continue_window_hours),
            create,
        )

    async def list_sessions(
        self,
        scope: Scope | str = Scope.DIRECTORY,
        working_dir: str | None = None,
        limit: int | None = 50,
        before: SessionCursor | None = None,
        query: str | None = None,
        *,
        trashed: bool = False,
        offset: int = 0,
    ) -> list[SessionSummary]:
        """Sessions of a scope, pinned first then newest activity, paged by the `before` cursor.

        `offset` exists for a list that jumps (a scrollbar dragged far down); pages that follow
        one another should pass the last row's `.cursor` as `before`.
        """
        scope = Scope(scope)
        root = scopes.scope_root(scope, working_dir)
        return await self._db.read(
            session_ops.list_sessions,
            self._clock(),
            scope,
            root,
            limit,
            before,
            query or None,
            trashed,
            offset,
        )

    async def count_sessions(
        self,
        scope: Scope | str = Scope.DIRECTORY,
        working_dir: str | None = None,
        query: str | None = None,
        *,
        trashed: bool = False,
    ) -> int:
        scope = Scope(scope)
        root = scopes.scope_root(scope, working_dir)
        return await self._db.read(session_ops.count_sessions, scope, root, query or None, trashed)

    async def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        status: str = UNSET,
        ended_at: datetime | None = UNSET,
        pinned: bool = UNSET,
        model: str | None = UNSET,
        provider: str | None = UNSET,
        system_prompt: str | None = UNSET,
        metadata: dict[str, Any] = UNSET,
    ) -> Session:
        """Change the given fields (title=None clears a title, so the preview shows again)."""
        changes = _given(
            title=title,
            status=status,
            ended_at=ended_at,
            pinned=pinned,
            model=model,
            provider=provider,
            system_prompt=system_prompt,
            metadata=metadata,
        )
        return await self._db.write(session_ops.update_session, self._clock(), session_id, changes)

    async def patch_session_metadata(self, session_id: str, patch: dict[str, Any]) -> Session:
        """Merge keys into the session's metadata (a None value removes a key)."""
        return await self._db.write(
            session_ops.patch_session_metadata, self._clock(), session_id, dict(patch)
        )

    async def touch_session(self, session_id: str) -> None:
        await self._db.write(session_ops.touch_session, self._clock(), session_id)

    async def delete_session(self, session_id: str) -> bool:
        """Move a session to the trash (recoverable). False if it was already there or missing."""
        return await self._db.write(session_ops.trash_session, self._clock(), session_id)

    async def restore_session(self, session_id: str) -> bool:
        return await self._db.write(session_ops.restore_session, session_id)

    async def purge_session(self, session_id: str) -> bool:
        """Remove a session for good, with its messages and summaries (memories keep their fact).

        A long session goes in several short transactions (see sessions.purge_step)."""
        purged = await self._purge_in_steps([session_id], trashed_only=False)
        return bool(purged)

    async def _purge_in_steps(self, ids: list[str], *, trashed_only: bool) -> list[str]:
        """Purge `ids` in short write transactions, leaving the lock free between them."""
        purged: list[str] = []
        left = list(ids)
        while left:
            done, left = await self._db.write(
                session_ops.purge_step, left, self._clock(), trashed_only
            )
            purged += done
            if left:
                await asyncio.sleep(0.005)
        if len(ids) > 1 or purged:
            await self.checkpoint()
        return purged

    async def purge_trash(self, trash_days: int = 30, *, everything: bool = False) -> list[str]:
        """Purge sessions in the trash for longer than `trash_days` (all with everything=True),
        in short transactions; what a crash leaves is still in the trash, for the next run."""

        def expired(conn: sqlite3.Connection, now: datetime) -> list[str]:
            if everything:
                return session_ops.all_trash(conn)
            return session_ops.expired_trash(conn, now - timedelta(days=trash_days))

        ids = await self._db.read(expired, self._clock())
        return await self._purge_in_steps(ids, trashed_only=True)

    async def cleanup(
        self,
        settings: Any,
        dry_run: bool = False,
        keep: set[str] | list[str] | None = None,
        older_than: timedelta | None = None,
        include_imported: bool | None = None,
    ) -> CleanupResult:
        """Apply retention (`settings` is a SessionConfig): see store/cleanup.py.

        Sessions imported or captured from other tools are included only when
        `include_imported` (None: the settings' `cleanup_imported`) says so.

        A dry run performs the same work in a transaction that is rolled back, so it counts
        exactly what the real run would do.
        """
        retention = (
            older_than if older_than is not None else timedelta(days=settings.retention_days)
        )
        args = (
            self._clock(),
            retention,
            int(settings.max_sessions),
            int(settings.trash_days),
            set(keep or ()),
            dry_run,
            bool(
                getattr(settings, "cleanup_imported", False)
                if include_imported is None
                else include_imported
            ),
        )
        try:
            result = await self._db.write(cleanup_ops.cleanup, *args)
        except cleanup_ops._DryRun as rolled_back:
            return rolled_back.result
        # The trash that has waited long enough goes in short transactions of its own.
        if result.purged_ids:
            purged = await self._purge_in_steps(result.purged_ids, trashed_only=True)
            result = result.model_copy(update={"purged": len(purged), "purged_ids": purged})
        return result

    async def recover_interrupted(self) -> list[str]:
        """Mark sessions whose reply writer is gone or 30 s silent as crashed; returns their ids."""
        return await self._db.write(session_ops.mark_stale_streams, self._clock())

    async def begin_turn(
        self,
        session_id: str | None,
        content: str | None,
        *,
        working_dir: str | None = None,
        continue_window_hours: float | None = None,
        title: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[Session, Message | None, bool]:
        """Start a turn: the user's message and the turn's heartbeat, in one transaction with
        the session when it is new, so a crash never leaves an empty session behind.

        Args:
            session_id: the session to write in; None: continue the newest session of
                `working_dir` when its last message is younger than `continue_window_hours`
                (None: never), else create one with the given fields.
            content: the user's message; None answers the last one again (a retry).

        Returns (session, the saved message or None, whether the session was created). Until
        the turn's reply ends (update_message with complete or a stop_reason, or an assistant
        message added complete), the session counts as writing; keep it alive with
        `heartbeat()` while no reply row exists yet.
        """
        window = None
        if continue_window_hours is not None:
            window = timedelta(hours=continue_window_hours)
        directory = paths.resolve_dir(working_dir) if session_id is None else None
        create = {
            "title": title,
            "provider": provider,
            "model": model,
            "system_prompt": system_prompt,
            "metadata": metadata,
        }
        return await self._db.write(
            turn_ops.begin_turn,
            self._clock(),
            session_id,
            content,
            directory,
            window,
            create,
        )

    async def heartbeat(self, session_id: str) -> None:
        """The turn in this session is still alive (before its reply's first checkpoint)."""
        await self._db.write(session_ops.beat, self._clock(), session_id)

    async def end_turn(self, session_id: str) -> None:
        """The turn this store was writing in the session ended without a reply row."""
        await self._db.write(session_ops.end_beat, session_id)

    # ------------------------------------------------------------------ messages

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        payload: Any = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
        stop_reason: str | None = None,
        response_ms: int | None = None,
        complete: bool = True,
        *,
        created_at: datetime | None = None,
    ) -> Message:
        """Append a message; the session's updated_at, count and token totals move with it.

        An incomplete message (complete=False, no stop_reason) marks a reply in progress: keep
        checkpointing it with update_message, or the session is reported crashed after 30 s.
        """
        return await self._db.write(
            message_ops.add_message,
            self._clock(),
            session_id,
            role,
            content,
            payload,
            input_tokens,
            output_tokens,
            model,
            stop_reason,
            response_ms,
            complete,
            created_at,
        )

    async def update_message(
        self,
        message_id: int,
        *,
        content: str = UNSET,
        payload: Any = UNSET,
        input_tokens: int | None = UNSET,
        output_tokens: int | None = UNSET,
        model: str | None = UNSET,
        stop_reason: str | None = UNSET,
        response_ms: int | None = UNSET,
        complete: bool = UNSET,
    ) -> Message:
        """Checkpoint (keeps the heartbeat) or finalise (complete=True or a stop_reason)."""
        changes = _given(
            content=content,
            payload=payload,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=model,
            stop_reason=stop_reason,
            response_ms=response_ms,
            complete=complete,
        )
        return await self._db.write(message_ops.update_message, self._clock(), message_id, changes)

    async def get_message(self, message_id: int) -> Message | None:
        return await self._db.read(message_ops.get_message, message_id)

    async def get_messages(
        self,
        session_id: str,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Messages in order. With `limit`: the newest `limit` before `before_id` (or the end),
        or with only `after_id`, the oldest `limit` after it."""
        return await self._db.read(message_ops.get_messages, session_id, before_id, after_id, limit)

    async def get_messages_since(self, session_id: str, when: datetime) -> list[Message]:
        return await self._db.read(message_ops.get_messages_since, session_id, when)

    async def count_messages(self, session_id: str) -> int:
        return await self._db.read(message_ops.count_messages, session_id)

    async def delete_messages_before(
        self,
        session_id: str,
        before_id: int,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Remove a session's messages with id < before_id (compacting); returns how many.

        In short write transactions of COMPACT_CHUNK messages, oldest first, leaving the lock
        free between them; `progress(removed_so_far)` after each. The summary that stands for
        the messages is the durable marker: a crash between steps leaves the newest of them
        still stored and still covered by it (requests unchanged), and removing again (the
        next `sessions compact`) finishes. No step is undone by a later failure.
        """
        removed = 0
        while True:
            count, more = await self._db.write(
                message_ops.delete_messages_step,
                session_id,
                before_id,
                message_ops.COMPACT_CHUNK,
            )
            removed += count
            if progress is not None:
                progress(removed)
            if not more:
                break
            await asyncio.sleep(0.005)  # let a writer waiting in another process in
        if removed > message_ops.COMPACT_CHUNK:
            await self.checkpoint()
        return removed

    async def count_messages_before(self, session_id: str, before_id: int) -> int:
        """How many of a session's messages have id < before_id."""
        return await self._db.read(message_ops.count_messages_before, session_id, before_id)

    # ------------------------------------------------------------------ summaries

    async def save_summary(
        self,
        session_id: str,
        content: str,
        first_message_id: int,
        last_message_id: int,
        token_count: int | None = None,
        model: str | None = None,
        *,
        created_at: datetime | None = None,
    ) -> Summary:
        return await self._db.write(
            summary_ops.save_summary,
            self._clock(),
            session_id,
            content,
            first_message_id,
            last_message_id,
            token_count,
            model,
            created_at,
        )

    async def latest_summary(self, session_id: str) -> Summary | None:
        return await self._db.read(summary_ops.latest_summary, session_id)

    async def list_summaries(self, session_id: str) -> list[Summary]:
        return await self._db.read(summary_ops.list_summaries, session_id)

    async def summary_spans(
        self, session_id: str, summaries: Sequence[Summary]
    ) -> dict[int, SummarySpan]:
        """Where each summary's range sits in the session (by summary id): its first and last
        message as 1-based positions among the messages still stored, and whether they were
        compacted away. For labels such as "Summary of messages 12-48"."""
        ranges = [(s.id, s.first_message_id, s.last_message_id) for s in summaries]
        if not ranges:
            return {}
        spans = await self._db.read(summary_ops.summary_spans, session_id, ranges)
        return {span.summary_id: span for span in spans}

    async def timeline(
        self,
        session_id: str,
        before: tuple[int, int] | None = None,
        limit: int | None = None,
        *,
        after: tuple[int, int] | None = None,
    ) -> list[TimelineItem]:
        """Messages and summaries interleaved in order; page with an item's `.position`.

        `before=None, limit=200` is the last 200 items; `before=items[0].position` the page
        before that; `after=items[-1].position` what came since.
        """
        return await self._db.read(summary_ops.timeline, session_id, before, after, limit)

    # ------------------------------------------------------------------ memories

    async def save_memory(
        self,
        working_dir: str,
        fact: str,
        category: str,
        importance: int,
        *,
        session_id: str | None = None,
        source_message_id: int | None = None,
        is_manual: bool = False,
        supersedes: int | None = None,
    ) -> Memory:
        return await self._db.write(
            memory_ops.save_memory,
            self._clock(),
            paths.resolve_dir(working_dir),
            fact,
            category,
            importance,
            session_id,
            source_message_id,
            is_manual,
            supersedes,
        )

    async def get_memory(self, memory_id: int) -> Memory | None:
        return await self._db.read(memory_ops.get_memory, memory_id)

    async def get_memories(
        self, working_dir: str, limit: int | None = None, *, include_superseded: bool = False
    ) -> list[Memory]:
        """A directory's memories, most important first, then newest; superseded ones left out."""
        return await self._db.read(
            memory_ops.get_memories, paths.resolve_dir(working_dir), limit, include_superseded
        )

    async def get_memories_by_session(self, session_id: str) -> list[Memory]:
        return await self._db.read(memory_ops.get_memories_by_session, session_id)

    async def supersede_memory(self, old_id: int, new_id: int) -> None:
        await self._db.write(memory_ops.supersede_memory, old_id, new_id)

    async def update_memory(
        self,
        memory_id: int,
        *,
        fact: str = UNSET,
        category: str = UNSET,
        importance: int = UNSET,
    ) -> Memory:
        changes = _given(fact=fact, category=category, importance=importance)
        return await self._db.write(memory_ops.update_memory, memory_id, changes)

    async def delete_memory(self, memory_id: int) -> bool:
        return await self._db.write(memory_ops.delete_memory, memory_id)

    async def delete_all_memories(self, working_dir: str) -> int:
        return await self._db.write(memory_ops.delete_all_memories, paths.resolve_dir(working_dir))

    async def save_pending_extraction(
        self,
        session_id: str,
        from_message_id: int | None = None,
        to_message_id: int | None = None,
        next_attempt_at: datetime | None = None,
    ) -> PendingExtraction:
        return await self._db.write(
            memory_ops.save_pending_extraction,
            self._clock(),
            session_id,
            from_message_id,
            to_message_id,
            next_attempt_at,
        )

    async def get_pending_extractions(self, limit: int | None = None) -> list[PendingExtraction]:
        """Extractions due now with fewer than 3 attempts, oldest due first."""
        return await self._db.read(memory_ops.get_pending_extractions, self._clock(), False, limit)

    async def list_pending_extractions(self) -> list[PendingExtraction]:
        """Every queued extraction, due or not, including those given up on (for status)."""
        return await self._db.read(memory_ops.get_pending_extractions, None, True, None)

    async def update_pending_extraction(
        self,
        pending_id: int,
        *,
        attempt_count: int = UNSET,
        last_attempt_at: datetime | None = UNSET,
        next_attempt_at: datetime = UNSET,
        error_message: str | None = UNSET,
        to_message_id: int | None = UNSET,
    ) -> PendingExtraction:
        changes = _given(
            attempt_count=attempt_count,
            last_attempt_at=last_attempt_at,
            next_attempt_at=next_attempt_at,
            error_message=error_message,
            to_message_id=to_message_id,
        )
        return await self._db.write(memory_ops.update_pending_extraction, pending_id, changes)

    async def delete_pending_extraction(self, pending_id: int) -> bool:
        return await self._db.write(memory_ops.delete_pending_extraction, pending_id)

    async def save_memories(self, working_dir: str, items: list[dict[str, Any]]) -> list[Memory]:
        """Save several memories in one transaction (all or none); see memories.save_memories."""
        return await self._db.write(
            memory_ops.save_memories, self._clock(), paths.resolve_dir(working_dir), list(items)
        )

    async def select_memories(
        self, working_dir: str, limit: int, *, created_before: datetime | None = None
    ) -> list[Memory]:
        """The directory's `limit` most important current memories, created by `created_before`."""
        return await self._db.read(
            memory_ops.select_memories, paths.resolve_dir(working_dir), created_before, limit
        )

    async def queue_extraction(
        self,
        session_id: str,
        upto_id: int | None = None,
        next_attempt_at: datetime | None = None,
    ) -> PendingExtraction | None:
        """Queue the session's messages past its extraction watermark (None: nothing new)."""
        return await self._db.write(
            memory_ops.queue_extraction, self._clock(), session_id, upto_id, next_attempt_at
        )

    async def queue_idle_extractions(
        self, idle_before: datetime, since: datetime
    ) -> list[PendingExtraction]:
        """Queue the marked sessions gone idle between `since` and `idle_before`."""
        # Looked for on a reader first: most of the time there is none, and no write is taken.
        if not await self._db.read(memory_ops.idle_sessions, idle_before, since):
            return []
        return await self._db.write(
            memory_ops.queue_idle_extractions, self._clock(), idle_before, since
        )

    async def claim_pending_extraction(
        self, lease_until: datetime, pending_id: int | None = None
    ) -> PendingExtraction | None:
        """Lease the oldest due extraction (or `pending_id`) until `lease_until`."""
        return await self._db.write(
            memory_ops.claim_pending_extraction, self._clock(), lease_until, pending_id
        )

    async def complete_extraction(
        self,
        pending_id: int,
        items: list[dict[str, Any]],
        rest: tuple[int, int | None] | None = None,
    ) -> list[Memory] | None:
        """Save an extraction's memories, unqueue it and queue `rest`, in one transaction."""
        return await self._db.write(
            memory_ops.complete_extraction, self._clock(), pending_id, list(items), rest
        )

    async def reset_failed_extractions(self) -> int:
        """Make extractions given up on due again with fresh attempts; returns how many."""
        return await self._db.write(memory_ops.reset_failed_extractions, self._clock())

    # ------------------------------------------------------------------ search

    async def search(
        self,
        query: str,
        scope: Scope | str = Scope.ALL,
        working_dir: str | None = None,
        limit: int = 50,
        *,
        rank: bool = False,
    ) -> list[SearchHit]:
        """Full-text search, newest first (or by relevance among the newest matches).

        Raises:
            SearchQueryError: the text holds nothing searchable.
        """
        scope = Scope(scope)
        root = scopes.scope_root(scope, working_dir)
        return await self._db.read(search_ops.search, query, scope, root, limit, rank)

    async def rebuild_search_index(self) -> None:
        await self._db.write(search_ops.rebuild_index)

    async def search_build_state(self) -> search_ops.BuildState:
        """How much of the search index is still to build (after an upgrade)."""
        return await self._db.read(search_ops.build_state)

    async def build_search_index(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Finish building the search index in short write transactions (resumable).

        Each step holds the write lock about BUILD_TARGET seconds and then leaves it free a
        moment, so other writers are never kept waiting; a crash loses at most one step.
        `progress(rows done, rows in all)` is called after each step.
        """
        state = await self._db.read(search_ops.build_state)
        await search_ops.build_in_steps(self._db, search_ops.build_step, state.total, progress)
        await self.checkpoint()

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (after maintenance); gives up at
        once if another connection is in the way."""

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.OperationalError:
                pass

        await self._db.write_outside_transaction(run)

    async def optimize_search_index(self) -> None:
        await self._db.write(search_ops.optimize_index)

    # ------------------------------------------------------------------ the file

    async def pragmas(self) -> dict[str, Any]:
        """The connection settings in force: {"writer": {...}, "readers": [{...}, ...]}."""
        return {
            "writer": await self._db.on_writer(read_pragmas),
            "readers": await self._db.on_each_reader(read_pragmas),
        }

    async def data_version(self) -> int:
        """Changes whenever another connection (this process's writer included) commits.

        Always asked of the same reader: each connection counts the changes it has noticed, so
        values from different connections are not comparable (two readers taking turns would
        report a change on every call).
        """

        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        return await self._db.read_pinned(run)

    async def outside_data_version(self) -> int:
        """Changes only when another connection commits (another process, another Store).

        Asked of the writer: SQLite leaves a connection's data_version alone for its own
        commits, so this store's writes (a reply's checkpoints) never show up here. The app
        polls it to notice other processes without redoing what it wrote itself.
        """

        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        return await self._db.on_writer(run)

    async def info(self) -> DatabaseInfo:
        path = self.path

        def run(conn: sqlite3.Connection) -> DatabaseInfo:
            def one(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            return DatabaseInfo(
                path=str(path),
                schema_version=one("SELECT coalesce(max(version), 0) FROM schema_version"),
                sessions=one("SELECT count(*) FROM sessions WHERE deleted_at IS NULL"),
                trashed_sessions=one("SELECT count(*) FROM sessions WHERE deleted_at IS NOT NULL"),
                messages=one("SELECT count(*) FROM messages"),
                summaries=one("SELECT count(*) FROM summaries"),
                memories=one("SELECT count(*) FROM memories"),
                pending_extractions=one("SELECT count(*) FROM pending_memory_extractions"),
                size_bytes=one(
                    "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"
                ),
                read_only=self.read_only,
            )

        return await self._db.read(run)

    async def integrity_check(self) -> list[str]:
        """Problems found by PRAGMA integrity_check and the FTS index checks ([] when healthy).

        See integrity_report for the checks that could not run (read-only file, busy lock).
        """
        return (await self.integrity_report()).problems

    async def integrity_report(self) -> IntegrityReport:
        """PRAGMA integrity_check, foreign keys and the FTS index checks, without waiting.

        The FTS checks are INSERT commands in form, so they need the write lock: on a read-only
        file they are skipped as such, and while another process holds the lock they are tried
        once and skipped with a note instead of waiting (the rest is checked on a reader).
        """

        def run(conn: sqlite3.Connection) -> list[str]:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [
                f"foreign key: {r[0]} row {r[1]} -> {r[2]}"
                for r in conn.execute("PRAGMA foreign_key_check")
            ]
            return problems

        def fts(conn: sqlite3.Connection) -> tuple[list[str], str | None]:
            timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return [], "another process is writing to the database"
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
            problems = []
            try:
                serving = [index.table for index in search_ops.current_indexes(conn)]
                partial = search_ops.partial_indexes(conn)
                for table in [*serving, "search_sessions"]:
                    # rank = 1: also compare the index with the rows it was built from (not
                    # while its build is under way: it holds only part of them).
                    rank = 0 if table in partial else 1
                    try:
                        conn.execute(
                            f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', ?)",
                            (rank,),
                        )
                    except sqlite3.DatabaseError as exc:
                        problems.append(f"{table}: {exc}")
            finally:
                conn.execute("ROLLBACK")
            return problems, None

        try:
            problems = await self._db.read(run)
        except DatabaseDamaged:  # too damaged for the check itself to finish
            problems = [f"the check could not finish: {self._db.damage_reason}"]
        skipped: list[str] = []
        if self.read_only:
            skipped.append("search index: needs write access (the database is read-only)")
        elif self.damaged is None:
            fts_problems, busy = await self._db.on_writer(fts)
            problems += fts_problems
            if busy:
                skipped.append(f"search index: {busy}; run the check again later")
        return IntegrityReport(problems=problems, skipped=skipped, read_only=self.read_only)

    async def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the database to `dest` with SQLite's online backup API (safe while in use)."""
        target = Path(dest).expanduser()
        if target.exists():
            raise StoreError(f"{target}: already exists; choose a new file name")
        if not target.parent.is_dir():
            raise StoreError(f"{target.parent}: no such directory")

        def run(conn: sqlite3.Connection) -> None:
            backup_database(conn, target)

        await self._db.read(run, snapshot=False)
        return target

    async def vacuum_in_steps_possible(self) -> bool:
        """Whether the file frees pages in short steps (auto_vacuum = INCREMENTAL: every
        database threadline creates; `vacuum(full=True)` converts an older one)."""

        def mode(conn: sqlite3.Connection) -> int:
            # Read something first: the pragma alone answers from the header as this
            # connection last read it, which another connection's VACUUM may have changed.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])

        return await self._db.read(mode) == _INCREMENTAL

    async def vacuum(
        self,
        *,
        full: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> bool:
        """Give the space of deleted rows back to the file system; returns whether it went in
        short steps.

        An incremental database (see vacuum_in_steps_possible) moves its free pages to the end
        of the file and drops them in write transactions of at most VACUUM_STEP_PAGES pages and
        about VACUUM_STEP_SECONDS each, leaving the lock free between them;
        `progress(pages_freed, pages_free_at_start)` after each. Interrupted, what is done
        stays done. The WAL is then checkpointed, so the file shrinks.

        `full`, or an older database: one VACUUM, which rebuilds the whole file and holds the
        write lock throughout (other writers wait), switching the file to incremental.
        """
        if not full and await self.vacuum_in_steps_possible():
            total = await self._db.read(_free_pages)
            freed = 0
            while True:
                count, left = await self._db.write(_vacuum_step, VACUUM_STEP_PAGES)
                freed += count
                if progress is not None:
                    progress(freed, max(total, freed))
                if not left or not count:
                    break
                await asyncio.sleep(0.005)  # let a writer waiting in another process in
            await self.checkpoint()
            return True

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect with the VACUUM
            conn.execute("VACUUM")

        await self._db.write_outside_transaction(run)
        await self.checkpoint()
        return False

    # ------------------------------------------------------------------ export and import

    async def export_jsonl(
        self,
        out: IO[str],
        session_ids: Sequence[str] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> transfer.ExportStats:
        """Stream sessions (every one, trash included, when None) as JSONL to `out`.

        One read snapshot; rows go from SQLite to `out` without being gathered in memory.
        `progress(messages_written, messages_total)` is called from the store's thread.
        """
        from threadline.store.transfer import export  # loaded when used

        stale = fmt_ts(self._clock() - session_ops.STALE_STREAM)
        ids = None if session_ids is None else list(session_ids)
        return await self._db.read(export.export_jsonl, out, stale, ids, progress)

    async def export_json(self, session_id: str) -> str:
        """One session, with its messages, summaries and memories, as a JSON document."""
        from threadline.store.transfer import export

        stale = fmt_ts(self._clock() - session_ops.STALE_STREAM)
        return await self._db.read(export.export_document, stale, session_id)

    async def import_export(
        self,
        source: IO[bytes],
        name: str,
        *,
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> transfer.ImportResult:
        """Import a threadline export (JSONL or JSON): checked whole, then loaded in short steps.

        The file is read and checked to the end first, holding no lock and writing nothing (a
        bad line imports nothing); then it is loaded in transactions that each hold the write
        lock about a third of a second, so other writers keep going. Sessions already present
        are skipped and listed; an import cut short (a crash) is finished by importing the same
        file again. See store/transfer/importer.py for the rules. `progress(phase, done,
        total)`: phase "reading" counts bytes of the file (total None for a pipe; called from
        a worker thread), then "loading" counts messages (called on the event loop), then, when a
        first import's search index has to be built after all, "indexing" counts messages.

        Raises:
            ImportFormatError: the file is not a valid export (nothing was imported).
        """
        import asyncio
        import time

        from threadline.store.transfer import importer, reader

        started = time.perf_counter()
        spool_dir = str(self.path.parent)
        early = await importer.early_feed(self._db)  # a first import: indexed as it is read
        try:
            checked = await asyncio.to_thread(
                reader.check, source, name, spool_dir, progress, early
            )
        except BaseException:
            if early is not None:
                early.give_up()
            raise
        try:
            return await importer.import_export(
                self._db, self._clock, checked, progress, time.perf_counter() - started, early
            )
        finally:
            checked.close()

    async def load_history(
        self,
        batches: Iterable[IncomingSession],
        *,
        dry_run: bool = False,
        progress: Callable[[transfer.LoadReport], None] | None = None,
        on_error: Callable[[IncomingSession, StoreError], None] | None = None,
    ) -> transfer.LoadReport:
        """Write history read from another tool (threadline.records) in short transactions.

        `batches` is a plain iterator, consumed on a thread of its own (never the event loop
        or the store's writer), so a source may read files there; each batch is checked and
        written atomically with its file mark. Sessions are matched by (source, source_id)
        and messages by key: loading the same history twice adds nothing, and a grown file
        adds only what is new. `dry_run` reports the same counts and writes nothing.
        `progress(report)` is called on the event loop after each transaction, with the
        counts so far. A batch that fails its checks (a 1e30 token count, a naive timestamp)
        raises StoreError naming it, after the batches before it are in; with `on_error`, it
        is reported there instead (and counted in `failed`), and the load goes on. An error
        raised by the iterator itself ends the load the same way, once what came before it
        is written. See store/transfer/history.py.
        """
        from threadline.store.transfer import history

        return await history.load(
            self._db, self._clock, batches, dry_run=dry_run, progress=progress, on_error=on_error
        )

    async def source_file_marks(self, source: str) -> dict[str, FileMark]:
        """Every saved FileMark of a source, by path: how far each file has been read."""
        from threadline.store.transfer import history

        return await self._db.read(history.read_marks, source)

    async def timeline_around(
        self, session_id: str, message_id: int, radius: int = 50
    ) -> list[TimelineItem]:
        """Up to `radius` items before the message, the message, and `radius` after it.

        For opening a session at a search hit (a summary hit gives its last message id).
        Page outwards from the ends with timeline(before=...) and timeline(after=...).
        """

        def run(conn: sqlite3.Connection) -> list[TimelineItem]:
            head = summary_ops.timeline(conn, session_id, (message_id, 1), None, radius + 1)
            tail = summary_ops.timeline(conn, session_id, None, (message_id, 0), radius)
            return head + tail

        return await self._db.read(run)
