"""Session rows: create, read, list (keyset-paged), update, trash, restore, purge."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from threadline.models import Scope, Session, SessionCursor, SessionSummary
from threadline.store import liveness
from threadline.store import scope as scopes
from threadline.store import search as search_ops
from threadline.store.errors import AmbiguousIdError, NotFoundError, StoreError
from threadline.store.util import dump_json, fmt_ts, load_json, uuid7
from threadline.text import collapse_whitespace

# A reply whose writer has not checkpointed for this long is taken to have died with its process.
STALE_STREAM = timedelta(seconds=30)

# A session's status as shown: crashed as soon as its reply's writer is provably gone (see
# store/liveness.py), or once the heartbeat is 30 s old; computed at read time, so no reader
# ever needs the write lock to show it. The one parameter is the stale-before timestamp.
_STATUS = (
    "CASE WHEN heartbeat_at IS NOT NULL"
    " AND (heartbeat_at < ? OR threadline_writer_gone(stream_owner)) THEN 'crashed'"
    " ELSE status END"
)
STATUS_SQL = _STATUS
# Then the turn state: a turn under way (its heartbeat), and the role and stop reason of the
# last message (an index seek each per listed row), so a user message nobody answered, or a reply
# that failed part-way, shows as such; last, the tool an imported session came from (a column of
# the row itself: free).
SUMMARY_COLS = (
    "id, working_dir, title, preview, provider, model, {status}, pinned, created_at,"
    " updated_at, message_count, deleted_at, heartbeat_at IS NOT NULL,"
    " (SELECT role FROM messages WHERE messages.session_id = sessions.id"
    " ORDER BY messages.id DESC LIMIT 1),"
    " (SELECT stop_reason FROM messages WHERE messages.session_id = sessions.id"
    " ORDER BY messages.id DESC LIMIT 1), source"
)
FULL_COLS = SUMMARY_COLS + (
    ", system_prompt, ended_at, total_input_tokens, total_output_tokens, metadata"
)
_SUMMARY_FIELDS = (
    "id working_dir title preview provider model status pinned created_at updated_at"
    " message_count deleted_at writing last_role last_stop source"
).split()
_FULL_FIELDS = _SUMMARY_FIELDS + (
    "system_prompt ended_at total_input_tokens total_output_tokens metadata".split()
)


def summaries_from_rows(rows: list[Any]) -> list[SessionSummary]:
    """Rows of SUMMARY_COLS as records (a sidebar page)."""
    return [SessionSummary(**dict(zip(_SUMMARY_FIELDS, r, strict=True))) for r in rows]


def summary_from_row(row: tuple[Any, ...]) -> SessionSummary:
    return summaries_from_rows([row])[0]


def session_from_row(row: tuple[Any, ...]) -> Session:
    data = dict(zip(_FULL_FIELDS, row, strict=True))
    data["metadata"] = load_json(data["metadata"]) or {}
    return Session(**data)


def _title(title: str | None) -> str | None:
    """A title as kept: on one line (text.collapse_whitespace); blank is no title."""
    return None if title is None else collapse_whitespace(str(title)) or None


def _stale_before(now: datetime) -> str:
    return fmt_ts(now - STALE_STREAM)


def create_session(
    conn: sqlite3.Connection,
    now: datetime,
    working_dir: str,
    title: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    metadata: dict[str, Any] | None = None,
    project: tuple[str, str] | None = None,
) -> Session:
    session_id = uuid7(now)
    stamp = fmt_ts(now)
    title = _title(title)
    values = [
        session_id,
        working_dir,
        scopes.dir_tokens(working_dir),
        title,
        provider,
        model,
        system_prompt,
        stamp,
        stamp,
        dump_json(metadata or {}),
    ]
    cols = (
        "id, working_dir, dir_tokens, title, provider, model, system_prompt, created_at,"
        " updated_at, metadata"
    )
    if project is not None:  # the project's identity (sync): git remote, path inside it
        cols += ", project_remote, project_path"
        values += list(project)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks})", values)
    return require_session(conn, now, session_id)


def get_session(conn: sqlite3.Connection, now: datetime, session_id: str) -> Session | None:
    row = conn.execute(
        f"SELECT {FULL_COLS.format(status=_STATUS)} FROM sessions WHERE id = ?",
        (_stale_before(now), session_id),
    ).fetchone()
    return None if row is None else session_from_row(row)


def require_session(conn: sqlite3.Connection, now: datetime, session_id: str) -> Session:
    session = get_session(conn, now, session_id)
    if session is None:
        raise NotFoundError(f"no session with id {session_id}")
    return session


# Short ids. A UUIDv7 starts with its timestamp: 8 hex digits span 65 seconds, so sessions made
# in the same minute share them, and a prefix that is unique when printed stops being so as soon
# as another session is made nearby. The id's last group (12 hex digits) is random: the short
# id threadline prints is the start of that group, found through the sessions_id_tail index
# (substr(id, 25)), and stays unique as history grows (a clash needs two of 4 billion values to
# meet). Any prefix of a short id, of a whole id, or a whole id, resolves.
TAIL_START = 24  # where the last group starts in the 36-character form
TAIL_LENGTH = 12
_HEX = frozenset("0123456789abcdef")
_TAIL_IDS = "length(id) = 36 AND substr(id, 24, 1) = '-'"


def _dashed(compact: str) -> str:
    """Hex digits with the dashes of the canonical 8-4-4-4-12 form put back."""
    out = ""
    for i, ch in enumerate(compact):
        if i in (8, 12, 16, 20):
            out += "-"
        out += ch
    return out


def _normalise_prefix(prefix: str) -> str:
    compact = prefix.strip().lower().replace("-", "")
    if not compact or any(c not in _HEX for c in compact):
        raise NotFoundError(f"{prefix!r} is not a session id (ids are hexadecimal)")
    if len(compact) > 32:
        raise NotFoundError(f"{prefix!r} is not a session id (too long)")
    return _dashed(compact)


def _has_tail(session_id: str) -> bool:
    """Whether the id has the canonical UUID form (ids made here do; imported ones may not)."""
    return len(session_id) == 36 and session_id[TAIL_START - 1] == "-"


def _by_prefix(conn: sqlite3.Connection, canonical: str, limit: int = 6) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM sessions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        (canonical, canonical + "\uffff", limit),
    ).fetchall()
    return [r[0] for r in rows]


def _by_tail(conn: sqlite3.Connection, digits: str, limit: int = 6) -> list[str]:
    """Sessions whose id's last group starts with `digits` (an index range on sessions_id_tail)."""
    rows = conn.execute(
        "SELECT id FROM sessions WHERE substr(id, 25) >= ? AND substr(id, 25) < ?"
        f" AND {_TAIL_IDS} ORDER BY substr(id, 25) LIMIT ?",
        (digits, digits + "\uffff", limit),
    ).fetchall()
    return [r[0] for r in rows]


