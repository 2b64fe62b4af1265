"""Reading a threadline export: every record checked, to the end, before anything is written.

`check(source, name, spool_dir)` reads a JSONL export or a JSON document from a binary stream,
validates each record against the format (store/transfer/format.py: every column's type and
bound), checks how the records fit together (a message follows its session, nothing appears
twice, a memory's session is in the file) and writes the rows, already converted to what
SQLite stores, to a spool: a private temporary file beside the database, deleted when closed
(and by the system if the process dies). Nothing is held in memory but the current session's
ids and keys, one small record per session, and the memories. A bad record anywhere raises
ImportFormatError naming its line, and nothing has been written to the database.

Message ids shared by two sessions of the same file (a hand-merged file) are resolved here:
the later session's ids (and its summaries' ranges) are moved above every id the file holds.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import stat
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from pydantic import TypeAdapter, ValidationError

from threadline.store import scope as scopes
from threadline.store.columns import MEMORY, MESSAGE, SESSION, SUMMARY, Table
from threadline.store.errors import StoreError
from threadline.store.transfer.format import (
    FORMAT,
    READABLE_VERSIONS,
    HeaderRecord,
    ImportFormatError,
    MemoryRecord,
    MessageRecord,
    Record,
    SessionDocument,
    SessionRecord,
    SummaryRecord,
    describe,
)
from threadline.store.util import dump_json, fmt_ts

# phase ("reading": bytes of total, None for a pipe), done, total
ReadProgress = Callable[[str, int, int | None], None]

# Rows per spool item, and how often reading reports progress (bytes).
SPOOL_ROWS = 128
REPORT_BYTES = 1 << 20
# Ids below this are tracked in a bitmap (at most 32 MiB); larger ones in a set.
BITMAP_IDS = 1 << 28

_RECORD: TypeAdapter[Any] = TypeAdapter(Record)


class Feed(Protocol):
    def add(self, ids: list[int], texts: list[str], dirs: list[str]) -> None: ...
    def moved(self) -> None: ...


def _converters(table: Table) -> tuple[list[str], list[tuple[int, Callable[[Any], Any]]]]:
    """The exported columns of `table` in order, and how to turn each into what SQLite stores."""
    names = [c.name for c in table.exported]
    fixes: list[tuple[int, Callable[[Any], Any]]] = []
    for i, c in enumerate(table.exported):
        if c.kind == "ts":
            fixes.append((i, _ts))
        elif c.kind == "bool":
            fixes.append((i, int))
        elif c.kind in ("json", "object"):
            fixes.append((i, _json))
    return names, fixes


def _ts(value: Any) -> Any:
    """A validated timestamp (or None) as stored text."""
    if value is None or isinstance(value, str):
        return value
    return fmt_ts(value)


def _json(value: Any) -> Any:
    return None if value is None else dump_json(value)


SESSION_COLS, _SESSION_FIXES = _converters(SESSION)
MESSAGE_COLS, _MESSAGE_FIXES = _converters(MESSAGE)
_CONTENT = MESSAGE_COLS.index("content")
SUMMARY_COLS, _SUMMARY_FIXES = _converters(SUMMARY)
MEMORY_COLS, MEMORY_FIXES = _converters(MEMORY)


def to_row(record: Any, names: list[str], fixes: list[tuple[int, Callable[[Any], Any]]]) -> list:
    data = record.__dict__
    row = [data[name] for name in names]
    for i, fix in fixes:
        row[i] = fix(row[i])
    return row


class IdSet:
    """A set of positive ids (a bitmap while they are small, so millions cost a few MB)."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.big: set[int] = set()
        self.top = 0

    def __contains__(self, value: int) -> bool:
        if value < BITMAP_IDS:
            byte = value >> 3
            return byte < len(self.bits) and bool(self.bits[byte] & (1 << (value & 7)))
        return value in self.big

    def add(self, value: int) -> None:
        self.top = max(self.top, value)
        if value < BITMAP_IDS:
            byte = value >> 3
            if byte >= len(self.bits):
                self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
            self.bits[byte] |= 1 << (value & 7)
        else:
            self.big.add(value)


