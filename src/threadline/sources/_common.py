"""What the readers share: timestamps, one-line summaries, errors, reading a growing JSONL
file in steps (`JsonlCursor`) with the FileMark that says how far it was read, and reading
gzip-compressed (`.gz`) files as the bytes they hold."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from threadline.records import (
    FileMark,
    IncomingMessage,
    IncomingSession,
    IncomingSummary,
    SourceFormatError,
)

try:  # orjson is a dependency; the fallback keeps a broken install readable, only slower
    import orjson

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    _DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover

    def loads(data: bytes | str) -> Any:
        return json.loads(data)

    _DecodeError = json.JSONDecodeError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_dir(working_dir: str | None) -> str:
    """The working directory for a source that records none: the one given, else the
    current directory (what `--dir` defaults to)."""
    return working_dir or os.getcwd()


def format_error(path: Path | str, where: str | None, what: str) -> SourceFormatError:
    """The one-line error for a bad file: `<path>[, <where>]: <what>`."""
    what = one_line(what, 200)
    return SourceFormatError(f"{path}, {where}: {what}" if where else f"{path}: {what}")


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (records are untrusted input)."""
    return value if isinstance(value, dict) else {}


def open_source(path: Path) -> BinaryIO:
    """Open a source file for reading from start to end; an unreadable one is a one-line
    SourceFormatError. A `.gz` file gives the bytes it holds, decompressed as they are read
    (a damaged one is a SourceFormatError when the damage is reached)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise format_error(path, None, f"cannot read it ({exc.strerror or exc})") from None
    if is_gz(path):
        return cast(BinaryIO, _GzipStream(path, fh))
    return fh


# -- gzip-compressed files ---------------------------------------------------------------
# People keep old histories and exports compressed. A `.gz` file is read as the bytes it holds:
# streamed where a reader goes from start to end, unpacked into an anonymous temporary file
# where it seeks (JsonlCursor), never held whole in memory. Names (a session id in the file
# name, a transcript's subagent folder) are those of the file without `.gz`.

GZ = ".gz"
_CHUNK = 1 << 20


def is_gz(path: Path | str) -> bool:
    """A gzip-compressed file, by its name (`….jsonl.gz`, `conversations.json.gz`)."""
    return str(path).lower().endswith(GZ)


def plain_path(path: Path) -> Path:
    """`path` without its `.gz`: what the file would be called uncompressed."""
    return path.with_name(path.name[: -len(GZ)]) if is_gz(path) else path


def glob_files(folder: Path, pattern: str, *, recursive: bool = False) -> list[Path]:
    """The paths in `folder` (and below it, `recursive`) named like `pattern`, or like it with
    `.gz` after (in one walk), sorted."""
    walk = folder.rglob if recursive else folder.glob
    return sorted(p for p in walk(pattern + "*") if fnmatchcase(plain_path(p).name, pattern))


def _gzip_fault(path: Path | str, exc: BaseException) -> SourceFormatError:
    """The one-line error for a damaged or cut-short `.gz` file."""
    if isinstance(exc, EOFError):
        return format_error(path, None, "the gzip file is cut short (incomplete or truncated)")
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return format_error(path, None, f"not a valid gzip file ({detail})")
    assert isinstance(exc, OSError)
    return format_error(path, None, f"cannot read it ({exc.strerror or detail})")


_GZIP_FAULTS = (OSError, EOFError, zlib.error)


def _named_faults(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` of _GzipStream, a gzip fault raised as the one-line error naming the file."""

    @functools.wraps(method)
    def guarded(self: _GzipStream, *args: Any) -> Any:
        try:
            return method(self, *args)
        except _GZIP_FAULTS as exc:
            raise _gzip_fault(self.source_path, exc) from None

    return guarded


class _GzipStream(gzip.GzipFile):
    """A `.gz` file read as its contents; a damaged one raises a one-line SourceFormatError."""

    def __init__(self, path: Path, raw: BinaryIO) -> None:
        super().__init__(filename=str(path), mode="rb", fileobj=raw)
        self.source_path = path
        self.raw = raw

    read = _named_faults(gzip.GzipFile.read)
    read1 = _named_faults(gzip.GzipFile.read1)
    readinto = _named_faults(gzip.GzipFile.readinto)
    readline = _named_faults(gzip.GzipFile.readline)
    peek = _named_faults(gzip.GzipFile.peek)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.raw.close()


