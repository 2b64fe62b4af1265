"""History brought in from another tool, in one neutral shape: what a source yields, what the
store's loader takes.

A source (`threadline.sources.*`) reads another tool's files and yields `IncomingSession`s; it
never writes SQL. The store's loader (`Store.load_history`) writes them, a session per short
transaction, and is the only place that decides ids, counters and the search index. The two
sides agree only on what is written here.

Plain slotted dataclasses rather than pydantic models: an import handles hundreds of thousands
of messages, and these are built by our own readers, not parsed from user input (the readers
validate what they read; the loader bounds numbers before they reach SQLite).

Identity and idempotency
------------------------
A session is recognised by `(source, source_id)`; a message within it by `key`, which is
stable across reads of the same source (Claude Code: the API message id for an assistant
message, the line `uuid` otherwise; ChatGPT: the node id; llm: the response id and a suffix).
Loading a session that is already present adds only the messages whose keys are new; a message
whose key is present is replaced when its content, payload or counts differ (a live file
re-read from the start of its last, possibly incomplete, group) and left alone otherwise. So
importing the same thing twice adds nothing, and importing a growing file in two steps gives
exactly what importing it whole once gives.

Payload and parts
-----------------
`IncomingMessage.payload` is a JSON object::

    {"source": "claude-code",            # the source's name
     "records": [ {...}, ... ],          # the exact source objects this message was made from
     "kind": "prompt",                   # see MESSAGE_KINDS
     "parts": [ {...}, ... ]}            # what it holds, in order, in the vocabulary below

`content` is the text people read and search (never empty for a message worth showing: a tool
call with no text gets its one-line summary). Parts let every face (the conversation view, the
CLI transcript, Markdown export, the context sent to a model) show the message without knowing
the source. The part types (`type` key):

- `text`        {"text"}: words written by the role.
- `thinking`    {"text"}: the model's reasoning, hidden behind a toggle (may be "" when the
                source keeps it encrypted; it is then only a marker).
- `tool_call`   {"id", "name", "input", "summary"}: a call the model made. `input` is the
                arguments object as the source has it; `summary` one line for a collapsed
                block (the command, the file path, the query).
- `tool_result` {"call_id", "name", "summary", "is_error"}: the answer to a call. The full
                output is the message's `content`; `summary` one line ("exit 0",
                "142 lines", the first line of an error). A `tool` role message holds these.
- `attachment`  {"name", "kind", "size"}: an image or file whose bytes the source does not keep,
                shown as a placeholder naming it (`content` holds the same placeholder).
- `subagent`    {"agent", "messages": [{"role", "text"}...], "records"?}: a subagent's
                transcript kept with the call that started it (Claude Code Task, Gemini
                delegate_to_agent); never separate sessions or user messages.
- `command`     {"name", "args", "output"}: a slash command the person ran (`/model`),
                with what it printed.

Message kinds (`payload["kind"]`), which decide how a message is shown and whether it goes
into a model's context when the session is continued:

- `prompt`      what the person typed (role user).
- `reply`       the model's answer, with any text, thinking and tool calls (role assistant).
- `tool_result` a tool's output (role tool).
- `command`     a slash command and its output (role user): shown as a command, sent as text.
- `meta`        context the tool injected and the person did not type (IDE preambles,
                AGENTS.md, `isMeta` caveats, `<environment_context>`; role user or system):
                shown dimmed and collapsed, not sent.
- `info`        the tool's own notices (interruptions, "Request cancelled", errors; role
                system): shown as a one-line note, not sent.

A summary (`IncomingSummary`) is a compaction the source made: it stands for the messages from
`first_key` to `last_key` (keys of messages of the same session, loaded in the same or an
earlier batch) and becomes a threadline summary over that range.

Files that grow
---------------
Live sources (Claude Code, Codex) append to a session's file while it runs. A reader is handed
the `FileMark` saved after the previous read of that file (None the first time) and yields
batches whose `mark` records how far it has now read; the loader saves that mark in the same
transaction as the batch's messages, so a crash can never record a read whose messages were not
saved (or the reverse). What `fingerprint` and `state` hold is the reader's business (for
example a hash of the bytes just before `offset`, and the offset where the last message group
began); a reader that finds the part already read has changed starts again from the beginning,
and keys keep that from adding anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from threadline.errors import ThreadlineError

SourceName = Literal["claude-code", "codex", "chatgpt", "claude-ai", "llm", "gemini-cli"]
SOURCES: tuple[str, ...] = ("claude-code", "codex", "chatgpt", "claude-ai", "llm", "gemini-cli")

MessageKind = Literal["prompt", "reply", "tool_result", "command", "meta", "info"]
MESSAGE_KINDS: tuple[str, ...] = ("prompt", "reply", "tool_result", "command", "meta", "info")
PART_TYPES: tuple[str, ...] = (
    "text",
    "thinking",
    "tool_call",
    "tool_result",
    "attachment",
    "subagent",
    "command",
)


@dataclass(slots=True)
class IncomingMessage:
    """One message of an imported session, in the order the session holds them."""

    key: str
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    created_at: datetime  # timezone-aware
    payload: dict[str, Any]
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    complete: bool = True


@dataclass(slots=True)
class IncomingSummary:
    """A compaction made by the source: it stands for messages first_key..last_key."""

    content: str
    first_key: str
    last_key: str
    created_at: datetime
    model: str | None = None


@dataclass(slots=True)
class FileMark:
    """How far a reader has read one source file (saved with the batch that read it)."""

    path: str  # absolute
    source: str
    size: int  # the file's size when it was read
    mtime_ns: int
    offset: int  # bytes consumed: the end of the last complete line read
    fingerprint: str  # the reader's check that the part already read is unchanged
    state: dict[str, Any] = field(default_factory=dict)  # the reader's own, JSON-serialisable


@dataclass(slots=True)
class IncomingSession:
    """A session, or the part of it read this time, to be loaded in one transaction.

    A batch for a session already present adds to it (see the module docstring). With
    `title_only`, the batch only names a session that may have been loaded earlier from another
    file (a Claude Code `summary` line): the loader sets the title if the session exists and
    the person has not renamed it, and ignores the batch otherwise.
    """

    source: str
    source_id: str
    working_dir: str  # absolute; for sources that record none, what --dir gave
    created_at: datetime
    title: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[IncomingMessage] = field(default_factory=list)
    summaries: list[IncomingSummary] = field(default_factory=list)
    mark: FileMark | None = None
    title_only: bool = False


class SourceFormatError(ThreadlineError):
    """A source file is not what it claims to be, or holds a corrupt record.

    The message is one line naming the file (and the line or record where it can), in the
    form used after `threadline: error: `.
    """