def resolve_session_id(conn: sqlite3.Connection, prefix: str) -> str:
    """The one session whose id, or whose short id, starts with `prefix` (trash included).

    `prefix` is a whole id (dashes optional), a prefix of one, or a short id (the start of the
    id's last group, as short_ids() prints it) or a prefix of that.
    """
    canonical = _normalise_prefix(prefix)
    by_prefix = _by_prefix(conn, canonical)
    if by_prefix and by_prefix[0] == canonical:
        return canonical  # a whole id
    found = dict.fromkeys(by_prefix)
    compact = canonical.replace("-", "")
    if len(compact) <= TAIL_LENGTH:
        found.update(dict.fromkeys(_by_tail(conn, compact)))
    if not found:
        raise NotFoundError(f"no session matches {prefix!r}")
    if len(found) > 1:
        raise AmbiguousIdError(prefix, sorted(short_form(i) for i in found))
    return next(iter(found))


def short_form(session_id: str, length: int = 32) -> str:
    return session_id.replace("-", "")[:length]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def short_ids(conn: sqlite3.Connection, ids: list[str], minimum: int = 8) -> dict[str, str]:
    """The short id to print for each session: the shortest start of the id's random last
    group (at least `minimum` hex digits) that names no other session, whether as the start of
    its last group or of its whole id. Ids not in the UUID form get their shortest unique
    prefix; the whole id (without dashes) when nothing shorter is unique."""
    result: dict[str, str] = {}
    for session_id in ids:
        if _has_tail(session_id):
            result[session_id] = _tail_short_id(conn, session_id, minimum)
        else:
            result[session_id] = _prefix_short_id(conn, session_id, minimum)
    return result


