"""The store's side of sync: this machine's changes as journal records, other machines' applied.

Capture is done by SQL triggers (migration 0003) into `sync_outbox`, so every writer is covered.
`render` turns outbox rows (or, after `sync init`, a snapshot of everything already stored) into
numbered records kept in `sync_pending` until the sync code has appended them to this machine's
journal file. `apply` writes records of other machines, in short transactions that also move the
per-file progress markers, so a crash leaves the database either before or after a batch.

Identity: sessions have global ids (UUIDv7, or the loader's deterministic ids); a message,
summary or memory made here is `<machine id>:<local id>`, and a row that came from elsewhere (or
whose local id changed) has its uid in `sync_ids`.

Rules (the same on every machine, whatever order records arrive in):
- A session's fields, and a memory's, are last-writer-wins per field, by (time, machine id).
- A purge (session) or delete (memory, or messages removed by compaction) is final: a tombstone
  is kept and any record about that row, older or newer, is ignored.
- Messages of a session are kept in (created_at, uid) order, which is also local id order: a
  message that arrives late and belongs before messages already stored gets the next id, and the
  messages after it move to newer ids (references to them follow).
- A message (or summary) identical to one the session holds (same time, role and text) is the
  same message imported on two machines: its uid becomes an alias of the local row.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from threadline.store import scope as scopes
from threadline.store.project import join, project_of
from threadline.store.sessions import _title as one_line
from threadline.store.transfer.bulk import (
    Bulk,
    Checkpointer,
    TriggerPlan,
    messages_index_step,
    pause_autocheckpoint,
    plan_triggers,
)
from threadline.store.util import fmt_ts

FORMAT_VERSION = 1

# Session fields that sync, last-writer-wins each.
SESSION_FIELDS = (
    "title",
    "pinned",
    "deleted_at",
    "status",
    "ended_at",
    "model",
    "provider",
    "system_prompt",
)
MESSAGE_FIELDS = (
    "role",
    "content",
    "payload",
    "created_at",
    "input_tokens",
    "output_tokens",
    "model",
    "stop_reason",
    "response_ms",
    "complete",
)
MEMORY_FIELDS = ("fact", "category", "importance", "superseded_by")
_CREATED = MESSAGE_FIELDS.index("created_at")
# A directory's search scope tokens (hashes of it and its parents), for the sessions of a
# catch-up: they come many to a directory.
_dir_tokens = functools.lru_cache(maxsize=1024)(scopes.dir_tokens)
_COMPLETE = MESSAGE_FIELDS.index("complete")
# Metadata keys that hold local ids or local bookkeeping: never journalled.
LOCAL_METADATA = ("memory_watermark",)

SNAPSHOT_PHASES = ("sessions", "messages", "summaries", "memories")

# Applying many messages, the per-row insert triggers (the full-text index, the session's
# counters) would cost most of the time. A batch with at least BULK_MIN message records inserts
# them through transfer/bulk.py, as the importers do: the triggers it knows are suspended and
# their work done in one statement each for the rows inserted (a changed trigger it does not
# understand keeps firing per row: slower, never wrong). Fewer messages: the triggers fire.
BULK_MIN = 64


# ---------------------------------------------------------------------- state


@dataclass
class SyncState:
    machine_id: str
    capture: bool
    next_seq: int
    repo_dir: str | None
    remote: str | None
    snapshot: dict[str, Any] | None
    last_sync_at: str | None
    last_error: str | None
    outbox: int = 0
    pending: int = 0


def get_state(conn: sqlite3.Connection) -> SyncState:
    row = conn.execute(
        "SELECT machine_id, capture, next_seq, repo_dir, remote, snapshot, last_sync_at,"
        " last_error FROM sync_state WHERE id = 1"
    ).fetchone()
    outbox = conn.execute("SELECT count(*) FROM sync_outbox").fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM sync_pending").fetchone()[0]
    return SyncState(
        machine_id=row[0],
        capture=bool(row[1]),
        next_seq=row[2],
        repo_dir=row[3],
        remote=row[4],
        snapshot=json.loads(row[5]) if row[5] else None,
        last_sync_at=row[6],
        last_error=row[7],
        outbox=outbox,
        pending=pending,
    )


def machine_id(conn: sqlite3.Connection) -> str:
    return str(conn.execute("SELECT machine_id FROM sync_state WHERE id = 1").fetchone()[0])


def _new_snapshot(conn: sqlite3.Connection) -> str:
    """A cursor over what is stored now; what changes later reaches the outbox instead."""
    upto = {
        phase: conn.execute(
            f"SELECT coalesce(max(rowid), 0) FROM {'messages' if phase == 'messages' else phase}"
        ).fetchone()[0]
        for phase in SNAPSHOT_PHASES
    }
    return json.dumps({"phase": SNAPSHOT_PHASES[0], "after": 0, "upto": upto})


def enable(conn: sqlite3.Connection, repo_dir: str, remote: str) -> SyncState:
    """Start journalling: everything stored so far is published first (a snapshot)."""
    conn.execute(
        "UPDATE sync_state SET capture = 1, repo_dir = ?, remote = ?, snapshot = ? WHERE id = 1",
        (repo_dir, remote, _new_snapshot(conn)),
    )
    # The snapshot covers what the outbox holds; files written for another repository are moot.
    conn.execute("DELETE FROM sync_outbox")
    conn.execute("DELETE FROM sync_pending")
    conn.execute("DELETE FROM sync_files")
    return get_state(conn)


def disable(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE sync_state SET capture = 0, repo_dir = NULL, remote = NULL, snapshot = NULL"
        " WHERE id = 1"
    )
    conn.execute("DELETE FROM sync_outbox")
    conn.execute("DELETE FROM sync_pending")


def record_result(conn: sqlite3.Connection, now: datetime, error: str | None) -> None:
    if error is None:
        conn.execute(
            "UPDATE sync_state SET last_sync_at = ?, last_error = NULL WHERE id = 1",
            (fmt_ts(now),),
        )
    else:
        conn.execute("UPDATE sync_state SET last_error = ? WHERE id = 1", (error,))


def restart_snapshot(conn: sqlite3.Connection) -> None:
    """Publish everything again (this machine's journal files were lost)."""
    conn.execute("UPDATE sync_state SET snapshot = ? WHERE id = 1", (_new_snapshot(conn),))


# ---------------------------------------------------------------------- ids


def uid_of(conn: sqlite3.Connection, me: str, kind: str, local: int) -> str:
    row = conn.execute(
        "SELECT uid FROM sync_ids WHERE kind = ? AND local = ? ORDER BY uid LIMIT 1", (kind, local)
    ).fetchone()
    return str(row[0]) if row else f"{me}:{local}"


def local_of(conn: sqlite3.Connection, me: str, kind: str, uid: str) -> int | None:
    """The local id a uid names (not checked to exist), or None."""
    row = conn.execute(
        "SELECT local FROM sync_ids WHERE kind = ? AND uid = ?", (kind, uid)
    ).fetchone()
    if row is not None:
        return int(row[0])
    prefix, _, number = uid.partition(":")
    if prefix == me and number.isdigit():
        local = int(number)
        # A row that moved here holds another uid; its own number is not this uid.
        taken = conn.execute(
            "SELECT 1 FROM sync_ids WHERE kind = ? AND local = ?", (kind, local)
        ).fetchone()
        return None if taken else local
    return None


def uid_key(uid: str) -> tuple[str, int, str]:
    """Sort key of a uid: by machine, then numerically by local id."""
    prefix, _, rest = uid.partition(":")
    return (prefix, len(rest), rest)


# ---------------------------------------------------------------------- render


def _session_record(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, created_at, updated_at, working_dir, project_remote, project_path, title,"
        " provider, model, system_prompt, status, pinned, deleted_at, ended_at, metadata"
        " FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return None
    keys = (
        "id created_at updated_at working_dir project_remote project_path title provider model"
        " system_prompt status pinned deleted_at ended_at metadata"
    ).split()
    record = dict(zip(keys, row, strict=True))
    if record["project_remote"] is None:
        # Sessions written by the bulk loader (or before the sync migration)
        # learn their project here.
        project = project_of(record["working_dir"])
        if project is not None:
            record["project_remote"], record["project_path"] = project.remote, project.path
            conn.execute(
                "UPDATE sessions SET project_remote = ?, project_path = ? WHERE id = ?",
                (project.remote, project.path, session_id),
            )
    metadata = json.loads(record["metadata"] or "{}")
    for key in LOCAL_METADATA:
        metadata.pop(key, None)
    record["metadata"] = metadata
    record["pinned"] = bool(record["pinned"])
    return {"op": "session", **record}


_INSERT_MESSAGE = (
    f"INSERT INTO messages (session_id, {', '.join(MESSAGE_FIELDS)})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_MESSAGE_SELECT = (
    "SELECT id, session_id, role, content, payload, created_at, input_tokens, output_tokens,"
    " model, stop_reason, response_ms, complete FROM messages"
)


def _message_record(conn: sqlite3.Connection, me: str, row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(("id", "session", *MESSAGE_FIELDS), row, strict=True))
    record["uid"] = uid_of(conn, me, "m", record.pop("id"))
    record["complete"] = bool(record["complete"])
    return {"op": "message", **record}


def _message_row(conn: sqlite3.Connection, me: str, local: int) -> tuple[Any, ...] | None:
    row = conn.execute(f"{_MESSAGE_SELECT} WHERE id = ?", (local,)).fetchone()
    if row is None:
        # It may have moved to a newer id (a message from elsewhere was placed before it).
        moved = conn.execute(
            "SELECT local FROM sync_ids WHERE kind = 'm' AND uid = ?", (f"{me}:{local}",)
        ).fetchone()
        if moved is not None:
            row = conn.execute(f"{_MESSAGE_SELECT} WHERE id = ?", (moved[0],)).fetchone()
    return row


def _summary_record(conn: sqlite3.Connection, me: str, local: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT session_id, content, first_message_id, last_message_id, token_count, model,"
        " created_at FROM summaries WHERE id = ?",
        (local,),
    ).fetchone()
    if row is None:
        return None
    session_id, content, first, last, tokens, model, created_at = row

    def at(message_id: int) -> str | None:
        found = conn.execute(
            "SELECT created_at FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return None if found is None else str(found[0])

    return {
        "op": "summary",
        "uid": uid_of(conn, me, "y", local),
        "session": session_id,
        "content": content,
        "first": uid_of(conn, me, "m", first),
        "last": uid_of(conn, me, "m", last),
        "first_at": at(first),
        "last_at": at(last),
        "token_count": tokens,
        "model": model,
        "created_at": created_at,
    }


def _memory_record(conn: sqlite3.Connection, me: str, local: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT working_dir, session_id, source_message_id, fact, category, importance,"
        " superseded_by, is_manual, created_at FROM memories WHERE id = ?",
        (local,),
    ).fetchone()
    if row is None:
        return None
    working_dir, session_id, source, fact, category, importance, superseded, manual, created = row
    project = conn.execute(
        "SELECT project_remote, project_path FROM sessions"
        " WHERE working_dir = ? AND project_remote IS NOT NULL LIMIT 1",
        (working_dir,),
    ).fetchone()
    if project is None:
        found = project_of(working_dir)
        project = (found.remote, found.path) if found else (None, None)
    return {
        "op": "memory",
        "uid": uid_of(conn, me, "k", local),
        "working_dir": working_dir,
        "project_remote": project[0],
        "project_path": project[1],
        "session": session_id,
        "source": None if source is None else uid_of(conn, me, "m", source),
        "fact": fact,
        "category": category,
        "importance": importance,
        "superseded_by": None if superseded is None else uid_of(conn, me, "k", superseded),
        "is_manual": bool(manual),
        "created_at": created,
    }


def _memory_fields(
    conn: sqlite3.Connection, me: str, local: int, fields: Iterable[str]
) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT fact, category, importance, superseded_by FROM memories WHERE id = ?", (local,)
    ).fetchone()
    if row is None:
        return None
    current = dict(zip(MEMORY_FIELDS, row, strict=True))
    out = {f: current[f] for f in fields}
    if out.get("superseded_by") is not None:
        out["superseded_by"] = uid_of(conn, me, "k", out["superseded_by"])
    return out


def _set_clock(conn: sqlite3.Connection, key: str, at: str, machine: str) -> None:
    conn.execute(
        "INSERT INTO sync_clock (key, at, machine) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET at = excluded.at, machine = excluded.machine"
        " WHERE (excluded.at, excluded.machine) > (sync_clock.at, sync_clock.machine)",
        (key, at, machine),
    )


def _tombstone(conn: sqlite3.Connection, key: str, at: str, machine: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO sync_tombstones (key, at, machine) VALUES (?, ?, ?)",
        (key, at, machine),
    )


def _snapshot_records(
    conn: sqlite3.Connection, me: str, snapshot: dict[str, Any], limit: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The next records of the initial snapshot, and the cursor after them (None: done)."""
    phase, after, upto = snapshot["phase"], int(snapshot["after"] or 0), snapshot["upto"]
    bound = int(upto[phase])
    records: list[dict[str, Any]] = []
    if phase == "messages":
        rows = conn.execute(
            f"{_MESSAGE_SELECT} WHERE id > ? AND id <= ? AND (complete OR stop_reason IS NOT NULL)"
            " ORDER BY id LIMIT ?",
            (after, bound, limit),
        ).fetchall()
        records = [_message_record(conn, me, row) for row in rows]
        last = rows[-1][0] if rows else None
    else:
        keys = conn.execute(
            f"SELECT rowid, {'id' if phase == 'sessions' else 'rowid'} FROM {phase}"
            " WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
            (after, bound, limit),
        ).fetchall()
        for _rowid, key in keys:
            if phase == "sessions":
                record = _session_record(conn, key)
            elif phase == "summaries":
                record = _summary_record(conn, me, key)
            else:
                record = _memory_record(conn, me, key)
            if record is not None:
                records.append(record)
        last = keys[-1][0] if keys else None
    if last is not None:
        return records, {"phase": phase, "after": last, "upto": upto}
    index = SNAPSHOT_PHASES.index(phase)
    if index + 1 < len(SNAPSHOT_PHASES):
        return records, {"phase": SNAPSHOT_PHASES[index + 1], "after": 0, "upto": upto}
    return records, None


def _outbox_records(
    conn: sqlite3.Connection, me: str, now: str, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Records for the oldest outbox rows (merged per row and field); the last seq read."""
    rows = conn.execute(
        "SELECT seq, kind, key, field, at FROM sync_outbox ORDER BY seq LIMIT ?", (limit,)
    ).fetchall()
    if not rows:
        return [], 0
    records: list[dict[str, Any]] = []
    done: set[tuple[str, str]] = set()
    sets: dict[tuple[str, str], dict[str, Any]] = {}
    deleted: dict[str, dict[str, Any]] = {}
    for _seq, kind, key, fld, at in rows:
        at = at or now
        if kind in ("session", "message", "summary", "memory"):
            if (kind, key) in done:
                continue
            done.add((kind, key))
            record: dict[str, Any] | None
            if kind == "session":
                record = _session_record(conn, key)
            elif kind == "message":
                row = _message_row(conn, me, int(key))
                record = None if row is None else _message_record(conn, me, row)
            elif kind == "summary":
                record = _summary_record(conn, me, int(key))
            else:
                record = _memory_record(conn, me, int(key))
            if record is not None:
                record["at"] = at
                records.append(record)
                clock_key = {"session": "s:", "memory": "k:"}.get(kind)
                if clock_key:
                    ident = record["id"] if kind == "session" else record["uid"]
                    _set_clock(conn, clock_key + ident, at, me)
        elif kind in ("session.set", "memory.set"):
            entry = sets.get((kind, key))
            if entry is None:
                entry = sets[(kind, key)] = {"op": kind, "key": key, "fields": set(), "at": at}
                records.append(entry)
            entry["fields"].add(fld)
            entry["at"] = max(entry["at"], at)
        elif kind == "session.purge":
            records.append({"op": "session.purge", "id": key, "at": at})
            _tombstone(conn, f"s:{key}", at, me)
        elif kind == "memory.delete":
            uid = uid_of(conn, me, "k", int(key))
            records.append({"op": "memory.delete", "uid": uid, "at": at})
            _tombstone(conn, f"k:{uid}", at, me)
        elif kind == "message.delete":
            session_id = fld
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                entry = deleted.get(session_id)
                if entry is None:
                    entry = deleted[session_id] = {
                        "op": "message.delete",
                        "session": session_id,
                        "uids": [],
                        "at": at,
                    }
                    records.append(entry)
                uid = uid_of(conn, me, "m", int(key))
                entry["uids"].append(uid)
                _tombstone(conn, f"m:{uid}", at, me)
            # else: the session was purged; its purge record covers its messages.
    out: list[dict[str, Any]] = []
    for record in records:
        if record["op"] == "session.set":
            key = record["key"]
            session = _session_record(conn, key)
            if session is None:
                continue
            fields = sorted(record["fields"])
            for f in fields:
                _set_clock(conn, f"s:{key}:{f}", record["at"], me)
            out.append(
                {
                    "op": "session.set",
                    "id": key,
                    "at": record["at"],
                    "fields": {f: session[f] for f in fields},
                }
            )
        elif record["op"] == "memory.set":
            key = record["key"]
            values = _memory_fields(conn, me, int(key), sorted(record["fields"]))
            if values is None:
                continue
            uid = uid_of(conn, me, "k", int(key))
            for f in values:
                _set_clock(conn, f"k:{uid}:{f}", record["at"], me)
            out.append({"op": "memory.set", "uid": uid, "at": record["at"], "fields": values})
        else:
            out.append(record)
    return out, rows[-1][0]


def render(conn: sqlite3.Connection, now: datetime, limit: int = 2000) -> tuple[int, bool]:
    """Turn up to `limit` captured changes into numbered records in sync_pending.

    Returns (records made, whether more is waiting). One short transaction per call.
    """
    state = get_state(conn)
    me = state.machine_id
    stamp = fmt_ts(now)
    more = True
    if state.snapshot is not None:
        records, cursor = _snapshot_records(conn, me, state.snapshot, limit)
        for record in records:
            record.setdefault("at", stamp)
        conn.execute(
            "UPDATE sync_state SET snapshot = ? WHERE id = 1",
            (None if cursor is None else json.dumps(cursor),),
        )
    else:
        records, last = _outbox_records(conn, me, stamp, limit)
        if last:
            conn.execute("DELETE FROM sync_outbox WHERE seq <= ?", (last,))
        more = bool(last) and conn.execute("SELECT 1 FROM sync_outbox LIMIT 1").fetchone()
    seq = state.next_seq
    rows = []
    for record in records:
        body = {"v": FORMAT_VERSION, "seq": seq, "at": record.pop("at"), **record}
        rows.append((seq, body["at"], json.dumps(body, ensure_ascii=False, separators=(",", ":"))))
        seq += 1
    conn.executemany("INSERT INTO sync_pending (seq, at, line) VALUES (?, ?, ?)", rows)
    conn.execute("UPDATE sync_state SET next_seq = ? WHERE id = 1", (seq,))
    return len(rows), bool(more)


def pending(conn: sqlite3.Connection, after: int, limit: int) -> list[tuple[int, str, str]]:
    return [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT seq, at, line FROM sync_pending WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
    ]


def drop_pending(conn: sqlite3.Connection, upto: int) -> None:
    conn.execute("DELETE FROM sync_pending WHERE seq <= ?", (upto,))


# ---------------------------------------------------------------------- apply


@dataclass
class JournalMark:
    """How far one journal file of another machine has been applied (the importers' files
    have records.FileMark)."""

    path: str
    machine: str
    offset: int
    size: int


@dataclass
class Batch:
    """Records of other machines to apply in one transaction, with the marks they reach."""

    records: list[tuple[str, dict[str, Any]]]  # (machine, record), in apply order
    marks: list[JournalMark] = field(default_factory=list)
    retry_waiting: bool = False  # first retry records held back by a streaming reply
    # The messages it inserts are left out of the search index, for one build at the end of
    # the catch-up (index_deferred, below), when catching_up allowed it.
    defer_index: bool = False
    # Projects none of whose sessions has its folder here, as found by the catch-up's earlier
    # batches (shared from batch to batch; None: look again in each batch).
    rootless: set[str] | None = None


def file_marks(conn: sqlite3.Connection) -> dict[str, JournalMark]:
    return {
        r[0]: JournalMark(r[0], r[1], int(r[2]), int(r[3]))
        for r in conn.execute("SELECT path, machine, offset, size FROM sync_files")
    }


def peer_seqs(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute("SELECT machine, seq FROM sync_peers")}


def peers(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT machine, seq, records, last_at, error FROM sync_peers ORDER BY machine"
    ).fetchall()
    keys = ("machine", "seq", "records", "last_at", "error")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def set_peer_error(conn: sqlite3.Connection, machine: str, error: str | None) -> None:
    conn.execute(
        "INSERT INTO sync_peers (machine, error) VALUES (?, ?)"
        " ON CONFLICT (machine) DO UPDATE SET error = excluded.error",
        (machine, error),
    )


class _Applier:
    """Applies records inside one transaction (capture is off meanwhile)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.me = machine_id(conn)
        self.machine = ""
        self.current: dict[str, Any] = {}
        self.bulk = False  # messages are queued and inserted in bulk (transfer/bulk.py)
        self.plan: TriggerPlan | None = None  # what a Bulk takes over, read once per batch
        self.pending: Bulk | None = None  # open while inserted rows wait for their trigger work
        self.queue: list[tuple[Any, ...]] = []  # (uid, session, *values) to insert
        self.queued_uids: set[str] = set()
        # (session, created_at, role, content) of every message this batch inserted.
        self.batch_keys: set[tuple[str, str, str, str]] = set()
        self.known_m: dict[str, int] = {}  # message uids of this batch already stored
        self.prefetched = False
        self.fresh: set[str] = set()  # sessions created by this batch: nothing stored to match
        # Sessions seen in this batch: the time of their newest message (existence cache).
        self.newest: dict[str, str] = {}
        # Which kinds have tombstones (most batches: none), and each session's last message
        # (id, created_at, uid) as this batch appended it.
        self.tombstone_kinds = {
            kind
            for kind in "smk"
            if conn.execute(
                "SELECT 1 FROM sync_tombstones WHERE key >= ? AND key < ? LIMIT 1",
                (f"{kind}:", f"{kind};"),
            ).fetchone()
        }
        self.last: dict[str, tuple[int | None, str, str]] = {}
        self.roots: dict[str, str | None] = {}
        self.rootless: set[str] = set()  # Batch.rootless
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "session": self.session,
            "session.set": self.session_set,
            "session.purge": self.session_purge,
            "message": self.message,
            "message.delete": self.message_delete,
            "summary": self.summary,
            "memory": self.memory,
            "memory.set": self.memory_set,
            "memory.delete": self.memory_delete,
        }

    # -- helpers

    def apply(self, machine: str, record: dict[str, Any]) -> None:
        self.machine = machine
        self.current = record
        if (self.queue or self.pending) and record["op"] not in ("message", "session"):
            self.flush()
        self.handlers[record["op"]](record)

    def prefetch(self, uids: list[str]) -> None:
        """Look up, in one query, which of the batch's message uids are already stored."""
        self.known_m = {
            str(r[0]): int(r[1])
            for r in self.conn.execute(
                "SELECT uid, local FROM sync_ids WHERE kind = 'm'"
                " AND uid IN (SELECT value FROM json_each(?))",
                (json.dumps(uids),),
            )
        }
        self.prefetched = True

    def local_m(self, uid: str) -> int | None:
        """local_of for a message, from the prefetched uids when it can."""
        if uid in self.known_m:
            return self.known_m[uid]
        if self.prefetched and not uid.startswith(self.me + ":"):
            return None
        return local_of(self.conn, self.me, "m", uid)

    def flush(self) -> None:
        """Insert the queued messages and do the suspended triggers' work (they are back after)."""
        self._insert_queue()
        if self.pending is not None:
            self.pending.finish()
            self.pending = None

    def _bulk(self) -> Bulk:
        """The open Bulk (one is opened on first use): its triggers are suspended meanwhile."""
        if self.pending is None:
            if self.plan is None:
                self.plan = plan_triggers(self.conn)
            self.pending = Bulk(self.conn, self.plan)
        return self.pending

    def _session_changes(self, rowid: int) -> None:
        """About to update a session: an insert of it still waiting for its work goes first."""
        if self.pending is not None and self.pending.touches("sessions", rowid):
            self.flush()

    def retry_waiting(self) -> None:
        """Records held back while a reply streamed into their session: try them again."""
        waits = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT wait FROM sync_parked WHERE wait LIKE 'z:%'"
            )
        ]
        for wait in waits:
            self.unpark(wait)

    def dead(self, key: str) -> bool:
        if key[0] not in self.tombstone_kinds:  # most batches: nothing of this kind removed
            return False
        return (
            self.conn.execute("SELECT 1 FROM sync_tombstones WHERE key = ?", (key,)).fetchone()
            is not None
        )

    def bury(self, key: str, at: str) -> None:
        _tombstone(self.conn, key, at, self.machine)
        self.tombstone_kinds.add(key[0])
        self.last.pop(key[2:], None)
        self.newest.pop(key[2:], None)

    def newer(self, record: dict[str, Any], *keys: str) -> bool:
        """Whether the record's (time, machine) is later than every clock under `keys`."""
        mine = (record["at"], self.machine)
        for key in keys:
            row = self.conn.execute(
                "SELECT at, machine FROM sync_clock WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and (row[0], row[1]) >= mine:
                return False
        return True

    def clock(self, record: dict[str, Any], key: str) -> None:
        _set_clock(self.conn, key, record["at"], self.machine)

    def park(self, wait: str, record: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO sync_parked (wait, machine, line) VALUES (?, ?, ?)",
            (wait, self.machine, json.dumps(record, ensure_ascii=False)),
        )

    def unpark(self, wait: str) -> None:
        rows = self.conn.execute(
            "SELECT id, machine, line FROM sync_parked WHERE wait = ? ORDER BY id", (wait,)
        ).fetchall()
        if not rows:
            return
        self.conn.execute("DELETE FROM sync_parked WHERE wait = ?", (wait,))
        current = self.machine
        records = [(machine, json.loads(line)) for _id, machine, line in rows]
        if self.prefetched:  # these uids were not in the batch's lookup
            self.flush()
            uids = [r["uid"] for _m, r in records if r["op"] == "message"]
            saved = self.known_m
            self.prefetch(uids)
            self.known_m = {**saved, **self.known_m}
        for machine, record in records:
            self.apply(machine, record)
        self.machine = current

    def root_for(self, remote: str) -> str | None:
        """Where this machine has the project checked out (a session of it whose folder exists)."""
        if remote in self.rootless:
            return None
        if remote not in self.roots:
            found = None
            for working_dir, inner in self.conn.execute(
                "SELECT working_dir, project_path FROM sessions WHERE project_remote = ?"
                " ORDER BY updated_at DESC LIMIT 20",
                (remote,),
            ):
                root = _strip(working_dir, inner or "")
                if root is not None and os.path.isdir(root):
                    found = root
                    break
            self.roots[remote] = found
        return self.roots[remote]

    def place_of(self, rec: dict[str, Any]) -> str:
        return self.place(rec["working_dir"], rec.get("project_remote"), rec.get("project_path"))

    def place(self, working_dir: str, remote: str | None, inner: str | None) -> str:
        """The local directory of a session or memory from another machine."""
        if remote:
            root = self.root_for(remote)
            if root is not None:
                return join(root, inner or "")
        return working_dir

    # -- sessions

    def session(self, rec: dict[str, Any]) -> None:
        sid = rec["id"]
        if self.dead(f"s:{sid}"):
            return
        conn = self.conn
        exists = conn.execute("SELECT rowid FROM sessions WHERE id = ?", (sid,)).fetchone()
        if exists is None:
            directory = self.place(
                rec["working_dir"], rec.get("project_remote"), rec.get("project_path")
            )
            metadata = rec.get("metadata") or {}
            remote = rec.get("project_remote")
            if remote in self.rootless:
                root = _strip(directory, rec.get("project_path") or "")
                if root is not None and os.path.isdir(root):  # now it has one: look again
                    self.rootless.discard(remote)
            if self.bulk:
                # Inside the Bulk: the session's title index entry is written with the batch's
                # others in one statement (per row, FTS5 writes a segment for each session).
                self._bulk()
            cur = conn.execute(
                "INSERT INTO sessions (id, working_dir, dir_tokens, title, provider, model,"
                " system_prompt, status, pinned, deleted_at, created_at, updated_at, ended_at,"
                " metadata, project_remote, project_path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    directory,
                    _dir_tokens(directory),
                    one_line(rec.get("title")),
                    rec.get("provider"),
                    rec.get("model"),
                    rec.get("system_prompt"),
                    rec.get("status") or "active",
                    int(bool(rec.get("pinned"))),
                    rec.get("deleted_at"),
                    rec["created_at"],
                    rec.get("updated_at") or rec["created_at"],
                    rec.get("ended_at"),
                    json.dumps(metadata, ensure_ascii=False, separators=(",", ":")),
                    rec.get("project_remote"),
                    rec.get("project_path"),
                ),
            )
            if self.pending is not None and self.plan is not None and self.plan.work["sessions"]:
                self.pending.added_rowid("sessions", int(cur.lastrowid or 0))
            self.clock(rec, f"s:{sid}")
            self.fresh.add(sid)
            self.unpark(f"s:{sid}")
            return
        self._session_changes(int(exists[0]))
        self._set_session_fields(rec, sid, {f: rec.get(f) for f in SESSION_FIELDS})
        conn.execute(
            "UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?",
            (rec.get("updated_at") or rec["created_at"], sid),
        )
        self.clock(rec, f"s:{sid}")

    def _set_session_fields(self, rec: dict[str, Any], sid: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in SESSION_FIELDS:
                continue
            if not self.newer(rec, f"s:{sid}", f"s:{sid}:{name}"):
                continue
            if name == "pinned":
                value = int(bool(value))
            elif name == "title":
                value = one_line(value)
            elif name == "status" and value not in ("active", "completed", "crashed"):
                continue
            self.conn.execute(f"UPDATE sessions SET {name} = ? WHERE id = ?", (value, sid))
            self.clock(rec, f"s:{sid}:{name}")

    def session_set(self, rec: dict[str, Any]) -> None:
        sid = rec["id"]
        if self.dead(f"s:{sid}"):
            return
        if self.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is None:
            self.park(f"s:{sid}", rec)
            return
        self._set_session_fields(rec, sid, rec["fields"])

    def session_purge(self, rec: dict[str, Any]) -> None:
        sid = rec["id"]
        self.bury(f"s:{sid}", rec["at"])
        self.conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        # What waited for the session now finds it gone: memories stay (unlinked), the rest goes.
        self.unpark(f"s:{sid}")

    # -- messages

    def message(self, rec: dict[str, Any]) -> None:
        uid, sid = rec["uid"], rec["session"]
        if self.tombstone_kinds and (self.dead(f"m:{uid}") or self.dead(f"s:{sid}")):
            return
        conn = self.conn
        values = list(map(rec.get, MESSAGE_FIELDS))
        values[_COMPLETE] = int(bool(rec.get("complete", True)))
        if uid in self.queued_uids:
            self.flush()
        local = self.local_m(uid)
        if local is not None:
            self.flush()
            row = conn.execute(
                f"SELECT {', '.join(MESSAGE_FIELDS)} FROM messages WHERE id = ?", (local,)
            ).fetchone()
            if row is not None:
                if tuple(row) != tuple(values) and self.newer(rec, f"m:{uid}"):
                    sets = ", ".join(f"{f} = ?" for f in MESSAGE_FIELDS if f != "created_at")
                    kept = [
                        v for f, v in zip(MESSAGE_FIELDS, values, strict=True) if f != "created_at"
                    ]
                    conn.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*kept, local))
                    self.clock(rec, f"m:{uid}")
                return
        newest = self.newest.get(sid)
        if newest is None:
            session = conn.execute(
                "SELECT updated_at FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
            if session is None:
                self.park(f"s:{sid}", rec)
                return
            newest = self.newest[sid] = session[0]
        created_at = rec["created_at"]
        key = (sid, created_at, rec["role"], rec["content"])
        seen = key in self.batch_keys  # the same message twice in this batch (rare)
        if seen:
            self.flush()
        # A session this batch created holds only what the batch put there (batch_keys).
        if seen or (created_at <= newest and sid not in self.fresh):
            # An identical message already stored (queued ones were looked for just above).
            same = conn.execute(
                "SELECT id FROM messages WHERE session_id = ? AND created_at = ? AND role = ?"
                " AND content = ? LIMIT 1",
                (sid, created_at, rec["role"], rec["content"]),
            ).fetchone()
            if same is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO sync_ids (kind, uid, local) VALUES ('m', ?, ?)",
                    (uid, same[0]),
                )
                self.known_m.setdefault(uid, int(same[0]))
                return
        self._insert_in_order(sid, uid, values)

    def _insert_message(self, sid: str, uid: str, values: list[Any]) -> int | None:
        """Insert a message; in bulk mode it is queued (id None) and inserted by flush()."""
        created_at = values[_CREATED]
        if sid in self.newest:
            self.newest[sid] = max(self.newest[sid], created_at)
        if self.bulk:
            self.queue.append((uid, sid, *values))
            self.queued_uids.add(uid)
            self.batch_keys.add((sid, created_at, values[0], values[1]))
            return None
        self.batch_keys.add((sid, created_at, values[0], values[1]))
        cur = self.conn.execute(_INSERT_MESSAGE, (sid, *values))
        local = int(cur.lastrowid or 0)
        self.conn.execute(
            "INSERT OR REPLACE INTO sync_ids (kind, uid, local) VALUES ('m', ?, ?)", (uid, local)
        )
        self.known_m[uid] = local
        return local

    def _insert_queue(self) -> None:
        """The queued messages in two executemany calls; their ids follow one another."""
        if not self.queue:
            return
        conn = self.conn
        # Through a staging table: INSERT ... SELECT costs less than half of executemany here.
        cols = ", ".join(("session_id", *MESSAGE_FIELDS))
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS sync_stage (n INTEGER PRIMARY KEY, uid, {cols})"
        )
        conn.executemany(
            f"INSERT INTO temp.sync_stage (uid, {cols}) VALUES (?, ?, {', '.join('?' * 10)})",
            self.queue,
        )
        bulk = self._bulk()  # the insert triggers are suspended from here
        conn.execute(f"INSERT INTO messages ({cols}) SELECT {cols} FROM temp.sync_stage ORDER BY n")
        last = int(
            conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()[0]
        )
        first = last - len(self.queue) + 1
        bulk.added("messages", first, last)
        conn.execute(
            "INSERT OR REPLACE INTO sync_ids (kind, uid, local)"
            " SELECT 'm', uid, ? + n - (SELECT min(n) FROM temp.sync_stage)"
            " FROM temp.sync_stage ORDER BY n",
            (first,),
        )
        conn.execute("DELETE FROM temp.sync_stage")
        uids = (row[0] for row in self.queue)
        self.known_m.update(zip(uids, range(first, last + 1), strict=True))
        self.queue.clear()
        self.queued_uids.clear()

    def _insert_in_order(self, sid: str, uid: str, values: list[Any]) -> None:
        conn = self.conn
        created_at = values[_CREATED]
        last = self.last.get(sid)
        if last is None:
            row = conn.execute(
                "SELECT id, created_at FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT 1",
                (sid,),
            ).fetchone()
            if row is not None:
                last = (int(row[0]), str(row[1]), uid_of(conn, self.me, "m", row[0]))
        # After the session's last message (by time, then uid): appended (nearly always).
        if (
            last is None
            or created_at > last[1]
            or (created_at == last[1] and uid_key(uid) > uid_key(last[2]))
        ):
            local = self._insert_message(sid, uid, values)
            self.last[sid] = (local, created_at, uid)
            return
        mine = (created_at, uid_key(uid))
        self.last.pop(sid, None)
        self.flush()
        streaming = conn.execute(
            "SELECT heartbeat_at IS NOT NULL FROM sessions WHERE id = ?", (sid,)
        ).fetchone()[0]
        if streaming:
            # Moving messages would pull the reply being written from under its writer: wait.
            self.park(f"z:{sid}", self.current)
            return
        # It belongs before messages already here: they move after it, keeping their order.
        later = [
            r[0]
            for r in conn.execute(
                "SELECT id, created_at FROM messages WHERE session_id = ? AND created_at >= ?"
                " ORDER BY id",
                (sid, created_at),
            )
            if (r[1], uid_key(uid_of(conn, self.me, "m", r[0]))) > mine
        ]
        self._insert_message(sid, uid, values)
        self._insert_queue()  # its id comes before those of the messages that move after it
        self.known_m.clear()  # ids change below: ask the table from now on
        self.prefetched = False
        moved: dict[int, int] = {}
        for old in later:
            kept = list(
                conn.execute(
                    f"SELECT {', '.join(MESSAGE_FIELDS)} FROM messages WHERE id = ?", (old,)
                ).fetchone()
            )
            new = int(conn.execute(_INSERT_MESSAGE, (sid, *kept)).lastrowid or 0)
            if self.pending is not None:  # triggers suspended: flush() indexes and counts it
                self.pending.added_rowid("messages", new)
            moved[old] = new
            aliases = conn.execute(
                "SELECT count(*) FROM sync_ids WHERE kind = 'm' AND local = ?", (old,)
            ).fetchone()[0]
            if aliases:
                conn.execute(
                    "UPDATE sync_ids SET local = ? WHERE kind = 'm' AND local = ?", (new, old)
                )
            else:
                conn.execute(
                    "INSERT INTO sync_ids (kind, uid, local) VALUES ('m', ?, ?)",
                    (f"{self.me}:{old}", new),
                )
            conn.execute(
                "UPDATE memories SET source_message_id = ? WHERE source_message_id = ?", (new, old)
            )
            for column in ("from_message_id", "to_message_id"):
                conn.execute(
                    f"UPDATE pending_memory_extractions SET {column} = ?"
                    f" WHERE session_id = ? AND {column} = ?",
                    (new, sid, old),
                )
            conn.execute("DELETE FROM messages WHERE id = ?", (old,))
        if not moved:
            return
        for summary_id, first, last_id in conn.execute(
            "SELECT id, first_message_id, last_message_id FROM summaries WHERE session_id = ?",
            (sid,),
        ).fetchall():
            if first in moved or last_id in moved:
                new_first, new_last = moved.get(first, first), moved.get(last_id, last_id)
                conn.execute(
                    "UPDATE summaries SET first_message_id = ?, last_message_id = ? WHERE id = ?",
                    (min(new_first, new_last), max(new_first, new_last), summary_id),
                )
        watermark = conn.execute(
            "SELECT json_extract(metadata, '$.memory_watermark') FROM sessions WHERE id = ?",
            (sid,),
        ).fetchone()[0]
        if watermark is not None:
            below = [new for old, new in moved.items() if old <= int(watermark)]
            if below:
                conn.execute(
                    "UPDATE sessions SET metadata = json_set(metadata, '$.memory_watermark', ?)"
                    " WHERE id = ?",
                    (max(below), sid),
                )

    def message_delete(self, rec: dict[str, Any]) -> None:
        for uid in rec["uids"]:
            self.bury(f"m:{uid}", rec["at"])
            self.last.pop(rec["session"], None)
            local = local_of(self.conn, self.me, "m", uid)
            if local is not None:
                self.conn.execute(
                    "DELETE FROM messages WHERE id = ? AND session_id = ?", (local, rec["session"])
                )

    # -- summaries

    def summary(self, rec: dict[str, Any]) -> None:
        uid, sid = rec["uid"], rec["session"]
        conn = self.conn
        if (
            self.dead(f"s:{sid}")
            or local_of(conn, self.me, "y", uid) is not None
            and (
                conn.execute(
                    "SELECT 1 FROM summaries WHERE id = ?", (local_of(conn, self.me, "y", uid),)
                ).fetchone()
            )
        ):
            return
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is None:
            self.park(f"s:{sid}", rec)
            return
        same = conn.execute(
            "SELECT id FROM summaries WHERE session_id = ? AND created_at = ? AND content = ?",
            (sid, rec["created_at"], rec["content"]),
        ).fetchone()
        if same is not None:
            conn.execute(
                "INSERT OR IGNORE INTO sync_ids (kind, uid, local) VALUES ('y', ?, ?)",
                (uid, same[0]),
            )
            return
        first, last = self._summary_range(sid, rec)
        cur = conn.execute(
            "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
            " token_count, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sid,
                rec["content"],
                first,
                last,
                rec.get("token_count"),
                rec.get("model"),
                rec["created_at"],
            ),
        )
        conn.execute(
            "INSERT OR REPLACE INTO sync_ids (kind, uid, local) VALUES ('y', ?, ?)",
            (uid, cur.lastrowid),
        )

    def _summary_range(self, sid: str, rec: dict[str, Any]) -> tuple[int, int]:
        """Local ids for a summary's range; ends that are gone (compacted) are found by time,
        so the range covers the same stored messages as on the machine that wrote it."""
        conn = self.conn

        def present(uid: str) -> int | None:
            local = local_of(conn, self.me, "m", uid)
            if (
                local is not None
                and conn.execute(
                    "SELECT 1 FROM messages WHERE id = ? AND session_id = ?", (local, sid)
                ).fetchone()
            ):
                return local
            return None

        def one(sql: str, *args: Any) -> int | None:
            value = conn.execute(sql, args).fetchone()[0]
            return None if value is None else int(value)

        lowest = one("SELECT min(id) FROM messages WHERE session_id = ?", sid)
        last = present(rec["last"])
        if last is None and rec.get("last_at") is not None:
            last = one(
                "SELECT max(id) FROM messages WHERE session_id = ? AND created_at <= ?",
                sid,
                rec["last_at"],
            )
        if last is None:  # everything it stands for is gone: it sits before the messages
            last = max(1, (lowest or 2) - 1)
        first = present(rec["first"])
        if first is None:
            if rec.get("first_at") is not None:
                first = one(
                    "SELECT min(id) FROM messages WHERE session_id = ? AND created_at >= ?"
                    " AND id <= ?",
                    sid,
                    rec["first_at"],
                    last,
                )
            else:
                first = lowest if lowest is not None and lowest <= last else None
        return (first if first is not None else last), last

    # -- memories

    def _memory_local(self, uid: str) -> int | None:
        local = local_of(self.conn, self.me, "k", uid)
        if local is None:
            return None
        found = self.conn.execute("SELECT 1 FROM memories WHERE id = ?", (local,)).fetchone()
        return local if found else None

    def memory(self, rec: dict[str, Any]) -> None:
        uid = rec["uid"]
        conn = self.conn
        if self.dead(f"k:{uid}") or self._memory_local(uid) is not None:
            return
        session = rec.get("session")
        if (
            session is not None
            and conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session,)).fetchone() is None
        ):
            if not self.dead(f"s:{session}"):
                self.park(f"s:{session}", rec)
                return
            session = None
        superseded = rec.get("superseded_by")
        superseded_local = None
        if superseded is not None:
            superseded_local = self._memory_local(superseded)
            if superseded_local is None and not self.dead(f"k:{superseded}"):
                self.park(f"k:{superseded}", rec)
                return
        source = rec.get("source")
        source_local = None
        if source is not None:
            source_local = local_of(conn, self.me, "m", source)
            if (
                source_local is not None
                and not conn.execute(
                    "SELECT 1 FROM messages WHERE id = ?", (source_local,)
                ).fetchone()
            ):
                source_local = None
        directory = self.place(
            rec["working_dir"], rec.get("project_remote"), rec.get("project_path")
        )
        cur = conn.execute(
            "INSERT INTO memories (working_dir, session_id, source_message_id, fact, category,"
            " importance, superseded_by, is_manual, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                directory,
                session,
                source_local,
                rec["fact"],
                rec["category"],
                rec["importance"],
                superseded_local,
                int(bool(rec.get("is_manual"))),
                rec["created_at"],
            ),
        )
        conn.execute(
            "INSERT OR REPLACE INTO sync_ids (kind, uid, local) VALUES ('k', ?, ?)",
            (uid, cur.lastrowid),
        )
        self.clock(rec, f"k:{uid}")
        self.unpark(f"k:{uid}")

    def memory_set(self, rec: dict[str, Any]) -> None:
        uid = rec["uid"]
        if self.dead(f"k:{uid}"):
            return
        local = self._memory_local(uid)
        if local is None:
            self.park(f"k:{uid}", rec)
            return
        fields = dict(rec["fields"])
        target = fields.get("superseded_by")
        if target is not None:
            target_local = self._memory_local(target)
            if target_local is None:
                if not self.dead(f"k:{target}"):
                    self.park(f"k:{target}", rec)
                    return
            fields["superseded_by"] = target_local
        for name, value in fields.items():
            if name not in MEMORY_FIELDS or not self.newer(rec, f"k:{uid}", f"k:{uid}:{name}"):
                continue
            self.conn.execute(f"UPDATE memories SET {name} = ? WHERE id = ?", (value, local))
            self.clock(rec, f"k:{uid}:{name}")

    def memory_delete(self, rec: dict[str, Any]) -> None:
        uid = rec["uid"]
        self.bury(f"k:{uid}", rec["at"])
        self.conn.execute("DELETE FROM sync_parked WHERE wait = ?", (f"k:{uid}",))
        local = self._memory_local(uid)
        if local is not None:
            self.conn.execute("DELETE FROM memories WHERE id = ?", (local,))


