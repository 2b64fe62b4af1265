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

Cost: the whole import is one write transaction (other writers wait, retrying, until it
commits). Messages are staged in a temporary table while the file is read and then inserted in
id order, so the full-text index is built in large in-memory batches; indexing the text is
most of the time an import takes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
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


class ImportResult(BaseModel):
    """What an import added, and the sessions it skipped because they already existed."""

    sessions: int = 0
    messages: int = 0
    summaries: int = 0
    memories: int = 0
    skipped_sessions: list[str] = Field(default_factory=list)
    skipped_memories: int = 0
    renumbered_sessions: list[str] = Field(default_factory=list)


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
    if _C1_OR_DEL.search(text) is None:
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
    for sid, line in sessions:
        write(escape(line))
        write("\n")
        stats.sessions += 1
        for row in _rows_of(messages, sid):
            write(escape(row[1]))
            write("\n")
            stats.messages += 1
            if progress and stats.messages >= next_report:
                progress(stats.messages, total)
                next_report += BATCH
        for row in _rows_of(summaries, sid):
            write(escape(row[1]))
            write("\n")
            stats.summaries += 1
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


def _offset_for(
    conn: sqlite3.Connection, table: str, ids: list[int], staged: str | None = None
) -> int:
    tables = [table] if staged is None else [table, staged]
    if not ids or not _taken(conn, tables, ids):
        return 0
    return _next_free(conn, table, staged) - min(ids)


# Messages wait here (ids final) until the whole file has been read, then go into `messages`
# in one pass in id order: FTS5 indexes rows arriving in rowid order in memory, but flushes a
# segment whenever a rowid goes backwards, which session-by-session order would do constantly.
_STAGED = "temp.threadline_import_messages"
_STAGE_SQL = (
    f"CREATE TABLE {_STAGED} (id INTEGER PRIMARY KEY, session_id TEXT, role TEXT, content TEXT,"
    " payload TEXT, created_at TEXT, input_tokens INTEGER, output_tokens INTEGER, model TEXT,"
    " stop_reason TEXT, response_ms INTEGER, complete INTEGER)"
)
_MESSAGE_INSERT_COLS = (
    "id, session_id, role, content, payload, created_at, input_tokens, output_tokens, model,"
    " stop_reason, response_ms, complete"
)
WRITE_CHUNK = 20_000


