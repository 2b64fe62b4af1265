"""Writing prepared batches into the current transaction: find, create, grow, replace, mark.

A session is found by (source, source_id); a new one is created with its deterministic id; a
message is found by its key (message_keys): new keys are appended, a present key whose stored
form changed is replaced in place, an identical one left alone, and a key whose message was
deleted since stays deleted. Summaries are placed by the ids of their keys' messages. A file
mark is saved in the same transaction as what was read. With a DryState the same decisions are
made against the database as it stands plus what the dry run has "written" so far, and nothing
is written. Inserts go through transfer/bulk.py (the index and counters done in bulk).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from threadline.records import FileMark
from threadline.store import scope as scopes
from threadline.store.errors import StoreError
from threadline.store.transfer.batches import INSERT_COLS, VALUE_COLS, Msg, Part, row_hash
from threadline.store.transfer.bulk import Bulk
from threadline.store.transfer.pipe import Gate
from threadline.store.util import dump_json

IMPORTED_TITLE = "imported_title"  # metadata: the title an import set last

_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(INSERT_COLS)}) VALUES ({', '.join('?' * len(INSERT_COLS))})"
)
_UPDATE_MESSAGE = f"UPDATE messages SET {', '.join(f'{c} = ?' for c in VALUE_COLS)} WHERE id = ?"
_CONTENT = VALUE_COLS.index("content")

# Rows inserted, for a side index (transfer/side_index.py): ids, texts, directory tokens.
Fed = tuple[list[int], list[str], list[str]]


def read_marks(conn: sqlite3.Connection, source: str) -> dict[str, FileMark]:
    rows = conn.execute(
        "SELECT path, source, size, mtime_ns, offset, fingerprint, state FROM source_files"
        " WHERE source = ?",
        (source,),
    )
    return {
        path: FileMark(path, src, size, mtime_ns, offset, fingerprint, json.loads(state))
        for path, src, size, mtime_ns, offset, fingerprint, state in rows
    }


@dataclass
class Result:
    """What writing one part did."""

    session_id: str | None = None  # None: no session was involved (a lone mark, an ignored title)
    existed: bool = False  # the session was there before this part
    changed: bool = False
    added: int = 0
    replaced: int = 0
    summaries: int = 0
    titled: bool = False
    marked: bool = False
    index_seconds: float = 0.0  # the transaction's bulk work (on its last result)


@dataclass
class DryState:
    """What a dry run has "written" so far, so later batches see it as a real run would."""

    sessions: dict[tuple[str, str], tuple[str, str | None, dict[str, Any]]] = field(
        default_factory=dict
    )  # (source, source_id) -> (id, title, metadata)
    keys: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    next_id: int = -1  # ids handed out (negative: never a real one)
    summaries: set[tuple[str, int, int, str]] = field(default_factory=set)


def write_parts(
    conn: sqlite3.Connection,
    parts: list[Part],
    now: str,
    dry: DryState | None,
    deadline: float | None = None,
    gate: Gate | None = None,
    fed: Fed | None = None,
) -> list[Result]:
    """Write parts in the current transaction (or, with `dry`, only work out what would be).

    Past `deadline` (a perf_counter time) no further part is started: the results say how
    many were written, and the caller keeps the others for the next transaction. With `fed`,
    the new messages' ids, texts and directory tokens are added to it (for a side index).
    """
    bulk = LazyBulk(conn, gate, fed)
    results = []
    for part in parts:
        results.append(_write_part(conn, part, bulk, now, dry))
        if deadline is not None and time.perf_counter() > deadline:
            break
    bulk.finish()
    if results:
        results[-1].index_seconds = bulk.seconds
    return results


class LazyBulk:
    """Triggers are suspended only in a transaction that inserts rows (see transfer/bulk.py).

    With a gate (pipe.Gate), the reading thread is let go while the bulk work runs in C.
    """

    def __init__(
        self, conn: sqlite3.Connection, gate: Gate | None = None, fed: Fed | None = None
    ) -> None:
        self.conn = conn
        self.gate = gate
        self.fed = fed
        self.bulk: Bulk | None = None
        self.seconds = 0.0

    def get(self) -> Bulk:
        if self.bulk is None:
            self.bulk = Bulk(self.conn)
        return self.bulk

    def before_change(self, table: str, rowid: int) -> None:
        """About to update a row: do the insert work still pending for it first."""
        if self.bulk is not None and self.bulk.touches(table, rowid):
            self.finish()
            if self.gate is not None:
                self.gate.busy()

    def finish(self) -> None:
        if self.gate is not None:
            self.gate.free()
        if self.bulk is not None:
            self.bulk.finish()
            self.seconds += self.bulk.seconds
            self.bulk = None


@dataclass
class _Found:
    """A session already in the database (or "written" by this dry run)."""

    id: str
    rowid: int
    title: str | None
    metadata: dict[str, Any]
    model: str | None
    system_prompt: str | None


def _find_session(conn: sqlite3.Connection, part: Part, dry: DryState | None) -> _Found | None:
    batch = part.batch
    row = conn.execute(
        "SELECT id, rowid, title, metadata, model, system_prompt FROM sessions"
        " WHERE source = ? AND source_id = ?",
        (batch.source, batch.source_id),
    ).fetchone()
    staged = None if dry is None else dry.sessions.get((batch.source, batch.source_id))
    if row is not None:
        found = _Found(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])
        if staged is not None:
            found.title, found.metadata = staged[1], staged[2]
        return found
    if staged is not None:
        head = part.head
        return _Found(staged[0], 0, staged[1], staged[2], head["model"], head["system_prompt"])
    return None


def _save_mark(conn: sqlite3.Connection, mark: tuple[Any, ...], now: str) -> None:
    conn.execute(
        "INSERT INTO source_files (path, source, size, mtime_ns, offset, fingerprint, state,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
        " source = excluded.source, size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " offset = excluded.offset, fingerprint = excluded.fingerprint, state = excluded.state,"
        " updated_at = excluded.updated_at",
        (*mark, now),
    )


def _write_part(
    conn: sqlite3.Connection,
    part: Part,
    bulk: LazyBulk,
    now: str,
    dry: DryState | None,
) -> Result:
    result = Result()
    found = _find_session(conn, part, dry)
    if part.title_only or (found is None and not part.messages):
        # A title for a session loaded earlier (or not at all: then nothing), or a mark alone.
        if found is not None:
            result.titled = _retitle(conn, part, found, bulk, dry)
        if part.mark is not None:
            result.marked = True
            if dry is None:
                _save_mark(conn, part.mark, now)
        return result
    if found is None:
        sid = _create(conn, part, bulk, now, dry)
        present: dict[str, tuple[int, int | None, bool]] = {}
    else:
        sid = found.id
        result.existed = True
        result.titled = _retitle(conn, part, found, bulk, dry)
        _fill(conn, part, found, bulk, dry)
        present = _present_keys(conn, sid, [m.key for m in part.messages], dry)
    result.session_id = sid
    ids: dict[str, int] = {}  # key -> message id, for summaries
    new: list[Msg] = []
    for msg in part.messages:
        known = present.get(msg.key)
        if known is None:
            new.append(msg)
            continue
        message_id, stored_hash, exists = known
        ids[msg.key] = message_id
        if not exists:
            continue  # deleted since it was imported: it stays deleted
        if stored_hash is None:
            stored_hash = _stored_hash(conn, message_id, sid, msg.key, dry)
        if stored_hash != msg.hash:
            result.replaced += 1
            if dry is None:
                bulk.before_change("messages", message_id)
                conn.execute(_UPDATE_MESSAGE, (*msg.values, message_id))
                conn.execute(
                    "UPDATE message_keys SET hash = ? WHERE session_id = ? AND key = ?",
                    (msg.hash, sid, msg.key),
                )
    if new:
        _insert(conn, sid, new, ids, bulk, dry)
        result.added = len(new)
    for content, first, last, at, model in part.summaries:
        first_id = ids.get(first) or _key_id(conn, sid, first, dry)
        last_id = ids.get(last) or _key_id(conn, sid, last, dry)
        if first_id is None or last_id is None:
            missing = first if first_id is None else last
            raise StoreError(
                f"{part.label}: a summary stands for message {missing}, which was never loaded"
            )
        if last_id < first_id:
            first_id, last_id = last_id, first_id
        if _has_summary(conn, sid, first_id, last_id, content, dry):
            continue
        result.summaries += 1
        if dry is None:
            pending = bulk.get()
            cur = conn.execute(
                "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
                " token_count, model, created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (sid, content, first_id, last_id, model, at),
            )
            assert cur.lastrowid is not None
            pending.added_rowid("summaries", cur.lastrowid)
        else:
            dry.summaries.add((sid, first_id, last_id, content))
    if part.mark is not None:
        result.marked = True
        if dry is None:
            _save_mark(conn, part.mark, now)
    result.changed = bool(result.added or result.replaced or result.summaries)
    return result


def _create(
    conn: sqlite3.Connection, part: Part, bulk: LazyBulk, now: str, dry: DryState | None
) -> str:
    sid = part.session_id
    taken = conn.execute("SELECT source, source_id FROM sessions WHERE id = ?", (sid,)).fetchone()
    if taken is not None:
        raise StoreError(
            f"{part.label}: its id {sid} is already used by another session"
            f" ({taken[0] or 'threadline'} {taken[1] or ''})".rstrip()
        )
    head = part.head
    metadata = dict(part.metadata)
    if head["title"]:
        metadata[IMPORTED_TITLE] = head["title"]
    if dry is not None:
        dry.sessions[(part.batch.source, part.batch.source_id)] = (sid, head["title"], metadata)
        dry.keys[sid] = {}
        return sid
    project = head["project"] or (None, None)
    values = {
        "id": sid,
        "working_dir": head["working_dir"],
        "dir_tokens": scopes.dir_tokens(head["working_dir"]),
        "title": head["title"],
        "model": head["model"],
        "system_prompt": head["system_prompt"],
        "created_at": head["created_at"],
        "updated_at": head["created_at"],  # the counters move it to the last message
        "metadata": dump_json(metadata, "metadata"),
        "source": part.batch.source,
        "source_id": part.batch.source_id,
        "received_at": now,
        "project_remote": project[0],
        "project_path": project[1],
    }
    pending = bulk.get()
    cur = conn.execute(
        f"INSERT INTO sessions ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    assert cur.lastrowid is not None
    pending.added_rowid("sessions", cur.lastrowid)
    return sid


def _retitle(
    conn: sqlite3.Connection, part: Part, found: _Found, bulk: LazyBulk, dry: DryState | None
) -> bool:
    """Give a present session the batch's title, unless the person has renamed it."""
    sid, title, metadata = found.id, found.title, found.metadata
    wanted = part.head["title"]
    if not wanted or wanted == title:
        return False
    if title is not None and title != metadata.get(IMPORTED_TITLE):
        return False  # renamed by the person: theirs stays
    metadata = {**metadata, IMPORTED_TITLE: wanted}
    found.title, found.metadata = wanted, metadata
    if dry is not None:
        dry.sessions[(part.batch.source, part.batch.source_id)] = (sid, wanted, metadata)
        return True
    bulk.before_change("sessions", found.rowid)
    conn.execute(
        "UPDATE sessions SET title = ?, metadata = ? WHERE id = ?",
        (wanted, dump_json(metadata, "metadata"), sid),
    )
    return True


