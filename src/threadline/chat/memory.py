"""Project memory: durable facts extracted from sessions, given to new sessions of a directory.

Extraction goes through the queue in the store (pending_memory_extractions), so nothing is lost
when a process quits or dies mid-way: whoever processes the queue next picks it up.

- Queueing: `queue_session` (a session was closed, or on demand) and `queue_idle` (sessions
  whose last message is older than [memory] idle_minutes) queue the messages past the session's
  watermark (metadata `memory_watermark`, moved in the same transaction; see
  store/memories.py). Only sessions chatted in through the turn engine carry a watermark, so
  imported history is extracted only on demand.
- Processing: `process_due` leases the oldest due extraction (LEASE, so two processes never
  work on the same one; a process that dies leaves it to be taken again when the lease ends),
  asks the model for facts as JSON, validates them, and saves them with the queue row's
  removal in one transaction. A failure (provider error, a reply that is not the JSON asked
  for) is an attempt: retried after BACKOFF (1 min, then 5 min), given up after the third,
  the last error kept for `status`. Nothing of a failed attempt is saved.
- A range too long for one request is split: the first part is extracted and the rest queued
  again in the same transaction.

The reply format (a JSON array, optionally in a ```json fence):

    [{"fact": "...", "category": "preference|fact|decision|context|correction",
      "importance": 1-5, "source_message_id": 123, "supersedes": 45 or null}]
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from threadline.chat.context import MESSAGE_OVERHEAD, estimate_tokens, sendable
from threadline.chat.provider import (
    ChatMessage,
    ProviderError,
    ProviderNotConfigured,
    complete,
)
from threadline.chat.summarise import render_message
from threadline.errors import ThreadlineError
from threadline.models import WATERMARK_KEY
from threadline.text import one_line

if TYPE_CHECKING:
    from threadline.chat.facts import ExtractedFact
    from threadline.chat.provider import Provider
    from threadline.config import MemoryConfig
    from threadline.models import Memory, Message, PendingExtraction, Session
    from threadline.store import Store

MAX_ATTEMPTS = 3
# The wait after a failed attempt: the first, then the second (the third failure gives up).
BACKOFF: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5))
# How long a process holds an extraction it is working on before others may take it.
LEASE = timedelta(minutes=10)
# Idle sessions older than this are not queued automatically (keeps the idle scan cheap).
IDLE_LOOKBACK = timedelta(days=30)
# Existing memories shown to the extractor (most important first), so it can supersede them.
EXISTING_IN_PROMPT = 200
PAGE_SIZE = 256
# Provider failures that mean "the provider cannot be used now": processing stops there
# rather than spending the attempts of every queued extraction on the same outage.
STOP_KINDS = frozenset({"connection", "timeout", "auth", "not_found", "not_configured"})

EXTRACTION_INSTRUCTIONS_HEAD = "You keep the long-term memory of a project"
EXTRACTION_INSTRUCTIONS = (
    EXTRACTION_INSTRUCTIONS_HEAD + ": durable facts learned from conversations between a user "
    "and an AI assistant working in the project's directory, to be given to the assistant at "
    "the start of later conversations.\n"
    "From the new messages, extract only what will still be true and useful in a future "
    "conversation: the user's preferences and conventions, facts about the project and its "
    "environment, decisions taken (and why), lasting context, and corrections of earlier "
    "facts. Leave out passing details, small talk, what only mattered for one task, and "
    "anything the existing memories already say. Each fact is one self-contained sentence "
    "that makes sense without the conversation. Often there is nothing worth keeping.\n"
    "Reply with JSON only: an array (empty when there is nothing to keep) of objects with "
    "exactly these keys:\n"
    '  "fact": the fact, a string;\n'
    '  "category": one of "preference", "fact", "decision", "context", "correction";\n'
    '  "importance": an integer from 1 (minor) to 5 (essential);\n'
    '  "source_message_id": the id of the message it comes from (the number after # in '
    "the transcript);\n"
    '  "supersedes": the id of an existing memory this fact contradicts or replaces, or null.'
)
MEMORY_HEADER = (
    "Project memory: what earlier conversations in {directory} established. It may be out of "
    "date; what the user says now takes precedence."
)


# ---------------------------------------------------------------------- the reply format


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)


class ExtractionFormatError(ThreadlineError):
    """The extractor's reply is not the JSON asked for (an attempt that failed)."""


