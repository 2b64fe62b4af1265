"""Lossless export and bulk import of history: the threadline export format, version 1.

JSONL (`threadline export --all --format jsonl`): one JSON object per line, streamed::

    {"type": "header", "format": "threadline", "version": 1}
    {"type": "session", ...every session column...}
    {"type": "message", ...}    that session's messages, in id order
    {"type": "summary", ...}    that session's summaries
    ...                         the next session, and so on
    {"type": "memory", ...}     memories, after every session

JSON (`threadline export ID --format json`): one document for one session::

    {"format": "threadline", "version": 1, "session": {...}, "messages": [...],
     "summaries": [...], "memories": [...]}

Every column is kept (payloads as JSON, message ids, summaries' message-id ranges, memories'
source and supersede links), except two a database derives for itself: `dir_tokens` (search
scope tokens, recomputed) and `heartbeat_at` (a live writer's pulse; a reply that was streaming
is exported as it stood, with the session's effective status). The memory-extraction queue is
work in progress, not history, and is not exported.

Import is one transaction per file: a malformed line anywhere imports nothing. Sessions are
keyed by their UUID: one that already exists is skipped (and reported), so importing the same
file twice adds nothing. Message, summary and memory ids are kept when no row holds them (so
export -> import into an empty database -> export is byte-identical); a session whose message
ids are taken gets new ids above every existing one, shifted by one offset so their order, its
summaries' ranges and its memories' sources stay consistent.

Cost: the file is read, validated and staged in temporary tables first, with no lock held, so
a malformed file never locks the database. Then one write transaction loads it: the per-row
triggers (session counters, full-text index) are dropped for the load and re-created from their
exact text before COMMIT, the rows are inserted in id order in bulk, and the full-text index is
filled in id-range batches. Other writers wait (retrying) for that transaction; indexing the
text is most of its time. See the comment above BULK_TRIGGERS.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from threadline.store import scope as scopes
from threadline.store.connection import run_transaction
from threadline.store.errors import NotFoundError, StoreError
from threadline.store.util import fmt_ts

FORMAT = "threadline"
VERSION = 1

# How many rows go to SQLite in one executemany, and how often progress is reported.
BATCH = 2000

Progress = Callable[[int, int], None]
# phase ("reading" the file: bytes of total, or "writing" messages: done of total), done, total
ImportProgress = Callable[[str, int, int | None], None]

# ---------------------------------------------------------------------------- the format

_CANONICAL_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
# The store's own form passes as text (fast, byte-exact); any other ISO-8601 time with a zone
# is parsed and rewritten in that form.
Timestamp = Annotated[str, StringConstraints(pattern=_CANONICAL_TS)] | AwareDatetime
SessionId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
RowId = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderRecord(_Record):
    """The first line of a JSONL export."""

    type: Literal["header"]
    format: Literal["threadline"]
    version: int


class SessionRecord(_Record):
    """A session row. Counters are recomputed from the messages on import."""

    type: Literal["session"] = "session"
    id: SessionId
    working_dir: Annotated[str, StringConstraints(min_length=1)]
    title: str | None = None
    preview: str | None = None
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    status: Literal["active", "completed", "crashed"] = "active"
    pinned: bool = False
    deleted_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp
    ended_at: Timestamp | None = None
    message_count: Count = 0
    total_input_tokens: Count = 0
    total_output_tokens: Count = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class MessageRecord(_Record):
    type: Literal["message"] = "message"
    id: RowId
    session_id: SessionId
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    payload: Any = None
    created_at: Timestamp
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    stop_reason: str | None = None
    response_ms: int | None = None
    complete: bool = True


class SummaryRecord(_Record):
    type: Literal["summary"] = "summary"
    id: RowId
    session_id: SessionId
    content: str
    first_message_id: RowId
    last_message_id: RowId
    token_count: int | None = None
    model: str | None = None
    created_at: Timestamp

    @model_validator(mode="after")
    def _range(self) -> SummaryRecord:
        if self.last_message_id < self.first_message_id:
            raise ValueError("last_message_id comes before first_message_id")
        return self


class MemoryRecord(_Record):
    type: Literal["memory"] = "memory"
    id: RowId
    working_dir: Annotated[str, StringConstraints(min_length=1)]
    session_id: SessionId | None = None
    source_message_id: RowId | None = None
    fact: Annotated[str, StringConstraints(min_length=1)]
    category: Literal["preference", "fact", "decision", "context", "correction"]
    importance: Annotated[int, Field(ge=1, le=5)]
    superseded_by: RowId | None = None
    is_manual: bool = False
    created_at: Timestamp


Record = Annotated[
    HeaderRecord | SessionRecord | MessageRecord | SummaryRecord | MemoryRecord,
    Field(discriminator="type"),
]


class SessionDocument(BaseModel):
    """`export ID --format json`: one session with everything that belongs to it."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["threadline"]
    version: int
    session: SessionRecord
    messages: list[MessageRecord] = Field(default_factory=list)
    summaries: list[SummaryRecord] = Field(default_factory=list)
    memories: list[MemoryRecord] = Field(default_factory=list)


_RECORD: TypeAdapter[Any] = TypeAdapter(Record)


class ExportStats(BaseModel):
    """What an export wrote."""

    sessions: int = 0
    messages: int = 0
    summaries: int = 0
    memories: int = 0


class ImportTimings(BaseModel):
    """Where an import's time went, in seconds."""

    read_seconds: float = 0.0  # reading, validating and staging the file (no lock held)
    wait_seconds: float = 0.0  # waiting for other writers to finish
    load_seconds: float = 0.0  # inserting the rows (write lock held)
    index_seconds: float = 0.0  # full-text indexing them (write lock held)
    commit_seconds: float = 0.0  # making it durable (write lock held)
    locked_seconds: float = 0.0  # how long other writers were kept waiting
    total_seconds: float = 0.0


