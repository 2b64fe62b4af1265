"""Export: sessions as JSONL (streamed, SQLite builds each line) or one session as a JSON document.

Every column is kept (payloads as JSON, message ids, summaries' message-id ranges, memories'
source and supersede links, where imported history came from), except what a database derives
for itself (see `export=False` in store/columns.py). A reply that was streaming is exported as
it stood, with the session's effective status. The memory-extraction queue is work in
progress, not history, and is not exported. Both formats are built from the same per-row JSON
expressions (`Table.json_object`), so they cannot disagree about a column.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from threadline.store.columns import MEMORY, MESSAGE, SESSION, SUMMARY
from threadline.store.errors import NotFoundError
from threadline.store.transfer.format import FORMAT, VERSION, ExportStats

Progress = Callable[[int, int], None]

# How often progress is reported (messages).
REPORT_EVERY = 2000

_C1_OR_DEL = re.compile(r"[\x7f-\x9f]")


def escape_c1(text: str) -> str:
    """JSON text with DEL and C1 controls written as \\u escapes (json escapes C0 already).

    Same meaning, so import -> export stays byte-identical, and an export printed to a
    terminal cannot act on it.
    """
    if text.isascii():  # a C-speed scan: most lines hold no DEL/C1 to look for
        if "\x7f" not in text:
            return text
    elif _C1_OR_DEL.search(text) is None:
        return text
    return _C1_OR_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# A session whose reply writer stopped checkpointing is exported as crashed (as it is shown).
STALE_STATUS = (
    "CASE WHEN heartbeat_at IS NOT NULL AND heartbeat_at < :stale THEN 'crashed' ELSE status END"
)
# A message's source key lives in message_keys (a row per imported message).
_SOURCE_KEY = (
    "(SELECT k.key FROM message_keys AS k"
    " WHERE k.message_id = m.id AND k.session_id = m.session_id LIMIT 1)"
)

SESSION_JSON = SESSION.json_object(overrides={"status": STALE_STATUS})
MESSAGE_JSON = MESSAGE.json_object("m", overrides={"source_key": _SOURCE_KEY})
SUMMARY_JSON = SUMMARY.json_object()
MEMORY_JSON = MEMORY.json_object()

_SESSIONS = f"SELECT id, {SESSION_JSON} FROM sessions"
_MESSAGES = f"SELECT m.session_id, {MESSAGE_JSON} FROM messages AS m"
_SUMMARIES = f"SELECT session_id, {SUMMARY_JSON} FROM summaries"
_MEMORIES = f"SELECT id, {MEMORY_JSON} FROM memories"


def header_line() -> str:
    header = {"type": "header", "format": FORMAT, "version": VERSION}
    return json.dumps(header, separators=(",", ":")) + "\n"


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
    write = out.write
    write(header_line())
    stale = {"stale": stale_before}
    if session_ids is None:
        total = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        sessions: Iterator[Sequence[Any]] = conn.execute(f"{_SESSIONS} ORDER BY id", stale)
        messages = _Peekable(conn.execute(f"{_MESSAGES} ORDER BY m.session_id, m.id"))
        summaries = _Peekable(conn.execute(f"{_SUMMARIES} ORDER BY session_id, id"))
    else:
        wanted = sorted(set(session_ids))
        total = 0
        for sid in wanted:
            total += int(
                conn.execute(
                    "SELECT count(*) FROM messages WHERE session_id = ?", (sid,)
                ).fetchone()[0]
            )
        sessions = _rows_for(conn, f"{_SESSIONS} WHERE id = :sid", stale, wanted)
        messages = _Peekable(
            _rows_for(conn, f"{_MESSAGES} WHERE m.session_id = :sid ORDER BY m.id", {}, wanted)
        )
        summaries = _Peekable(
            _rows_for(conn, f"{_SUMMARIES} WHERE session_id = :sid ORDER BY id", {}, wanted)
        )
    if progress:
        progress(0, total)
    next_report = REPORT_EVERY
    escape = escape_c1
    # Plain counters in the loop (a pydantic attribute write per row costs more than the row).
    n_sessions = n_messages = n_summaries = n_memories = 0
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
                next_report += REPORT_EVERY
        for row in _rows_of(summaries, sid):
            write(escape(row[1]))
            write("\n")
            n_summaries += 1
    if session_ids is None:
        memories: Iterator[Sequence[Any]] = conn.execute(f"{_MEMORIES} ORDER BY id")
    else:
        marks = ",".join("?" * len(session_ids))
        memories = conn.execute(
            f"{_MEMORIES} WHERE session_id IN ({marks}) ORDER BY id", sorted(set(session_ids))
        )
    for row in memories:
        write(escape(row[1]))
        write("\n")
        n_memories += 1
    if progress:
        progress(n_messages, total)
    return ExportStats(
        sessions=n_sessions, messages=n_messages, summaries=n_summaries, memories=n_memories
    )


def _rows_for(
    conn: sqlite3.Connection, sql: str, params: dict[str, Any], ids: list[str]
) -> Iterator[Sequence[Any]]:
    for sid in ids:
        yield from conn.execute(sql, {**params, "sid": sid})


def _rows_of(rows: _Peekable, session_id: str) -> Iterator[Sequence[Any]]:
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


class _Peekable:
    """An iterator with one row of look-ahead."""

    def __init__(self, it: Iterator[Sequence[Any]]) -> None:
        self._it = it
        self._next: Sequence[Any] | None = next(it, None)

    def peek(self) -> Sequence[Any] | None:
        return self._next

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> Sequence[Any]:
        if self._next is None:
            raise StopIteration
        value = self._next
        self._next = next(self._it, None)
        return value


def export_document(conn: sqlite3.Connection, stale_before: str, session_id: str) -> str:
    """One session as the JSON document (pretty-printed, stable key order)."""
    row = conn.execute(
        f"{_SESSIONS} WHERE id = :sid", {"stale": stale_before, "sid": session_id}
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no session with id {session_id}")

    def items(sql: str) -> list[dict[str, Any]]:
        return [_without_type(r[1]) for r in conn.execute(sql, {"sid": session_id})]

    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    doc["session"] = _without_type(row[1])
    doc["messages"] = items(f"{_MESSAGES} WHERE m.session_id = :sid ORDER BY m.id")
    doc["summaries"] = items(f"{_SUMMARIES} WHERE session_id = :sid ORDER BY id")
    doc["memories"] = items(f"{_MEMORIES} WHERE session_id = :sid ORDER BY id")
    return escape_c1(json.dumps(doc, ensure_ascii=False, indent=2)) + "\n"


def _without_type(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    del data["type"]
    return data
