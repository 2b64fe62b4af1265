"""The history loader: `Store.load_history` writes what sources read (threadline.records).

How it runs. The batches (`IncomingSession`s, a plain iterator) are consumed on a thread of
their own, which also checks and converts each one into rows (timestamps, JSON text, bounds,
hashes); the rows go through a bounded pipe (never more than PIPE_BYTES in flight, so memory
stays flat however large the history) to the store's writer, which writes them in short
transactions. Reading the next files and converting them overlaps with writing the last ones,
and SQLite's work runs without the GIL, so the two use both cores. Between transactions the
writer is free: the app's own writes, queued on the same writer, go next, and other processes
find the lock free (see PAUSE).

Transactions. A batch is atomic: its messages, summaries and file mark are committed together
(a crash loses none of it and records no read whose messages were not saved). Small batches
share a transaction, up to a budget sized so that one holds the write lock about LOCK_TARGET
seconds (measured as it goes); a batch larger than a part (PART_BYTES, PART_MESSAGES) is split,
each part its own transaction, the session created by the first and its summaries and mark
saved with the last, so a crash mid-way leaves a session that the next read completes (keys
keep it from doubling). Full-text indexing and counters are done in bulk (transfer/bulk.py).

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
import hashlib
import json
import marshal
import math
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from threadline.models import ROLES
from threadline.records import FileMark, IncomingMessage, IncomingSession
from threadline.store import scope as scopes
from threadline.store.columns import MAX_COUNT, MAX_TOKENS, MESSAGE
from threadline.store.errors import StoreError
from threadline.store.transfer.bulk import (
    LOCK_TARGET,
    ROW_COST,
    Bulk,
    Checkpointer,
    Pacer,
    pause_autocheckpoint,
)
from threadline.store.util import Clock, dump_json, fmt_ts, uuid7_seeded
from threadline.text import collapse_whitespace

if TYPE_CHECKING:
    from threadline.store.connection import Database

# A batch is split into parts of at most this size (text bytes) and this many messages.
PART_BYTES = 512 << 10
PART_MESSAGES = 2000
# A transaction takes no further part once it has held the lock this long: the bulk index
# work and the commit that follow take about as long again.
CUTOFF = LOCK_TARGET / 2
# Bytes of prepared rows waiting for the writer, at most.
PIPE_BYTES = 32 << 20
# When the pipe holds less than this share of a budget, the writer waits up to FILL_WAIT
# seconds for more before writing (fewer, fuller transactions: each commit costs an fsync).
FILL_SHARE = 0.25
FILL_WAIT = 0.05

IMPORTED_TITLE = "imported_title"  # metadata: the title an import set last

# The message columns an import writes, in the column table's order (id is assigned).
_INSERT_COLS = [c for c in MESSAGE.stored if c != "id"]
_VALUE_COLS = [c for c in _INSERT_COLS if c != "session_id"]  # what a key's hash covers
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(_INSERT_COLS)})"
    f" VALUES ({', '.join('?' * len(_INSERT_COLS))})"
)
_UPDATE_MESSAGE = f"UPDATE messages SET {', '.join(f'{c} = ?' for c in _VALUE_COLS)} WHERE id = ?"


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


def imported_session_id(source: str, source_id: str, created_at: datetime) -> str:
    """The id an imported session gets: the same wherever the same history is imported."""
    seed = f"{source}\x00{source_id}".encode("utf-8", "surrogatepass")
    return uuid7_seeded(created_at, seed)


def read_marks(conn: sqlite3.Connection, source: str) -> dict[str, FileMark]:
    rows = conn.execute(
        "SELECT path, source, size, mtime_ns, offset, fingerprint, state FROM source_files"
        " WHERE source = ?",
        (source,),
    )
    return {
        path: FileMark(path, src, size, mtime_ns, offset, fingerprint, json.loads(state))
        for path, src, size, mtime_ns, offset, fingerprint, state in rows
    }


# ---------------------------------------------------------------------------- preparing


@dataclass(slots=True)
class _Msg:
    key: str
    values: tuple[Any, ...]  # _VALUE_COLS
    hash: int


@dataclass(slots=True)
class _Part:
    """A batch, or a part of a large one, ready to write."""

    index: int  # the batch's position in the input
    batch: IncomingSession
    label: str  # "claude-code session 1234abcd": how errors name it
    session_id: str  # the id it gets if it is new
    head: dict[str, Any]  # session columns for a new session (and what a present one takes)
    metadata: dict[str, Any]
    messages: list[_Msg]
    summaries: list[tuple[str, str, str, str, str | None]]  # content, first, last, at, model
    mark: tuple[Any, ...] | None
    title_only: bool
    cost: int


def _label(batch: IncomingSession) -> str:
    return f"{batch.source} session {batch.source_id}"


def _text(value: Any, what: str, label: str, *, null: bool = True, empty: bool = True) -> Any:
    if value is None:
        if null:
            return None
        raise StoreError(f"{label}: {what} is missing")
    if not isinstance(value, str):
        raise StoreError(f"{label}: {what} must be text, not {type(value).__name__}")
    if not empty and not value:
        raise StoreError(f"{label}: {what} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: shown as U+FFFD (payloads keep the original)
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _count(value: Any, what: str, label: str, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise StoreError(f"{label}: {what} must be a whole number, not {value!r}")
    if not 0 <= value <= high:
        shown = f"{value:.3g}" if abs(value) >= 1e15 else str(value)
        raise StoreError(f"{label}: {what} {shown} is out of range (0 to {high:,})")
    return value


def _when(value: Any, what: str, label: str) -> str:
    if not isinstance(value, datetime):
        raise StoreError(f"{label}: {what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{label}: {what} has no time zone")
    return fmt_ts(value)


def _json(value: Any, what: str, label: str) -> str:
    try:
        return dump_json(value, what)
    except StoreError as exc:
        raise StoreError(f"{label}: {exc}") from None


def row_hash(values: tuple[Any, ...]) -> int:
    """A 64-bit hash of a message's stored columns (_VALUE_COLS), the same from a batch or a row.

    marshal's version 0 writes str, int and None the same way whatever the objects' history
    (no references, no interning marks), and that format is frozen.
    """
    digest = hashlib.blake2b(marshal.dumps(values, 0), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _payload(value: Any, where: str) -> str:
    """A payload as stored: what dump_json gives, without its per-call set-up (this is hot)."""
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"{where}: the payload is not JSON-serialisable: {exc}") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: kept as a \u escape, so it round-trips
            text = dump_json(value)
    return text


def _stamp(value: Any, what: str, where: str) -> str:
    """An aware datetime as stored (fmt_ts's form), by the fast path when it can."""
    if type(value) is datetime:
        offset = value.utcoffset()
        if offset is not None:
            return (value.replace(tzinfo=None) - offset).isoformat(timespec="milliseconds") + "Z"
    return _when(value, what, where)


def _plain(value: Any, what: str, where: str, *, null: bool = True) -> Any:
    """Text as stored; the checks only when it is not plain text (this is hot)."""
    if type(value) is str and value.isascii():
        return value
    return _text(value, what, where, null=null)


def _tokens(value: Any, what: str, where: str) -> int | None:
    if value is None or (type(value) is int and 0 <= value <= MAX_TOKENS):
        return value
    return _count(value, what, where, MAX_TOKENS)


def _message(m: IncomingMessage, label: str) -> _Msg:
    if type(m) is not IncomingMessage and not isinstance(m, IncomingMessage):
        raise StoreError(f"{label}: a message is a {type(m).__name__}, not an IncomingMessage")
    key = m.key
    if type(key) is not str or not key:
        key = _text(key, "a message key", label, null=False, empty=False)
    where = f"{label}: message {key}"
    if m.role not in ROLES:
        raise StoreError(f"{where}: role {m.role!r} is not one of {', '.join(ROLES)}")
    if type(m.payload) is not dict and not isinstance(m.payload, dict):
        raise StoreError(f"{where}: payload must be a JSON object")
    row = {
        "role": m.role,
        "content": _plain(m.content, "content", where, null=False),
        "payload": _payload(m.payload, where),
        "created_at": _stamp(m.created_at, "created_at", where),
        "input_tokens": _tokens(m.input_tokens, "input_tokens", where),
        "output_tokens": _tokens(m.output_tokens, "output_tokens", where),
        "model": _plain(m.model, "model", where) if m.model is not None else None,
        "stop_reason": _plain(m.stop_reason, "stop_reason", where)
        if m.stop_reason is not None
        else None,
        "response_ms": None,
        "complete": 1 if m.complete else 0,
    }
    values = tuple([row[c] for c in _VALUE_COLS])
    return _Msg(key, values, row_hash(values))


def _mark(mark: FileMark, label: str) -> tuple[Any, ...]:
    if not isinstance(mark, FileMark):
        raise StoreError(f"{label}: its mark is a {type(mark).__name__}, not a FileMark")
    path = _text(mark.path, "the mark's path", label, null=False)
    if not os.path.isabs(path):
        raise StoreError(f"{label}: the mark's path {path!r} is not absolute")
    numbers = [
        _count(getattr(mark, name), f"the mark's {name}", label, MAX_COUNT)
        for name in ("size", "mtime_ns", "offset")
    ]
    if any(n is None for n in numbers):
        raise StoreError(f"{label}: the mark lacks its size, mtime_ns or offset")
    source = _text(mark.source, "the mark's source", label, null=False, empty=False)
    fingerprint = _text(mark.fingerprint, "the mark's fingerprint", label, null=False)
    state = _json(mark.state, "mark state", label)
    return (path, source, *numbers, fingerprint, state)


def prepare(batch: IncomingSession, index: int) -> list[_Part]:
    """Check a batch and turn it into parts ready to write (raises StoreError, naming it)."""
    if not isinstance(batch, IncomingSession):
        raise StoreError(f"batch {index + 1} is a {type(batch).__name__}, not an IncomingSession")
    label = f"batch {index + 1}"
    source = _text(batch.source, "its source", label, null=False, empty=False)
    source_id = _text(batch.source_id, "its source id", label, null=False, empty=False)
    label = _label(batch)
    created = _when(batch.created_at, "created_at", label)
    working_dir = _text(batch.working_dir, "working_dir", label, null=False)
    if not batch.title_only and not os.path.isabs(working_dir):
        raise StoreError(f"{label}: working_dir {working_dir!r} is not an absolute path")
    if not isinstance(batch.metadata, dict):
        raise StoreError(f"{label}: metadata must be a JSON object")
    metadata = {**batch.metadata, "source": source, "source_id": source_id}
    _json(metadata, "metadata", label)  # checked here; written by the writer (merged)
    title = _text(batch.title, "title", label)
    if title is not None:  # kept as sessions keep titles: on one line, blank is none
        title = collapse_whitespace(title) or None
    head = {
        "working_dir": working_dir,
        "created_at": created,
        "title": title,
        "model": _text(batch.model, "model", label),
        "system_prompt": _text(batch.system_prompt, "system_prompt", label),
    }
    messages: list[_Msg] = []
    if not batch.title_only:
        at: dict[str, int] = {}
        for m in batch.messages:
            msg = _message(m, label)
            place = at.get(msg.key)
            if place is None:
                at[msg.key] = len(messages)
                messages.append(msg)
            else:
                messages[place] = msg
    summaries = []
    for s in [] if batch.title_only else batch.summaries:
        where = f"{label}: a summary"
        summaries.append(
            (
                _text(s.content, "its content", where, null=False),
                _text(s.first_key, "its first key", where, null=False),
                _text(s.last_key, "its last key", where, null=False),
                _when(s.created_at, "its created_at", where),
                _text(s.model, "its model", where),
            )
        )
    mark = None if batch.mark is None else _mark(batch.mark, label)
    session_id = imported_session_id(source, source_id, batch.created_at)
    # Split a large batch: the first part makes the session, the last brings summaries and mark.
    chunks: list[list[_Msg]] = [[]]
    size = 0
    for msg in messages:
        cost = _cost(msg)
        if chunks[-1] and (size + cost > PART_BYTES or len(chunks[-1]) >= PART_MESSAGES):
            chunks.append([])
            size = 0
        chunks[-1].append(msg)
        size += cost
    parts = []
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        parts.append(
            _Part(
                index=index,
                batch=batch,
                label=label,
                session_id=session_id,
                head=head,
                metadata=metadata,
                messages=chunk,
                summaries=summaries if last else [],
                mark=mark if last else None,
                title_only=batch.title_only,
                cost=sum(_cost(m) for m in chunk) + ROW_COST,
            )
        )
    return parts


def _cost(msg: _Msg) -> int:
    values = msg.values
    return len(values[1]) + len(values[2]) + ROW_COST  # content, payload


# ---------------------------------------------------------------------------- writing


@dataclass
class _Result:
    """What writing one part did."""

    session_id: str | None = None  # None: no session was involved (a lone mark, an ignored title)
    existed: bool = False  # the session was there before this part
    changed: bool = False
    added: int = 0
    replaced: int = 0
    summaries: int = 0
    titled: bool = False
    marked: bool = False
    index_seconds: float = 0.0  # the transaction's bulk work (on its last result)


@dataclass
class _DryState:
    """What a dry run has "written" so far, so later batches see it as a real run would."""

    sessions: dict[tuple[str, str], tuple[str, str | None, dict[str, Any]]] = field(
        default_factory=dict
    )  # (source, source_id) -> (id, title, metadata)
    keys: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    next_id: int = -1  # ids handed out (negative: never a real one)
    summaries: set[tuple[str, int, int, str]] = field(default_factory=set)


def write_parts(
    conn: sqlite3.Connection,
    parts: list[_Part],
    now: str,
    dry: _DryState | None,
    deadline: float | None = None,
) -> list[_Result]:
    """Write parts in the current transaction (or, with `dry`, only work out what would be).

    Past `deadline` (a perf_counter time) no further part is started: the results say how
    many were written, and the caller keeps the others for the next transaction.
    """
    bulk = _LazyBulk(conn)
    results = []
    for part in parts:
        results.append(_write_part(conn, part, bulk, now, dry))
        if deadline is not None and time.perf_counter() > deadline:
            break
    bulk.finish()
    if results:
        results[-1].index_seconds = bulk.seconds
    return results


class _LazyBulk:
    """Triggers are suspended only in a transaction that inserts rows (see transfer/bulk.py)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.bulk: Bulk | None = None
        self.seconds = 0.0

    def get(self) -> Bulk:
        if self.bulk is None:
            self.bulk = Bulk(self.conn)
        return self.bulk

    def before_change(self, table: str, rowid: int) -> None:
        """About to update a row: do the insert work still pending for it first."""
        if self.bulk is not None and self.bulk.touches(table, rowid):
            self.finish()

    def finish(self) -> None:
        if self.bulk is not None:
            self.bulk.finish()
            self.seconds += self.bulk.seconds
            self.bulk = None


@dataclass
class _Found:
    """A session already in the database (or "written" by this dry run)."""

    id: str
    rowid: int
    title: str | None
    metadata: dict[str, Any]
    model: str | None
    system_prompt: str | None


def _find_session(conn: sqlite3.Connection, part: _Part, dry: _DryState | None) -> _Found | None:
    batch = part.batch
    row = conn.execute(
        "SELECT id, rowid, title, metadata, model, system_prompt FROM sessions"
        " WHERE source = ? AND source_id = ?",
        (batch.source, batch.source_id),
    ).fetchone()
    staged = None if dry is None else dry.sessions.get((batch.source, batch.source_id))
    if row is not None:
        found = _Found(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])
        if staged is not None:
            found.title, found.metadata = staged[1], staged[2]
        return found
    if staged is not None:
        head = part.head
        return _Found(staged[0], 0, staged[1], staged[2], head["model"], head["system_prompt"])
    return None


def _save_mark(conn: sqlite3.Connection, mark: tuple[Any, ...], now: str) -> None:
    conn.execute(
        "INSERT INTO source_files (path, source, size, mtime_ns, offset, fingerprint, state,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
        " source = excluded.source, size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " offset = excluded.offset, fingerprint = excluded.fingerprint, state = excluded.state,"
        " updated_at = excluded.updated_at",
        (*mark, now),
    )


def _write_part(
    conn: sqlite3.Connection,
    part: _Part,
    bulk: _LazyBulk,
    now: str,
    dry: _DryState | None,
) -> _Result:
    result = _Result()
    found = _find_session(conn, part, dry)
    if part.title_only or (found is None and not part.messages):
        # A title for a session loaded earlier (or not at all: then nothing), or a mark alone.
        if found is not None:
            result.titled = _retitle(conn, part, found, bulk, dry)
        if part.mark is not None:
            result.marked = True
            if dry is None:
                _save_mark(conn, part.mark, now)
        return result
    if found is None:
        sid = _create(conn, part, bulk, now, dry)
        present: dict[str, tuple[int, int | None, bool]] = {}
    else:
        sid = found.id
        result.existed = True
        result.titled = _retitle(conn, part, found, bulk, dry)
        _fill(conn, part, found, bulk, dry)
        present = _present_keys(conn, sid, [m.key for m in part.messages], dry)
    result.session_id = sid
    ids: dict[str, int] = {}  # key -> message id, for summaries
    new: list[_Msg] = []
    for msg in part.messages:
        known = present.get(msg.key)
        if known is None:
            new.append(msg)
            continue
        message_id, stored_hash, exists = known
        ids[msg.key] = message_id
        if not exists:
            continue  # deleted since it was imported: it stays deleted
        if stored_hash is None:
            stored_hash = _stored_hash(conn, message_id, sid, msg.key, dry)
        if stored_hash != msg.hash:
            result.replaced += 1
            if dry is None:
                bulk.before_change("messages", message_id)
                conn.execute(_UPDATE_MESSAGE, (*msg.values, message_id))
                conn.execute(
                    "UPDATE message_keys SET hash = ? WHERE session_id = ? AND key = ?",
                    (msg.hash, sid, msg.key),
                )
    if new:
        _insert(conn, sid, new, ids, bulk, dry)
        result.added = len(new)
    for content, first, last, at, model in part.summaries:
        first_id = ids.get(first) or _key_id(conn, sid, first, dry)
        last_id = ids.get(last) or _key_id(conn, sid, last, dry)
        if first_id is None or last_id is None:
            missing = first if first_id is None else last
            raise StoreError(
                f"{part.label}: a summary stands for message {missing}, which was never loaded"
            )
        if last_id < first_id:
            first_id, last_id = last_id, first_id
        if _has_summary(conn, sid, first_id, last_id, content, dry):
            continue
        result.summaries += 1
        if dry is None:
            pending = bulk.get()
            cur = conn.execute(
                "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
                " token_count, model, created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (sid, content, first_id, last_id, model, at),
            )
            assert cur.lastrowid is not None
            pending.added_rowid("summaries", cur.lastrowid)
        else:
            dry.summaries.add((sid, first_id, last_id, content))
    if part.mark is not None:
        result.marked = True
        if dry is None:
            _save_mark(conn, part.mark, now)
    result.changed = bool(result.added or result.replaced or result.summaries)
    return result


def _create(
    conn: sqlite3.Connection, part: _Part, bulk: _LazyBulk, now: str, dry: _DryState | None
) -> str:
    sid = part.session_id
    taken = conn.execute("SELECT source, source_id FROM sessions WHERE id = ?", (sid,)).fetchone()
    if taken is not None:
        raise StoreError(
            f"{part.label}: its id {sid} is already used by another session"
            f" ({taken[0] or 'threadline'} {taken[1] or ''})".rstrip()
        )
    head = part.head
    metadata = dict(part.metadata)
    if head["title"]:
        metadata[IMPORTED_TITLE] = head["title"]
    if dry is not None:
        dry.sessions[(part.batch.source, part.batch.source_id)] = (sid, head["title"], metadata)
        dry.keys[sid] = {}
        return sid
    pending = bulk.get()
    cur = conn.execute(
        "INSERT INTO sessions (id, working_dir, dir_tokens, title, model, system_prompt,"
        " created_at, updated_at, metadata, source, source_id, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sid,
            head["working_dir"],
            scopes.dir_tokens(head["working_dir"]),
            head["title"],
            head["model"],
            head["system_prompt"],
            head["created_at"],
            head["created_at"],
            dump_json(metadata, "metadata"),
            part.batch.source,
            part.batch.source_id,
            now,
        ),
    )
    assert cur.lastrowid is not None
    pending.added_rowid("sessions", cur.lastrowid)
    return sid


def _retitle(
    conn: sqlite3.Connection, part: _Part, found: _Found, bulk: _LazyBulk, dry: _DryState | None
) -> bool:
    """Give a present session the batch's title, unless the person has renamed it."""
    sid, title, metadata = found.id, found.title, found.metadata
    wanted = part.head["title"]
    if not wanted or wanted == title:
        return False
    if title is not None and title != metadata.get(IMPORTED_TITLE):
        return False  # renamed by the person: theirs stays
    metadata = {**metadata, IMPORTED_TITLE: wanted}
    found.title, found.metadata = wanted, metadata
    if dry is not None:
        dry.sessions[(part.batch.source, part.batch.source_id)] = (sid, wanted, metadata)
        return True
    bulk.before_change("sessions", found.rowid)
    conn.execute(
        "UPDATE sessions SET title = ?, metadata = ? WHERE id = ?",
        (wanted, dump_json(metadata, "metadata"), sid),
    )
    return True


def _fill(
    conn: sqlite3.Connection, part: _Part, found: _Found, bulk: _LazyBulk, dry: _DryState | None
) -> None:
    """Fill a present session's missing model and system prompt; merge its metadata."""
    if dry is not None:
        return
    sid, model, system_prompt = found.id, found.model, found.system_prompt
    current = found.metadata
    merged = {**current, **part.metadata}
    sets, values = [], []
    if merged != current:
        sets.append("metadata = ?")
        values.append(dump_json(merged, "metadata"))
    if model is None and part.head["model"]:
        sets.append("model = ?")
        values.append(part.head["model"])
    if system_prompt is None and part.head["system_prompt"]:
        sets.append("system_prompt = ?")
        values.append(part.head["system_prompt"])
    if sets:
        bulk.before_change("sessions", found.rowid)
        conn.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", (*values, sid))
        found.metadata = merged


def _present_keys(
    conn: sqlite3.Connection, sid: str, keys: list[str], dry: _DryState | None
) -> dict[str, tuple[int, int | None, bool]]:
    """key -> (message id, stored hash, whether the message still exists), for present keys."""
    present: dict[str, tuple[int, int | None, bool]] = {}
    if keys:
        for key, message_id, stored_hash, exists in conn.execute(
            "SELECT k.key, k.message_id, k.hash, EXISTS (SELECT 1 FROM messages AS m"
            " WHERE m.id = k.message_id AND m.session_id = k.session_id)"
            " FROM message_keys AS k WHERE k.session_id = ?"
            " AND k.key IN (SELECT value FROM json_each(?))",
            (sid, json.dumps(keys)),
        ):
            present[key] = (message_id, stored_hash, bool(exists))
    if dry is not None:
        for key, (message_id, digest) in dry.keys.get(sid, {}).items():
            present[key] = (message_id, digest, True)
    return present


def _stored_hash(
    conn: sqlite3.Connection, message_id: int, sid: str, key: str, dry: _DryState | None
) -> int:
    """The hash of a stored message (computed once, then kept with its key)."""
    row = conn.execute(
        f"SELECT {', '.join(_VALUE_COLS)} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    digest = row_hash(tuple(row))
    if dry is None:
        conn.execute(
            "UPDATE message_keys SET hash = ? WHERE session_id = ? AND key = ?",
            (digest, sid, key),
        )
    return digest


def _insert(
    conn: sqlite3.Connection,
    sid: str,
    new: list[_Msg],
    ids: dict[str, int],
    bulk: _LazyBulk,
    dry: _DryState | None,
) -> None:
    if dry is not None:
        keys = dry.keys.setdefault(sid, {})
        for msg in new:
            ids[msg.key] = dry.next_id
            keys[msg.key] = (dry.next_id, msg.hash)
            dry.next_id -= 1
        return
    pending = bulk.get()  # before the inserts: the triggers it takes over must not fire
    conn.executemany(_INSERT_MESSAGE, [(sid, *msg.values) for msg in new])
    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    first = last - len(new) + 1
    # AUTOINCREMENT hands out consecutive ids inside one transaction; check it all the same.
    counted = conn.execute(
        "SELECT count(*) FROM messages WHERE id BETWEEN ? AND ? AND session_id = ?",
        (first, last, sid),
    ).fetchone()[0]
    if counted != len(new):  # pragma: no cover - a trigger inserting messages would do this
        raise StoreError("messages were not given consecutive ids; nothing was imported")
    pending.added("messages", first, last)
    for offset, msg in enumerate(new):
        ids[msg.key] = first + offset
    conn.executemany(
        "INSERT INTO message_keys (session_id, key, message_id, hash) VALUES (?, ?, ?, ?)",
        [(sid, msg.key, first + offset, msg.hash) for offset, msg in enumerate(new)],
    )


def _key_id(conn: sqlite3.Connection, sid: str, key: str, dry: _DryState | None) -> int | None:
    if dry is not None and key in dry.keys.get(sid, {}):
        return dry.keys[sid][key][0]
    row = conn.execute(
        "SELECT message_id FROM message_keys WHERE session_id = ? AND key = ?", (sid, key)
    ).fetchone()
    return None if row is None else int(row[0])


def _has_summary(
    conn: sqlite3.Connection, sid: str, first: int, last: int, content: str, dry: _DryState | None
) -> bool:
    if dry is not None and (sid, first, last, content) in dry.summaries:
        return True
    return (
        conn.execute(
            "SELECT 1 FROM summaries WHERE session_id = ? AND first_message_id = ?"
            " AND last_message_id = ? AND content = ?",
            (sid, first, last, content),
        ).fetchone()
        is not None
    )


# ---------------------------------------------------------------------------- the pipe


class _End:
    """The batches are exhausted (or the reader raised `error`)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Refused:
    """A batch that failed its checks."""

    def __init__(self, batch: Any, error: StoreError) -> None:
        self.batch = batch
        self.error = error


class _Pipe:
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
                    if not isinstance(item, _Part):
                        break
                self.cond.notify_all()
                if not isinstance(taken[-1], _Part) or used >= budget * FILL_SHARE:
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
                cost = item.cost if isinstance(item, _Part) else 0
                self.items.appendleft((item, cost))
                self.bytes += cost
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.items.clear()
            self.bytes = 0
            self.cond.notify_all()


def _produce(batches: Iterable[IncomingSession], pipe: _Pipe) -> None:
    """The reading thread: iterate the batches, prepare each, hand the parts to the writer."""
    error: BaseException | None = None
    try:
        iterator: Iterator[IncomingSession] = iter(batches)
        index = 0
        for batch in iterator:
            try:
                parts: list[Any] = prepare(batch, index)
            except StoreError as exc:
                parts = [_Refused(batch, exc)]
            index += 1
            for part in parts:
                if not pipe.put(part, part.cost if isinstance(part, _Part) else 0):
                    return
    except BaseException as exc:  # the reader's error ends the load once what came before is in
        error = exc
    pipe.put(_End(error), 0)


# ---------------------------------------------------------------------------- the load


class _Tally:
    """Per-session outcomes across the whole load (a session may come in several parts)."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        self.before: dict[str, bool] = {}  # session id -> it existed before this load
        self.changed: set[str] = set()

    def add(self, results: list[_Result]) -> None:
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
    dry = _DryState() if dry_run else None
    pipe = _Pipe(PIPE_BYTES)
    reader = threading.Thread(
        target=_produce, args=(batches, pipe), name="threadline-load", daemon=True
    )
    reader.start()
    pacer = Pacer()
    pause = 0.0
    checkpointer = None
    autocheckpoint = None
    if not dry_run:
        autocheckpoint = await db.on_writer(pause_autocheckpoint, 0)
        checkpointer = Checkpointer(str(db.path))
    try:
        while True:
            items = await asyncio.to_thread(pipe.take, pacer.budget)
            parts = [item for item in items if isinstance(item, _Part)]
            if parts:
                held, left = await _write(db, clock, parts, dry, tally, on_error)
                if left:  # the transaction ran long: the rest goes in the next one
                    pipe.unget([*left, *items[len(parts) :]])
                    items = []
                pause = pacer.done(sum(p.cost for p in parts), held)
                if checkpointer is not None:
                    checkpointer.poke()
                if held > 0:
                    report.transactions += 1
                    report.locked_seconds += held
                    report.longest_lock_seconds = max(report.longest_lock_seconds, held)
                if progress is not None:
                    progress(report)
            for item in items:
                if isinstance(item, _Refused):
                    _refuse(report, item.batch, item.error, on_error)
            end = next((item for item in items if isinstance(item, _End)), None)
            if end is not None:
                if end.error is not None:
                    raise end.error
                break
            if parts and not dry_run:
                await asyncio.sleep(pause)  # the lock is free: other writers go now
    finally:
        pipe.cancel()
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
            await db.on_writer(pause_autocheckpoint, autocheckpoint)
        report.seconds = time.perf_counter() - started
    return report


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
    parts: list[_Part],
    dry: _DryState | None,
    tally: _Tally,
    on_error: Callable[[IncomingSession, StoreError], None] | None,
) -> tuple[float, list[_Part]]:
    """Write parts in one transaction (one at a time if one fails).

    Returns the time the write lock was held and the parts left for the next transaction
    (a transaction stops taking parts once it has held the lock a while: see CUTOFF).
    """

    async def once(group: list[_Part]) -> tuple[float, int]:
        locked: list[float] = []

        def run(conn: sqlite3.Connection) -> list[_Result]:
            locked.append(time.perf_counter())  # BEGIN IMMEDIATE has the write lock
            return write_parts(conn, group, fmt_ts(clock()), dry, locked[-1] + CUTOFF)

        results = await (db.read(run) if dry is not None else db.write(run))
        tally.add(results)
        return time.perf_counter() - locked[-1], len(results)  # up to the end of COMMIT

    try:
        held, done = await once(parts)
        return held, parts[done:]
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
        except StoreError as exc:
            _refuse(tally.report, part.batch, _named(part, exc), on_error)
    return total, []


def _named(part: _Part, exc: StoreError) -> StoreError:
    text = str(exc)
    if part.label in text:
        return exc
    return StoreError(f"{part.label}: {text}")