class ImportResult(BaseModel):
    """What an import added, and the sessions it skipped because they already existed."""

    sessions: int = 0
    messages: int = 0
    summaries: int = 0
    memories: int = 0
    skipped_sessions: list[str] = Field(default_factory=list)
    skipped_memories: int = 0
    renumbered_sessions: list[str] = Field(default_factory=list)
    timings: ImportTimings = Field(default_factory=ImportTimings)


class ImportFormatError(StoreError):
    """The file is not a valid threadline export (nothing was imported)."""


# ---------------------------------------------------------------------------- export

SESSION_COLS = (
    "id, working_dir, title, preview, provider, model, system_prompt, {status}, pinned,"
    " deleted_at, created_at, updated_at, ended_at, message_count, total_input_tokens,"
    " total_output_tokens, metadata"
)
_SESSION_KEYS = [
    "id",
    "working_dir",
    "title",
    "preview",
    "provider",
    "model",
    "system_prompt",
    "status",
    "pinned",
    "deleted_at",
    "created_at",
    "updated_at",
    "ended_at",
    "message_count",
    "total_input_tokens",
    "total_output_tokens",
    "metadata",
]
MESSAGE_COLS = (
    "id, session_id, role, content, payload, created_at, input_tokens, output_tokens, model,"
    " stop_reason, response_ms, complete"
)
_MESSAGE_KEYS = [c.strip() for c in MESSAGE_COLS.split(",")]
SUMMARY_COLS = (
    "id, session_id, content, first_message_id, last_message_id, token_count, model, created_at"
)
_SUMMARY_KEYS = [c.strip() for c in SUMMARY_COLS.split(",")]
MEMORY_COLS = (
    "id, working_dir, session_id, source_message_id, fact, category, importance, superseded_by,"
    " is_manual, created_at"
)
_MEMORY_KEYS = [c.strip() for c in MEMORY_COLS.split(",")]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_C1_OR_DEL = re.compile(r"[\x7f-\x9f]")


