"""The records the store returns, shared by the CLI, the chat engine and the UI.

Frozen, slotted dataclasses rather than pydantic models: `sessions list`, `search` and the app's
first screen build them, and pydantic's import and schema building cost more than the whole
rest of those commands' start-up. The store is their only producer and its columns are
constrained in SQL, so a record only converts what SQLite cannot hold: timestamps stored as
ISO-8601 text become aware datetimes, and 0/1 integers become booleans (on construction, so
every producer gets the same types). The few pydantic-style methods the code uses
(`model_copy`, `model_dump`, `model_validate`, `model_fields`) are kept.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar, dataclass_transform

Role = Literal["system", "user", "assistant", "tool"]
Status = Literal["active", "completed", "crashed"]
Category = Literal["preference", "fact", "decision", "context", "correction"]

ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
CATEGORIES: tuple[str, ...] = ("preference", "fact", "decision", "context", "correction")
# The session metadata key of its memory-extraction watermark: messages with ids up to it have
# been queued for extraction. Its presence marks a session for automatic extraction (the turn
# engine sets it to 0 at a session's first turn; the store's extraction queue reads it).
WATERMARK_KEY = "memory_watermark"


class Scope(StrEnum):
    """Which sessions a list or a search covers."""

    DIRECTORY = "directory"
    WORKSPACE = "workspace"
    ALL = "all"

    def next(self) -> Scope:
        """The scope after this one when cycling (directory -> workspace -> all -> directory)."""
        order = list(Scope)
        return order[(order.index(self) + 1) % len(order)]


def _as_datetime(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _as_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, int) else value


_R = TypeVar("_R", bound="_Record")


class _Record:
    """What every record shares: a frozen dataclass's behaviour (equality and hashing by value,
    a repr, no assignment), conversion on construction and the pydantic-style methods."""

    __slots__ = ()
    # Field name -> its annotation (text), in constructor order (a base record's first).
    model_fields: ClassVar[dict[str, str]]
    _convert: ClassVar[tuple[tuple[str, Callable[[Any], Any]], ...]]
    # The field values, for equality and hashing (an attrgetter: called with the record).
    _values: ClassVar[Any]

    def __post_init__(self) -> None:
        for name, convert in self._convert:
            value = getattr(self, name)
            converted = convert(value)
            if converted is not value:
                object.__setattr__(self, name, converted)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(self._values(self) == self._values(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.model_fields)
        return f"{type(self).__qualname__}({fields})"

    def __getstate__(self) -> tuple[Any, ...]:  # (copy and pickle: the slots, in order)
        return tuple(getattr(self, name) for name in self.model_fields)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.model_fields, state, strict=True):
            object.__setattr__(self, name, value)

    def model_copy(self: _R, *, update: dict[str, Any] | None = None) -> _R:
        return type(self)(**{**self.model_dump(), **(update or {})})

    def model_dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields}

    @classmethod
    def model_validate(cls: type[_R], data: dict[str, Any]) -> _R:
        return cls(**data)


_NO_DEFAULT: Any = object()
_FACTORY: Any = object()  # an argument not given whose default comes from a factory


@dataclass_transform(kw_only_default=True, frozen_default=True)
def record(cls: type[_R]) -> type[_R]:
    """Make `cls` a frozen, slotted, keyword-only record: a dataclass(frozen=True, slots=True,
    kw_only=True) in behaviour, made in one step. (`dataclasses.dataclass` compiles half a
    dozen methods per class: for these records, a third of the store's import, which every
    command and the app's start pay; here only `__init__` is compiled, the rest is _Record's.)

    Fields are the class's annotations (after a base record's), a default its value, and
    `dataclasses.field(default_factory=...)` a default made per instance."""
    fields: dict[str, str] = dict(getattr(cls, "model_fields", {}))
    namespace = dict(cls.__dict__)
    defaults: dict[str, Any] = dict(getattr(cls, "_defaults", {}))
    own = []
    for name, kind in cls.__dict__.get("__annotations__", {}).items():
        kind = str(kind)
        if kind.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = namespace.pop(name, _NO_DEFAULT)
        if isinstance(value, dataclasses.Field):
            if value.default_factory is not dataclasses.MISSING:
                value = _Factory(value.default_factory)
            elif value.default is not dataclasses.MISSING:
                value = value.default
            else:
                value = _NO_DEFAULT
        fields[name] = kind
        defaults[name] = value
        own.append(name)
    namespace["__slots__"] = tuple(own)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    made: Any = type(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    made.__init__ = _make_init(made, fields, defaults)
    made.model_fields = fields
    made._defaults = defaults
    made._values = operator.attrgetter(*fields)
    convert = []
    for name, kind in fields.items():
        if kind.startswith("datetime"):
            convert.append((name, _as_datetime))
        elif kind == "bool":
            convert.append((name, _as_bool))
    made._convert = tuple(convert)
    return made


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def _make_init(cls: type, fields: dict[str, str], defaults: dict[str, Any]) -> Any:
    """The keyword-only __init__ of a record: sets each field, then __post_init__."""
    scope: dict[str, Any] = {"_set": object.__setattr__, "_FACTORY": _FACTORY}
    params, body = [], []
    for i, name in enumerate(fields):
        default = defaults[name]
        if default is _NO_DEFAULT:
            params.append(name)
            body.append(f"    _set(self, {name!r}, {name})")
        elif isinstance(default, _Factory):
            scope[f"_make{i}"] = default.make
            params.append(f"{name}=_FACTORY")
            body.append(f"    _set(self, {name!r}, _make{i}() if {name} is _FACTORY else {name})")
        else:
            scope[f"_default{i}"] = default
            params.append(f"{name}=_default{i}")
            body.append(f"    _set(self, {name!r}, {name})")
    source = "\n".join(
        [f"def __init__(self, *, {', '.join(params)}):", *body, "    self.__post_init__()"]
    )
    exec(source, scope)  # noqa: S102 - the source is made above from the class's field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _list() -> Any:
    return dataclasses.field(default_factory=list)


@record
class SessionCursor(_Record):
    """Keyset position in a session list (pinned first, then newest activity, then id)."""

    pinned: bool
    updated_at: datetime
    id: str


@record
class SessionSummary(_Record):
    """One row of a session list: what a sidebar or `sessions list` shows."""

    id: str
    working_dir: str
    title: str | None
    preview: str | None
    provider: str | None
    model: str | None
    status: Status
    pinned: bool
    created_at: datetime
    updated_at: datetime
    message_count: int
    deleted_at: datetime | None = None
    # A turn is under way (its writer keeps a heartbeat); `status` says crashed if it died.
    writing: bool = False
    # The role of the session's last message (None: no message), and its stop reason.
    last_role: Role | None = None
    last_stop: str | None = None
    # The tool an imported session came from ("claude-code", "chatgpt"…; threadline.records
    # SOURCES); None for a session threadline wrote.
    source: str | None = None

    @property
    def reply_failed(self) -> bool:
        """The last reply broke off with a provider error (what arrived is kept)."""
        return self.last_role == "assistant" and self.last_stop == "error"

    @property
    def unanswered(self) -> bool:
        """The last message is the user's and no reply is being written for it: its turn broke
        off before the model answered (crashed), or it was never sent. Never said of a session
        imported from another tool (its last message is often a command or a notice, and what
        that tool did with it is not threadline's to flag)."""
        return (
            self.source is None
            and self.last_role == "user"
            and (not self.writing or self.status == "crashed")
        )

    @property
    def display_title(self) -> str:
        """The title, else the first user message, else a placeholder."""
        return self.title or self.preview or "(empty session)"

    @property
    def cursor(self) -> SessionCursor:
        return SessionCursor(pinned=self.pinned, updated_at=self.updated_at, id=self.id)


@record
class Session(SessionSummary):
    """A whole session row."""

    system_prompt: str | None
    ended_at: datetime | None
    total_input_tokens: int
    total_output_tokens: int
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@record
class Message(_Record):
    """One message of a session. `complete` is false while a reply streams or after it broke off."""

    kind: Literal["message"] = "message"
    id: int
    session_id: str
    role: Role
    content: str
    payload: Any = None
    created_at: datetime
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    stop_reason: str | None = None
    response_ms: int | None = None
    complete: bool = True

    @property
    def position(self) -> tuple[int, int]:
        """Order in the timeline: a message sorts at its id, before a summary ending there."""
        return (self.id, 0)


@record
class Summary(_Record):
    """A model-written summary standing for messages first_message_id..last_message_id."""

    kind: Literal["summary"] = "summary"
    id: int
    session_id: str
    content: str
    first_message_id: int
    last_message_id: int
    token_count: int | None = None
    model: str | None = None
    created_at: datetime

    @property
    def position(self) -> tuple[int, int]:
        """Order in the timeline: right after the last message it covers."""
        return (self.last_message_id, 1)


TimelineItem = Message | Summary


@record
class SummarySpan(_Record):
    """Where a summary's range sits in its session, counted in the messages still stored."""

    summary_id: int
    # The session's messages before the range, and those of the range still stored
    # (0: compacted away).
    before: int
    covered: int

    @property
    def first_position(self) -> int:
        """1-based position of the first covered message (meaningful when covered > 0)."""
        return self.before + 1

    @property
    def last_position(self) -> int:
        return self.before + self.covered

    @property
    def compacted(self) -> bool:
        """The messages it stands for were removed (`sessions compact`)."""
        return self.covered == 0


@record
class Memory(_Record):
    """A durable fact about a project directory, with where it came from."""

    id: int
    working_dir: str
    session_id: str | None
    source_message_id: int | None
    fact: str
    category: Category
    importance: int  # 1..5 (a CHECK in the schema)
    superseded_by: int | None = None
    is_manual: bool = False
    created_at: datetime


@record
class PendingExtraction(_Record):
    """A queued memory extraction for a session (retried with backoff, given up after 3)."""

    id: int
    session_id: str
    from_message_id: int | None = None
    to_message_id: int | None = None
    attempt_count: int = 0
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime
    error_message: str | None = None
    created_at: datetime


@record
class SearchHit(_Record):
    """One full-text match. `snippet` marks matched terms with HIGHLIGHT_START/END."""

    kind: Literal["message", "summary"]
    session_id: str
    session_title: str
    working_dir: str
    message_id: int | None
    summary_id: int | None = None
    role: Role | None
    created_at: datetime
    snippet: str
    rank: float | None = None

    def snippet_parts(self) -> list[tuple[str, bool]]:
        """The snippet split into (text, is_match) runs, for safe highlighting."""
        return split_highlights(self.snippet)


HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"


def split_highlights(snippet: str) -> list[tuple[str, bool]]:
    """Split a snippet with HIGHLIGHT_START/END markers into (text, is_match) runs."""
    parts: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find(HIGHLIGHT_START)
        if start < 0:
            parts.append((rest, False))
            break
        if start:
            parts.append((rest[:start], False))
        end = rest.find(HIGHLIGHT_END, start + 1)
        if end < 0:
            parts.append((rest[start + 1 :], True))
            break
        parts.append((rest[start + 1 : end], True))
        rest = rest[end + 1 :]
    return [(text, hit) for text, hit in parts if text]


@record
class CleanupResult(_Record):
    """What a cleanup moved to the trash (or would, in a dry run) and what it purged."""

    sessions_deleted: int
    by_retention: int
    by_max_limit: int
    purged: int
    dry_run: bool = False
    trashed_ids: list[str] = _list()
    purged_ids: list[str] = _list()


@record
class DatabaseInfo(_Record):
    """Facts about the open database for `db check` and the like."""

    path: str
    schema_version: int
    sessions: int
    trashed_sessions: int
    messages: int
    summaries: int
    memories: int
    pending_extractions: int
    size_bytes: int
    read_only: bool = False  # the file cannot be written by this process


@record
class IntegrityReport(_Record):
    """What `db check` found: problems (empty when healthy) and checks it could not run."""

    problems: list[str]
    skipped: list[str] = _list()
    read_only: bool = False
