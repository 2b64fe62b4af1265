"""The journal record format, version 1: one JSON object per line.

Every record has `v` (format version), `seq` (the writing machine's sequence number, increasing
by one per record), `at` (UTC time of the change, ISO-8601 with milliseconds) and `op`; the rest
depends on the op (see store/journal.py, which writes and applies them):

    session        id, created_at, updated_at, working_dir, project_remote, project_path,
                   title, provider, model, system_prompt, status, pinned, deleted_at,
                   ended_at, metadata                          (created, or published again)
    session.set    id, fields {title|pinned|deleted_at|status|ended_at|model|provider|
                   system_prompt: value}                        (rename, pin, trash, restore...)
    session.purge  id                                           (a tombstone: final)
    message        uid, session, role, content, payload (JSON text), created_at,
                   input_tokens, output_tokens, model, stop_reason, response_ms, complete
    message.delete session, uids [...]                          (compaction: tombstones)
    summary        uid, session, content, first, last (message uids), first_at, last_at,
                   token_count, model, created_at
    memory         uid, working_dir, project_remote, project_path, session, source
                   (message uid), fact, category, importance, superseded_by (memory uid),
                   is_manual, created_at
    memory.set     uid, fields {fact|category|importance|superseded_by: value}
    memory.delete  uid                                          (a tombstone: final)

A line with `enc` instead is an encrypted block: {"v", "enc": "age", "first", "last", "data"}
where data is the base64 of an age file holding records first..last as JSONL.
"""

from __future__ import annotations

import json
import re
from typing import Any

VERSION = 1

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_SESSION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UID = re.compile(r"^[0-9a-z]{1,64}:[0-9A-Za-z_.-]{1,64}$")

_ROLES = ("system", "user", "assistant", "tool")
_CATEGORIES = ("preference", "fact", "decision", "context", "correction")
_SESSION_FIELDS = (
    "title",
    "pinned",
    "deleted_at",
    "status",
    "ended_at",
    "model",
    "provider",
    "system_prompt",
)
_MEMORY_FIELDS = ("fact", "category", "importance", "superseded_by")


class RecordError(ValueError):
    """A line that is not a valid record (`newer` when it comes from a newer threadline)."""

    def __init__(self, message: str, *, newer: bool = False) -> None:
        super().__init__(message)
        self.newer = newer


def _str(rec: dict[str, Any], key: str, *, optional: bool = False) -> None:
    value = rec.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise RecordError(f"{key!r} must be text")


def _int(rec: dict[str, Any], key: str, *, optional: bool = True) -> None:
    value = rec.get(key)
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**62:
        raise RecordError(f"{key!r} must be a whole number")


def _ts(rec: dict[str, Any], key: str, *, optional: bool = False) -> None:
    value = rec.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str) or not _TS.match(value):
        raise RecordError(f"{key!r} must be a UTC timestamp")


def _session_id(rec: dict[str, Any], key: str) -> None:
    value = rec.get(key)
    if not isinstance(value, str) or not _SESSION_ID.match(value):
        raise RecordError(f"{key!r} must be a session id")


def _uid(rec: dict[str, Any], key: str, *, optional: bool = False) -> None:
    value = rec.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str) or not _UID.match(value):
        raise RecordError(f"{key!r} must be a record id")


def _check_session(rec: dict[str, Any]) -> None:
    _session_id(rec, "id")
    _ts(rec, "created_at")
    _ts(rec, "updated_at", optional=True)
    _str(rec, "working_dir")
    for key in ("project_remote", "project_path", "title", "provider", "model", "system_prompt"):
        _str(rec, key, optional=True)
    _ts(rec, "deleted_at", optional=True)
    _ts(rec, "ended_at", optional=True)
    if rec.get("status", "active") not in ("active", "completed", "crashed"):
        raise RecordError("'status' is not a session status")
    if not isinstance(rec.get("metadata", {}), dict):
        raise RecordError("'metadata' must be an object")


def _check_session_set(rec: dict[str, Any]) -> None:
    _session_id(rec, "id")
    fields = rec.get("fields")
    if not isinstance(fields, dict) or not fields or set(fields) - set(_SESSION_FIELDS):
        raise RecordError("'fields' must name session fields")
    for key in ("deleted_at", "ended_at"):
        if key in fields:
            _ts(fields, key, optional=True)
    for key in ("title", "model", "provider", "system_prompt"):
        if key in fields:
            _str(fields, key, optional=True)
    if "status" in fields and fields["status"] not in ("active", "completed", "crashed"):
        raise RecordError("'status' is not a session status")