def _fill(
    conn: sqlite3.Connection, part: Part, found: _Found, bulk: LazyBulk, dry: DryState | None
) -> None:
    """Fill a present session's missing model and system prompt; merge its metadata."""
    if dry is not None:
        return
    sid, model, system_prompt = found.id, found.model, found.system_prompt
    current = found.metadata
    merged = {**current, **part.metadata}
    sets, values = [], []
    if merged != current:
        sets.append("metadata = ?")
        values.append(dump_json(merged, "metadata"))
    if model is None and part.head["model"]:
        sets.append("model = ?")
        values.append(part.head["model"])
    if system_prompt is None and part.head["system_prompt"]:
        sets.append("system_prompt = ?")
        values.append(part.head["system_prompt"])
    if sets:
        bulk.before_change("sessions", found.rowid)
        conn.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", (*values, sid))
        found.metadata = merged


def _present_keys(
    conn: sqlite3.Connection, sid: str, keys: list[str], dry: DryState | None
) -> dict[str, tuple[int, int | None, bool]]:
    """key -> (message id, stored hash, whether the message still exists), for present keys."""
    present: dict[str, tuple[int, int | None, bool]] = {}
    if keys:
        for key, message_id, stored_hash, exists in conn.execute(
            "SELECT k.key, k.message_id, k.hash, EXISTS (SELECT 1 FROM messages AS m"
            " WHERE m.id = k.message_id AND m.session_id = k.session_id)"
            " FROM message_keys AS k WHERE k.session_id = ?"
            " AND k.key IN (SELECT value FROM json_each(?))",
            (sid, json.dumps(keys)),
        ):
            present[key] = (message_id, stored_hash, bool(exists))
    if dry is not None:
        for key, (message_id, digest) in dry.keys.get(sid, {}).items():
            present[key] = (message_id, digest, True)
    return present