def _strip(working_dir: str, inner: str) -> str | None:
    """The repository root of a directory `inner` levels deep in it."""
    if not inner:
        return working_dir
    suffix = "/" + inner
    return working_dir[: -len(suffix)] if working_dir.endswith(suffix) else None


def apply(conn: sqlite3.Connection, batch: Batch) -> int:
    """Apply a batch of other machines' records and move their progress marks, atomically."""
    capture = conn.execute("SELECT capture FROM sync_state WHERE id = 1").fetchone()[0]
    conn.execute("UPDATE sync_state SET capture = 0 WHERE id = 1")
    if batch.defer_index:
        _defer_begin(conn)
    applier = _Applier(conn)
    if batch.rootless is not None:
        applier.rootless = batch.rootless
    applier.bulk = sum(1 for _m, r in batch.records if r["op"] == "message") >= BULK_MIN
    applier.prefetch([r["uid"] for _m, r in batch.records if r["op"] == "message"])
    if batch.retry_waiting:
        applier.retry_waiting()
    step = applier.apply
    for machine, record in batch.records:
        step(machine, record)
    numbers = Counter(machine for machine, _record in batch.records)
    lasts = dict(batch.records)  # each machine's last record
    counts = {m: (n, lasts[m]["seq"], lasts[m]["at"]) for m, n in numbers.items()}
    applier.flush()
    if batch.rootless is not None:
        batch.rootless.update(r for r, root in applier.roots.items() if root is None)
    if batch.defer_index:
        _defer_end(conn)
    for machine, (n, seq, at) in counts.items():
        conn.execute(
            "INSERT INTO sync_peers (machine, seq, records, last_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (machine) DO UPDATE SET seq = max(seq, excluded.seq),"
            " records = records + excluded.records, last_at = excluded.last_at, error = NULL",
            (machine, seq, n, at),
        )
    for mark in batch.marks:
        conn.execute(
            "INSERT OR REPLACE INTO sync_files (path, machine, offset, size) VALUES (?, ?, ?, ?)",
            (mark.path, mark.machine, mark.offset, mark.size),
        )
    conn.execute("UPDATE sync_state SET capture = ? WHERE id = 1", (capture,))
    return len(batch.records)


