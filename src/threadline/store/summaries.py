"""Summary rows and the timeline: messages and summaries interleaved in conversation order."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from threadline.models import Message, Summary, SummarySpan, TimelineItem
from threadline.store.columns import SUMMARY
from threadline.store.errors import NotFoundError, StoreError
from threadline.store.messages import COLS as MESSAGE_COLS
from threadline.store.messages import messages_from_rows
from threadline.store.util import fmt_ts

COLS = SUMMARY.select()
_FIELDS = SUMMARY.stored


def summaries_from_rows(rows: list[Any]) -> list[Summary]:
    return [Summary(**dict(zip(_FIELDS, r, strict=True))) for r in rows]


def summary_from_row(row: tuple[Any, ...]) -> Summary:
    return summaries_from_rows([row])[0]


def save_summary(
    conn: sqlite3.Connection,
    now: datetime,
    session_id: str,
    content: str,
    first_message_id: int,
    last_message_id: int,
    token_count: int | None,
    model: str | None,
    created_at: datetime | None = None,
) -> Summary:
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        raise NotFoundError(f"no session with id {session_id}")
    if last_message_id < first_message_id:
        raise StoreError("a summary's last message comes before its first")
    stamp = fmt_ts(created_at or now)
    cur = conn.execute(
        "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
        " token_count, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (session_id, content, first_message_id, last_message_id, token_count, model, stamp),
    )
    assert cur.lastrowid is not None
    return Summary(
        id=cur.lastrowid,
        session_id=session_id,
        content=content,
        first_message_id=first_message_id,
        last_message_id=last_message_id,
        token_count=token_count,
        model=model,
        created_at=datetime.fromisoformat(stamp),
    )


def latest_summary(conn: sqlite3.Connection, session_id: str) -> Summary | None:
    row = conn.execute(
        f"SELECT {COLS} FROM summaries WHERE session_id = ?"
        " ORDER BY last_message_id DESC, id DESC LIMIT 1",
        (session_id,),
    ).fetchone()
    return None if row is None else summary_from_row(row)


def list_summaries(conn: sqlite3.Connection, session_id: str) -> list[Summary]:
    rows = conn.execute(
        f"SELECT {COLS} FROM summaries WHERE session_id = ? ORDER BY last_message_id, id",
        (session_id,),
    ).fetchall()
    return summaries_from_rows(rows)


def timeline(
    conn: sqlite3.Connection,
    session_id: str,
    before: tuple[int, int] | None,
    after: tuple[int, int] | None,
    limit: int | None,
) -> list[TimelineItem]:
    """Messages and summaries in conversation order (a summary follows its last message).

    Positions are (message id, 0) for a message and (last_message_id, 1) for a summary. With
    `limit`, returns the newest `limit` items before `before` (or the oldest after `after`).
    """
    m_where, s_where = "session_id = ?", "session_id = ?"
    m_params: list[Any] = [session_id]
    s_params: list[Any] = [session_id]
    if before is not None:
        pos, sub = before
        # A message at `pos` sorts before `before` only when `before` is a summary (sub 1).
        m_where += " AND id < ?" if sub == 0 else " AND id <= ?"
        m_params.append(pos)
        s_where += " AND last_message_id < ?"
        s_params.append(pos)
    if after is not None:
        pos, sub = after
        m_where += " AND id > ?"
        m_params.append(pos)
        s_where += " AND last_message_id >= ?" if sub == 0 else " AND last_message_id > ?"
        s_params.append(pos)
    newest_first = limit is not None and not (after is not None and before is None)
    order = "DESC" if newest_first else "ASC"
    tail = " LIMIT ?" if limit is not None else ""
    m_rows = conn.execute(
        f"SELECT {MESSAGE_COLS} FROM messages WHERE {m_where} ORDER BY id {order}{tail}",
        (*m_params, limit) if limit is not None else m_params,
    ).fetchall()
    s_rows = conn.execute(
        f"SELECT {COLS} FROM summaries WHERE {s_where}"
        f" ORDER BY last_message_id {order}, id {order}{tail}",
        (*s_params, limit) if limit is not None else s_params,
    ).fetchall()
    items: list[TimelineItem] = [*messages_from_rows(m_rows), *summaries_from_rows(s_rows)]
    items.sort(key=_sort_key)
    if limit is not None:
        items = items[-limit:] if newest_first else items[:limit]
    return items


def _sort_key(item: Message | Summary) -> tuple[int, int, int]:
    pos, sub = item.position
    return (pos, sub, item.id)


def summary_spans(
    conn: sqlite3.Connection, session_id: str, ranges: list[tuple[int, int, int]]
) -> list[SummarySpan]:
    """For each (summary id, first message id, last message id): how many of the session's
    messages come before the range and how many of the range are still stored.

    Two index range counts per summary (messages_session): cheap for the few summaries a page
    of the timeline holds, without reading the messages.
    """
    spans = []
    for summary_id, first, last in ranges:
        before, covered = conn.execute(
            "SELECT (SELECT count(*) FROM messages WHERE session_id = ?1 AND id < ?2),"
            " (SELECT count(*) FROM messages WHERE session_id = ?1 AND id BETWEEN ?2 AND ?3)",
            (session_id, first, last),
        ).fetchone()
        spans.append(SummarySpan(summary_id=summary_id, before=before, covered=covered))
    return spans