def _tail_short_id(conn: sqlite3.Connection, session_id: str, minimum: int) -> str:
    tail = session_id[TAIL_START:].lower()
    if any(c not in _HEX for c in tail):
        return _prefix_short_id(conn, session_id, minimum)
    for length in range(max(1, min(minimum, TAIL_LENGTH)), TAIL_LENGTH + 1):
        digits = tail[:length]
        others = [i for i in _by_tail(conn, digits, 2) if i != session_id]
        if not others:
            others = [i for i in _by_prefix(conn, _dashed(digits), 2) if i != session_id]
        if not others:
            return digits
    return short_form(session_id)


def _prefix_short_id(conn: sqlite3.Connection, session_id: str, minimum: int) -> str:
    """The shortest unique prefix of the id (at least `minimum` digits, no dashes)."""
    compact = short_form(session_id)
    longest = 0
    before = conn.execute(
        "SELECT id FROM sessions WHERE id < ? ORDER BY id DESC LIMIT 1", (session_id,)
    ).fetchone()
    after = conn.execute(
        "SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT 1", (session_id,)
    ).fetchone()
    for neighbour in (before, after):
        if neighbour is not None:
            longest = max(longest, _common_prefix(compact, short_form(neighbour[0])))
    return compact[: max(minimum, longest + 1)]


def list_sessions(
    conn: sqlite3.Connection,
    now: datetime,
    scope: Scope,
    root: str | None,
    limit: int | None,
    before: SessionCursor | None,
    query: str | None,
    trashed: bool,
    offset: int,
) -> list[SessionSummary]:
    cursor_sql, cursor_params = "", []
    if before is not None:
        cursor_sql = " AND (pinned, updated_at, id) < (?, ?, ?)"
        cursor_params = [int(before.pinned), fmt_ts(before.updated_at), before.id]
    page_sql, page_params = "", []
    if limit is not None:
        page_sql = " LIMIT ? OFFSET ?"
        page_params = [limit, offset]
    select = f"SELECT {SUMMARY_COLS.format(status=_STATUS)} FROM sessions"
    order = " ORDER BY pinned DESC, updated_at DESC, id DESC"
    stale = _stale_before(now)
    dirs = None
    if scope is Scope.WORKSPACE and root is not None and root != "/" and not trashed:
        dirs = workspace_dirs(conn, root)
    if dirs is not None:
        # One ordered index walk per directory of the workspace, merged (MERGE UNION ALL) and
        # cut at the page: the cost is the page, not the workspace's history.
        if not dirs:
            return []
        query_sql, query_params = _query_filter(conn, query, paged=True)
        arm = f"{select} WHERE working_dir = ? AND deleted_at IS NULL{query_sql}{cursor_sql}"
        sql = " UNION ALL ".join([arm] * len(dirs)) + order + page_sql
        params: list[Any] = []
        for directory in dirs:
            params += [stale, directory, *query_params, *cursor_params]
        rows = conn.execute(sql, [*params, *page_params]).fetchall()
        return summaries_from_rows(rows)
    where, where_params = _list_where(conn, scope, root, query, trashed, paged=True)
    sql = f"{select} WHERE {where}{cursor_sql}{order}{page_sql}"
    rows = conn.execute(sql, [stale, *where_params, *cursor_params, *page_params]).fetchall()
    return summaries_from_rows(rows)


# A workspace of more directories than this is listed with one filtered scan instead.
MAX_WORKSPACE_DIRS = 200