def unpack_gz(path: Path) -> tuple[BinaryIO, os.stat_result]:
    """The contents of the `.gz` file `path` in an anonymous temporary file (gone when closed),
    positioned at its start, and the stat of the `.gz` file as it was opened. The file is
    decompressed a chunk at a time: memory stays flat whatever its size."""
    with open_source(path) as stream:
        st = os.fstat(stream.fileno())  # the .gz file's own
        try:
            out = tempfile.TemporaryFile(prefix="threadline-gz-")  # noqa: SIM115 - returned
        except OSError as exc:
            raise _unpack_fault(path, exc) from None
        try:
            while chunk := stream.read(_CHUNK):
                try:
                    out.write(chunk)
                except OSError as exc:  # the temporary directory is full
                    raise _unpack_fault(path, exc) from None
            out.seek(0)
        except BaseException:
            out.close()
            raise
    return out, st


def _unpack_fault(path: Path, exc: OSError) -> SourceFormatError:
    where = tempfile.gettempdir()
    return format_error(path, None, f"cannot unpack it into {where} ({exc.strerror or exc})")


def content_size(path: Path, size: int) -> int:
    """About how many bytes the file at `path` (`size` bytes on disk) holds: its size, or for a
    `.gz` file the uncompressed size its trailer records (modulo 4 GiB, so never taken below
    the compressed size). For sizing reads only, never for offsets."""
    if not is_gz(path) or size < 18:
        return size
    try:
        with open(path, "rb") as fh:
            fh.seek(size - 4)
            stored = int.from_bytes(fh.read(4), "little")
    except OSError:
        return size
    return max(size, stored)


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string or epoch seconds (None when absent/bad)."""
    if type(value) is str and value[-1:] == "Z":  # the common case: "2026-02-10T21:11:56.846Z"
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:  # "2024-05-01 10:00:00.123" style, or more than 6 fractional digits
                dt = datetime.fromisoformat(_trim_fraction(text))
            except ValueError:
                return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    return None


def _trim_fraction(text: str) -> str:
    if "." not in text:
        return text
    head, _, tail = text.partition(".")
    digits = ""
    rest = ""
    for i, ch in enumerate(tail):
        if not ch.isdigit():
            rest = tail[i:]
            break
        digits += ch
    return f"{head}.{digits[:6].ljust(6, '0')}{rest}"


def one_line(text: Any, limit: int = 120) -> str:
    """The first non-empty line of `text`, cut to `limit` characters."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


_SUMMARY_KEYS = (
    "command",
    "cmd",
    "file_path",
    "path",
    "notebook_path",
    "pattern",
    "query",
    "url",
    "description",
    "prompt",
    "title",
    "name",
)


def call_summary(name: str, args: Any) -> str:
    """One line for a collapsed tool call: the command, the file, the query…"""
    if isinstance(args, dict):
        for key in _SUMMARY_KEYS:
            value = args.get(key)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                if len(value) == 3 and value[1] in ("-lc", "-c"):
                    value = value[2]
                else:
                    value = " ".join(value)
            if isinstance(value, str) and value.strip():
                return one_line(value)
        if not args:
            return ""
        return one_line(json.dumps(args, ensure_ascii=False, sort_keys=True))
    if isinstance(args, str):
        return one_line(args)
    return "" if args is None else one_line(json.dumps(args, ensure_ascii=False))


def result_summary(text: str, is_error: bool = False) -> str:
    """One line for a collapsed tool result: its first line for an error, else its size."""
    if is_error:
        return one_line(text) or "error"
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    if lines <= 1:
        return one_line(text)
    return f"{lines} lines"


def placeholder(kind: str, name: str | None, size: int | None = None) -> str:
    """The text shown for an attachment whose bytes the source does not keep."""
    label = name or kind
    if size:
        return f"[{kind}: {label}, {human_size(size)}]"
    return f"[{kind}: {label}]"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@dataclass(slots=True)