def _escape_c1(text: str) -> str:
    # json escapes C0 controls; DEL and C1 are escaped too, so an export printed to a terminal
    # is harmless. Same meaning, so import -> export stays byte-identical.
    if text.isascii():  # a C-speed scan: most lines hold no DEL/C1 to look for
        if "\x7f" not in text:
            return text
    elif _C1_OR_DEL.search(text) is None:
        return text
    return _C1_OR_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _session_dict(row: Sequence[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "session"}
    data.update(zip(_SESSION_KEYS, row, strict=True))
    data["pinned"] = bool(data["pinned"])
    data["metadata"] = json.loads(data["metadata"]) if data["metadata"] else {}
    return data


def _message_dict(row: Sequence[Any]) -> dict[str, Any]:
    (mid, sid, role, content, payload, created, i_tok, o_tok, model, stop, ms, complete) = row
    return {
        "type": "message",
        "id": mid,
        "session_id": sid,
        "role": role,
        "content": content,
        "payload": None if payload is None else json.loads(payload),
        "created_at": created,
        "input_tokens": i_tok,
        "output_tokens": o_tok,
        "model": model,
        "stop_reason": stop,
        "response_ms": ms,
        "complete": bool(complete),
    }


def _summary_dict(row: Sequence[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "summary"}
    data.update(zip(_SUMMARY_KEYS, row, strict=True))
    return data


def _memory_dict(row: Sequence[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "memory"}
    data.update(zip(_MEMORY_KEYS, row, strict=True))
    data["is_manual"] = bool(data["is_manual"])
    return data


def _line(data: dict[str, Any]) -> str:
    return _escape_c1(_encoder.encode(data)) + "\n"


# A session whose reply writer stopped checkpointing is exported as crashed (as it is shown).
_STALE_STATUS = (
    "CASE WHEN heartbeat_at IS NOT NULL AND heartbeat_at < ? THEN 'crashed' ELSE status END"
)


def _session_select(now_stale: str) -> tuple[str, list[Any]]:
    return f"SELECT {SESSION_COLS.format(status=_STALE_STATUS)} FROM sessions", [now_stale]


def _json_object(kind: str, fields: list[tuple[str, str]]) -> str:
    """A SQL json_object(...) expression: SQLite builds each JSONL line in C (fast)."""
    pairs = ", ".join(f"'{key}', {expr}" for key, expr in fields)
    return f"json_object('type', '{kind}', {pairs})"


def _bool(column: str) -> str:
    return f"json(CASE WHEN {column} THEN 'true' ELSE 'false' END)"


_SESSION_JSON = _json_object(
    "session",
    [(k, k) for k in _SESSION_KEYS[:7]]
    + [
        ("status", _STALE_STATUS),
        ("pinned", _bool("pinned")),
    ]
    + [(k, k) for k in _SESSION_KEYS[9:16]]
    + [("metadata", "json(metadata)")],
)
_MESSAGE_JSON = _json_object(
    "message",
    [(k, k) for k in _MESSAGE_KEYS[:4]]
    + [("payload", "json(payload)")]
    + [(k, k) for k in _MESSAGE_KEYS[5:11]]
    + [("complete", _bool("complete"))],
)
_SUMMARY_JSON = _json_object("summary", [(k, k) for k in _SUMMARY_KEYS])
_MEMORY_JSON = _json_object(
    "memory",
    [(k, k) for k in _MEMORY_KEYS[:8]]
    + [("is_manual", _bool("is_manual"))]
    + [("created_at", "created_at")],
)


def export_jsonl(
    conn: sqlite3.Connection,
    out: IO[str],
    stale_before: str,
    session_ids: list[str] | None,
    progress: Progress | None,
) -> ExportStats:
    """Write sessions (all of them, trash included, when session_ids is None) as JSONL.

    Runs in one read transaction, so the file is a consistent snapshot; rows stream from
    SQLite to `out` in order, never all in memory.
    """
    stats = ExportStats()
    write = out.write
    write(_line({"type": "header", "format": FORMAT, "version": VERSION}))
    sessions_sql = f"SELECT id, {_SESSION_JSON} FROM sessions"
    messages_sql = f"SELECT session_id, {_MESSAGE_JSON} FROM messages"
    summaries_sql = f"SELECT session_id, {_SUMMARY_JSON} FROM summaries"
    if session_ids is None:
        total = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        sessions: Iterator[Sequence[Any]] = conn.execute(
            f"{sessions_sql} ORDER BY id", (stale_before,)
        )
        messages = _peekable(conn.execute(f"{messages_sql} ORDER BY session_id, id"))
        summaries = _peekable(conn.execute(f"{summaries_sql} ORDER BY session_id, id"))
    else:
        wanted = sorted(set(session_ids))
        total = 0
        for sid in wanted:
            total += int(
                conn.execute(
                    "SELECT count(*) FROM messages WHERE session_id = ?", (sid,)
                ).fetchone()[0]
            )
        sessions = _rows_for(conn, f"{sessions_sql} WHERE id = ?", [stale_before], wanted)
        messages = _peekable(
            _rows_for(conn, f"{messages_sql} WHERE session_id = ? ORDER BY id", [], wanted)
        )
        summaries = _peekable(
            _rows_for(conn, f"{summaries_sql} WHERE session_id = ? ORDER BY id", [], wanted)
        )
    if progress:
        progress(0, total)
    next_report = BATCH
    escape = _escape_c1
    # Plain counters in the loop (a pydantic attribute write per row costs more than the row).
    n_sessions = n_messages = n_summaries = 0
    for sid, line in sessions:
        write(escape(line))
        write("\n")
        n_sessions += 1
        for row in _rows_of(messages, sid):
            write(escape(row[1]))
            write("\n")
            n_messages += 1
            if progress and n_messages >= next_report:
                progress(n_messages, total)
                next_report += BATCH
        for row in _rows_of(summaries, sid):
            write(escape(row[1]))
            write("\n")
            n_summaries += 1
    stats.sessions, stats.messages, stats.summaries = n_sessions, n_messages, n_summaries
    memories_sql = f"SELECT id, {_MEMORY_JSON} FROM memories"
    if session_ids is None:
        memories: Iterator[Sequence[Any]] = conn.execute(f"{memories_sql} ORDER BY id")
    else:
        marks = ",".join("?" * len(session_ids))
        memories = conn.execute(
            f"{memories_sql} WHERE session_id IN ({marks}) ORDER BY id", sorted(set(session_ids))
        )
    for row in memories:
        write(escape(row[1]))
        write("\n")
        stats.memories += 1
    if progress:
        progress(stats.messages, total)
    return stats


def _rows_for(
    conn: sqlite3.Connection, sql: str, params: list[Any], ids: list[str]
) -> Iterator[Sequence[Any]]:
    for sid in ids:
        yield from conn.execute(sql, (*params, sid))


def _rows_of(rows: _peekable, session_id: str) -> Iterator[Sequence[Any]]:
    """The rows of `session_id` from a cursor ordered by session id (column 0).

    Rows of a session id that sorts before it (none can exist in one snapshot) are skipped,
    so nothing is ever written under the wrong session.
    """
    while True:
        row = rows.peek()
        if row is None or row[0] > session_id:
            return
        next(rows)
        if row[0] == session_id:
            yield row


class _peekable:
    """An iterator with one row of look-ahead."""

    def __init__(self, it: Iterator[Sequence[Any]]) -> None:
        self._it = it
        self._next: Sequence[Any] | None = next(it, None)

    def peek(self) -> Sequence[Any] | None:
        return self._next

    def __iter__(self) -> _peekable:
        return self

    def __next__(self) -> Sequence[Any]:
        if self._next is None:
            raise StopIteration
        value = self._next
        self._next = next(self._it, None)
        return value


def export_document(conn: sqlite3.Connection, stale_before: str, session_id: str) -> str:
    """One session as the JSON document (pretty-printed, stable key order)."""
    select, params = _session_select(stale_before)
    row = conn.execute(f"{select} WHERE id = ?", (*params, session_id)).fetchone()
    if row is None:
        raise NotFoundError(f"no session with id {session_id}")
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    session = _session_dict(row)
    del session["type"]
    doc["session"] = session
    doc["messages"] = [
        _without_type(_message_dict(r))
        for r in conn.execute(
            f"SELECT {MESSAGE_COLS} FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
        )
    ]
    doc["summaries"] = [
        _without_type(_summary_dict(r))
        for r in conn.execute(
            f"SELECT {SUMMARY_COLS} FROM summaries WHERE session_id = ? ORDER BY id", (session_id,)
        )
    ]
    doc["memories"] = [
        _without_type(_memory_dict(r))
        for r in conn.execute(
            f"SELECT {MEMORY_COLS} FROM memories WHERE session_id = ? ORDER BY id", (session_id,)
        )
    ]
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    return _escape_c1(text) + "\n"


def _without_type(data: dict[str, Any]) -> dict[str, Any]:
    del data["type"]
    return data


# ---------------------------------------------------------------------------- import


@dataclass
class _Bundle:
    """One session with its messages and summaries, as read from the file."""

    session: SessionRecord
    line: int
    messages: list[MessageRecord] = field(default_factory=list)
    summaries: list[SummaryRecord] = field(default_factory=list)


def _ts(value: Any) -> Any:
    """A validated Timestamp (or None) as stored text."""
    if value is None or isinstance(value, str):
        return value
    return fmt_ts(value)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
    # Drop the union-branch noise pydantic adds (`session.created_at.str`).
    loc = re.sub(r"\.(str|constrained-str|datetime|function-after\[.*?\])$", "", loc)
    where = f"{loc}: " if loc else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}{first['msg']}{more}"


class _Reader:
    """Reads records from a JSONL export or a JSON document, with line numbers for errors."""

    def __init__(self, source: IO[bytes], name: str):
        self.source = source
        self.name = name
        self.bytes_read = 0
        self.total: int | None = None
        try:
            info = os.fstat(source.fileno())
            if stat.S_ISREG(info.st_mode):
                self.total = info.st_size
        except (OSError, AttributeError, ValueError):  # a pipe, or an in-memory stream
            pass

    def fail(self, where: str, problem: str) -> ImportFormatError:
        return ImportFormatError(
            f"{self.name}: {where}: {problem}; nothing was imported"
            if where
            else f"{self.name}: {problem}; nothing was imported"
        )

    def records(self) -> Iterator[tuple[int, Any]]:
        first = self.source.readline()
        self.bytes_read += len(first)
        while first and not first.strip():
            first = self.source.readline()
            self.bytes_read += len(first)
        if not first:
            raise self.fail("", "the file is empty, not a threadline export")
        header: Any = None
        try:
            header = json.loads(first)
        except (ValueError, UnicodeDecodeError):
            header = None
        if isinstance(header, dict) and header.get("type") == "header":
            yield from self._jsonl(first)
        elif isinstance(header, dict) and "type" in header:
            raise self.fail("line 1", "the first line must be the threadline export header")
        else:
            yield from self._document(first)

    def _check_version(self, where: str, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise self.fail(where, f"not a threadline export (format {data.get('format')!r})")
        version = data.get("version")
        if version != VERSION:
            raise self.fail(
                where,
                f"export format version {version!r} is not supported (this threadline reads "
                f"version {VERSION})",
            )

    def _jsonl(self, first: bytes) -> Iterator[tuple[int, Any]]:
        header = json.loads(first)
        self._check_version("line 1", header)
        try:
            HeaderRecord.model_validate(header)
        except ValidationError as exc:
            raise self.fail("line 1", _describe(exc)) from None
        validate = _RECORD.validate_json
        number = 1
        for raw in self.source:
            number += 1
            self.bytes_read += len(raw)
            if not raw.strip():
                continue
            try:
                record = validate(raw)
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    raise self.fail(f"line {number}", "not valid JSON") from None
                raise self.fail(f"line {number}", _describe(exc)) from None
            if isinstance(record, HeaderRecord):
                raise self.fail(f"line {number}", "a second header")
            yield number, record

    def _document(self, first: bytes) -> Iterator[tuple[int, Any]]:
        raw = first + self.source.read()
        self.bytes_read = len(raw)
        try:
            data = json.loads(raw)
        except UnicodeDecodeError:
            raise self.fail("", "not UTF-8 text") from None
        except ValueError as exc:
            raise self.fail("", f"not valid JSON or JSONL ({exc})") from None
        if not isinstance(data, dict):
            raise self.fail("", "not a threadline export (expected a JSON object)")
        self._check_version("", data)
        try:
            doc = SessionDocument.model_validate(data)
        except ValidationError as exc:
            raise self.fail("", _describe(exc)) from None
        yield 1, doc.session
        for item in (*doc.messages, *doc.summaries, *doc.memories):
            yield 1, item


# The import runs in two steps on the writer connection.
#
# 1. Staging, with no lock on the database: the file is read and validated to the end and its
#    rows go into temporary tables (the connection's temp database, a private file SQLite
#    deletes itself, even if the process is killed). A malformed file fails here, having never
#    locked the database; other processes write freely meanwhile.
# 2. One write transaction (BEGIN IMMEDIATE): everything that depends on what the database
#    holds is decided (sessions already present are skipped, message ids already taken are
#    renumbered), then the rows are bulk-loaded and indexed. The per-row triggers (session
#    counters, full-text index) are dropped for the load and re-created, from the exact text
#    SQLite holds for them, before COMMIT; DDL is transactional, so no other connection ever
#    sees the schema without them, and a crash anywhere before COMMIT leaves nothing behind.
#    Counters come from the staged rows; the FTS index is filled with INSERT ... SELECT in id
#    order, in batches (progress), with a larger in-memory FTS buffer while it runs.

# The triggers whose per-row work the import does in bulk instead.
BULK_TRIGGERS = ("messages_count_ai", "messages_fts_ai", "summaries_fts_ai")

_STAGE_SESSIONS = "temp.threadline_import_sessions"
_STAGE_MESSAGES = "temp.threadline_import_messages"
_STAGE_SUMMARIES = "temp.threadline_import_summaries"
_STAGE_DDL = (
    f"CREATE TABLE {_STAGE_SESSIONS} (ord INTEGER PRIMARY KEY, id TEXT NOT NULL,"
    " working_dir TEXT, dir_tokens TEXT, title TEXT, preview TEXT, provider TEXT, model TEXT,"
    " system_prompt TEXT, status TEXT, pinned INTEGER, deleted_at TEXT, created_at TEXT,"
    " updated_at TEXT, ended_at TEXT, message_count INTEGER, total_input_tokens INTEGER,"
    " total_output_tokens INTEGER, metadata TEXT,"
    # the session's message and summary id ranges (after `file_shift`), for range seeks
    " msg_lo INTEGER, msg_hi INTEGER, sum_lo INTEGER, sum_hi INTEGER,"
    # how far its message ids moved: within the file (ids another session of the file holds)
    # and against the database (ids already taken there)
    " file_shift INTEGER NOT NULL DEFAULT 0, db_shift INTEGER NOT NULL DEFAULT 0,"
    " skip INTEGER NOT NULL DEFAULT 0)",
    f"CREATE TABLE {_STAGE_MESSAGES} (id INTEGER PRIMARY KEY, sess INTEGER NOT NULL,"
    " session_id TEXT, role TEXT, content TEXT, payload TEXT, created_at TEXT,"
    " input_tokens INTEGER, output_tokens INTEGER, model TEXT, stop_reason TEXT,"
    " response_ms INTEGER, complete INTEGER)",
    f"CREATE TABLE {_STAGE_SUMMARIES} (id INTEGER PRIMARY KEY, sess INTEGER NOT NULL,"
    " session_id TEXT, content TEXT, first_message_id INTEGER, last_message_id INTEGER,"
    " token_count INTEGER, model TEXT, created_at TEXT)",
)
_MESSAGE_INSERT_COLS = (
    "id, session_id, role, content, payload, created_at, input_tokens, output_tokens, model,"
    " stop_reason, response_ms, complete"
)
_SUMMARY_INSERT_COLS = (
    "id, session_id, content, first_message_id, last_message_id, token_count, model, created_at"
)
_SESSION_INSERT_COLS = (
    "id, working_dir, dir_tokens, title, preview, provider, model, system_prompt, status,"
    " pinned, deleted_at, created_at, updated_at, ended_at, message_count, total_input_tokens,"
    " total_output_tokens, metadata"
)
# Rows per INSERT ... SELECT while loading and indexing: one progress report each.
WRITE_CHUNK = 20_000
# FTS5 keeps new index entries in memory and writes a segment each time this many bytes are
# pending (default 1 MiB). A larger buffer writes fewer, larger segments, so less merging:
# measured here about 1.6x faster indexing (and a smaller index). Restored before COMMIT.
FTS_HASHSIZE = 64 * 1024 * 1024
# Page caches (KiB) while the import runs: loading updates the messages index at scattered
# places, and the staged file is read back in id order. Restored afterwards.
IMPORT_CACHE_KIB = 256 * 1024
IMPORT_TEMP_CACHE_KIB = 256 * 1024


@dataclass
class _Staged:
    """What step 1 learnt about the file (the rows themselves are in the temp tables)."""

    sessions: int = 0
    messages: int = 0
    memories: list[tuple[int, MemoryRecord]] = field(default_factory=list)
    session_ids: set[str] = field(default_factory=set)


class _Stager:
    """Step 1: read and validate the whole file into the temp tables (no lock on the database)."""

    def __init__(self, conn: sqlite3.Connection, reader: _Reader, progress: ImportProgress | None):
        self.conn = conn
        self.reader = reader
        self.on_progress = progress
        self.staged = _Staged()
        self.next_report = 0
        self.dir_tokens: dict[str, str] = {}  # a directory's scope tokens, computed once

    def run(self) -> _Staged:
        bundle: _Bundle | None = None
        for number, record in self.reader.records():
            if isinstance(record, MessageRecord):
                if bundle is None or record.session_id != bundle.session.id:
                    raise self._orphan(number, record)
                bundle.messages.append(record)
            elif isinstance(record, SessionRecord):
                if bundle is not None:
                    self._stage(bundle)
                if record.id in self.staged.session_ids:
                    raise self.reader.fail(f"line {number}", f"session {record.id} appears twice")
                self.staged.session_ids.add(record.id)
                bundle = _Bundle(record, number)
            elif isinstance(record, SummaryRecord):
                if bundle is None or record.session_id != bundle.session.id:
                    raise self._orphan(number, record)
                bundle.summaries.append(record)
            elif isinstance(record, MemoryRecord):
                self.staged.memories.append((number, record))
        if bundle is not None:
            self._stage(bundle)
        self._check_memories()
        if self.on_progress:
            self.on_progress("reading", self.reader.bytes_read, self.reader.total)
        return self.staged

    def _orphan(self, number: int, record: MessageRecord | SummaryRecord) -> ImportFormatError:
        return self.reader.fail(
            f"line {number}",
            f"{record.type} {record.id} does not follow its session {record.session_id}",
        )

    def _shift_for(self, table: str, ids: list[int]) -> int:
        """0, or how far to move `ids` so none collides with an id staged for another session."""
        if not ids:
            return 0
        low, high = min(ids), max(ids)
        conn = self.conn
        hit = conn.execute(
            f"SELECT 1 FROM {table} WHERE id BETWEEN ? AND ? LIMIT 1", (low, high)
        ).fetchone()
        if hit is None or not _taken(conn, [table], ids):
            return 0
        top = conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
        return int(top) + 1 - low

    def _stage(self, bundle: _Bundle) -> None:
        conn = self.conn
        s = bundle.session
        message_ids = [m.id for m in bundle.messages]
        if len(set(message_ids)) != len(message_ids):
            raise self.reader.fail(f"session {s.id}", "a message id appears twice")
        summary_ids = [x.id for x in bundle.summaries]
        if len(set(summary_ids)) != len(summary_ids):
            raise self.reader.fail(f"session {s.id}", "a summary id appears twice")
        shift = self._shift_for(_STAGE_MESSAGES, message_ids)
        summary_shift = self._shift_for(_STAGE_SUMMARIES, summary_ids)
        self.staged.sessions += 1
        ordinal = self.staged.sessions
        dump = _encoder.encode
        tokens = self.dir_tokens.get(s.working_dir)
        if tokens is None:
            tokens = self.dir_tokens[s.working_dir] = scopes.dir_tokens(s.working_dir)
        input_tokens = output_tokens = 0
        rows = []
        for m in bundle.messages:
            input_tokens += m.input_tokens or 0
            output_tokens += m.output_tokens or 0
            rows.append(
                (
                    ordinal,
                    m.id + shift,
                    s.id,
                    m.role,
                    m.content,
                    None if m.payload is None else dump(m.payload),
                    _ts(m.created_at),
                    m.input_tokens,
                    m.output_tokens,
                    m.model,
                    m.stop_reason,
                    m.response_ms,
                    int(m.complete),
                )
            )
        conn.executemany(
            f"INSERT INTO {_STAGE_MESSAGES} (sess, {_MESSAGE_INSERT_COLS})"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.executemany(
            f"INSERT INTO {_STAGE_SUMMARIES} (sess, {_SUMMARY_INSERT_COLS})"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    ordinal,
                    x.id + summary_shift,
                    s.id,
                    x.content,
                    x.first_message_id + shift,
                    x.last_message_id + shift,
                    x.token_count,
                    x.model,
                    _ts(x.created_at),
                )
                for x in bundle.summaries
            ],
        )
        conn.execute(
            f"INSERT INTO {_STAGE_SESSIONS} (ord, {_SESSION_INSERT_COLS}, msg_lo, msg_hi, sum_lo,"
            " sum_hi, file_shift) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ordinal,
                s.id,
                s.working_dir,
                tokens,
                s.title,
                s.preview,
                s.provider,
                s.model,
                s.system_prompt,
                s.status,
                int(s.pinned),
                _ts(s.deleted_at),
                _ts(s.created_at),
                _ts(s.updated_at),
                _ts(s.ended_at),
                len(rows),
                input_tokens,
                output_tokens,
                json.dumps(s.metadata, ensure_ascii=False, separators=(",", ":")),
                min(message_ids) + shift if message_ids else None,
                max(message_ids) + shift if message_ids else None,
                min(summary_ids) + summary_shift if summary_ids else None,
                max(summary_ids) + summary_shift if summary_ids else None,
                shift,
            ),
        )
        self.staged.messages += len(rows)
        if self.on_progress and self.staged.messages >= self.next_report:
            self.next_report = self.staged.messages + BATCH
            self.on_progress("reading", self.reader.bytes_read, self.reader.total)

    def _check_memories(self) -> None:
        seen: set[int] = set()
        for number, m in self.staged.memories:
            if m.id in seen:
                raise self.reader.fail(f"line {number}", f"memory {m.id} appears twice")
            seen.add(m.id)
            if m.session_id is not None and m.session_id not in self.staged.session_ids:
                raise self.reader.fail(
                    f"line {number}",
                    f"memory {m.id} refers to session {m.session_id}, which is not in the file",
                )


def _taken(conn: sqlite3.Connection, tables: Sequence[str], ids: list[int]) -> bool:
    """Whether any of `ids` is already used in one of `tables`."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for table in tables:
            sql = f"SELECT 1 FROM {table} WHERE id IN ({marks}) LIMIT 1"
            if conn.execute(sql, chunk).fetchone():
                return True
    return False


def _next_free(conn: sqlite3.Connection, table: str, staged: str | None = None) -> int:
    """An id above every id `table` holds or ever handed out (AUTOINCREMENT's sequence)."""
    top = int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if staged:
        top = max(
            top, int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {staged}").fetchone()[0])
        )
    return max(top, int(seq[0]) if seq else 0) + 1


def _schema(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master ORDER BY type, name"
    ).fetchall()


class _Loader:
    """Step 2, inside one write transaction: place, load and index the staged rows."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        staged: _Staged,
        name: str,
        progress: ImportProgress | None,
    ):
        self.conn = conn
        self.staged = staged
        self.name = name
        self.on_progress = progress
        self.result = ImportResult()
        self.imported: dict[str, int] = {}  # session id -> how far its message ids moved

    def run(self) -> ImportResult:
        conn = self.conn
        started = time.perf_counter()
        before = _schema(conn)
        triggers = dict(
            conn.execute(
                "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND name IN"
                f" ({','.join('?' * len(BULK_TRIGGERS))})",
                BULK_TRIGGERS,
            ).fetchall()
        )
        missing = [t for t in BULK_TRIGGERS if t not in triggers]
        if missing:  # a migration renamed them: loading without them would corrupt the index
            raise StoreError(f"import: trigger {missing[0]} is missing; nothing was imported")
        for trigger in BULK_TRIGGERS:
            conn.execute(f"DROP TRIGGER main.{trigger}")
        self._skip_present()
        self._renumber_messages()
        self._renumber_summaries()
        self._insert_sessions()
        self._load_messages()
        conn.execute(
            f"INSERT INTO main.summaries ({_SUMMARY_INSERT_COLS}) SELECT {_SUMMARY_INSERT_COLS}"
            f" FROM {_STAGE_SUMMARIES} ORDER BY id"
        )
        self.result.summaries = conn.execute("SELECT changes()").fetchone()[0]
        self._store_memories()
        loaded = time.perf_counter()
        self._index()
        for trigger in BULK_TRIGGERS:
            conn.execute(triggers[trigger])
        if _schema(conn) != before:
            raise StoreError("import: the schema changed while loading; nothing was imported")
        done = time.perf_counter()
        self.result.timings.load_seconds = round(loaded - started, 3)
        self.result.timings.index_seconds = round(done - loaded, 3)
        return self.result

    def _skip_present(self) -> None:
        """Sessions already in the database are skipped (matched by id), with their rows."""
        conn = self.conn
        conn.execute(
            f"UPDATE {_STAGE_SESSIONS} SET skip = 1 WHERE id IN (SELECT id FROM main.sessions)"
        )
        skipped = conn.execute(
            f"SELECT ord, id, msg_lo, msg_hi, sum_lo, sum_hi FROM {_STAGE_SESSIONS}"
            " WHERE skip ORDER BY ord"
        ).fetchall()
        self.result.skipped_sessions = [row[1] for row in skipped]
        if len(skipped) == self.staged.sessions:
            conn.execute(f"DELETE FROM {_STAGE_MESSAGES}")
            conn.execute(f"DELETE FROM {_STAGE_SUMMARIES}")
            return
        conn.executemany(
            f"DELETE FROM {_STAGE_MESSAGES} WHERE id BETWEEN ? AND ? AND sess = ?",
            [(lo, hi, ordinal) for ordinal, _, lo, hi, _, _ in skipped if lo is not None],
        )
        conn.executemany(
            f"DELETE FROM {_STAGE_SUMMARIES} WHERE id BETWEEN ? AND ? AND sess = ?",
            [(lo, hi, ordinal) for ordinal, _, _, _, lo, hi in skipped if lo is not None],
        )

    def _clashing(self, table: str, staged: str) -> list[int]:
        """Staged sessions (ordinals) holding an id that `table` already has."""
        conn = self.conn
        low, high = conn.execute(f"SELECT min(id), max(id) FROM {table}").fetchone()
        if low is None:
            return []
        first = conn.execute(
            f"SELECT id FROM {staged} WHERE id BETWEEN ? AND ? ORDER BY id LIMIT 1", (low, high)
        ).fetchone()
        if first is None:
            return []
        rows = conn.execute(
            f"SELECT DISTINCT st.sess FROM {staged} AS st WHERE st.id BETWEEN ? AND ?"
            f" AND EXISTS (SELECT 1 FROM {table} AS t WHERE t.id = st.id)",
            (low, high),
        ).fetchall()
        return sorted(row[0] for row in rows)

    def _renumber_messages(self) -> None:
        """A session holding a taken message id moves above every id, keeping its order."""
        conn = self.conn
        clashing = self._clashing("main.messages", _STAGE_MESSAGES)
        if not clashing:
            return
        base = _next_free(conn, "messages", _STAGE_MESSAGES)
        ranges = dict(
            (row[0], (row[1], row[2]))
            for row in conn.execute(
                f"SELECT ord, msg_lo, msg_hi FROM {_STAGE_SESSIONS} WHERE msg_lo IS NOT NULL"
            )
        )
        moves = []
        for ordinal in clashing:
            low, high = ranges[ordinal]
            moves.append((base - low, ordinal, low, high))
            base += high - low + 1
        # New ids are above every staged id, so no move ever lands on a row not yet moved.
        conn.executemany(
            f"UPDATE {_STAGE_MESSAGES} SET id = id + ?1 WHERE id BETWEEN ?3 AND ?4 AND sess = ?2",
            moves,
        )
        conn.executemany(
            f"UPDATE {_STAGE_SESSIONS} SET db_shift = ?1 WHERE ord = ?2",
            [move[:2] for move in moves],
        )
        conn.execute(
            f"UPDATE {_STAGE_SUMMARIES} AS x SET"
            " first_message_id = first_message_id + ss.db_shift,"
            " last_message_id = last_message_id + ss.db_shift"
            f" FROM {_STAGE_SESSIONS} AS ss WHERE ss.ord = x.sess AND ss.db_shift <> 0"
        )

    def _renumber_summaries(self) -> None:
        conn = self.conn
        clashing = self._clashing("main.summaries", _STAGE_SUMMARIES)
        if not clashing:
            return
        base = _next_free(conn, "summaries", _STAGE_SUMMARIES)
        ranges = dict(
            (row[0], (row[1], row[2]))
            for row in conn.execute(
                f"SELECT ord, sum_lo, sum_hi FROM {_STAGE_SESSIONS} WHERE sum_lo IS NOT NULL"
            )
        )
        moves = []
        for ordinal in clashing:
            low, high = ranges[ordinal]
            moves.append((base - low, ordinal, low, high))
            base += high - low + 1
        conn.executemany(
            f"UPDATE {_STAGE_SUMMARIES} SET id = id + ?1 WHERE id BETWEEN ?3 AND ?4 AND sess = ?2",
            moves,
        )

    def _insert_sessions(self) -> None:
        """Session rows with their counters, preview and last activity, in one statement."""
        conn = self.conn
        conn.execute(
            f"INSERT INTO main.sessions ({_SESSION_INSERT_COLS}) SELECT {_SESSION_INSERT_COLS}"
            f" FROM {_STAGE_SESSIONS} WHERE NOT skip ORDER BY ord"
        )
        self.result.sessions = conn.execute("SELECT changes()").fetchone()[0]
        for sid, file_shift, db_shift in conn.execute(
            f"SELECT id, file_shift, db_shift FROM {_STAGE_SESSIONS} WHERE NOT skip ORDER BY ord"
        ):
            self.imported[sid] = file_shift + db_shift
            if file_shift or db_shift:
                self.result.renumbered_sessions.append(sid)

    def _batches(self, table: str) -> Iterator[tuple[int, int]]:
        """(after, upto] id ranges of about WRITE_CHUNK staged rows, in id order."""
        last = 0
        while True:
            top = self.conn.execute(
                f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT ?)",
                (last, WRITE_CHUNK),
            ).fetchone()[0]
            if top is None:
                return
            yield last, top
            last = top

    def _load_messages(self) -> None:
        """Messages in id order, from the staged rows (executed in C, no Python per row)."""
        conn = self.conn
        total = conn.execute(f"SELECT count(*) FROM {_STAGE_MESSAGES}").fetchone()[0]
        if self.on_progress:
            self.on_progress("loading", 0, total)
        for after, upto in self._batches(_STAGE_MESSAGES):
            conn.execute(
                f"INSERT INTO main.messages ({_MESSAGE_INSERT_COLS})"
                f" SELECT {_MESSAGE_INSERT_COLS} FROM {_STAGE_MESSAGES}"
                " WHERE id > ? AND id <= ? ORDER BY id",
                (after, upto),
            )
            self.result.messages += conn.execute("SELECT changes()").fetchone()[0]
            if self.on_progress:
                self.on_progress("loading", self.result.messages, total)

    def _index(self) -> None:
        """Index exactly the imported rows, as the dropped triggers would have, in id order."""
        conn = self.conn
        total = self.result.messages + self.result.summaries
        done = 0
        if self.on_progress:
            self.on_progress("indexing", 0, total)
        for fts, staged in (
            ("messages_fts", _STAGE_MESSAGES),
            ("summaries_fts", _STAGE_SUMMARIES),
        ):
            restore = _fts_option(conn, fts, "hashsize", FTS_HASHSIZE, default=1024 * 1024)
            try:
                for after, upto in self._batches(staged):
                    conn.execute(
                        f"INSERT INTO main.{fts} (rowid, content, dirs)"
                        f" SELECT st.id, st.content, ss.dir_tokens FROM {staged} AS st"
                        f" JOIN {_STAGE_SESSIONS} AS ss ON ss.ord = st.sess"
                        " WHERE st.id > ? AND st.id <= ? ORDER BY st.id",
                        (after, upto),
                    )
                    done += conn.execute("SELECT changes()").fetchone()[0]
                    if self.on_progress:
                        self.on_progress("indexing", done, total)
            finally:
                restore()

    def _store_memories(self) -> None:
        conn = self.conn
        wanted: list[tuple[int, MemoryRecord]] = []
        for number, m in self.staged.memories:
            if m.session_id is not None and m.session_id not in self.imported:
                self.result.skipped_memories += 1  # its session was already there
                continue
            duplicate = conn.execute(
                "SELECT 1 FROM main.memories WHERE working_dir = ? AND fact = ?"
                " AND created_at = ? AND session_id IS ?",
                (m.working_dir, m.fact, _ts(m.created_at), m.session_id),
            ).fetchone()
            if duplicate:
                self.result.skipped_memories += 1
                continue
            wanted.append((number, m))
        ids = [m.id for _, m in wanted]
        offset = _next_free(conn, "memories") - min(ids) if _taken(conn, ["memories"], ids) else 0
        kept = set(ids)
        for _, m in wanted:
            source = m.source_message_id
            if source is not None and m.session_id is not None:
                source += self.imported[m.session_id]
                row = conn.execute(
                    "SELECT 1 FROM main.messages WHERE id = ? AND session_id = ?",
                    (source, m.session_id),
                ).fetchone()
                if row is None:
                    source = None
            elif source is not None:
                source = None  # a source message without its session cannot be placed
            conn.execute(
                "INSERT INTO main.memories (id, working_dir, session_id, source_message_id, fact,"
                " category, importance, superseded_by, is_manual, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    m.id + offset,
                    m.working_dir,
                    m.session_id,
                    source,
                    m.fact,
                    m.category,
                    m.importance,
                    int(m.is_manual),
                    _ts(m.created_at),
                ),
            )
        for _, m in wanted:
            if m.superseded_by is not None and m.superseded_by in kept:
                conn.execute(
                    "UPDATE main.memories SET superseded_by = ? WHERE id = ?",
                    (m.superseded_by + offset, m.id + offset),
                )
        self.result.memories += len(wanted)


def _fts_option(
    conn: sqlite3.Connection, fts: str, key: str, value: int, default: int
) -> Callable[[], None]:
    """Set an FTS5 configuration option for this transaction; returns what puts it back."""
    row = conn.execute(f"SELECT v FROM main.{fts}_config WHERE k = ?", (key,)).fetchone()
    previous = int(row[0]) if row else default
    try:
        conn.execute(f"INSERT INTO main.{fts} ({fts}, rank) VALUES (?, ?)", (key, value))
    except sqlite3.OperationalError:  # an SQLite without this (undocumented) option: go without
        return lambda: None

    def restore() -> None:
        conn.execute(f"INSERT INTO main.{fts} ({fts}, rank) VALUES (?, ?)", (key, previous))
        if row is None:  # it was never set: leave no trace of it
            conn.execute(f"DELETE FROM main.{fts}_config WHERE k = ?", (key,))

    return restore


def _pragma(conn: sqlite3.Connection, name: str, value: int) -> Callable[[], None]:
    previous = conn.execute(f"PRAGMA {name}").fetchone()[0]
    conn.execute(f"PRAGMA {name} = {int(value)}")

    def restore() -> None:
        conn.execute(f"PRAGMA {name} = {int(previous)}")

    return restore


def import_stream(
    conn: sqlite3.Connection,
    source: IO[bytes],
    name: str,
    progress: ImportProgress | None,
) -> ImportResult:
    """Import a threadline export: all or nothing. Call it outside any transaction.

    The file is read, validated and staged first, with no lock taken; then everything goes in
    within one write transaction (see the comment above BULK_TRIGGERS).
    """
    if conn.in_transaction:
        raise StoreError("import_stream must run outside a transaction")
    reader = _Reader(source, name)
    restores = [
        _pragma(conn, "main.cache_size", -IMPORT_CACHE_KIB),
        _pragma(conn, "temp.cache_size", -IMPORT_TEMP_CACHE_KIB),
    ]
    started = time.perf_counter()
    try:
        for statement in _STAGE_DDL:
            conn.execute(f"DROP TABLE IF EXISTS {statement.split()[2]}")
            conn.execute(statement)
        # Staging writes the temp database only: no lock on the database file is taken.
        conn.execute("BEGIN")
        try:
            staged = _Stager(conn, reader, progress).run()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        read = time.perf_counter()
        marks: list[float] = []

        def load(c: sqlite3.Connection) -> ImportResult:
            marks.append(time.perf_counter())  # the write lock is held from here
            outcome = _Loader(c, staged, name, progress).run()
            marks.append(time.perf_counter())
            return outcome

        result = run_transaction(conn, load)
        end = time.perf_counter()
        timings = result.timings
        timings.read_seconds = round(read - started, 3)
        timings.wait_seconds = round(marks[-2] - read, 3)
        timings.commit_seconds = round(end - marks[-1], 3)
        timings.locked_seconds = round(end - marks[-2], 3)
        timings.total_seconds = round(end - started, 3)
        return result
    except OSError as exc:
        raise StoreError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except sqlite3.IntegrityError as exc:
        raise ImportFormatError(
            f"{name}: rejected by the database ({exc}); nothing was imported"
        ) from None
    finally:
        for statement in _STAGE_DDL:
            conn.execute(f"DROP TABLE IF EXISTS {statement.split()[2]}")
        for restore in restores:
            restore()
