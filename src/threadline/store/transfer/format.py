"""The threadline export format: its records, generated from the column tables (store/columns.py).

JSONL (`threadline export --all --format jsonl`): one JSON object per line, streamed::

    {"type": "header", "format": "threadline", "version": 2}
    {"type": "session", ...every exported session column...}
    {"type": "message", ...}    that session's messages, in id order
    {"type": "summary", ...}    that session's summaries
    ...                         the next session, and so on
    {"type": "memory", ...}     memories, after every session

JSON (`threadline export ID --format json`): one document for one session::

    {"format": "threadline", "version": 2, "session": {...}, "messages": [...],
     "summaries": [...], "memories": [...]}

Version 2 added what imported history carries (a session's `source`, `source_id` and
`received_at`, a message's `source_key`); version 1 files are read as before, with those absent.
Every bound a column declares is checked when a file is read (a 1e30 token count is a one-line
error naming the line).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)

from threadline.store import columns
from threadline.store.columns import Column, Table
from threadline.store.errors import StoreError

FORMAT = "threadline"
VERSION = 2
READABLE_VERSIONS = (1, 2)

_CANONICAL_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
# The store's own form passes as text (fast, byte-exact); any other ISO-8601 time with a zone
# is parsed and rewritten in that form.
Timestamp = Annotated[str, StringConstraints(pattern=_CANONICAL_TS)] | AwareDatetime
SessionId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]


def _annotation(c: Column) -> Any:
    """The pydantic type of a column in the export format (with its bounds)."""
    kind = c.kind
    base: Any
    if kind == "uuid":
        base = SessionId
    elif kind in ("dir", "nonempty"):
        base = Annotated[str, StringConstraints(min_length=1)]
    elif kind == "text":
        base = str
    elif kind == "ts":
        base = Timestamp
    elif kind == "rowid":
        base = Annotated[int, Field(ge=1, le=columns.MAX_ID)]
    elif kind == "count":
        base = Annotated[int, Field(ge=0, le=columns.MAX_COUNT)]
    elif kind == "tokens":
        base = Annotated[int, Field(ge=0, le=columns.MAX_TOKENS)]
    elif kind == "ms":
        base = Annotated[int, Field(ge=0, le=columns.MAX_MS)]
    elif kind == "int":
        base = Annotated[int, Field(ge=c.low, le=c.high)]
    elif kind == "bool":
        base = bool
    elif kind == "json":
        base = Any
    elif kind == "object":
        base = dict[str, Any]
    elif kind == "choice":
        base = Literal[c.choices]
    else:  # pragma: no cover - a kind added to columns.py without a type here
        raise ValueError(f"no export type for column kind {kind!r}")
    return base | None if c.null else base


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _record_model(table: Table, name: str, base: type[BaseModel] = _Record) -> type[BaseModel]:
    fields: dict[str, Any] = {"type": (Literal[table.record], table.record)}
    for c in table.exported:
        default = ... if c.default is columns.REQUIRED else c.default
        if isinstance(default, dict | list):
            fields[c.name] = (_annotation(c), Field(default_factory=type(default)))
        else:
            fields[c.name] = (_annotation(c), default)
    model: type[BaseModel] = create_model(name, __base__=base, __module__=__name__, **fields)
    return model


class HeaderRecord(_Record):
    """The first line of a JSONL export."""

    type: Literal["header"]
    format: Literal["threadline"]
    version: int


class _SummaryChecks(_Record):
    @model_validator(mode="after")
    def _range(self) -> Any:
        if self.last_message_id < self.first_message_id:  # type: ignore[attr-defined]
            raise ValueError("last_message_id comes before first_message_id")
        return self


SessionRecord = _record_model(columns.SESSION, "SessionRecord")
MessageRecord = _record_model(columns.MESSAGE, "MessageRecord")
SummaryRecord = _record_model(columns.SUMMARY, "SummaryRecord", _SummaryChecks)
MemoryRecord = _record_model(columns.MEMORY, "MemoryRecord")

Record = Annotated[
    HeaderRecord | SessionRecord | MessageRecord | SummaryRecord | MemoryRecord,  # type: ignore[valid-type]
    Field(discriminator="type"),
]


class SessionDocument(BaseModel):
    """`export ID --format json`: one session with everything that belongs to it."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["threadline"]
    version: int
    session: SessionRecord  # type: ignore[valid-type]
    messages: list[MessageRecord] = Field(default_factory=list)  # type: ignore[valid-type]
    summaries: list[SummaryRecord] = Field(default_factory=list)  # type: ignore[valid-type]
    memories: list[MemoryRecord] = Field(default_factory=list)  # type: ignore[valid-type]


class ExportStats(BaseModel):
    """What an export wrote."""

    sessions: int = 0
    messages: int = 0
    summaries: int = 0
    memories: int = 0


class ImportTimings(BaseModel):
    """Where an import's time went, in seconds."""

    read_seconds: float = 0.0  # reading and checking the whole file (no lock held)
    wait_seconds: float = 0.0  # waiting for other writers to release the write lock
    load_seconds: float = 0.0  # inserting rows (write lock held)
    index_seconds: float = 0.0  # full-text indexing them (write lock held)
    commit_seconds: float = 0.0  # making each transaction durable
    locked_seconds: float = 0.0  # the write lock held, in all
    longest_lock_seconds: float = 0.0  # the longest any one transaction held it
    transactions: int = 0
    total_seconds: float = 0.0


class ImportResult(BaseModel):
    """What an import added, and the sessions it skipped because they already existed."""

    sessions: int = 0
    updated: int = 0  # always 0 for a threadline export (sessions are never merged)
    messages: int = 0
    skipped: int = 0  # sessions already present (the same as len(skipped_sessions))
    summaries: int = 0
    memories: int = 0
    skipped_sessions: list[str] = Field(default_factory=list)
    skipped_memories: int = 0
    renumbered_sessions: list[str] = Field(default_factory=list)
    resumed: bool = False  # finished an import of the same file that was interrupted
    timings: ImportTimings = Field(default_factory=ImportTimings)


class ImportFormatError(StoreError):
    """The file is not a valid threadline export (nothing was imported)."""


def describe(exc: ValidationError) -> str:
    """A pydantic error as one short line: where, then what."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
    # Drop the union-branch noise pydantic adds (`session.created_at.str`).
    loc = re.sub(r"\.(str|constrained-str|datetime|function-after\[.*?\])$", "", loc)
    where = f"{loc}: " if loc else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}{first['msg']}{more}"