class Msg:
    """A message being built from one or more source records."""

    key: str
    role: str
    kind: str
    created_at: datetime
    records: list[Any] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None  # content when it is not derived from the parts
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    start: int = 0  # byte offset of the first record (JSONL sources)
    line: int = 0  # number of lines before that record
    snapshot: dict[str, Any] | None = None  # reader context just before that record
    open: bool = False  # later records may still change it
    extra: dict[str, Any] = field(default_factory=dict)

    def content(self) -> str:
        if self.text is not None and self.text != "":
            return self.text
        texts = [p["text"] for p in self.parts if p["type"] == "text" and p["text"].strip()]
        if texts:
            return "\n\n".join(texts)
        calls = [p for p in self.parts if p["type"] == "tool_call"]
        if calls:
            return "\n".join(
                f"{c['name']}: {c['summary']}" if c["summary"] else c["name"] for c in calls
            )
        for p in self.parts:
            if p["type"] == "command":
                return " ".join(x for x in (p["name"], p["args"]) if x)
            if p["type"] == "attachment":
                return placeholder(p["kind"], p["name"], p.get("size"))
        thinking = [p["text"] for p in self.parts if p["type"] == "thinking" and p["text"]]
        if thinking:
            return "\n\n".join(thinking)
        if any(p["type"] == "thinking" for p in self.parts):
            return "(thinking)"
        subagents = [p for p in self.parts if p["type"] == "subagent"]
        if subagents:
            return f"subagent {subagents[0]['agent']}"
        return self.text or "(no text)"

    def to_incoming(self, source: str) -> IncomingMessage:
        return IncomingMessage(
            key=self.key,
            role=self.role,  # type: ignore[arg-type]
            content=self.content(),
            created_at=self.created_at,
            payload={
                "source": source,
                "records": self.records,
                "kind": self.kind,
                "parts": self.parts,
            },
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            stop_reason=self.stop_reason,
        )


# ---------------------------------------------------------------------------------------------
# Growing JSONL files

_FP_SPAN = 4096
_BLANK = (b"\n", b"\r", b" ", b"\t")


def fingerprint(fh: Any, offset: int) -> str:
    """A cheap check that bytes [0, offset) are unchanged: the offset, and a hash of the first
    and last 4 KiB before it (not a re-hash of the whole file). Leaves the file position as
    it was (a read may be going on)."""
    h = hashlib.blake2b(digest_size=16)
    was = fh.tell()
    try:
        fh.seek(0)
        h.update(fh.read(min(offset, _FP_SPAN)))
        tail = max(0, offset - _FP_SPAN)
        fh.seek(tail)
        h.update(fh.read(offset - tail))
    finally:
        fh.seek(was)
    return f"{offset}:{h.hexdigest()}"