class _Importer:
    def __init__(self, conn: sqlite3.Connection, reader: _Reader, progress: ImportProgress | None):
        self.conn = conn
        self.reader = reader
        self.on_progress = progress
        self.result = ImportResult()
        self.in_file: set[str] = set()
        self.imported: dict[str, int] = {}  # session id -> message id offset
        self.memories: list[tuple[int, MemoryRecord]] = []
        self.staged = 0
        self.fixups: list[tuple[str | None, Any, str]] = []  # preview, updated_at, id

    def run(self) -> ImportResult:
        self.conn.execute(f"DROP TABLE IF EXISTS {_STAGED}")
        self.conn.execute(_STAGE_SQL)
        try:
            self._read()
            self._write_messages()
            self._store_memories()
        finally:
            self.conn.execute(f"DROP TABLE IF EXISTS {_STAGED}")
        return self.result

    def _read(self) -> None:
        bundle: _Bundle | None = None
        for number, record in self.reader.records():
            if isinstance(record, SessionRecord):
                if bundle is not None:
                    self._store(bundle)
                if record.id in self.in_file:
                    raise self.reader.fail(f"line {number}", f"session {record.id} appears twice")
                self.in_file.add(record.id)
                bundle = _Bundle(record, number)
            elif isinstance(record, MessageRecord | SummaryRecord):
                if bundle is None or record.session_id != bundle.session.id:
                    raise self.reader.fail(
                        f"line {number}",
                        f"{record.type} {record.id} does not follow its session "
                        f"{record.session_id}",
                    )
                if isinstance(record, MessageRecord):
                    bundle.messages.append(record)
                else:
                    bundle.summaries.append(record)
            elif isinstance(record, MemoryRecord):
                self.memories.append((number, record))
        if bundle is not None:
            self._store(bundle)

    def _store(self, bundle: _Bundle) -> None:
        conn = self.conn
        s = bundle.session
        exists = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (s.id,)).fetchone()
        if exists:
            self.result.skipped_sessions.append(s.id)
            return
        message_ids = [m.id for m in bundle.messages]
        if len(set(message_ids)) != len(message_ids):
            raise self.reader.fail(f"session {s.id}", "a message id appears twice")
        summary_ids = [x.id for x in bundle.summaries]
        if len(set(summary_ids)) != len(summary_ids):
            raise self.reader.fail(f"session {s.id}", "a summary id appears twice")
        offset = _offset_for(conn, "messages", message_ids, _STAGED)
        summary_offset = _offset_for(conn, "summaries", summary_ids)
        if offset:
            self.result.renumbered_sessions.append(s.id)
        conn.execute(
            "INSERT INTO sessions (id, working_dir, dir_tokens, title, preview, provider, model,"
            " system_prompt, status, pinned, deleted_at, created_at, updated_at, ended_at,"
            " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.id,
                s.working_dir,
                scopes.dir_tokens(s.working_dir),
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
                json.dumps(s.metadata, ensure_ascii=False, separators=(",", ":")),
            ),
        )
        dump = _encoder.encode
        conn.executemany(
            f"INSERT INTO {_STAGED} ({_MESSAGE_INSERT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    m.id + offset,
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
                for m in bundle.messages
            ],
        )
        self.staged += len(bundle.messages)
        conn.executemany(
            "INSERT INTO summaries (id, session_id, content, first_message_id, last_message_id,"
            " token_count, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    x.id + summary_offset,
                    s.id,
                    x.content,
                    x.first_message_id + offset,
                    x.last_message_id + offset,
                    x.token_count,
                    x.model,
                    _ts(x.created_at),
                )
                for x in sorted(bundle.summaries, key=lambda x: x.id)
            ],
        )
        self.result.summaries += len(bundle.summaries)
        self.fixups.append((s.preview, _ts(s.updated_at), s.id))
        self.imported[s.id] = offset
        self.result.sessions += 1
        if self.on_progress:
            self.on_progress("reading", self.reader.bytes_read, self.reader.total)

    def _write_messages(self) -> None:
        """Move the staged messages into `messages` in id order, in chunks (for progress)."""
        conn = self.conn
        last = 0
        while True:
            top = conn.execute(
                f"SELECT max(id) FROM (SELECT id FROM {_STAGED} WHERE id > ? ORDER BY id LIMIT ?)",
                (last, WRITE_CHUNK),
            ).fetchone()[0]
            if top is None:
                break
            conn.execute(
                f"INSERT INTO messages ({_MESSAGE_INSERT_COLS}) SELECT {_MESSAGE_INSERT_COLS}"
                f" FROM {_STAGED} WHERE id > ? AND id <= ? ORDER BY id",
                (last, top),
            )
            self.result.messages += conn.execute("SELECT changes()").fetchone()[0]
            last = top
            if self.on_progress:
                self.on_progress("writing", self.result.messages, self.staged)
        # The message triggers keep the counters; preview and last activity are the file's.
        conn.executemany(
            "UPDATE sessions SET preview = ?, updated_at = ? WHERE id = ?", self.fixups
        )

    def _store_memories(self) -> None:
        conn = self.conn
        wanted: list[tuple[int, MemoryRecord]] = []
        seen: set[int] = set()
        for number, m in self.memories:
            if m.id in seen:
                raise self.reader.fail(f"line {number}", f"memory {m.id} appears twice")
            seen.add(m.id)
            if m.session_id is not None and m.session_id not in self.in_file:
                raise self.reader.fail(
                    f"line {number}",
                    f"memory {m.id} refers to session {m.session_id}, which is not in the file",
                )
            if m.session_id is not None and m.session_id not in self.imported:
                self.result.skipped_memories += 1  # its session was already there
                continue
            duplicate = conn.execute(
                "SELECT 1 FROM memories WHERE working_dir = ? AND fact = ? AND created_at = ?"
                " AND session_id IS ?",
                (m.working_dir, m.fact, _ts(m.created_at), m.session_id),
            ).fetchone()
            if duplicate:
                self.result.skipped_memories += 1
                continue
            wanted.append((number, m))
        offset = _offset_for(conn, "memories", [m.id for _, m in wanted])
        kept = {m.id for _, m in wanted}
        for _, m in wanted:
            source = m.source_message_id
            if source is not None and m.session_id is not None:
                source += self.imported[m.session_id]
                row = conn.execute(
                    "SELECT 1 FROM messages WHERE id = ? AND session_id = ?",
                    (source, m.session_id),
                ).fetchone()
                if row is None:
                    source = None
            elif source is not None:
                source = None  # a source message without its session cannot be placed
            conn.execute(
                "INSERT INTO memories (id, working_dir, session_id, source_message_id, fact,"
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
                    "UPDATE memories SET superseded_by = ? WHERE id = ?",
                    (m.superseded_by + offset, m.id + offset),
                )
        self.result.memories += len(wanted)


def import_stream(
    conn: sqlite3.Connection,
    source: IO[bytes],
    name: str,
    progress: ImportProgress | None,
) -> ImportResult:
    """Import a threadline export; runs inside one write transaction (all or nothing)."""
    reader = _Reader(source, name)
    importer = _Importer(conn, reader, progress)
    try:
        return importer.run()
    except OSError as exc:
        raise StoreError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except sqlite3.IntegrityError as exc:
        raise ImportFormatError(
            f"{name}: rejected by the database ({exc}); nothing was imported"
        ) from None