# ---------------------------------------------------------------------- the search index
#
# A new machine catching up inserts far more messages than it holds; indexing them batch by
# batch costs more than one build at the end (FTS5 segments written per batch, merged again
# and again). So while it catches up, the messages it inserts are left to the search index's
# own resumable build (search_build, migration 0007: rows done < id <= upto are the build's,
# the triggers skip them), which the sync runs once the records are in, and which the app, or
# `threadline db index`, finishes if the sync is stopped before. Each batch moves `upto` to the
# last message id in its own transaction: a crash leaves exactly the rows after `done` not yet
# indexed, and a search meanwhile finds the rest.

DEFER_FOREVER = 1 << 62  # `upto` inside a batch's transaction: every id it inserts is the build's


def may_defer_index(conn: sqlite3.Connection, incoming: int) -> bool:
    """Whether a catch-up of `incoming` records may leave its messages to one index build.

    Yes on a database holding fewer messages than are coming (a new machine), or where a
    catch-up stopped before its build; no while the version-2 index still serves searches
    (an upgrade's build is under way: search would miss the new rows).
    """
    from threadline.store.search import OLD

    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (OLD["messages"].table,)
    ).fetchone():
        return False
    if conn.execute("SELECT 1 FROM search_build WHERE name = 'messages'").fetchone():
        return True
    stored = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
    return int(stored) < incoming