class JsonlCursor:
    """Reads the complete lines of a JSONL file, from where an earlier read said to go on.

    `mark.state` holds {"resume": offset, "line": number of the line there, "ctx": the reader's
    context at that point}. A mark whose fingerprint no longer matches (the file was rewritten
    or truncated) is ignored and the file read from the start.

    A `.gz` file is unpacked into a temporary file first: offsets, lines and fingerprints are
    those of its contents, the mark's size and time those of the `.gz` file itself (so an
    unchanged one is known by a stat, like any other).
    """

    def __init__(self, path: Path, source: str, mark: FileMark | None) -> None:
        self.path = path
        self.source = source
        if is_gz(path):
            self.fh, st = unpack_gz(path)
            self.size = os.fstat(self.fh.fileno()).st_size
        else:
            self.fh = open_source(path)
            st = os.fstat(self.fh.fileno())
            self.size = st.st_size
        self.file_size = st.st_size  # of the file on disk (the .gz file's, for one)
        self.mtime_ns = st.st_mtime_ns
        self.start = 0
        self.line = 0
        self.ctx: dict[str, Any] | None = None
        self.restarted = mark is not None
        if mark is not None and mark.source == source and self._still_valid(mark):
            state = mark.state or {}
            self.start = int(state.get("resume", 0))
            self.line = int(state.get("line", 0))
            ctx = state.get("ctx")
            self.ctx = ctx if isinstance(ctx, dict) else None
            self.restarted = False
            if self.ctx is None:
                self.start, self.line = 0, 0
        self.end = self.start  # end of the last complete line consumed

    def _still_valid(self, mark: FileMark) -> bool:
        if mark.offset > self.size or mark.offset < 0:
            return False
        try:
            return fingerprint(self.fh, mark.offset) == mark.fingerprint
        except OSError:
            return False

    def close(self) -> None:
        self.fh.close()

    def lines(
        self, skip: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, int, int, Any]]:
        """(start, end, line number, parsed object) for each complete, non-blank line.

        `skip(raw)` true means the line is bookkeeping the reader ignores: it is not parsed,
        only checked to look like a JSON object.
        """
        fh = self.fh
        fh.seek(self.start)
        pos = self.start
        lineno = self.line
        size = self.size  # what was there when the file was opened, no more
        for raw in fh:  # C-speed line splitting; offsets are kept by hand
            end = pos + len(raw)
            if end > size:
                break  # written after the file was opened: the next read takes it
            if not raw.endswith(b"\n"):
                # An unterminated last line is taken only when it is already a whole JSON
                # object (a file written without a final newline); a half-written one waits.
                try:
                    obj = loads(raw) if raw.strip() else None
                except _DecodeError:
                    return
                if isinstance(obj, dict):
                    self.end, self.line = end, lineno + 1
                    yield pos, end, lineno + 1, obj
                return
            start, pos = pos, end
            lineno += 1
            self.end, self.line = pos, lineno
            if skip is not None and skip(raw):
                if not (raw.lstrip().startswith(b"{") and raw.rstrip().endswith(b"}")):
                    self._parse(raw, lineno)  # raises: it is not JSON
                continue
            if raw[:1] in _BLANK and not raw.strip():
                continue  # a blank line
            yield start, pos, lineno, self._parse(raw, lineno)

    def _parse(self, raw: bytes, lineno: int) -> Any:
        try:
            obj = loads(raw)
        except _DecodeError as exc:
            raise format_error(self.path, f"line {lineno}", f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise format_error(self.path, f"line {lineno}", "not a JSON object")
        return obj

    def mark(self, resume: int, resume_line: int, ctx: dict[str, Any]) -> FileMark:
        """The mark after this read: consumed up to `self.end`, go on from `resume`."""
        return FileMark(
            path=str(self.path.resolve()),
            source=self.source,
            size=self.file_size,
            mtime_ns=self.mtime_ns,
            offset=self.end,
            fingerprint=fingerprint(self.fh, self.end),
            state={"resume": resume, "line": resume_line, "ctx": ctx},
        )


class LineSnap:
    """The reader's context as it was before one line, taken only if a message starts there.

    `first`/`prev` (the keys before the line) are read at once; the whole copy is made on the
    first `take()`, which a reader calls before any change to the context that re-reading
    the same line would not make again (taking a call's name out of the pending calls...).
    """

    __slots__ = ("reader", "first", "prev", "copy")

    def __init__(self, reader: LiveReader) -> None:
        self.reader = reader
        self.first = reader.ctx.get("first")
        self.prev = reader.ctx.get("prev")
        self.copy: dict[str, Any] | None = None

    def get(self, key: str) -> Any:
        if key == "first":
            return self.first
        if key == "prev":
            return self.prev
        return self.take().get(key)

    def take(self) -> dict[str, Any]:
        if self.copy is None:
            self.copy = self.reader.snapshot()
        return self.copy


class LiveReader:
    """Turns the lines of one growing JSONL session file into batches (Claude Code, Codex).

    A subclass's `feed` appends `Msg`s to `pending` (each with the byte offset and line where it
    starts and a `snapshot()` of the context taken before that line) and clears `open` once
    nothing later can change a message. A batch's mark resumes at the first open message with
    the context as it was there, so the next read parses it again and re-emits it under the
    same key; everything before it is final. `extra["summary"]` on a message is an
    IncomingSummary sent once (the keys of those already sent past the resume point travel in
    the mark).
    """

    source = ""
    batch_size = 2000  # closed messages per intermediate batch of a long file

    def __init__(self, path: Path, cursor: JsonlCursor, mark: FileMark | None) -> None:
        self.path = path
        self.cursor = cursor
        self.ctx: dict[str, Any] = cursor.ctx or self.initial_context()
        prior = (mark.state if mark is not None and cursor.ctx is not None else None) or {}
        self.sent_summaries: set[str] = set(prior.get("sent_summaries", []))
        self.sent_now: set[str] = set()
        self.pending: list[Msg] = []
        self.extra_batches: list[IncomingSession] = []

    # -- for subclasses ----------------------------------------------------------------------

    def initial_context(self) -> dict[str, Any]:
        raise NotImplementedError

    def feed(self, obj: dict[str, Any], start: int, line: int) -> None:
        raise NotImplementedError

    def session(self, messages: list[IncomingMessage]) -> IncomingSession:
        raise NotImplementedError

    def finish(self, msg: Msg) -> IncomingMessage:
        return msg.to_incoming(self.source)

    mutable: tuple[str, ...] = ()  # context entries changed in place (copied by snapshot)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the context deep enough that later changes do not reach it."""
        copy = dict(self.ctx)
        for key in self.mutable:
            copy[key] = copy[key].copy()
        return copy

    # -- driving -----------------------------------------------------------------------------

    @staticmethod
    def skip(raw: bytes) -> bool:
        """Lines to leave unparsed (bookkeeping recognisable from its bytes); none here."""
        return False

    def run(self) -> Iterator[IncomingSession]:
        for start, _end, lineno, obj in self.cursor.lines(self.skip):
            self.feed(obj, start, lineno - 1)
            if self.extra_batches:
                yield from self.extra_batches
                self.extra_batches.clear()
            if len(self.pending) > self.batch_size and not self.pending[0].open:
                batch = self.batch(final=False)
                if batch is not None:
                    yield batch
        batch = self.batch(final=True)
        if batch is not None:
            yield batch

    def batch(self, *, final: bool) -> IncomingSession | None:
        if final:
            out, self.pending = self.pending, []
            resume_at = next((m for m in out if m.open), None)
        else:  # the closed messages at the front; the rest waits for the next batch
            cut = 0
            while cut < len(self.pending) and not self.pending[cut].open:
                cut += 1
            out, self.pending = self.pending[:cut], self.pending[cut:]
            resume_at = self.pending[0] if self.pending else None
        if resume_at is not None:
            # Only messages created open carry a snapshot, and only those are resumed at.
            if resume_at.snapshot is None:  # pragma: no cover - a reader bug, never data
                raise RuntimeError(f"{self.path}: open message {resume_at.key} has no context")
            resume, resume_line, ctx = resume_at.start, resume_at.line, resume_at.snapshot
        else:
            resume, resume_line, ctx = self.cursor.end, self.cursor.line, self.snapshot()
        messages = [self.finish(m) for m in out]
        summaries: list[IncomingSummary] = []
        for m in out:
            summary = m.extra.get("summary")
            if summary is not None and m.key not in self.sent_summaries | self.sent_now:
                summaries.append(summary)
                self.sent_now.add(m.key)
        later = {m.key for m in out + self.pending if m.start >= resume}
        sent = sorted(k for k in self.sent_summaries | self.sent_now if k in later)
        if not messages and not summaries and not self.ctx.get("emitted"):
            return None  # nothing worth a session yet (only bookkeeping so far)
        self.ctx["emitted"] = True
        ctx["emitted"] = True
        batch = self.session(messages)
        batch.summaries = summaries
        batch.mark = self.cursor.mark(resume, resume_line, ctx)
        batch.mark.state["sent_summaries"] = sent
        return batch


# -- streamed JSON exports ------------------------------------------------------------


class Prepended:
    """A binary stream with the bytes already read from its start put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0:
                out, self.head = self.head + self.rest.read(), b""
                return out
            out, self.head = self.head[:size], self.head[size:]
            if len(out) < size:
                out += self.rest.read(size - len(out))
            return out
        return self.rest.read(size)


def peek(fh: IO[bytes]) -> tuple[bytes, Prepended]:
    """The first non-blank byte of a JSON stream, and the stream to go on reading."""
    head = fh.read(256)
    first = head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    return first, Prepended(head, fh)
