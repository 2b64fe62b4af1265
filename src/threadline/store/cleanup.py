"""Retention: move old sessions, then the oldest beyond the limit, to the trash; purge old trash."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from threadline.models import CleanupResult
from threadline.store import sessions
from threadline.store.util import fmt_ts


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
) -> CleanupResult:
    """Never touches pinned sessions or those in `keep` (such as the one open in the app)."""
    stamp = fmt_ts(now)
    exempt = sorted(keep)
    marks = ",".join("?" * len(exempt))
    not_kept = f" AND id NOT IN ({marks})" if exempt else ""
    old = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM sessions WHERE deleted_at IS NULL AND pinned = 0"
            f" AND updated_at < ?{not_kept} ORDER BY updated_at, id",
            (fmt_ts(now - retention), *exempt),
        )
    ]
    for session_id in old:
        conn.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", (stamp, session_id))
    total = conn.execute("SELECT count(*) FROM sessions WHERE deleted_at IS NULL").fetchone()[0]
    excess = max(0, total - max_sessions)
    over = []
    if excess:
        over = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM sessions WHERE deleted_at IS NULL AND pinned = 0"
                f"{not_kept} ORDER BY updated_at, id LIMIT ?",
                (*exempt, excess),
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