def _defer_begin(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO search_build (name, done, upto)"
        " SELECT 'messages', coalesce(max(id), 0), ? FROM messages WHERE true"
        " ON CONFLICT (name) DO UPDATE SET upto = excluded.upto",
        (DEFER_FOREVER,),
    )


def _defer_end(conn: sqlite3.Connection) -> None:
    """The build's range ends at the last message inserted (none: no build)."""
    conn.execute(
        "UPDATE search_build SET upto = (SELECT coalesce(max(id), 0) FROM messages)"
        " WHERE name = 'messages'"
    )
    conn.execute("DELETE FROM search_build WHERE name = 'messages' AND upto <= done")


def index_deferred(conn: sqlite3.Connection) -> int:
    """Messages not yet in the search index because a catch-up left them to the build (0:
    none; an upgrade's build, which search covers with the version-2 index, is not counted)."""
    from threadline.store.search import OLD

    row = conn.execute("SELECT done, upto FROM search_build WHERE name = 'messages'").fetchone()
    if (
        row is None
        or conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (OLD["messages"].table,),
        ).fetchone()
    ):
        return 0
    return int(
        conn.execute(
            "SELECT count(*) FROM messages WHERE id > ? AND id <= ?", (row[0], row[1])
        ).fetchone()[0]
    )


