"""Message rows: add (with the session's counters kept by triggers), checkpoint, read, delete."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from threadline.models import ROLES, Message
from threadline.store import sessions as session_ops
from threadline.store.columns import MESSAGE
from threadline.store.errors import NotFoundError, StoreError
from threadline.store.util import dump_json, fmt_ts, load_json

COLS = MESSAGE.select()
_FIELDS = MESSAGE.stored


# Sentinel for "leave this column as it is" in update_message.
UNSET: Any = object()


def messages_from_rows(rows: list[Any]) -> list[Message]:
    """Rows of COLS as records (a page is 200 rows: this is hot)."""
    data = []
    for row in rows:
        fields = dict(zip(_FIELDS, row, strict=True))
        if fields["payload"] is not None:
            fields["payload"] = load_json(fields["payload"])
        data.append(Message(**fields))
    return data


def message_from_row(row: tuple[Any, ...]) -> Message:
    return messages_from_rows([row])[0]


def check_session_writable(conn: sqlite3.Connection, session_id: str) -> None:
    row = conn.execute("SELECT deleted_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no session with id {session_id}")
    if row[0] is not None:
        raise StoreError(f"session {session_id} is in the trash; restore it first")


def add_message(
    conn: sqlite3.Connection,
    now: datetime,
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
    created_at: datetime | None = None,
) -> Message:
    if role not in ROLES:
        raise StoreError(f"invalid role {role!r} (expected one of {', '.join(ROLES)})")
    if not isinstance(content, str):
        raise StoreError("message content must be text")
    check_session_writable(conn, session_id)
    stamp = fmt_ts(created_at or now)
    if created_at is None:
        # A message is never older than the one before it (which may come from another
        # machine whose clock is ahead): timeline order stays time order on every machine.
        last = conn.execute(
            "SELECT created_at FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        if last is not None and last[0] > stamp:
            stamp = fmt_ts(datetime.fromisoformat(last[0]) + timedelta(milliseconds=1))
    cur = conn.execute(
        "INSERT INTO messages (session_id, role, content, payload, created_at, input_tokens,"
        " output_tokens, model, stop_reason, response_ms, complete)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            role,
            content,
            None if payload is None else dump_json(payload),
            stamp,
            input_tokens,
            output_tokens,
            model,
            stop_reason,
            response_ms,
            int(bool(complete)),
        ),
    )
    # A reply still streaming keeps a heartbeat on its session; a new message revives a crashed
    # one; a reply that ends at once (finished, failed, cancelled) ends its writer's turn.
    if not complete and stop_reason is None:
        session_ops.beat(conn, now, session_id)
    else:
        conn.execute(
            "UPDATE sessions SET status = 'active' WHERE id = ? AND status = 'crashed'",
            (session_id,),
        )
        if role == "assistant":
            session_ops.end_beat(conn, session_id, own_only=True)
    message_id = cur.lastrowid
    assert message_id is not None
    return Message(
        id=message_id,
        session_id=session_id,
        role=role,  # type: ignore[arg-type]
        content=content,
        payload=payload,
        created_at=datetime.fromisoformat(stamp),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
        stop_reason=stop_reason,
        response_ms=response_ms,
        complete=bool(complete),
    )


def get_message(conn: sqlite3.Connection, message_id: int) -> Message | None:
    row = conn.execute(f"SELECT {COLS} FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else message_from_row(row)


def update_message(
    conn: sqlite3.Connection, now: datetime, message_id: int, changes: dict[str, Any]
) -> Message:
    """Checkpoint or finalise a message; the session's token totals follow by trigger."""
    row = conn.execute("SELECT session_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no message with id {message_id}")
    session_id = row[0]
    allowed = {
        "content",
        "payload",
        "input_tokens",
        "output_tokens",
        "model",
        "stop_reason",
        "response_ms",
        "complete",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise StoreError(f"cannot update message field(s): {', '.join(sorted(unknown))}")
    sets, values = [], []
    for key, value in changes.items():
        if key == "payload":
            value = None if value is None else dump_json(value)
        elif key == "complete":
            value = int(bool(value))
        elif key == "content" and not isinstance(value, str):
            raise StoreError("message content must be text")
        sets.append(f"{key} = ?")
        values.append(value)
    if sets:
        conn.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*values, message_id))
    message = get_message(conn, message_id)
    assert message is not None
    if not message.complete and message.stop_reason is None:
        # Still streaming: this checkpoint is the session's heartbeat.
        session_ops.beat(conn, now, session_id)
    else:
        session_ops.end_beat(conn, session_id)
    return message


def get_messages(
    conn: sqlite3.Connection,
    session_id: str,
    before_id: int | None,
    after_id: int | None,
    limit: int | None,
) -> list[Message]:
    """Messages in order; with `limit` and `before_id` (or neither), the newest `limit` of them."""
    where = "session_id = ?"
    params: list[Any] = [session_id]
    if before_id is not None:
        where += " AND id < ?"
        params.append(before_id)
    if after_id is not None:
        where += " AND id > ?"
        params.append(after_id)
    rows: list[Any]
    if limit is None:
        sql = f"SELECT {COLS} FROM messages WHERE {where} ORDER BY id"
        rows = conn.execute(sql, params).fetchall()
        return messages_from_rows(rows)
    if after_id is not None and before_id is None:
        sql = f"SELECT {COLS} FROM messages WHERE {where} ORDER BY id LIMIT ?"
        rows = conn.execute(sql, (*params, limit)).fetchall()
        return messages_from_rows(rows)
    rows = conn.execute(
        f"SELECT {COLS} FROM messages WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit)
    ).fetchall()
    return messages_from_rows(rows[::-1])


def get_messages_since(conn: sqlite3.Connection, session_id: str, when: datetime) -> list[Message]:
    rows = conn.execute(
        f"SELECT {COLS} FROM messages WHERE session_id = ? AND created_at >= ? ORDER BY id",
        (session_id, fmt_ts(when)),
    ).fetchall()
    return messages_from_rows(rows)


def count_messages(conn: sqlite3.Connection, session_id: str) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
    )


# Compacting removes this many messages per write transaction (with their search-index rows
# and sync tombstones, ~0.2-0.5 ms each), so no step holds the write lock near a second.
COMPACT_CHUNK = 500


def delete_messages_step(
    conn: sqlite3.Connection, session_id: str, before_id: int, limit: int
) -> tuple[int, bool]:
    """Remove the oldest `limit` of a session's messages with id < before_id, in the caller's
    transaction; returns (how many went, whether any are left).

    Oldest first, so what a crash between steps leaves is the end of the range, right before
    the messages kept: the summary already stands for them, and removing again finishes."""
    cur = conn.execute(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages"
        " WHERE session_id = ? AND id < ? ORDER BY id LIMIT ?)",
        (session_id, before_id, limit),
    )
    left = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE session_id = ? AND id < ?)",
        (session_id, before_id),
    ).fetchone()[0]
    return cur.rowcount, bool(left)


def count_messages_before(conn: sqlite3.Connection, session_id: str, before_id: int) -> int:
    """How many of a session's messages have id < before_id (what compacting would remove)."""
    return int(
        conn.execute(
            "SELECT count(*) FROM messages WHERE session_id = ? AND id < ?",
            (session_id, before_id),
        ).fetchone()[0]
    )