def parse_extraction(text: str) -> list[ExtractedFact]:
    """The facts of an extractor's reply: a JSON array (or {"memories": [...]}), in a code
    fence or not. All or nothing: one bad fact rejects the reply.

    Raises:
        ExtractionFormatError: anything else, with a one-line reason.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except ValueError:
        raise ExtractionFormatError(
            f"the model's reply is not JSON: {one_line(text, 80)!r}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("memories"), list):
        data = data["memories"]
    if not isinstance(data, list):
        raise ExtractionFormatError(
            f"the model's reply is not a JSON array of facts: {one_line(text, 80)!r}"
        )
    # pydantic is imported here, not with the module: a turn (and `threadline chat`) loads this
    # module for memory_context before its request, and pydantic's import is most of its cost.
    from pydantic import ValidationError

    from threadline.chat.facts import FACTS

    try:
        return FACTS.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ExtractionFormatError(
            f"the model's reply has an invalid fact ({where}: {first['msg']}; "
            f"{err.error_count()} problem(s) in all)"
        ) from None


# ---------------------------------------------------------------------- memories in context


def memory_section(memories: Sequence[Memory], budget_tokens: int, working_dir: str) -> str | None:
    """The system text that gives `memories` (best first) to a new session, within the budget.

    Stops at the first memory that does not fit, so the most important ones always win.
    """
    header = MEMORY_HEADER.format(directory=working_dir)
    used = estimate_tokens(header) + MESSAGE_OVERHEAD
    lines: list[str] = []
    for memory in memories:
        line = f"- ({memory.category}) {' '.join(memory.fact.split())}"
        cost = estimate_tokens(line) + 1
        if used + cost > budget_tokens:
            break
        lines.append(line)
        used += cost
    if not lines:
        return None
    return header + "\n" + "\n".join(lines)


async def memory_context(store: Store, session: Session, config: MemoryConfig) -> list[str]:
    """The memory section for a request in `session` ([] when off or there are none).

    The memories are those of the session's directory as they stood when the session began
    (created no later than it), so a session's context does not shift under it as other
    sessions are extracted; a memory deleted or edited since is left out or shown edited.
    """
    if not config.enabled or config.max_in_context <= 0 or config.context_tokens <= 0:
        return []
    memories = await store.select_memories(
        session.working_dir, config.max_in_context, created_before=session.created_at
    )
    text = memory_section(memories, config.context_tokens, session.working_dir)
    return [text] if text else []


# ---------------------------------------------------------------------- the request


def extraction_request(
    working_dir: str, existing: Sequence[Memory], messages: Sequence[Message]
) -> list[ChatMessage]:
    """The request asking for the facts of `messages`, showing the `existing` memories."""
    if existing:
        known = "\n".join(
            f"#{m.id} [{m.category}, {m.importance}] {' '.join(m.fact.split())}" for m in existing
        )
    else:
        known = "(none yet)"
    transcript = "\n\n".join(render_message(m) for m in messages)
    prompt = (
        f"Project directory: {working_dir}\n\n"
        f"Existing memories (#id [category, importance] fact):\n{known}\n\n"
        f"New messages:\n<conversation>\n{transcript}\n</conversation>\n\n"
        "Reply with the JSON array of new facts."
    )
    return [ChatMessage("system", EXTRACTION_INSTRUCTIONS), ChatMessage("user", prompt)]


def _fit_existing(existing: Sequence[Memory], budget: int) -> list[Memory]:
    shown: list[Memory] = []
    used = 0
    for memory in existing:
        cost = estimate_tokens(memory.fact) + 8
        if used + cost > budget:
            break
        shown.append(memory)
        used += cost
    return shown


def _normalise(fact: str) -> str:
    return " ".join(fact.casefold().split()).rstrip(".")


# ---------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class ExtractionOutcome:
    """What became of one queued extraction."""

    pending: PendingExtraction
    memories: list[Memory] = field(default_factory=list)
    # Memories the new ones superseded.
    superseded: list[int] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    gave_up: bool = False
    # When a failed extraction is tried again (None: given up, or it succeeded).
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ProcessReport:
    """What one run over the queue did."""

    outcomes: list[ExtractionOutcome]
    # Why the run stopped before the queue was empty (the provider cannot be reached...).
    stopped: str | None = None

    @property
    def memories_added(self) -> int:
        return sum(len(o.memories) for o in self.outcomes)

    @property
    def failed(self) -> list[ExtractionOutcome]:
        return [o for o in self.outcomes if not o.ok]


ExtractionState = Literal["due", "running", "retrying", "failed"]


@dataclass(frozen=True, slots=True)
class ExtractionStatus:
    """One queued extraction, for `memories status` and the app."""

    pending: PendingExtraction
    state: ExtractionState
    session_title: str | None
    working_dir: str | None
    # The queued range as positions in the session (1-based; None when unknown), so items of
    # one session are told apart.
    first_position: int | None = None
    last_position: int | None = None

    @property
    def range_text(self) -> str:
        """ "messages 3–8", "message 5", or "" when unknown."""
        first, last = self.first_position, self.last_position
        if first is None:
            return ""
        if last is None or last <= first:
            return f"message {first}"
        return f"messages {first}–{last}"


def extraction_state(pending: PendingExtraction, now: datetime) -> ExtractionState:
    """failed (given up), running (leased by a process now), retrying (waiting for its next
    attempt) or due."""
    if pending.attempt_count >= MAX_ATTEMPTS:
        return "failed"
    last = pending.last_attempt_at
    if last is not None and pending.next_attempt_at > now:
        if pending.next_attempt_at - last == LEASE:
            return "running"
        return "retrying"
    if pending.next_attempt_at > now:
        return "retrying"
    return "due"


async def extraction_status(store: Store) -> list[ExtractionStatus]:
    """Every queued extraction with its state, oldest due first (needs no provider)."""
    now = store.now()
    rows = await store.list_pending_extractions()
    sessions: dict[str, Session | None] = {}
    result = []
    for row in rows:
        if row.session_id not in sessions:
            sessions[row.session_id] = await store.get_session(row.session_id)
        session = sessions[row.session_id]
        first = last = None
        if session is not None and row.from_message_id is not None:
            first = await store.count_messages_before(row.session_id, row.from_message_id) + 1
            if row.to_message_id is not None:
                last = await store.count_messages_before(row.session_id, row.to_message_id + 1)
        result.append(
            ExtractionStatus(
                row,
                extraction_state(row, now),
                session.display_title if session is not None else None,
                session.working_dir if session is not None else None,
                first,
                last,
            )
        )
    return result


# ---------------------------------------------------------------------- the extractor


class MemoryExtractor:
    """Queues and runs memory extractions against one provider and one store.

    Args:
        store: the open store.
        provider: the model provider (not closed here).
        config: the [memory] settings.
        max_tokens: the size of one extraction request ([context] max_context_tokens).
        model: the model to use when [memory] model is unset (else the session's model,
            else the provider's default).
    """

    def __init__(
        self,
        store: Store,
        provider: Provider,
        config: MemoryConfig | None = None,
        *,
        max_tokens: int = 16000,
        model: str | None = None,
    ) -> None:
        from threadline.config import MemoryConfig

        self.store = store
        self.provider = provider
        self.config = config or MemoryConfig()
        self.max_tokens = max_tokens
        self.model = model

    def resolve_model(self, session: Session | None) -> str:
        model = self.config.model or self.model
        model = model or (session.model if session is not None else None)
        model = model or self.provider.default_model
        if not model:
            raise ProviderNotConfigured(
                "no model to extract memories with: set [memory] model or [provider] model"
            )
        return model

    # ------------------------------------------------------------------ queueing

    async def queue_session(
        self, session_id: str, upto_id: int | None = None
    ) -> PendingExtraction | None:
        """Queue the session's messages not yet queued (on close, or on demand)."""
        return await self.store.queue_extraction(session_id, upto_id)

    async def session_closed(self, session_id: str) -> PendingExtraction | None:
        """The app left a session (switched away, quit): queue its new messages, if automatic
        extraction is on and the session was chatted in here (imported sessions are left
        alone: they are extracted from on demand only)."""
        if not (self.config.enabled and self.config.extraction):
            return None
        session = await self.store.get_session(session_id)
        if session is None or WATERMARK_KEY not in session.metadata:
            return None
        if session.source or session.metadata.get("source"):  # imported: on demand (x) only
            return None
        # Only what is new since the last extraction is queued (nothing new: nothing queued).
        return await self.store.queue_extraction(session_id)

    async def upkeep(
        self, *, on_outcome: Callable[[ExtractionOutcome], Any] | None = None
    ) -> ProcessReport:
        """What the app runs at start-up and now and then (in a worker): queue idle sessions,
        then process what is due. Does nothing when memory is off.

        Raises:
            ProviderNotConfigured: no model is known (nothing is spent).
        """
        if not self.config.enabled:
            return ProcessReport([])
        await self.queue_idle()
        return await self.process_due(on_outcome=on_outcome)

    async def queue_idle(self) -> list[PendingExtraction]:
        """Queue sessions idle for [memory] idle_minutes (none when extraction is off)."""
        if not (self.config.enabled and self.config.extraction):
            return []
        now = self.store.now()
        idle_before = now - timedelta(minutes=self.config.idle_minutes)
        return await self.store.queue_idle_extractions(idle_before, now - IDLE_LOOKBACK)

    # ------------------------------------------------------------------ processing

    async def process_due(
        self,
        *,
        limit: int | None = None,
        on_outcome: Callable[[ExtractionOutcome], Any] | None = None,
    ) -> ProcessReport:
        """Work through the due extractions (at most `limit`), oldest first.

        Stops early when the provider cannot be used (connection, auth...), after recording
        that attempt, so one outage does not use up every extraction's attempts.

        Raises:
            ProviderNotConfigured: no model is known (no attempt is counted).
        """
        outcomes: list[ExtractionOutcome] = []
        while limit is None or len(outcomes) < limit:
            pending = await self.store.claim_pending_extraction(self.store.now() + LEASE)
            if pending is None:
                break
            outcome = await self._run(pending)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.error_kind in STOP_KINDS:
                return ProcessReport(outcomes, stopped=outcome.error)
        return ProcessReport(outcomes)

    async def process(self, pending_id: int) -> ExtractionOutcome | None:
        """Work on one queued extraction now, due or not, given up on or not."""
        pending = await self.store.claim_pending_extraction(self.store.now() + LEASE, pending_id)
        if pending is None:
            return None
        return await self._run(pending)

    async def extract_now(self, session_id: str) -> ProcessReport:
        """On demand: queue what is new in the session, then process everything queued for it
        (failed extractions included)."""
        await self.queue_session(session_id)
        outcomes: list[ExtractionOutcome] = []
        # Splitting a long range queues its rest: keep going until the session has none left.
        seen: set[int] = set()
        while True:
            rows = [
                p
                for p in await self.store.list_pending_extractions()
                if p.session_id == session_id and p.id not in seen
            ]
            if not rows:
                break
            for row in rows:
                seen.add(row.id)
                outcome = await self.process(row.id)
                if outcome is None:
                    continue
                outcomes.append(outcome)
                if outcome.error_kind in STOP_KINDS:
                    return ProcessReport(outcomes, stopped=outcome.error)
        return ProcessReport(outcomes)

    async def retry_failed(self) -> int:
        """Give every extraction given up on three fresh attempts; returns how many."""
        return await self.store.reset_failed_extractions()

    async def status(self) -> list[ExtractionStatus]:
        """Every queued extraction with its state, oldest due first."""
        return await extraction_status(self.store)

    # ------------------------------------------------------------------ one extraction

    async def _run(self, pending: PendingExtraction) -> ExtractionOutcome:
        store = self.store
        try:
            session = await store.get_session(pending.session_id)
            if session is None:  # purged meanwhile: its queue rows went with it
                await store.delete_pending_extraction(pending.id)
                return ExtractionOutcome(pending)
            model = self.resolve_model(session)
            existing = _fit_existing(
                await store.select_memories(session.working_dir, EXISTING_IN_PROMPT),
                self.max_tokens // 4,
            )
            messages, rest = await self._load(pending, existing)
            if not messages:
                saved = await store.complete_extraction(pending.id, [], rest)
                return ExtractionOutcome(pending, saved or [])
            request = extraction_request(session.working_dir, existing, messages)
            result = await complete(self.provider, request, model)
            facts = parse_extraction(result.text)
        except ProviderNotConfigured:
            await self._release(pending)
            raise
        except (ProviderError, ExtractionFormatError) as err:
            return await self._fail(pending, err)
        except BaseException:
            # Cancelled (the app quits) or a bug: hand the extraction back untouched.
            await self._release(pending)
            raise
        items = _items(facts, messages, existing)
        saved = await store.complete_extraction(pending.id, items, rest)
        superseded = [int(i["supersedes"]) for i in items if i.get("supersedes") is not None]
        return ExtractionOutcome(pending, saved or [], superseded if saved else [])

    async def _load(
        self, pending: PendingExtraction, existing: Sequence[Memory]
    ) -> tuple[list[Message], tuple[int, int | None] | None]:
        """The sendable messages of the extraction's range that fit one request, and the
        part of the range left over (from, to), if any."""
        fixed = (
            estimate_tokens(EXTRACTION_INSTRUCTIONS)
            + sum(estimate_tokens(m.fact) + 8 for m in existing)
            + 300
        )
        budget = max(256, self.max_tokens - fixed - self.max_tokens // 8)
        per_message = max(64, budget // 2)
        last = pending.to_message_id
        cursor = (pending.from_message_id or 1) - 1
        chosen: list[Message] = []
        used = 0
        while True:
            page = await self.store.get_messages(
                pending.session_id, after_id=cursor, limit=PAGE_SIZE
            )
            for message in page:
                if last is not None and message.id > last:
                    return chosen, None
                if not sendable(message):
                    continue
                cost = estimate_tokens(render_message(message, per_message)) + MESSAGE_OVERHEAD
                if chosen and used + cost > budget:
                    return chosen, (message.id, last)
                chosen.append(message)
                used += cost
            if len(page) < PAGE_SIZE:
                return chosen, None
            cursor = page[-1].id

    async def _fail(self, pending: PendingExtraction, err: ThreadlineError) -> ExtractionOutcome:
        now = self.store.now()
        attempts = pending.attempt_count + 1
        gave_up = attempts >= MAX_ATTEMPTS
        retry_at = None if gave_up else now + BACKOFF[min(attempts, len(BACKOFF)) - 1]
        message = one_line(str(err), 500)
        await self.store.update_pending_extraction(
            pending.id,
            attempt_count=attempts,
            last_attempt_at=now,
            next_attempt_at=retry_at or now,
            error_message=message,
        )
        kind = err.kind if isinstance(err, ProviderError) else "malformed"
        return ExtractionOutcome(
            pending, error=message, error_kind=kind, gave_up=gave_up, retry_at=retry_at
        )

    async def _release(self, pending: PendingExtraction) -> None:
        """Give a leased extraction back as it was (due now, attempts unchanged)."""
        with suppress(Exception):
            await asyncio.shield(
                self.store.update_pending_extraction(pending.id, next_attempt_at=self.store.now())
            )


def _items(
    facts: Sequence[ExtractedFact], messages: Sequence[Message], existing: Sequence[Memory]
) -> list[dict[str, Any]]:
    """The facts as store items: provenance checked against what the model was shown
    (an id it made up becomes null), duplicates of existing memories and of each other dropped.
    """
    message_ids = {m.id for m in messages}
    memory_ids = {m.id for m in existing}
    known = {_normalise(m.fact) for m in existing}
    items: list[dict[str, Any]] = []
    for fact in facts:
        key = _normalise(fact.fact)
        if key in known:
            continue
        known.add(key)
        source = fact.source_message_id if fact.source_message_id in message_ids else None
        old = fact.supersedes if fact.supersedes in memory_ids else None
        items.append(
            {
                "fact": fact.fact,
                "category": fact.category,
                "importance": fact.importance,
                "source_message_id": source,
                "supersedes": old,
            }
        )
    return items
