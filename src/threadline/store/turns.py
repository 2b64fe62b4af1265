"""A turn's start: the session, the user's message and the turn's heartbeat, written together."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from threadline.models import Message, Session
from threadline.store import messages as message_ops
from threadline.store import sessions as session_ops


def begin_turn(
    conn: sqlite3.Connection,
    now: datetime,
    session_id: str | None,
    content: str | None,
    working_dir: str | None,
    window: timedelta | None,
    create: dict[str, Any],
) -> tuple[Session, Message | None, bool]:
    """Start a turn in one transaction: the session (continued, or created with it), the
    user's message and the turn's heartbeat, so a crash leaves all of it or none of it.

    `session_id` None: a session of `working_dir` is continued when its last message is younger
    than `window` (None: always a new one), else created with `create`'s fields. `content`
    None: the turn answers the session's last user message again (a retry).
    Returns (session, the saved message or None, whether the session was created).
    """
    created = False
    if session_id is None:
        assert working_dir is not None
        if window is None:
            session = session_ops.create_session(conn, now, working_dir, **create)
            created = True
        else:
            session, created = session_ops.get_or_create_session(
                conn, now, working_dir, window, create
            )
        session_id = session.id
    message = None
    if content is not None:
        message = message_ops.add_message(conn, now, session_id, "user", content)
    else:
        message_ops.check_session_writable(conn, session_id)
    session_ops.beat(conn, now, session_id)
    return session_ops.require_session(conn, now, session_id), message, created
