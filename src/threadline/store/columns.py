"""One column table per entity (session, message, summary, memory): the single list of columns.

Every piece of code that lists an entity's columns takes them from here: the store's row readers
(messages.py, summaries.py, memories.py), the export encoders (JSONL and JSON are both built
from `Table.json_object`), the export reader (its pydantic record models are generated from
these tables) and the bulk loaders' INSERT statements. Adding a column is one line here (and its
migration); the export format, its reader and the loaders follow.

A column's `kind` says what it holds, which decides how it is encoded (`bool` as JSON true/false,
`json` as the value itself) and validated when an export is read back (the bounds below are
enforced there, so a 1e30 in a file is a one-line error, not an OverflowError in SQLite).
`export=False` marks what a database derives for itself or keeps private (search scope
tokens, a live writer's heartbeat); `stored=False` marks an exported field that lives in
another table (a message's source key, in message_keys).

Nothing heavy is imported here: messages.py uses it on every start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from threadline.models import CATEGORIES, ROLES, Status

STATUSES: tuple[str, ...] = get_args(Status)

# The largest values an export or an import may hold. SQLite integers are 64-bit; ids stay
# within what JSON readers (JavaScript, jq) represent exactly, so shifting an id to renumber a
# session can never overflow. Token counts and durations get a bound that no real value nears,
# so a session's totals (a sum over its messages) cannot overflow either.
MAX_ID = 2**53 - 1
MAX_COUNT = 2**63 - 1
MAX_TOKENS = 2**40  # per message: about a trillion tokens
MAX_MS = 2**40  # per message: about 35 years

Kind = Literal[
    "uuid",  # a session id (UUID text)
    "dir",  # an absolute directory (non-empty text)
    "text",  # any text
    "nonempty",  # text with at least one character
    "ts",  # a UTC timestamp (ISO-8601 with milliseconds)
    "rowid",  # an id of a row: 1..MAX_ID
    "count",  # a counter: 0..MAX_COUNT
    "tokens",  # a token count: 0..MAX_TOKENS
    "ms",  # a duration in milliseconds: 0..MAX_MS
    "int",  # an integer within `low`..`high`
    "bool",  # 0/1 in SQLite, false/true in JSON
    "json",  # JSON text in SQLite (NULL allowed), the value itself in an export
    "object",  # a JSON object (never NULL)
    "choice",  # one of `choices`
]

REQUIRED: Any = object()  # no default: an export must hold the field


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    null: bool = False
    default: Any = REQUIRED  # what reading an export assumes when the field is absent
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    export: bool = True  # part of the export format
    stored: bool = True  # a column of the entity's own table


def _col(
    name: str,
    kind: Kind,
    *,
    null: bool = False,
    default: Any = REQUIRED,
    choices: tuple[str, ...] = (),
    low: int | None = None,
    high: int | None = None,
    export: bool = True,
    stored: bool = True,
) -> Column:
    if null and default is REQUIRED:
        default = None
    return Column(name, kind, null, default, choices, low, high, export, stored)


@dataclass(frozen=True)
class Table:
    """An entity's columns, in the order they are exported and read."""

    name: str  # the SQL table
    record: str  # the JSONL record type ("session", "message", ...)
    columns: tuple[Column, ...]
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def stored(self) -> list[str]:
        """The columns of the table itself, in order (what a full SELECT reads)."""
        return [c.name for c in self.columns if c.stored]

    @property
    def exported(self) -> list[Column]:
        return [c for c in self.columns if c.export]

    def select(self, names: list[str] | None = None, alias: str | None = None) -> str:
        """`id, session_id, ...`: a SELECT list of stored columns (all, or `names`)."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + name for name in (names or self.stored))

    def json_object(self, alias: str | None = None, overrides: dict[str, str] | None = None) -> str:
        """A SQL expression building an exported row as a JSON object, `type` first.

        SQLite builds each JSONL line in C, which is what makes a full export fast. `overrides`
        gives the SQL for columns that are not read as they are (a computed status, a column of
        a joined table).
        """
        overrides = overrides or {}
        prefix = f"{alias}." if alias else ""
        pairs = [f"'type', '{self.record}'"]
        for c in self.exported:
            expr = overrides.get(c.name)
            if expr is None:
                if not c.stored:
                    raise ValueError(f"{self.name}.{c.name} is not stored here: give its SQL")
                expr = prefix + c.name
            if c.kind == "bool":
                expr = f"json(CASE WHEN {expr} THEN 'true' ELSE 'false' END)"
            elif c.kind in ("json", "object"):
                expr = f"json({expr})"
            pairs.append(f"'{c.name}', {expr}")
        return f"json_object({', '.join(pairs)})"


SESSION = Table(
    "sessions",
    "session",
    (
        _col("id", "uuid"),
        _col("working_dir", "dir"),
        _col("dir_tokens", "text", export=False),  # derived from working_dir (scope.py)
        _col("title", "text", null=True),
        _col("preview", "text", null=True),
        _col("provider", "text", null=True),
        _col("model", "text", null=True),
        _col("system_prompt", "text", null=True),
        _col("status", "choice", choices=STATUSES, default="active"),
        _col("pinned", "bool", default=False),
        _col("deleted_at", "ts", null=True),
        _col("created_at", "ts"),
        _col("updated_at", "ts"),
        _col("ended_at", "ts", null=True),
        _col("heartbeat_at", "ts", null=True, export=False),  # a live writer's pulse
        _col("stream_owner", "text", null=True, export=False),  # and which process it is
        # Counters follow the messages (triggers); an import recomputes them.
        _col("message_count", "count", default=0),
        _col("total_input_tokens", "count", default=0),
        _col("total_output_tokens", "count", default=0),
        _col("metadata", "object", default={}),
        # Imported history: where it came from, and when threadline first received it (NULL
        # for sessions threadline wrote itself, received when they were created). Version 2
        # of the export format added these and the project columns.
        _col("source", "text", null=True),
        _col("source_id", "text", null=True),
        _col("received_at", "ts", null=True),
        # The project's identity (sync): its git remote, normalised, and the path inside it.
        _col("project_remote", "text", null=True),
        _col("project_path", "text", null=True),
    ),
)

MESSAGE = Table(
    "messages",
    "message",
    (
        _col("id", "rowid"),
        _col("session_id", "uuid"),
        _col("role", "choice", choices=ROLES),
        _col("content", "text"),
        _col("payload", "json", null=True),
        _col("created_at", "ts"),
        _col("input_tokens", "tokens", null=True),
        _col("output_tokens", "tokens", null=True),
        _col("model", "text", null=True),
        _col("stop_reason", "text", null=True),
        _col("response_ms", "ms", null=True),
        _col("complete", "bool", default=True),
        # The key an imported message is recognised by (message_keys): exported so that a
        # restored backup still knows which source records it already holds.
        _col("source_key", "text", null=True, stored=False),
    ),
)

SUMMARY = Table(
    "summaries",
    "summary",
    (
        _col("id", "rowid"),
        _col("session_id", "uuid"),
        _col("content", "text"),
        _col("first_message_id", "rowid"),
        _col("last_message_id", "rowid"),
        _col("token_count", "tokens", null=True),
        _col("model", "text", null=True),
        _col("created_at", "ts"),
    ),
)

MEMORY = Table(
    "memories",
    "memory",
    (
        _col("id", "rowid"),
        _col("working_dir", "dir"),
        _col("session_id", "uuid", null=True),
        _col("source_message_id", "rowid", null=True),
        _col("fact", "nonempty"),
        _col("category", "choice", choices=CATEGORIES),
        _col("importance", "int", low=1, high=5),
        _col("superseded_by", "rowid", null=True),
        _col("is_manual", "bool", default=False),
        _col("created_at", "ts"),
    ),
)

TABLES = (SESSION, MESSAGE, SUMMARY, MEMORY)