@dataclass
class SessionPlan:
    """What pass 1 learnt about one session of the file (its rows are in the spool)."""

    id: str
    messages: int = 0
    summaries: int = 0
    msg_lo: int = 0  # its message ids in the file, after `shift`
    msg_hi: int = 0
    sum_lo: int = 0
    sum_hi: int = 0
    shift: int = 0  # how far its message ids moved to avoid another session's in the file
    summary_shift: int = 0
    cost: int = 0  # bytes of text
    ids_at: int = 0  # where its message ids (as in the file, sorted) are in the ids spool
    summary_ids: list[int] = field(default_factory=list)  # as in the file


@dataclass
class Checked:
    """A checked export: its spool, what is in it, and the hash of the bytes read."""

    spool: IO[bytes]
    ids: IO[bytes]  # each session's message ids, 8 bytes each
    name: str
    digest: str
    sessions: list[SessionPlan] = field(default_factory=list)
    memories: list[tuple[int, Any]] = field(default_factory=list)  # (line, MemoryRecord)
    messages: int = 0
    message_top: int = 0  # the largest message id in the file (after moves)
    summary_top: int = 0
    bytes_read: int = 0

    def items(self) -> Iterator[tuple[Any, ...]]:
        """The spool's items, from the start: ("s", ordinal, row), ("m"|"y", ordinal, rows)."""
        self.spool.seek(0)
        load = marshal.load
        while True:
            try:
                yield load(self.spool)
            except EOFError:
                return

    def message_ids(self, plan: SessionPlan) -> array[int]:
        """A session's message ids as they are in the file (sorted)."""
        ids: array[int] = array("q")
        self.ids.seek(plan.ids_at)
        ids.frombytes(self.ids.read(plan.messages * ids.itemsize))
        return ids

    def close(self) -> None:
        self.spool.close()
        self.ids.close()


class _Stream:
    """The export's bytes, with line numbers, a running hash and a byte count."""

    def __init__(self, source: IO[bytes], name: str) -> None:
        self.source = source
        self.name = name
        self.hash = hashlib.blake2b(digest_size=16)
        self.bytes_read = 0
        self.total: int | None = None
        try:
            info = os.fstat(source.fileno())
            if stat.S_ISREG(info.st_mode):
                self.total = info.st_size - source.tell()
        except (OSError, AttributeError, ValueError):  # a pipe, or an in-memory stream
            pass

    def readline(self) -> bytes:
        line = self.source.readline()
        self.bytes_read += len(line)
        self.hash.update(line)
        return line

    def rest(self) -> bytes:
        data = self.source.read()
        self.bytes_read += len(data)
        self.hash.update(data)
        return data

    def fail(self, where: str, problem: str) -> ImportFormatError:
        if where:
            return ImportFormatError(f"{self.name}: {where}: {problem}; nothing was imported")
        return ImportFormatError(f"{self.name}: {problem}; nothing was imported")


def records(stream: _Stream) -> Iterator[tuple[int, Any]]:
    """(line number, record) for every record of a JSONL export or a JSON document."""
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        raise stream.fail("", "the file is empty, not a threadline export")
    header: Any = None
    try:
        header = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        header = None
    if isinstance(header, dict) and header.get("type") == "header":
        yield from _jsonl(stream, header)
    elif isinstance(header, dict) and "type" in header:
        raise stream.fail("line 1", "the first line must be the threadline export header")
    else:
        yield from _document(stream, first)


def _check_version(stream: _Stream, where: str, data: dict[str, Any]) -> None:
    if data.get("format") != FORMAT:
        found = data.get("format")
        what = f"format {found!r}" if found is not None else "no format field"
        raise stream.fail(where, f"not a threadline export ({what})")
    version = data.get("version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise stream.fail(
            where,
            f"export format version {version!r} is not supported (this threadline reads "
            f"versions {readable})",
        )


