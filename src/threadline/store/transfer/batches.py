"""A batch of imported history (threadline.records) checked and turned into rows to write.

Runs on the loader's reading thread: everything here is plain Python, and every value is checked
before it can reach SQLite (a 1e30 token count, a naive timestamp, a relative directory, a
payload that is not JSON are one-line StoreErrors naming the session). A large batch becomes
several parts (PART_BYTES, PART_MESSAGES): the first makes the session, the last brings its
summaries and file mark.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from threadline.models import ROLES
from threadline.records import FileMark, IncomingMessage, IncomingSession
from threadline.store.columns import MAX_COUNT, MAX_TOKENS, MESSAGE
from threadline.store.errors import StoreError
from threadline.store.project import project_of
from threadline.store.transfer.bulk import ROW_COST
from threadline.store.util import dump_json, fmt_ts, uuid7_seeded
from threadline.text import collapse_whitespace

# A batch is split into parts of at most this size (text bytes) and this many messages.
PART_BYTES = 256 << 10
PART_MESSAGES = 500

# The message columns an import writes, in the column table's order (id is assigned).
INSERT_COLS = [c for c in MESSAGE.stored if c != "id"]
VALUE_COLS = [c for c in INSERT_COLS if c != "session_id"]  # what a key's hash covers


def imported_session_id(source: str, source_id: str, created_at: datetime) -> str:
    """The id an imported session gets: the same wherever the same history is imported."""
    seed = f"{source}\x00{source_id}".encode("utf-8", "surrogatepass")
    return uuid7_seeded(created_at, seed)


@dataclass(slots=True)
class Msg:
    key: str
    values: tuple[Any, ...]  # VALUE_COLS
    hash: int


@dataclass(slots=True)
class Part:
    """A batch, or a part of a large one, ready to write."""

    index: int  # the batch's position in the input
    batch: IncomingSession
    label: str  # "claude-code session 1234abcd": how errors name it
    session_id: str  # the id it gets if it is new
    head: dict[str, Any]  # session columns for a new session (and what a present one takes)
    metadata: dict[str, Any]
    messages: list[Msg]
    summaries: list[tuple[str, str, str, str, str | None]]  # content, first, last, at, model
    mark: tuple[Any, ...] | None
    title_only: bool
    cost: int


def _label(batch: IncomingSession) -> str:
    return f"{batch.source} session {batch.source_id}"


def _text(value: Any, what: str, label: str, *, null: bool = True, empty: bool = True) -> Any:
    if value is None:
        if null:
            return None
        raise StoreError(f"{label}: {what} is missing")
    if not isinstance(value, str):
        raise StoreError(f"{label}: {what} must be text, not {type(value).__name__}")
    if not empty and not value:
        raise StoreError(f"{label}: {what} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: shown as U+FFFD (payloads keep the original)
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _count(value: Any, what: str, label: str, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise StoreError(f"{label}: {what} must be a whole number, not {value!r}")
    if not 0 <= value <= high:
        shown = f"{value:.3g}" if abs(value) >= 1e15 else str(value)
        raise StoreError(f"{label}: {what} {shown} is out of range (0 to {high:,})")
    return value


def _when(value: Any, what: str, label: str) -> str:
    if not isinstance(value, datetime):
        raise StoreError(f"{label}: {what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{label}: {what} has no time zone")
    return fmt_ts(value)


def _json(value: Any, what: str, label: str) -> str:
    try:
        return dump_json(value, what)
    except StoreError as exc:
        raise StoreError(f"{label}: {exc}") from None


def row_hash(values: tuple[Any, ...]) -> int:
    """A 64-bit hash of a message's stored columns (VALUE_COLS), the same from a batch or a row.

    marshal's version 0 writes str, int and None the same way whatever the objects' history
    (no references, no interning marks), and that format is frozen.
    """
    digest = hashlib.blake2b(marshal.dumps(values, 0), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _payload(value: Any, where: str) -> str:
    """A payload as stored: what dump_json gives, without its per-call set-up (this is hot)."""
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"{where}: the payload is not JSON-serialisable: {exc}") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: kept as a \u escape, so it round-trips
            text = dump_json(value)
    return text


def _stamp(value: Any, what: str, where: str) -> str:
    """An aware datetime as stored (fmt_ts's form), by the fast path when it can."""
    if type(value) is datetime:
        offset = value.utcoffset()
        if offset is not None:
            return (value.replace(tzinfo=None) - offset).isoformat(timespec="milliseconds") + "Z"
    return _when(value, what, where)


def _plain(value: Any, what: str, where: str, *, null: bool = True) -> Any:
    """Text as stored; the checks only when it is not plain text (this is hot)."""
    if type(value) is str and value.isascii():
        return value
    return _text(value, what, where, null=null)


def _tokens(value: Any, what: str, where: str) -> int | None:
    if value is None or (type(value) is int and 0 <= value <= MAX_TOKENS):
        return value
    return _count(value, what, where, MAX_TOKENS)


def _message(m: IncomingMessage, label: str) -> Msg:
    if type(m) is not IncomingMessage and not isinstance(m, IncomingMessage):
        raise StoreError(f"{label}: a message is a {type(m).__name__}, not an IncomingMessage")
    key = m.key
    if type(key) is not str or not key:
        key = _text(key, "a message key", label, null=False, empty=False)
    where = f"{label}: message {key}"
    if m.role not in ROLES:
        raise StoreError(f"{where}: role {m.role!r} is not one of {', '.join(ROLES)}")
    if type(m.payload) is not dict and not isinstance(m.payload, dict):
        raise StoreError(f"{where}: payload must be a JSON object")
    row = {
        "role": m.role,
        "content": _plain(m.content, "content", where, null=False),
        "payload": _payload(m.payload, where),
        "created_at": _stamp(m.created_at, "created_at", where),
        "input_tokens": _tokens(m.input_tokens, "input_tokens", where),
        "output_tokens": _tokens(m.output_tokens, "output_tokens", where),
        "model": _plain(m.model, "model", where) if m.model is not None else None,
        "stop_reason": _plain(m.stop_reason, "stop_reason", where)
        if m.stop_reason is not None
        else None,
        "response_ms": None,
        "complete": 1 if m.complete else 0,
    }
    values = tuple([row[c] for c in VALUE_COLS])
    return Msg(key, values, row_hash(values))


def _mark(mark: FileMark, label: str) -> tuple[Any, ...]:
    if not isinstance(mark, FileMark):
        raise StoreError(f"{label}: its mark is a {type(mark).__name__}, not a FileMark")
    path = _text(mark.path, "the mark's path", label, null=False)
    if not os.path.isabs(path):
        raise StoreError(f"{label}: the mark's path {path!r} is not absolute")
    numbers = [
        _count(getattr(mark, name), f"the mark's {name}", label, MAX_COUNT)
        for name in ("size", "mtime_ns", "offset")
    ]
    if any(n is None for n in numbers):
        raise StoreError(f"{label}: the mark lacks its size, mtime_ns or offset")
    source = _text(mark.source, "the mark's source", label, null=False, empty=False)
    fingerprint = _text(mark.fingerprint, "the mark's fingerprint", label, null=False)
    state = _json(mark.state, "mark state", label)
    return (path, source, *numbers, fingerprint, state)


def prepare(
    batch: IncomingSession,
    index: int,
    pace: Callable[[], None] | None = None,
    projects: dict[str, tuple[str, str] | None] | None = None,
) -> list[Part]:
    """Check a batch and turn it into parts ready to write (raises StoreError, naming it).

    `pace` is called every few messages (the reading thread waits there for the writer).
    `projects` caches each directory's project identity for the load (store/project.py reads
    the repository's files to find it).
    """
    if not isinstance(batch, IncomingSession):
        raise StoreError(f"batch {index + 1} is a {type(batch).__name__}, not an IncomingSession")
    label = f"batch {index + 1}"
    source = _text(batch.source, "its source", label, null=False, empty=False)
    source_id = _text(batch.source_id, "its source id", label, null=False, empty=False)
    label = _label(batch)
    created = _when(batch.created_at, "created_at", label)
    working_dir = _text(batch.working_dir, "working_dir", label, null=False)
    if not batch.title_only and not os.path.isabs(working_dir):
        raise StoreError(f"{label}: working_dir {working_dir!r} is not an absolute path")
    if not isinstance(batch.metadata, dict):
        raise StoreError(f"{label}: metadata must be a JSON object")
    metadata = {**batch.metadata, "source": source, "source_id": source_id}
    _json(metadata, "metadata", label)  # checked here; written by the writer (merged)
    title = _text(batch.title, "title", label)
    if title is not None:  # kept as sessions keep titles: on one line, blank is none
        title = collapse_whitespace(title) or None
    head = {
        "project": None if batch.title_only else _project(working_dir, projects),
        "working_dir": working_dir,
        "created_at": created,
        "title": title,
        "model": _text(batch.model, "model", label),
        "system_prompt": _text(batch.system_prompt, "system_prompt", label),
    }
    messages: list[Msg] = []
    if not batch.title_only:
        at: dict[str, int] = {}
        for n, m in enumerate(batch.messages):
            if pace is not None and not n % 32:
                pace()
            msg = _message(m, label)
            place = at.get(msg.key)
            if place is None:
                at[msg.key] = len(messages)
                messages.append(msg)
            else:
                messages[place] = msg
    summaries = []
    for s in [] if batch.title_only else batch.summaries:
        where = f"{label}: a summary"
        summaries.append(
            (
                _text(s.content, "its content", where, null=False),
                _text(s.first_key, "its first key", where, null=False),
                _text(s.last_key, "its last key", where, null=False),
                _when(s.created_at, "its created_at", where),
                _text(s.model, "its model", where),
            )
        )
    mark = None if batch.mark is None else _mark(batch.mark, label)
    session_id = imported_session_id(source, source_id, batch.created_at)
    # Split a large batch: the first part makes the session, the last brings summaries and mark.
    chunks: list[list[Msg]] = [[]]
    size = 0
    for msg in messages:
        cost = _cost(msg)
        if chunks[-1] and (size + cost > PART_BYTES or len(chunks[-1]) >= PART_MESSAGES):
            chunks.append([])
            size = 0
        chunks[-1].append(msg)
        size += cost
    parts = []
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        parts.append(
            Part(
                index=index,
                batch=batch,
                label=label,
                session_id=session_id,
                head=head,
                metadata=metadata,
                messages=chunk,
                summaries=summaries if last else [],
                mark=mark if last else None,
                title_only=batch.title_only,
                cost=sum(_cost(m) for m in chunk) + ROW_COST,
            )
        )
    return parts


def _project(directory: str, cache: dict[str, tuple[str, str] | None] | None) -> Any:
    """(normalised git remote, path inside the repository) of a directory, or None."""
    if cache is not None and directory in cache:
        return cache[directory]
    try:
        found = project_of(directory)
    except (OSError, ValueError):  # a directory of another machine, unreadable here
        found = None
    key = None if found is None else (found.remote, found.path)
    if cache is not None:
        cache[directory] = key
    return key


def _cost(msg: Msg) -> int:
    values = msg.values
    return len(values[1]) + len(values[2]) + ROW_COST  # content, payload