# A step of the build indexes about this much text (then sized to hold the lock INDEX_TARGET).
INDEX_FIRST_BYTES = 8 << 20
INDEX_TARGET = 0.5
INDEX_MAX_BYTES = 64 << 20


def parked_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sync_parked").fetchone()[0])


# ---------------------------------------------------------------------- places


def attach_project(conn: sqlite3.Connection, remote: str, root: str) -> int:
    """Move the sessions of a project whose repository folder does not exist here under `root`.

    For a project folder that was moved or renamed, and for sessions of another machine applied
    before this machine had the project: afterwards they show in the directory and workspace
    scopes of `root`. Returns how many sessions moved.
    """
    rows = conn.execute(
        "SELECT id, working_dir, dir_tokens, project_path FROM sessions WHERE project_remote = ?",
        (remote,),
    ).fetchall()
    moved = 0
    for session_id, working_dir, old_tokens, inner in rows:
        target = join(root, inner or "")
        current_root = _strip(working_dir, inner or "")
        if working_dir == target or (current_root is not None and os.path.isdir(current_root)):
            continue
        tokens = scopes.dir_tokens(target)
        conn.execute(
            "UPDATE sessions SET working_dir = ?, dir_tokens = ? WHERE id = ?",
            (target, tokens, session_id),
        )
        _reindex_dirs(conn, session_id, old_tokens, tokens)
        conn.execute(
            "UPDATE memories SET working_dir = ? WHERE working_dir = ? AND session_id = ?",
            (target, working_dir, session_id),
        )
        moved += 1
    return moved