def _jsonl(stream: _Stream, header: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    _check_version(stream, "line 1", header)
    try:
        HeaderRecord.model_validate(header)
    except ValidationError as exc:
        raise stream.fail("line 1", describe(exc)) from None
    validate = _RECORD.validate_json
    number = 1
    while True:
        raw = stream.readline()
        if not raw:
            return
        number += 1
        if not raw.strip():
            continue
        try:
            record = validate(raw)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                raise stream.fail(f"line {number}", "not valid JSON") from None
            raise stream.fail(f"line {number}", describe(exc)) from None
        if isinstance(record, HeaderRecord):
            raise stream.fail(f"line {number}", "a second header")
        yield number, record


def _document(stream: _Stream, first: bytes) -> Iterator[tuple[int, Any]]:
    # One session's document: read whole (it is the size of one session, not of a history).
    raw = first + stream.rest()
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise stream.fail("", "not UTF-8 text") from None
    except ValueError as exc:
        raise stream.fail("", f"not valid JSON or JSONL ({exc})") from None
    if not isinstance(data, dict):
        raise stream.fail("", "not a threadline export (expected a JSON object)")
    _check_version(stream, "", data)
    try:  # from the bytes, as JSONL lines are: text that is not valid Unicode is refused here
        doc = SessionDocument.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise stream.fail("", "holds text that is not valid JSON or Unicode") from None
        raise stream.fail("", describe(exc)) from None
    yield 1, doc.session
    for item in (*doc.messages, *doc.summaries, *doc.memories):
        yield 1, item


class _Checker:
    """Pass 1: every record checked and spooled; one session's ids held at a time."""

    def __init__(
        self,
        stream: _Stream,
        spool: IO[bytes],
        ids: IO[bytes],
        progress: ReadProgress | None,
        feed: Feed | None = None,
    ):
        self.stream = stream
        self.feed = feed
        self.tokens = ""  # the current session's directory tokens
        self.spool = spool
        self.ids_spool = ids
        self.progress = progress
        self.checked = Checked(spool=spool, ids=ids, name=stream.name, digest="")
        self.session_ids: set[str] = set()
        self.message_ids = IdSet()  # of the sessions before the current one (after moves)
        self.summary_ids = IdSet()
        self.dir_tokens: dict[str, str] = {}
        self.next_report = REPORT_BYTES
        # The current session
        self.plan: SessionPlan | None = None
        self.ordinal = -1
        self.ids: set[int] = set()
        self.keys: set[str] = set()
        self.sum_ids: set[int] = set()
        self.rows: list[list[Any]] = []
        self.sum_rows: list[list[Any]] = []

    def fail(self, number: int, problem: str) -> ImportFormatError:
        return self.stream.fail(f"line {number}", problem)

    def run(self) -> Checked:
        if self.progress:
            self.progress("reading", 0, self.stream.total)
        for number, record in records(self.stream):
            if isinstance(record, MessageRecord):
                self._message(number, record)
            elif isinstance(record, SessionRecord):
                self._end_session()
                self._start_session(number, record)
            elif isinstance(record, SummaryRecord):
                self._summary(number, record)
            elif isinstance(record, MemoryRecord):
                self.checked.memories.append((number, record))
            if self.progress and self.stream.bytes_read >= self.next_report:
                self.next_report = self.stream.bytes_read + REPORT_BYTES
                self.progress("reading", self.stream.bytes_read, self.stream.total)
        self._end_session()
        self._check_memories()
        checked = self.checked
        checked.digest = self.stream.hash.hexdigest()
        checked.bytes_read = self.stream.bytes_read
        checked.message_top = self.message_ids.top
        checked.summary_top = self.summary_ids.top
        if self.progress:
            self.progress("reading", self.stream.bytes_read, self.stream.total)
        return checked

    def _start_session(self, number: int, record: Any) -> None:
        if record.id in self.session_ids:
            raise self.fail(number, f"session {record.id} appears twice")
        self.session_ids.add(record.id)
        self.ordinal += 1
        self.plan = SessionPlan(id=record.id)
        row = to_row(record, SESSION_COLS, _SESSION_FIXES)
        tokens = self.dir_tokens.get(record.working_dir)
        if tokens is None:
            tokens = self.dir_tokens[record.working_dir] = scopes.dir_tokens(record.working_dir)
        self._dump(("s", self.ordinal, row, tokens))
        self.tokens = tokens
        self.ids, self.keys, self.sum_ids = set(), set(), set()

    def _orphan(self, number: int, record: Any) -> ImportFormatError:
        return self.fail(
            number, f"{record.type} {record.id} does not follow its session {record.session_id}"
        )

    def _message(self, number: int, record: Any) -> None:
        plan = self.plan
        if plan is None or record.session_id != plan.id:
            raise self._orphan(number, record)
        if record.id in self.ids:
            raise self.fail(number, f"message id {record.id} appears twice in session {plan.id}")
        self.ids.add(record.id)
        if record.source_key is not None:
            if record.source_key in self.keys:
                raise self.fail(
                    number, f"source key {record.source_key!r} appears twice in session {plan.id}"
                )
            self.keys.add(record.source_key)
        row = to_row(record, MESSAGE_COLS, _MESSAGE_FIXES)
        plan.cost += len(record.content) + (len(row[4]) if row[4] else 0)
        self.rows.append(row)
        if len(self.rows) >= SPOOL_ROWS:
            self._dump_rows()

    def _dump_rows(self) -> None:
        rows = self.rows
        self._dump(("m", self.ordinal, rows))
        if self.feed is not None:
            self.feed.add(
                [r[0] for r in rows], [r[_CONTENT] for r in rows], [self.tokens] * len(rows)
            )
        self.rows = []

    def _summary(self, number: int, record: Any) -> None:
        plan = self.plan
        if plan is None or record.session_id != plan.id:
            raise self._orphan(number, record)
        if record.id in self.sum_ids:
            raise self.fail(number, f"summary id {record.id} appears twice in session {plan.id}")
        self.sum_ids.add(record.id)
        self.sum_rows.append(to_row(record, SUMMARY_COLS, _SUMMARY_FIXES))

    def _end_session(self) -> None:
        plan = self.plan
        if plan is None:
            return
        if self.rows:
            self._dump_rows()
        if self.sum_rows:
            self._dump(("y", self.ordinal, self.sum_rows))
            self.sum_rows = []
        self._dump(("e", self.ordinal))
        plan.messages = len(self.ids)
        plan.summaries = len(self.sum_ids)
        plan.ids_at = self.ids_spool.tell()
        self.ids_spool.write(array("q", sorted(self.ids)).tobytes())
        plan.summary_ids = sorted(self.sum_ids)
        if self.ids:
            lo, hi = min(self.ids), max(self.ids)
            if any(i in self.message_ids for i in self.ids):  # ids of another session here
                plan.shift = self.message_ids.top + 1 - lo
                if self.feed is not None:
                    self.feed.moved()
            plan.msg_lo, plan.msg_hi = lo + plan.shift, hi + plan.shift
            for i in self.ids:
                self.message_ids.add(i + plan.shift)
        if self.sum_ids:
            lo, hi = min(self.sum_ids), max(self.sum_ids)
            if any(i in self.summary_ids for i in self.sum_ids):
                plan.summary_shift = self.summary_ids.top + 1 - lo
            plan.sum_lo, plan.sum_hi = lo + plan.summary_shift, hi + plan.summary_shift
            for i in self.sum_ids:
                self.summary_ids.add(i + plan.summary_shift)
        self.checked.sessions.append(plan)
        self.checked.messages += plan.messages
        self.plan = None

    def _check_memories(self) -> None:
        seen: set[int] = set()
        for number, m in self.checked.memories:
            if m.id in seen:
                raise self.fail(number, f"memory {m.id} appears twice")
            seen.add(m.id)
            if m.session_id is not None and m.session_id not in self.session_ids:
                raise self.fail(
                    number,
                    f"memory {m.id} refers to session {m.session_id}, which is not in the file",
                )

    def _dump(self, item: tuple[Any, ...]) -> None:
        marshal.dump(item, self.spool)


def check(
    source: IO[bytes],
    name: str,
    spool_dir: str | None,
    progress: ReadProgress | None,
    feed: Feed | None = None,
) -> Checked:
    """Pass 1: read and check the whole export into a spool (see the module docstring).

    `feed` is given each message's file id, text and directory tokens as it is read, and told
    when a session's ids are moved (for a side index: transfer/side_index.EarlyFeed).

    Raises:
        ImportFormatError: the file is not a valid export (nothing was imported).
    """
    stream = _Stream(source, name)
    try:
        spool = tempfile.TemporaryFile(prefix="threadline-import-", dir=spool_dir)
        ids = tempfile.TemporaryFile(prefix="threadline-import-", dir=spool_dir)
    except OSError as exc:
        raise StoreError(f"cannot make a temporary file for the import: {exc.strerror}") from None
    try:
        return _Checker(stream, spool, ids, progress, feed).run()
    except OSError as exc:
        spool.close()
        ids.close()
        raise StoreError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except BaseException:
        spool.close()
        ids.close()
        raise
