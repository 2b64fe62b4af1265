"""Retention: move old sessions, then the oldest beyond the limit, to the trash; purge old trash.

Retention is for what threadline wrote itself: sessions imported or captured from another tool
(`source` set) are left alone unless `include_imported`. Then too, a session's age counts from
the later of its last message and when threadline received it, and nothing received in the
last day is moved: a 2023 export imported today is not old, and does not push anything out.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from threadline.models import CleanupResult
from threadline.store import sessions
from threadline.store.util import fmt_ts

# What threadline received this recently is never moved by retention.
RECEIVED_GRACE = timedelta(days=1)


class _DryRun(Exception):
    """Raised to roll a dry run back after counting exactly what the real run would do."""

    def __init__(self, result: CleanupResult) -> None:
        self.result = result


def cleanup(
    conn: sqlite3.Connection,
    now: datetime,
    retention: timedelta,
    max_sessions: int,
    trash_days: int,
    keep: set[str],
    dry_run: bool,
    include_imported: bool = False,
) -> CleanupResult:
    """Never touches pinned sessions or those in `keep` (such as the one open in the app), nor
    (unless `include_imported`) sessions that came from another tool."""
    stamp = fmt_ts(now)
    exempt = sorted(keep)
    marks = ",".join("?" * len(exempt))
    not_kept = f" AND id NOT IN ({marks})" if exempt else ""
    pool = "" if include_imported else " AND source IS NULL"
    fresh = fmt_ts(now - RECEIVED_GRACE)
    # Received in the last day: never moved (received_at is NULL for threadline's own).
    movable = f" AND pinned = 0 AND coalesce(received_at, '') < ?{pool}{not_kept}"
    age = "max(updated_at, coalesce(received_at, updated_at))"
    old = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM sessions WHERE deleted_at IS NULL{movable}"
            f" AND {age} < ? ORDER BY {age}, id",
            (fresh, *exempt, fmt_ts(now - retention)),
        )
    ]
    for session_id in old:
        conn.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", (stamp, session_id))
    total = conn.execute(
        f"SELECT count(*) FROM sessions WHERE deleted_at IS NULL{pool}"
    ).fetchone()[0]
    excess = max(0, total - max_sessions)
    over = []
    if excess:
        over = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM sessions WHERE deleted_at IS NULL{movable}"
                f" ORDER BY {age}, id LIMIT ?",
                (fresh, *exempt, excess),
            )
        ]
        for session_id in over:
            conn.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", (stamp, session_id))
    # Trash that has waited trash_days; sessions trashed just now are not expired yet.
    expired = sessions.expired_trash(conn, now - timedelta(days=trash_days))
    expired = [s for s in expired if s not in set(old) | set(over)]
    # Purged by the caller after this transaction, a few at a time (Store._purge_in_steps).
    result = CleanupResult(
        sessions_deleted=len(old) + len(over),
        by_retention=len(old),
        by_max_limit=len(over),
        purged=len(expired),
        dry_run=dry_run,
        trashed_ids=old + over,
        purged_ids=expired,
    )
    if dry_run:
        raise _DryRun(result)
    return result
