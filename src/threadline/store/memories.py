"""Project memories (facts per directory, with provenance) and the extraction retry queue."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from threadline.models import CATEGORIES, Memory, PendingExtraction
from threadline.store.errors import NotFoundError, StoreError
from threadline.store.util import fmt_ts

COLS = (
    "id, working_dir, session_id, source_message_id, fact, category, importance, superseded_by,"
    " is_manual, created_at"
)
_FIELDS = [c.strip() for c in COLS.split(",")]
PENDING_COLS = (
    "id, session_id, from_message_id, to_message_id, attempt_count, last_attempt_at,"
    " next_attempt_at, error_message, created_at"
)
_PENDING_FIELDS = [c.strip() for c in PENDING_COLS.split(",")]
MAX_ATTEMPTS = 3


def memory_from_row(row: tuple[Any, ...]) -> Memory:
    return Memory.model_validate(dict(zip(_FIELDS, row, strict=True)))


def pending_from_row(row: tuple[Any, ...]) -> PendingExtraction:
    return PendingExtraction.model_validate(dict(zip(_PENDING_FIELDS, row, strict=True)))


def _check(category: str, importance: int) -> None:
    if category not in CATEGORIES:
        raise StoreError(
            f"invalid memory category {category!r} (expected one of {', '.join(CATEGORIES)})"
        )
    if not isinstance(importance, int) or not 1 <= importance <= 5:
        raise StoreError(f"memory importance must be 1 to 5, not {importance!r}")


def save_memory(
    conn: sqlite3.Connection,
    now: datetime,
    working_dir: str,
    fact: str,
    category: str,
    importance: int,
    session_id: str | None,
    source_message_id: int | None,
    is_manual: bool,
    supersedes: int | None,
) -> Memory:
    _check(category, importance)
    if not fact.strip():
        raise StoreError("a memory needs some text")
    cur = conn.execute(
        "INSERT INTO memories (working_dir, session_id, source_message_id, fact, category,"
        " importance, is_manual, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            working_dir,
            session_id,
            source_message_id,
            fact.strip(),
            category,
            importance,
            int(is_manual),
            fmt_ts(now),
        ),
    )
    new_id = cur.lastrowid
    assert new_id is not None
    if supersedes is not None:
        supersede_memory(conn, supersedes, new_id)
    return require_memory(conn, new_id)


def get_memory(conn: sqlite3.Connection, memory_id: int) -> Memory | None:
    row = conn.execute(f"SELECT {COLS} FROM memories WHERE id = ?", (memory_id,)).fetchone()
    return None if row is None else memory_from_row(row)


def require_memory(conn: sqlite3.Connection, memory_id: int) -> Memory:
    memory = get_memory(conn, memory_id)
    if memory is None:
        raise NotFoundError(f"no memory with id {memory_id}")
    return memory


def get_memories(
    conn: sqlite3.Connection, working_dir: str, limit: int | None, include_superseded: bool
) -> list[Memory]:
    where = "working_dir = ?" + ("" if include_superseded else " AND superseded_by IS NULL")
    sql = (
        f"SELECT {COLS} FROM memories WHERE {where}"
        " ORDER BY importance DESC, created_at DESC, id DESC"
    )
    params: list[Any] = [working_dir]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [memory_from_row(r) for r in conn.execute(sql, params)]


def get_memories_by_session(conn: sqlite3.Connection, session_id: str) -> list[Memory]:
    rows = conn.execute(
        f"SELECT {COLS} FROM memories WHERE session_id = ? ORDER BY id", (session_id,)
    )
    return [memory_from_row(r) for r in rows]


def supersede_memory(conn: sqlite3.Connection, old_id: int, new_id: int) -> None:
    if old_id == new_id:
        raise StoreError("a memory cannot supersede itself")
    require_memory(conn, new_id)
    cur = conn.execute("UPDATE memories SET superseded_by = ? WHERE id = ?", (new_id, old_id))
    if cur.rowcount == 0:
        raise NotFoundError(f"no memory with id {old_id}")


def update_memory(conn: sqlite3.Connection, memory_id: int, changes: dict[str, Any]) -> Memory:
    current = require_memory(conn, memory_id)
    allowed = {"fact", "category", "importance"}
    unknown = set(changes) - allowed
    if unknown:
        raise StoreError(f"cannot update memory field(s): {', '.join(sorted(unknown))}")
    _check(changes.get("category", current.category), changes.get("importance", current.importance))
    if "fact" in changes and not str(changes["fact"]).strip():
        raise StoreError("a memory needs some text")
    for key, value in changes.items():
        conn.execute(f"UPDATE memories SET {key} = ? WHERE id = ?", (value, memory_id))
    return require_memory(conn, memory_id)


def delete_memory(conn: sqlite3.Connection, memory_id: int) -> bool:
    return conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,)).rowcount > 0


def delete_all_memories(conn: sqlite3.Connection, working_dir: str) -> int:
    # Clear the links inside the directory first so no row points at a deleted one mid-statement.
    conn.execute("UPDATE memories SET superseded_by = NULL WHERE working_dir = ?", (working_dir,))
    return conn.execute("DELETE FROM memories WHERE working_dir = ?", (working_dir,)).rowcount


def save_pending_extraction(
    conn: sqlite3.Connection,
    now: datetime,
    session_id: str,
    from_message_id: int | None,
    to_message_id: int | None,
    next_attempt_at: datetime | None,
) -> PendingExtraction:
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        raise NotFoundError(f"no session with id {session_id}")
    cur = conn.execute(
        "INSERT INTO pending_memory_extractions (session_id, from_message_id, to_message_id,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (session_id, from_message_id, to_message_id, fmt_ts(next_attempt_at or now), fmt_ts(now)),
    )
    row = conn.execute(
        f"SELECT {PENDING_COLS} FROM pending_memory_extractions WHERE id = ?", (cur.lastrowid,)
    ).fetchone()
    return pending_from_row(row)


def get_pending_extractions(
    conn: sqlite3.Connection, now: datetime | None, include_failed: bool, limit: int | None
) -> list[PendingExtraction]:
    """Due extractions (next_attempt_at <= now, fewer than 3 attempts), oldest due first.

    With now=None every queued row is returned; include_failed adds those given up on.
    """
    where = "1"
    params: list[Any] = []
    if now is not None:
        where += " AND next_attempt_at <= ?"
        params.append(fmt_ts(now))
    if not include_failed:
        where += " AND attempt_count < ?"
        params.append(MAX_ATTEMPTS)
    sql = (
        f"SELECT {PENDING_COLS} FROM pending_memory_extractions WHERE {where}"
        " ORDER BY next_attempt_at, id"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [pending_from_row(r) for r in conn.execute(sql, params)]


def update_pending_extraction(
    conn: sqlite3.Connection, pending_id: int, changes: dict[str, Any]
) -> PendingExtraction:
    allowed = {
        "attempt_count",
        "last_attempt_at",
        "next_attempt_at",
        "error_message",
        "to_message_id",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise StoreError(f"cannot update extraction field(s): {', '.join(sorted(unknown))}")
    for key, value in changes.items():
        if isinstance(value, datetime):
            value = fmt_ts(value)
        conn.execute(
            f"UPDATE pending_memory_extractions SET {key} = ? WHERE id = ?", (value, pending_id)
        )
    row = conn.execute(
        f"SELECT {PENDING_COLS} FROM pending_memory_extractions WHERE id = ?", (pending_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no pending extraction with id {pending_id}")
    return pending_from_row(row)


def delete_pending_extraction(conn: sqlite3.Connection, pending_id: int) -> bool:
    return (
        conn.execute("DELETE FROM pending_memory_extractions WHERE id = ?", (pending_id,)).rowcount
        > 0
    )