def workspace_dirs(conn: sqlite3.Connection, root: str) -> list[str] | None:
    """The directories at or under `root` that hold live sessions (None: too many to merge).

    Walks the directory index from one distinct value to the next (a seek each), so it costs
    the number of directories, not the number of sessions.
    """
    low, high = scopes.workspace_range(root)
    rows = conn.execute(
        "WITH RECURSIVE d(dir) AS ("
        " SELECT (SELECT min(working_dir) FROM sessions"
        "  WHERE working_dir >= ?1 AND working_dir < ?2 AND deleted_at IS NULL)"
        " UNION ALL"
        " SELECT (SELECT min(working_dir) FROM sessions"
        "  WHERE working_dir > d.dir AND working_dir < ?2 AND deleted_at IS NULL)"
        " FROM d WHERE d.dir IS NOT NULL LIMIT ?3)"
        " SELECT dir FROM d WHERE dir IS NOT NULL",
        (low, high, 4 * MAX_WORKSPACE_DIRS),
    ).fetchall()
    dirs = [r[0] for r in rows if scopes.in_workspace(r[0], root)]
    if len(rows) >= 4 * MAX_WORKSPACE_DIRS or len(dirs) > MAX_WORKSPACE_DIRS:
        return None
    return dirs


def _list_where(
    conn: sqlite3.Connection,
    scope: Scope,
    root: str | None,
    query: str | None,
    trashed: bool,
    paged: bool = False,
) -> tuple[str, list[Any]]:
    clause, params = scopes.sql_filter(scope, root)
    where = clause + (" AND deleted_at IS NOT NULL" if trashed else " AND deleted_at IS NULL")
    query_sql, query_params = _query_filter(conn, query, paged)
    return where + query_sql, [*params, *query_params]


# A filter matching more sessions than this is paged by walking the list in its order and
# testing each row (matches are dense: a page fills at once) rather than through the index.
FILTER_DENSE = 2000


def _query_filter(
    conn: sqlite3.Connection, query: str | None, paged: bool = False
) -> tuple[str, list[Any]]:
    """Sessions whose title or preview contains `query` (case-insensitive for ASCII) where a
    word starts.

    The title/preview index (search_sessions) finds the candidates: the text as a phrase, its
    last word a prefix; the LIKE then keeps those that hold the text exactly as typed. Text
    with nothing the index holds (punctuation only) is a LIKE scan, as before.
    """
    if not query:
        return "", []
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    like = "(title LIKE ? ESCAPE '\\' OR preview LIKE ? ESCAPE '\\')"
    match = search_ops.filter_match(conn, query) if search_ops.filter_ready(conn) else None
    if match is None or (paged and _matches_more(conn, match, FILTER_DENSE)):
        return f" AND {like}", [pattern, pattern]
    return (
        " AND id IN (SELECT k.session_id FROM search_sessions"
        " JOIN search_session_keys AS k ON k.rid = search_sessions.rowid"
        f" WHERE search_sessions MATCH ?) AND {like}",
        [match, pattern, pattern],
    )


def _matches_more(conn: sqlite3.Connection, match: str, n: int) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT rowid FROM search_sessions WHERE search_sessions MATCH ?"
        " LIMIT ?)",
        (match, n + 1),
    ).fetchone()
    return int(row[0]) > n


def count_sessions(
    conn: sqlite3.Connection, scope: Scope, root: str | None, query: str | None, trashed: bool
) -> int:
    if not query:
        # The per-directory counts (session_counts): one row per directory in the scope.
        clause, params = scopes.sql_filter(scope, root)
        column = "trashed" if trashed else "live"
        row = conn.execute(
            f"SELECT coalesce(sum({column}), 0) FROM session_counts WHERE {clause}", params
        ).fetchone()
        return int(row[0])
    where, params = _list_where(conn, scope, root, query, trashed)
    return int(conn.execute(f"SELECT count(*) FROM sessions WHERE {where}", params).fetchone()[0])