def _reindex_dirs(conn: sqlite3.Connection, session_id: str, old: str, new: str) -> None:
    """Re-file a session's rows in the search indexes under its new directory tokens.

    The rows a search-index build has not reached yet are left to it; the version-2 indexes
    are kept right while they exist (store/search.py)."""
    from threadline.store.search import OLD

    for table, fts in (("messages", "search_messages"), ("summaries", "search_summaries")):
        built = (
            " AND NOT EXISTS (SELECT 1 FROM search_build AS b"
            f" WHERE b.name = '{table}' AND id > b.done AND id <= b.upto)"
        )
        _refile(conn, table, fts, session_id, old, new, built)
        legacy = OLD[table].table
        if (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (legacy,)
            ).fetchone()
            and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (f"{legacy}_ai",)
            ).fetchone()
        ):
            _refile(conn, table, legacy, session_id, old, new, "")


def _refile(
    conn: sqlite3.Connection,
    table: str,
    fts: str,
    session_id: str,
    old: str,
    new: str,
    where: str,
) -> None:
    conn.execute(
        f"INSERT INTO {fts} ({fts}, rowid, content, dirs)"
        f" SELECT 'delete', id, content, ? FROM {table} WHERE session_id = ?{where}",
        (old, session_id),
    )
    conn.execute(
        f"INSERT INTO {fts} (rowid, content, dirs)"
        f" SELECT id, content, ? FROM {table} WHERE session_id = ?{where}",
        (new, session_id),
    )


