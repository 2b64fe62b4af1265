"""Project memories (facts per directory, with provenance) and the extraction retry queue."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from threadline.models import CATEGORIES, WATERMARK_KEY, Memory, PendingExtraction
from threadline.store.columns import MEMORY
from threadline.store.errors import NotFoundError, StoreError
from threadline.store.util import fmt_ts

COLS = MEMORY.select()
_FIELDS = MEMORY.stored
PENDING_COLS = (
    "id, session_id, from_message_id, to_message_id, attempt_count, last_attempt_at,"
    " next_attempt_at, error_message, created_at"
)
_PENDING_FIELDS = [c.strip() for c in PENDING_COLS.split(",")]
MAX_ATTEMPTS = 3


def memory_from_row(row: tuple[Any, ...]) -> Memory:
    return Memory(**dict(zip(_FIELDS, row, strict=True)))


def memories_from_rows(rows: list[Any]) -> list[Memory]:
    """Rows of COLS as records."""
    return [Memory(**dict(zip(_FIELDS, r, strict=True))) for r in rows]


def pending_from_row(row: tuple[Any, ...]) -> PendingExtraction:
    return PendingExtraction(**dict(zip(_PENDING_FIELDS, row, strict=True)))


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
    # `+superseded_by`: keeps the planner on memories_dir (see select_memories).
    where = "working_dir = ?" + ("" if include_superseded else " AND +superseded_by IS NULL")
    sql = (
        f"SELECT {COLS} FROM memories WHERE {where}"
        " ORDER BY importance DESC, created_at DESC, id DESC"
    )
    params: list[Any] = [working_dir]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return memories_from_rows(conn.execute(sql, params).fetchall())


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


# ---------------------------------------------------------------------- extraction work
#
# A session's extraction watermark lives in its metadata as `memory_watermark`: the messages
# with ids up to it have been queued for extraction (and are done, pending or failed: see the
# queue). Its presence also marks a session for automatic extraction when it goes idle; the
# turn engine sets it to 0 at a session's first turn, so imported history is never extracted
# (and never costs a request) unless someone asks for it.

_WATERMARK = f"json_extract(metadata, '$.{WATERMARK_KEY}')"


def _pending(conn: sqlite3.Connection, pending_id: int) -> PendingExtraction | None:
    row = conn.execute(
        f"SELECT {PENDING_COLS} FROM pending_memory_extractions WHERE id = ?", (pending_id,)
    ).fetchone()
    return None if row is None else pending_from_row(row)


def _insert_memory(
    conn: sqlite3.Connection,
    now: datetime,
    working_dir: str,
    item: dict[str, Any],
) -> int:
    """Insert one memory from a dict (fact, category, importance and optional provenance)."""
    fact = str(item.get("fact") or "").strip()
    category = item.get("category")
    importance = item.get("importance")
    _check(str(category), importance)  # type: ignore[arg-type]
    if not fact:
        raise StoreError("a memory needs some text")
    cur = conn.execute(
        "INSERT INTO memories (working_dir, session_id, source_message_id, fact, category,"
        " importance, is_manual, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            working_dir,
            item.get("session_id"),
            item.get("source_message_id"),
            fact,
            category,
            importance,
            int(bool(item.get("is_manual", False))),
            fmt_ts(now),
        ),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def save_memories(
    conn: sqlite3.Connection, now: datetime, working_dir: str, items: list[dict[str, Any]]
) -> list[Memory]:
    """Insert several memories at once (all or none); `supersedes` links an older one.

    Each item: fact, category, importance, and optionally session_id, source_message_id,
    is_manual, supersedes (the id of a current memory of the same directory it replaces; an
    id that is not one is ignored rather than failing the batch).
    """
    ids: list[int] = []
    for item in items:
        new_id = _insert_memory(conn, now, working_dir, item)
        old = item.get("supersedes")
        if old is not None:
            conn.execute(
                "UPDATE memories SET superseded_by = ?"
                " WHERE id = ? AND working_dir = ? AND superseded_by IS NULL",
                (new_id, int(old), working_dir),
            )
        ids.append(new_id)
    return [require_memory(conn, i) for i in ids]


def select_memories(
    conn: sqlite3.Connection, working_dir: str, created_before: datetime | None, limit: int
) -> list[Memory]:
    """The directory's current memories (as of `created_before`), most important first.

    Walks the memories_dir index (working_dir, importance DESC, created_at DESC) and stops
    after `limit` rows, so it costs the rows returned, not the size of the directory.
    """
    # The unary + keeps the planner off memories_superseded: "superseded_by IS NULL" matches
    # most rows of every directory, and choosing that index meant sorting them all (15 ms for
    # 60,000 memories, against 0.1 ms walking memories_dir).
    where = "working_dir = ? AND +superseded_by IS NULL"
    params: list[Any] = [working_dir]
    if created_before is not None:
        where += " AND created_at <= ?"
        params.append(fmt_ts(created_before))
    rows = conn.execute(
        f"SELECT {COLS} FROM memories WHERE {where}"
        " ORDER BY importance DESC, created_at DESC, id DESC LIMIT ?",
        (*params, int(limit)),
    ).fetchall()
    return [memory_from_row(r) for r in rows]


def queue_extraction(
    conn: sqlite3.Connection,
    now: datetime,
    session_id: str,
    upto_id: int | None,
    next_attempt_at: datetime | None,
) -> PendingExtraction | None:
    """Queue the session's messages after its watermark (up to `upto_id` or the last one).

    Moves the watermark in the same transaction, so the same messages are never queued twice,
    whichever process asks. Returns None when there is nothing new.
    """
    row = conn.execute(
        f"SELECT coalesce({_WATERMARK}, 0) FROM sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no session with id {session_id}")
    watermark = int(row[0])
    sql = "SELECT min(id), max(id) FROM messages WHERE session_id = ? AND id > ?"
    params: list[Any] = [session_id, watermark]
    if upto_id is not None:
        sql += " AND id <= ?"
        params.append(upto_id)
    first, last = conn.execute(sql, params).fetchone()
    if last is None:
        return None
    cur = conn.execute(
        "INSERT INTO pending_memory_extractions (session_id, from_message_id, to_message_id,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (session_id, first, last, fmt_ts(next_attempt_at or now), fmt_ts(now)),
    )
    conn.execute(
        f"UPDATE sessions SET metadata = json_set(metadata, '$.{WATERMARK_KEY}', ?) WHERE id = ?",
        (last, session_id),
    )
    assert cur.lastrowid is not None
    pending = _pending(conn, cur.lastrowid)
    assert pending is not None
    return pending


def idle_sessions(conn: sqlite3.Connection, idle_before: datetime, since: datetime) -> list[str]:
    """Marked sessions whose last message is between `since` and `idle_before` and that have
    messages past their watermark (not in the trash, no reply streaming, not imported from
    another tool: those are extracted from on demand only)."""
    rows = conn.execute(
        "SELECT s.id FROM sessions AS s"
        " WHERE s.deleted_at IS NULL AND s.updated_at >= ? AND s.updated_at <= ?"
        f" AND s.heartbeat_at IS NULL AND s.source IS NULL AND {_WATERMARK} IS NOT NULL"
        " AND (SELECT max(m.id) FROM messages AS m WHERE m.session_id = s.id)"
        f" > {_WATERMARK}"
        " ORDER BY s.updated_at",
        (fmt_ts(since), fmt_ts(idle_before)),
    ).fetchall()
    return [str(r[0]) for r in rows]


def queue_idle_extractions(
    conn: sqlite3.Connection, now: datetime, idle_before: datetime, since: datetime
) -> list[PendingExtraction]:
    """Queue every session `idle_sessions` finds."""
    queued = []
    for session_id in idle_sessions(conn, idle_before, since):
        pending = queue_extraction(conn, now, session_id, None, None)
        if pending is not None:
            queued.append(pending)
    return queued


def claim_pending_extraction(
    conn: sqlite3.Connection,
    now: datetime,
    lease_until: datetime,
    pending_id: int | None,
) -> PendingExtraction | None:
    """Take the oldest due extraction (or `pending_id`, due or not, failed or not) for work.

    Its next_attempt_at moves to `lease_until`, so another process leaves it alone meanwhile;
    a process that dies while working on it leaves it to be taken again once the lease ends.
    """
    if pending_id is None:
        row = conn.execute(
            "SELECT id FROM pending_memory_extractions"
            " WHERE next_attempt_at <= ? AND attempt_count < ?"
            " ORDER BY next_attempt_at, id LIMIT 1",
            (fmt_ts(now), MAX_ATTEMPTS),
        ).fetchone()
        if row is None:
            return None
        pending_id = int(row[0])
    cur = conn.execute(
        "UPDATE pending_memory_extractions SET next_attempt_at = ?, last_attempt_at = ?"
        " WHERE id = ?",
        (fmt_ts(lease_until), fmt_ts(now), pending_id),
    )
    if cur.rowcount == 0:
        return None
    return _pending(conn, pending_id)


def complete_extraction(
    conn: sqlite3.Connection,
    now: datetime,
    pending_id: int,
    items: list[dict[str, Any]],
    rest: tuple[int, int | None] | None,
) -> list[Memory] | None:
    """Finish an extraction in one transaction: save its memories, drop it from the queue,
    and queue `rest` (from, to), the part of its range left for another request.

    Returns None (and saves nothing) when the extraction is no longer queued: another
    process finished it, or its session was purged.
    """
    pending = _pending(conn, pending_id)
    if pending is None:
        return None
    row = conn.execute(
        "SELECT working_dir FROM sessions WHERE id = ?", (pending.session_id,)
    ).fetchone()
    if row is None:
        return None
    items = [{"session_id": pending.session_id, **item} for item in items]
    memories = save_memories(conn, now, str(row[0]), items)
    conn.execute("DELETE FROM pending_memory_extractions WHERE id = ?", (pending_id,))
    if rest is not None:
        conn.execute(
            "INSERT INTO pending_memory_extractions (session_id, from_message_id,"
            " to_message_id, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
            (pending.session_id, rest[0], rest[1], fmt_ts(now), fmt_ts(pending.created_at)),
        )
    return memories


def reset_failed_extractions(conn: sqlite3.Connection, now: datetime) -> int:
    """Give the extractions given up on three fresh attempts, due now."""
    return conn.execute(
        "UPDATE pending_memory_extractions SET attempt_count = 0, next_attempt_at = ?"
        " WHERE attempt_count >= ?",
        (fmt_ts(now), MAX_ATTEMPTS),
    ).rowcount