def newest_session_id(conn: sqlite3.Connection, working_dir: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT id, updated_at FROM sessions WHERE working_dir = ? AND deleted_at IS NULL"
        " ORDER BY updated_at DESC, id DESC LIMIT 1",
        (working_dir,),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def get_or_create_session(
    conn: sqlite3.Connection,
    now: datetime,
    working_dir: str,
    window: timedelta,
    create: dict[str, Any],
) -> tuple[Session, bool]:
    newest = newest_session_id(conn, working_dir)
    if newest is not None and newest[1] > fmt_ts(now - window):
        return require_session(conn, now, newest[0]), False
    return create_session(conn, now, working_dir, **create), True


_UPDATABLE = (
    "title",
    "status",
    "ended_at",
    "pinned",
    "model",
    "provider",
    "system_prompt",
    "metadata",
)


def update_session(
    conn: sqlite3.Connection, now: datetime, session_id: str, changes: dict[str, Any]
) -> Session:
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise StoreError(f"cannot update session field(s): {', '.join(sorted(unknown))}")
    require_session(conn, now, session_id)
    if not changes:
        return require_session(conn, now, session_id)
    values: list[Any] = []
    sets: list[str] = []
    for key, value in changes.items():
        if key == "status" and value not in ("active", "completed", "crashed"):
            raise StoreError(f"invalid session status {value!r}")
        if key == "ended_at" and value is not None:
            value = fmt_ts(value)
        if key == "pinned":
            value = int(bool(value))
        if key == "metadata":
            value = dump_json(value or {})
        if key == "title":
            value = _title(value)
        if key == "status":
            sets.append("heartbeat_at = NULL, stream_owner = NULL")
        sets.append(f"{key} = ?")
        values.append(value)
    conn.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", (*values, session_id))
    return require_session(conn, now, session_id)


def touch_session(conn: sqlite3.Connection, now: datetime, session_id: str) -> None:
    cur = conn.execute(
        "UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?",
        (fmt_ts(now), session_id),
    )
    if cur.rowcount == 0:
        raise NotFoundError(f"no session with id {session_id}")


def trash_session(conn: sqlite3.Connection, now: datetime, session_id: str) -> bool:
    cur = conn.execute(
        "UPDATE sessions SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
        (fmt_ts(now), session_id),
    )
    return cur.rowcount > 0


def restore_session(conn: sqlite3.Connection, session_id: str) -> bool:
    cur = conn.execute(
        "UPDATE sessions SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL",
        (session_id,),
    )
    return cur.rowcount > 0


def purge_session(conn: sqlite3.Connection, session_id: str) -> bool:
    # The sessions_bd trigger removes messages and summaries first, keeping the FTS index exact;
    # memories keep their facts with the session link cleared (ON DELETE SET NULL).
    cur = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    return cur.rowcount > 0


# Purging in steps: a step deletes at most this many messages of a session (with their index
# entries, ~0.1-0.3 ms each) and stops taking sessions after PURGE_STEP_SECONDS.
PURGE_CHUNK = 2000
PURGE_STEP_SECONDS = 0.3


def purge_step(
    conn: sqlite3.Connection, ids: list[str], now: datetime, trashed_only: bool
) -> tuple[list[str], list[str]]:
    """Purge sessions from `ids` in one short write transaction: returns (purged, left).

    A session with more than PURGE_CHUNK messages loses them a chunk per step; it is moved to
    the trash first (it is going anyway), so a crash between steps leaves a session in the
    trash, which the next purge of the trash finishes. With `trashed_only`, a session restored
    from the trash meanwhile is left alone (and not reported as purged).
    """
    import time

    started = time.perf_counter()
    purged: list[str] = []
    left = list(ids)
    while left and time.perf_counter() - started < PURGE_STEP_SECONDS:
        session_id = left[0]
        row = conn.execute(
            "SELECT deleted_at, message_count FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None or (trashed_only and row[0] is None):
            left.pop(0)
            continue
        if int(row[1]) > PURGE_CHUNK:
            if row[0] is None:
                conn.execute(
                    "UPDATE sessions SET deleted_at = ? WHERE id = ?", (fmt_ts(now), session_id)
                )
            conn.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE session_id = ?"
                " ORDER BY id DESC LIMIT ?)",
                (session_id, PURGE_CHUNK),
            )
            return purged, left  # one chunk is a step
        purge_session(conn, session_id)
        purged.append(left.pop(0))
    return purged, left


def expired_trash(conn: sqlite3.Connection, cutoff: datetime) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM sessions WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY id",
        (fmt_ts(cutoff),),
    ).fetchall()
    return [r[0] for r in rows]


def all_trash(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM sessions WHERE deleted_at IS NOT NULL ORDER BY id"
    ).fetchall()
    return [r[0] for r in rows]


def beat(conn: sqlite3.Connection, now: datetime, session_id: str) -> None:
    """A turn is under way in this session: its heartbeat, and who is writing it."""
    conn.execute(
        "UPDATE sessions SET heartbeat_at = ?, stream_owner = ?, status = 'active' WHERE id = ?",
        (fmt_ts(now), liveness.owner_of(conn), session_id),
    )