def detached_remotes(conn: sqlite3.Connection) -> list[str]:
    """Projects with sessions here (any folder); the sync looks for their checkout."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT project_remote FROM sessions WHERE project_remote IS NOT NULL"
        )
    ]


def project_roots(conn: sqlite3.Connection, remote: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1] or "")
        for r in conn.execute(
            "SELECT working_dir, project_path FROM sessions WHERE project_remote = ?"
            " ORDER BY updated_at DESC",
            (remote,),
        )
    ]


def strip_root(working_dir: str, inner: str) -> str | None:
    return _strip(working_dir, inner)


# ---------------------------------------------------------------------- async access


class Journal:
    """Async access to the sync tables (`Store.journal`); each call is one transaction."""

    def __init__(self, db: Any, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        # While catching up: the WAL is copied into the database beside the writer (as the
        # importers do), not by the writer at each commit; the writer's setting, to restore.
        self._checkpointer: Checkpointer | None = None
        self._autocheckpoint = 0

    async def state(self) -> SyncState:
        return await self._db.read(get_state)

    async def enable(self, repo_dir: str, remote: str) -> SyncState:
        return await self._db.write(enable, repo_dir, remote)

    async def disable(self) -> None:
        await self._db.write(disable)

    async def restart_snapshot(self) -> None:
        await self._db.write(restart_snapshot)

    async def render(self, limit: int = 2000) -> tuple[int, bool]:
        return await self._db.write(render, self._clock(), limit)

    async def pending(self, after: int, limit: int = 5000) -> list[tuple[int, str, str]]:
        return await self._db.read(pending, after, limit)

    async def drop_pending(self, upto: int) -> None:
        await self._db.write(drop_pending, upto)

    async def file_marks(self) -> dict[str, JournalMark]:
        return await self._db.read(file_marks)

    async def peer_seqs(self) -> dict[str, int]:
        return await self._db.read(peer_seqs)

    async def peers(self) -> list[dict[str, Any]]:
        return await self._db.read(peers)

    async def set_peer_error(self, machine: str, error: str | None) -> None:
        await self._db.write(set_peer_error, machine, error)

    async def apply(self, batch: Batch) -> int:
        applied = await self._db.write(apply, batch)
        if self._checkpointer is not None:
            self._checkpointer.poke()
        return applied

    async def catching_up(self, on: bool) -> None:
        """Settings of this store's writer while many records are applied.

        synchronous=NORMAL: a commit no longer waits for the disk. Safe here: a batch and its
        progress marks commit together, so a power cut loses whole batches, which the next
        sync applies again from the journal. The WAL is checkpointed on a thread of its own
        (transfer.bulk.Checkpointer) instead of by the writer's commits. Back to FULL, the
        writer's own checkpoints, and a checkpoint, afterwards.
        """

        def run(conn: sqlite3.Connection) -> int:
            if on:
                conn.execute("PRAGMA synchronous = NORMAL")
                return pause_autocheckpoint(conn, 0)
            conn.execute("PRAGMA synchronous = FULL")
            pause_autocheckpoint(conn, self._autocheckpoint)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return 0

        if on:
            self._autocheckpoint = await self._db.on_writer(run)
            self._checkpointer = Checkpointer(str(self._db.path))
            return
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
        await self._db.on_writer(run)

    async def parked(self) -> int:
        return await self._db.read(parked_count)

    async def may_defer_index(self, incoming: int) -> bool:
        return await self._db.read(may_defer_index, incoming)

    async def index_deferred(self) -> int:
        return await self._db.read(index_deferred)

    async def build_index(self, progress: Callable[[int, int], None]) -> None:
        """Index the messages a catch-up left to the build, in write transactions of about an
        apply batch's length (resumable: each moves the build's mark). `progress(done, total)`.
        """
        total = await self.index_deferred()
        done, budget = 0, INDEX_FIRST_BYTES
        while True:
            started = time.perf_counter()
            rows, finished = await self._db.write(messages_index_step, budget)
            held = time.perf_counter() - started
            if finished:
                break
            if self._checkpointer is not None:
                self._checkpointer.poke()
            done += rows
            progress(min(done, total), total)
            if held > 0:
                budget = int(min(max(budget / held * INDEX_TARGET, 1 << 20), INDEX_MAX_BYTES))

    async def record_result(self, error: str | None) -> None:
        await self._db.write(record_result, self._clock(), error)

    async def remotes(self) -> list[str]:
        return await self._db.read(detached_remotes)

    async def project_roots(self, remote: str) -> list[tuple[str, str]]:
        return await self._db.read(project_roots, remote)

    async def attach_project(self, remote: str, root: str) -> int:
        return await self._db.write(attach_project, remote, root)