def _stored_hash(
    conn: sqlite3.Connection, message_id: int, sid: str, key: str, dry: DryState | None
) -> int:
    """The hash of a stored message (computed once, then kept with its key)."""
    row = conn.execute(
        f"SELECT {', '.join(VALUE_COLS)} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    digest = row_hash(tuple(row))
    if dry is None:
        conn.execute(
            "UPDATE message_keys SET hash = ? WHERE session_id = ? AND key = ?",
            (digest, sid, key),
        )
    return digest


def _insert(
    conn: sqlite3.Connection,
    sid: str,
    new: list[Msg],
    ids: dict[str, int],
    bulk: LazyBulk,
    dry: DryState | None,
) -> None:
    if dry is not None:
        keys = dry.keys.setdefault(sid, {})
        for msg in new:
            ids[msg.key] = dry.next_id
            keys[msg.key] = (dry.next_id, msg.hash)
            dry.next_id -= 1
        return
    pending = bulk.get()  # before the inserts: the triggers it takes over must not fire
    conn.executemany(_INSERT_MESSAGE, [(sid, *msg.values) for msg in new])
    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    first = last - len(new) + 1
    # AUTOINCREMENT hands out consecutive ids inside one transaction; check it all the same.
    counted = conn.execute(
        "SELECT count(*) FROM messages WHERE id BETWEEN ? AND ? AND session_id = ?",
        (first, last, sid),
    ).fetchone()[0]
    if counted != len(new):  # pragma: no cover - a trigger inserting messages would do this
        raise StoreError("messages were not given consecutive ids; nothing was imported")
    pending.added("messages", first, last)
    for offset, msg in enumerate(new):
        ids[msg.key] = first + offset
    conn.executemany(
        "INSERT INTO message_keys (session_id, key, message_id, hash) VALUES (?, ?, ?, ?)",
        [(sid, msg.key, first + offset, msg.hash) for offset, msg in enumerate(new)],
    )
    if bulk.fed is not None:
        tokens = conn.execute("SELECT dir_tokens FROM sessions WHERE id = ?", (sid,)).fetchone()
        fed_ids, fed_texts, fed_dirs = bulk.fed
        fed_ids.extend(range(first, last + 1))
        fed_texts.extend(msg.values[_CONTENT] for msg in new)
        fed_dirs.extend([tokens[0]] * len(new))


def _key_id(conn: sqlite3.Connection, sid: str, key: str, dry: DryState | None) -> int | None:
    if dry is not None and key in dry.keys.get(sid, {}):
        return dry.keys[sid][key][0]
    row = conn.execute(
        "SELECT message_id FROM message_keys WHERE session_id = ? AND key = ?", (sid, key)
    ).fetchone()
    return None if row is None else int(row[0])


def _has_summary(
    conn: sqlite3.Connection, sid: str, first: int, last: int, content: str, dry: DryState | None
) -> bool:
    if dry is not None and (sid, first, last, content) in dry.summaries:
        return True
    return (
        conn.execute(
            "SELECT 1 FROM summaries WHERE session_id = ? AND first_message_id = ?"
            " AND last_message_id = ? AND content = ?",
            (sid, first, last, content),
        ).fetchone()
        is not None
    )