def end_beat(conn: sqlite3.Connection, session_id: str, *, own_only: bool = False) -> None:
    """The turn in this session is over (its reply finalised, failed or cancelled).

    With `own_only`, only a turn this connection's store was writing is ended (an assistant
    message added by one writer does not end another writer's turn).
    """
    row = conn.execute("SELECT heartbeat_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None or row[0] is None:
        return  # no turn under way: nothing to write
    sql = "UPDATE sessions SET heartbeat_at = NULL, stream_owner = NULL WHERE id = ?"
    params: tuple[Any, ...] = (session_id,)
    if own_only:
        sql += " AND stream_owner = ?"
        params += (liveness.owner_of(conn),)
    conn.execute(sql, params)


def dead_streams(conn: sqlite3.Connection, now: datetime, *, cautious: bool) -> list[str]:
    """Sessions whose turn's writer died.

    Cautious (what opening and ordinary writes use): the writer is provably gone, or its
    heartbeat is stale and it cannot be proved alive. Otherwise (`recover_interrupted`): gone
    or stale.
    """
    rows = conn.execute(
        "SELECT id, heartbeat_at, stream_owner FROM sessions WHERE heartbeat_at IS NOT NULL"
    ).fetchall()
    stale = _stale_before(now)
    dead = []
    for session_id, heartbeat_at, owner in rows:
        state = liveness.writer_state(owner)
        if state == "gone" or (heartbeat_at < stale and not (cautious and state == "alive")):
            dead.append(session_id)
    return dead


def mark_dead(conn: sqlite3.Connection, session_ids: list[str]) -> list[str]:
    """Mark these sessions crashed and close their unfinished replies as interrupted."""
    for session_id in session_ids:
        conn.execute(
            "UPDATE messages SET stop_reason = 'interrupted'"
            " WHERE session_id = ? AND complete = 0 AND stop_reason IS NULL",
            (session_id,),
        )
        conn.execute(
            "UPDATE sessions SET status = 'crashed', heartbeat_at = NULL, stream_owner = NULL"
            " WHERE id = ?",
            (session_id,),
        )
    return session_ids


def mark_stale_streams(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Sessions whose reply writer is gone or stopped checkpointing: mark them crashed."""
    return mark_dead(conn, dead_streams(conn, now, cautious=False))


def settle_streams(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Run inside every write: record as crashed the turns whose writers died (cautiously)."""
    return mark_dead(conn, dead_streams(conn, now, cautious=True))


def try_settle_streams(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """On open: settle dead turns only if the write lock is free this instant.

    Looked for first without a transaction (usually there is none, and nothing is locked);
    when there is one, one attempt at the lock with no waiting, given up at once if another
    process holds it: the status is computed at read time anyway, and the next write settles it.
    """
    if not dead_streams(conn, now, cautious=True):
        return []
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return []
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    try:
        ids = settle_streams(conn, now)
        conn.execute("COMMIT")
        return ids
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def patch_session_metadata(
    conn: sqlite3.Connection, now: datetime, session_id: str, patch: dict[str, Any]
) -> Session:
    """Merge `patch` into the session's metadata (JSON merge patch: a None value removes a key),
    in SQL, so writers of different keys never undo each other's changes."""
    cur = conn.execute(
        "UPDATE sessions SET metadata = json_patch(metadata, ?) WHERE id = ?",
        (dump_json(patch), session_id),
    )
    if cur.rowcount == 0:
        raise NotFoundError(f"no session with id {session_id}")
    return require_session(conn, now, session_id)


def get_session_summaries(
    conn: sqlite3.Connection, now: datetime, session_ids: list[str]
) -> list[SessionSummary]:
    """The list rows of these sessions (trash included; missing ids left out), any order."""
    select = f"SELECT {SUMMARY_COLS.format(status=_STATUS)} FROM sessions"
    rows: list[Any] = []
    for start in range(0, len(session_ids), 500):
        chunk = session_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows += conn.execute(
            f"{select} WHERE id IN ({marks})", (_stale_before(now), *chunk)
        ).fetchall()
    return summaries_from_rows(rows)