def _check_message(rec: dict[str, Any]) -> None:
    _uid(rec, "uid")
    _session_id(rec, "session")
    if rec.get("role") not in _ROLES:
        raise RecordError("'role' is not a message role")
    _str(rec, "content")
    _ts(rec, "created_at")
    payload = rec.get("payload")
    if payload is not None:
        if not isinstance(payload, str):
            raise RecordError("'payload' must be JSON text")
        try:
            json.loads(payload)
        except ValueError:
            raise RecordError("'payload' is not valid JSON") from None
    for key in ("input_tokens", "output_tokens", "response_ms"):
        _int(rec, key)
    _str(rec, "model", optional=True)
    _str(rec, "stop_reason", optional=True)


def _check_message_delete(rec: dict[str, Any]) -> None:
    _session_id(rec, "session")
    uids = rec.get("uids")
    if not isinstance(uids, list):
        raise RecordError("'uids' must be a list")
    for uid in uids:
        _uid({"uid": uid}, "uid")


def _check_summary(rec: dict[str, Any]) -> None:
    _uid(rec, "uid")
    _session_id(rec, "session")
    _str(rec, "content")
    _uid(rec, "first")
    _uid(rec, "last")
    _ts(rec, "first_at", optional=True)
    _ts(rec, "last_at", optional=True)
    _int(rec, "token_count")
    _str(rec, "model", optional=True)
    _ts(rec, "created_at")


def _check_memory_values(rec: dict[str, Any], partial: bool) -> None:
    if not partial or "fact" in rec:
        value = rec.get("fact")
        if not isinstance(value, str) or not value.strip():
            raise RecordError("'fact' must be text")
    if (not partial or "category" in rec) and rec.get("category") not in _CATEGORIES:
        raise RecordError("'category' is not a memory category")
    if not partial or "importance" in rec:
        value = rec.get("importance")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
            raise RecordError("'importance' must be 1 to 5")
    if "superseded_by" in rec:
        _uid(rec, "superseded_by", optional=True)


def _check_memory(rec: dict[str, Any]) -> None:
    _uid(rec, "uid")
    _str(rec, "working_dir")
    _str(rec, "project_remote", optional=True)
    _str(rec, "project_path", optional=True)
    if rec.get("session") is not None:
        _session_id(rec, "session")
    _uid(rec, "source", optional=True)
    _check_memory_values(rec, partial=False)
    _ts(rec, "created_at")


def _check_memory_set(rec: dict[str, Any]) -> None:
    _uid(rec, "uid")
    fields = rec.get("fields")
    if not isinstance(fields, dict) or not fields or set(fields) - set(_MEMORY_FIELDS):
        raise RecordError("'fields' must name memory fields")
    _check_memory_values(fields, partial=True)


def _check_id_only(rec: dict[str, Any]) -> None:
    _session_id(rec, "id")


def _check_uid_only(rec: dict[str, Any]) -> None:
    _uid(rec, "uid")


CHECKS = {
    "session": _check_session,
    "session.set": _check_session_set,
    "session.purge": _check_id_only,
    "message": _check_message,
    "message.delete": _check_message_delete,
    "summary": _check_summary,
    "memory": _check_memory,
    "memory.set": _check_memory_set,
    "memory.delete": _check_uid_only,
}


def check_version(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RecordError("not a JSON object")
    version = obj.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError("no format version")
    if version > VERSION:
        raise RecordError(
            f"written by a newer threadline (record format {version}; this one reads"
            f" {VERSION}): upgrade threadline",
            newer=True,
        )
    return obj


def parse_object(text: str | bytes) -> dict[str, Any]:
    """One line as a JSON object with a known version (a record or an encrypted block)."""
    import orjson  # a dependency (sources use it too): several times faster than json here

    try:
        obj = orjson.loads(text)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise RecordError("not JSON") from None
    return check_version(obj)


def check_record(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate a record object (after parse_object); returns it."""
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise RecordError("no sequence number")
    _ts(obj, "at")
    check = CHECKS.get(obj.get("op"))  # type: ignore[arg-type]
    if check is None:
        raise RecordError(f"unknown record type {str(obj.get('op'))[:40]!r}")
    check(obj)
    return obj
