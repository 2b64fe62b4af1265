"""The turn engine: save the user's message, stream the model's reply into the store, finish it.

One behaviour for both faces: the CLI prints the events of a turn, the app renders them.

    engine = TurnEngine.from_settings(store, settings)      # once; engine.aclose() at exit
    turn = engine.start(session, "hello")                   # raises ProviderNotConfigured
    # or engine.start(SessionRequest(directory), "hello"): the session is made with the message
    async with aclosing(aiter(turn)) as events:             # aclosing: a listener that stops
        async for event in events:                          # early still gets the partial saved
            ...    # UserMessageSaved, ReplyStarted, ReplyDelta..., then exactly one of
                   # ReplyFinished / TurnFailed / TurnCancelled
Rules kept here:
- the user message is committed before the request is sent, in one transaction with the turn's
  heartbeat and, for a new session, with the session itself (no empty session survives a crash);
- from then on the session counts as writing: the heartbeat is kept while the request waits
  and the reply streams, so a dead writer shows crashed (at once when provably gone);
- the reply is written (complete=False) at its first token, checkpointed from a timer at most
  once a second while text arrives (never per token), and every `heartbeat_interval` seconds
  when none does, so the store can tell a live stream from a dead process (30 s);
- it is finalised with content, tokens, model, stop_reason and response_ms (the session's
  totals follow by store triggers);
- a provider error keeps the user message and records the reply with stop_reason 'error' and
  the error text; the session stays usable (`engine.retry(session)` answers it again);
- cancelling keeps the partial reply with stop_reason 'cancelled': `turn.cancel()` ends the
  turn with a TurnCancelled event; cancelling the consuming task saves the same and re-raises;
- a checkpoint that cannot be written (disk full) is reported at once (SaveProblem) and tried
  again; the final text is retried for `final_save_seconds` before the turn fails with
  StoreError: a reply is never reported finished unless all of it was saved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from threadline.chat.context import load_context
from threadline.chat.memory import memory_context
from threadline.chat.openai_compat import make_provider
from threadline.chat.provider import (
    ERROR_TEXT_WIDTH,
    Provider,
    ProviderError,
    ProviderNotConfigured,
    StreamEnd,
    TextDelta,
    missing_model_message,
)
from threadline.chat.summarise import (
    TURN_MAX_ROUNDS,
    next_range,
    summarise_rounds,
    summarise_session,
)
from threadline.errors import ThreadlineError
from threadline.models import WATERMARK_KEY
from threadline.text import one_line

if TYPE_CHECKING:
    from threadline.chat.memory import MemoryExtractor
    from threadline.config import MemoryConfig, Settings
    from threadline.models import Message, Session, Summary
    from threadline.store import Store

TITLE_LENGTH = 60
CHECKPOINT_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 5.0
# How long the end of a reply keeps trying to save its full text when writes fail (disk full).
FINAL_SAVE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """Where a turn goes when no session is chosen yet: a new session of `working_dir`, made in
    the same transaction as the turn's first message, or (with `continue_window_hours`) the
    directory's newest session when its last message is younger than that."""

    working_dir: str
    continue_window_hours: float | None = None
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class UserMessageSaved:
    """The user's message is committed (for a retry: the message being answered again).

    `session` is the session after this turn's changes (title, model, system prompt);
    `created` says it was made for this message (a SessionRequest that did not continue one).
    """

    message: Message
    session: Session
    created: bool = False


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    """The first token arrived and the reply's row exists (complete=False).

    Its content is the first token, which the ReplyDelta that follows also carries: render the
    reply from the deltas.
    """

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """More reply text, as it arrived (not yet in the database: checkpoints follow a timer)."""

    text: str


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """The reply is finalised (complete=True, usage, stop_reason, response_ms)."""

    message: Message


@dataclass(frozen=True, slots=True)
class SaveProblem:
    """The reply could not be written (disk full, a damaged file...): said at once, while it
    streams on; the engine keeps trying, and the turn fails if the end cannot be saved."""

    error: str
    saved_chars: int
    total_chars: int


@dataclass(frozen=True, slots=True)
class TurnFailed:
    """The provider failed; `message` is the saved reply (stop_reason 'error', error text)."""

    message: Message
    error: str
    kind: str


@dataclass(frozen=True, slots=True)
class TurnCancelled:
    """The turn was cancelled; `message` keeps the partial reply (stop_reason 'cancelled')."""

    message: Message


@dataclass(frozen=True, slots=True)
class SummaryStarted:
    """The session no longer fits the context: older messages are being summarised first.

    The request waits for it (one or a few non-streamed requests); SummarySaved follows for
    each summary written, or a ContextNotice if summarising failed.
    """

    session_id: str


@dataclass(frozen=True, slots=True)
class SummarySaved:
    """A summary was written (it stands for messages first_message_id..last_message_id)."""

    summary: Summary


@dataclass(frozen=True, slots=True)
class ContextNotice:
    """Something the user should know about this turn's context (the turn goes on).

    kind "summary_failed": summarising failed, so the request carries only the newest
    messages that fit; summarising is tried again at the next turn.
    """

    text: str
    kind: str


TurnEvent = (
    UserMessageSaved
    | SummaryStarted
    | SummarySaved
    | ContextNotice
    | ReplyStarted
    | ReplyDelta
    | SaveProblem
    | ReplyFinished
    | TurnFailed
    | TurnCancelled
)
Outcome = Literal["complete", "error", "cancelled"]


@dataclass(frozen=True, slots=True)
class TurnResult:
    """How a turn ended, available as `turn.result` once it has."""

    session_id: str
    user_message: Message
    reply: Message
    outcome: Outcome
    error: str | None = None


# ---------------------------------------------------------------------- helpers


def derive_title(text: str, limit: int = TITLE_LENGTH) -> str | None:
    """A session title from its first user message: the first non-blank line, at most `limit`."""
    line = ""
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line:
            break
    if not line:
        return None
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def error_content(partial: str, error: str) -> str:
    """What a failed reply shows: the text that arrived (if any), then the error."""
    line = f"Error: {error}"
    return f"{partial}\n\n{line}" if partial.strip() else line


# ---------------------------------------------------------------------- the engine


class TurnEngine:
    """Runs turns against one provider and one store. Safe to keep for the app's lifetime.

    Args:
        store: the open store.
        provider: the model provider (the engine does not close it unless `owns_provider`).
        max_context_tokens: the request budget ([context] max_context_tokens).
        checkpoint_interval: seconds between checkpoints while text arrives (at most one each).
        heartbeat_interval: seconds between heartbeat writes while no text arrives.
        config_path: named in "no model configured" messages.
        keep_recent_messages: messages never summarised ([context] keep_recent_messages).
        auto_summarise: summarise older messages when a request would not fit.
        summary_model: the model that writes summaries (None: the turn's).
        memory: the [memory] settings (None: the defaults).
    """

    def __init__(
        self,
        store: Store,
        provider: Provider,
        *,
        max_context_tokens: int = 16000,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        config_path: Path | str | None = None,
        owns_provider: bool = False,
        keep_recent_messages: int = 20,
        auto_summarise: bool = True,
        summary_model: str | None = None,
        memory: MemoryConfig | None = None,
        final_save_seconds: float = FINAL_SAVE_SECONDS,
    ) -> None:
        from threadline.config import MemoryConfig

        self.store = store
        self.provider = provider
        self.max_context_tokens = max_context_tokens
        self.keep_recent_messages = keep_recent_messages
        self.auto_summarise = auto_summarise
        self.summary_model = summary_model
        self.memory = memory or MemoryConfig()
        self.checkpoint_interval = checkpoint_interval
        self.heartbeat_interval = heartbeat_interval
        self.final_save_seconds = final_save_seconds
        self.config_path = config_path
        self._owns_provider = owns_provider

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **options: Any) -> TurnEngine:
        """An engine for the configured provider.

        Raises:
            ProviderNotConfigured: no provider URL (the message says how to set one).
        """
        from threadline import paths

        config_path = settings.source or paths.config_path()
        provider = make_provider(settings.effective_provider(), config_path)
        ctx = settings.context
        return cls(
            store,
            provider,
            max_context_tokens=ctx.max_context_tokens,
            config_path=config_path,
            owns_provider=True,
            keep_recent_messages=ctx.keep_recent_messages,
            auto_summarise=ctx.auto_summarise,
            summary_model=ctx.summary_model,
            memory=settings.memory,
            **options,
        )

    async def aclose(self) -> None:
        if self._owns_provider:
            await self.provider.aclose()

    def resolve_model(self, session: Session | None, override: str | None = None) -> str:
        """The model a turn uses: the override, else the session's, else the configured one.

        Raises:
            ProviderNotConfigured: none of them names a model.
        """
        model = override or (session.model if session is not None else None)
        model = model or self.provider.default_model
        if not model:
            raise ProviderNotConfigured(missing_model_message(self.config_path))
        return model

    def start(
        self,
        session: Session | SessionRequest,
        text: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> Turn:
        """A turn sending `text` in `session`; nothing happens until it is iterated.

        Given a SessionRequest, the session is made (or continued) when the message is saved,
        in the same transaction. `model` and `system_prompt` override the session's and are
        remembered on it (`system_prompt=""` clears it).

        Raises:
            ProviderNotConfigured: no model is known. ThreadlineError: empty text.
        """
        if not text.strip():
            raise ThreadlineError("the message is empty")
        if isinstance(session, SessionRequest):
            chosen = self.resolve_model(None, model or session.model)
            turn = Turn(self, session, text, chosen, system_prompt)
            turn.model_override = model
            return turn
        return Turn(self, session, text, self.resolve_model(session, model), system_prompt)

    def retry(self, session: Session, *, model: str | None = None) -> Turn:
        """A turn answering the session's last user message again (after an error or cancel)."""
        return Turn(self, session, None, self.resolve_model(session, model), None)

    async def summarise(
        self,
        session: Session,
        *,
        model: str | None = None,
        keep_recent: int | None = None,
        max_rounds: int | None = None,
    ) -> list[Summary]:
        """Summarise the session now (the app's key, `sessions summarize`): everything but the
        newest `keep_recent` messages. Returns the summaries written ([]: nothing to do).

        Raises:
            ProviderError: a request failed (summaries written before it stay).
        """
        chosen = model or self.summary_model or self.resolve_model(session)
        return await summarise_session(
            self.store,
            self.provider,
            session,
            chosen,
            keep_recent=keep_recent or self.keep_recent_messages,
            max_tokens=self.max_context_tokens,
            max_rounds=max_rounds,
        )

    def memory_extractor(self) -> MemoryExtractor:
        """An extractor sharing this engine's store, provider and settings."""
        from threadline.chat.memory import MemoryExtractor

        return MemoryExtractor(
            self.store, self.provider, self.memory, max_tokens=self.max_context_tokens
        )


class _Cancelled(Exception):
    """Internal: turn.cancel() was called while the engine was between awaits."""


class Turn:
    """One turn in progress: iterate it once for its events; `cancel()` to stop it."""

    def __init__(
        self,
        engine: TurnEngine,
        session: Session | SessionRequest,
        text: str | None,
        model: str,
        system_prompt: str | None,
    ) -> None:
        self.engine = engine
        self.request = session if isinstance(session, SessionRequest) else None
        # Until the message is saved, a requested session is not known (see session_id).
        self.session: Session = session  # type: ignore[assignment]
        self.model_override: str | None = None
        self.text = text
        self.model = model
        self.system_prompt = system_prompt
        self.result: TurnResult | None = None
        self._iterated = False
        self._task: asyncio.Task[Any] | None = None
        self._awaiting_provider = False
        self._cancel_requested = False
        self._cancelled_task = False
        # Reply state shared with the checkpoint timer.
        self._parts: list[str] = []
        self._saved_parts = 0
        self._last_write = 0.0
        self._stop = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._first_row: Message | None = None
        self._reply_id: int | None = None
        self._begun = False
        self._saved_chars = 0
        self._problem: str | None = None  # the last write that failed, until one succeeds
        self._problem_told: str | None = None
        self.heartbeat_writes = 0

    def __aiter__(self) -> AsyncGenerator[TurnEvent, None]:
        if self._iterated:
            raise RuntimeError("a Turn can be iterated only once")
        self._iterated = True
        return self._run()

    def cancel(self) -> None:
        """Stop the turn: the partial reply is saved and the last event is TurnCancelled."""
        if self._cancel_requested or self.result is not None:
            return
        self._cancel_requested = True
        if self._awaiting_provider and self._task is not None and not self._task.done():
            self._cancelled_task = True
            self._task.cancel()

    async def run(self) -> TurnResult:
        """Run the turn to its end, ignoring the events (for scripts and tests)."""
        async with aclosing(self.__aiter__()) as events:
            async for _ in events:
                pass
        assert self.result is not None
        return self.result

    @property
    def text_so_far(self) -> str:
        return "".join(self._parts)

    @property
    def session_id(self) -> str | None:
        """The turn's session: None until a requested session is made with the message."""
        if self.request is not None and not self._begun:
            return None
        return self.session.id

    def _take_problem(self) -> SaveProblem | None:
        """A write failure not yet reported (reported once per kind of failure)."""
        problem = self._problem
        if problem is None or problem == self._problem_told:
            return None
        self._problem_told = problem
        return SaveProblem(problem, self._saved_chars, len(self.text_so_far))

    # ------------------------------------------------------------------ the run

    async def _run(self) -> AsyncGenerator[TurnEvent, None]:
        engine = self.engine
        store = engine.store
        self._task = asyncio.current_task()

        session, user, created = await self._begin()
        self.session, self._begun = session, True
        # From here the session counts as writing: keep its heartbeat while the request waits.
        self._keeper = asyncio.create_task(self._keep())
        try:
            session = await self._remember_settings(session, user, created)
        except BaseException:
            await self._stop_keeper()
            raise
        self.session = session
        try:
            yield UserMessageSaved(user, session, created)
        except BaseException:  # the listener stopped here: the turn ends with no reply
            await self._stop_keeper()
            with suppress(Exception):
                await store.end_turn(session.id)
            raise

        reply: Message | None = None
        end: StreamEnd | None = None
        started = time.monotonic()
        try:
            extra = await memory_context(store, session, engine.memory)
            window = await load_context(
                store,
                session,
                upto_id=user.id,
                max_tokens=engine.max_context_tokens,
                extra_system=extra,
            )
            summarising = window.truncated and engine.auto_summarise
            if summarising:
                # Something older than the kept messages must be uncovered to be worth it.
                summarising = None is not await next_range(
                    store,
                    session.id,
                    keep_recent=engine.keep_recent_messages,
                    max_tokens=engine.max_context_tokens,
                    upto_id=user.id,
                )
            if summarising:
                yield SummaryStarted(session.id)
                saved = 0
                rounds = summarise_rounds(
                    store,
                    engine.provider,
                    session,
                    engine.summary_model or self.model,
                    keep_recent=engine.keep_recent_messages,
                    max_tokens=engine.max_context_tokens,
                    upto_id=user.id,
                    max_rounds=TURN_MAX_ROUNDS,
                )
                try:
                    async with aclosing(rounds):
                        while True:
                            if self._cancel_requested:
                                raise _Cancelled
                            self._awaiting_provider = True
                            try:
                                summary = await anext(rounds)
                            except StopAsyncIteration:
                                break
                            finally:
                                self._awaiting_provider = False
                            saved += 1
                            yield SummarySaved(summary)
                except ThreadlineError as err:
                    yield ContextNotice(
                        f"could not summarise the earlier messages ({err}); this request "
                        "carries only the newest messages that fit, and summarising will be "
                        "tried again at the next turn",
                        "summary_failed",
                    )
                if self._cancel_requested:
                    raise _Cancelled
                if saved:
                    window = await load_context(
                        store,
                        session,
                        upto_id=user.id,
                        max_tokens=engine.max_context_tokens,
                        extra_system=extra,
                    )
            started = time.monotonic()
            stream = engine.provider.stream(window.messages, self.model)
            async with aclosing(stream):
                while True:
                    if self._cancel_requested:
                        raise _Cancelled
                    self._awaiting_provider = True
                    try:
                        event = await anext(stream)
                    except StopAsyncIteration:
                        break
                    finally:
                        self._awaiting_provider = False
                    if self._cancel_requested:
                        raise _Cancelled
                    if isinstance(event, TextDelta):
                        self._parts.append(event.text)
                        if reply is None:
                            reply = await self._first_write(event.text)
                            self._last_write = time.monotonic()
                            yield ReplyStarted(reply)
                            if self._cancel_requested:
                                raise _Cancelled
                        yield ReplyDelta(event.text)
                        problem = self._take_problem()
                        if problem is not None:
                            yield problem
                        if self._cancel_requested:
                            raise _Cancelled
                    else:
                        end = event
            if end is None:
                raise ProviderError("the provider ended the stream without a result", "truncated")
        except ProviderError as err:
            message = await self._save_error(user, reply, started, str(err), err.kind)
            yield TurnFailed(message, str(err), err.kind)
            return
        except _Cancelled:
            message = await self._save_cancelled(user, reply, started)
            yield TurnCancelled(message)
            return
        except asyncio.CancelledError:
            reply = reply or self._first_row
            graceful = self._cancelled_task and self._task is not None
            if graceful and self._task is not None and self._task.uncancel() > 0:
                graceful = False
            await self._save_cancelled(user, reply, started)
            if not graceful:
                raise
            assert self.result is not None
            yield TurnCancelled(self.result.reply)
            return
        except GeneratorExit:
            # The consumer stopped listening (closed the iterator): keep what arrived.
            await self._save_cancelled(user, reply, started)
            raise
        except Exception as exc:
            # Not a provider failure (a store error, a bug): record it if the store still can.
            with suppress(Exception):
                await self._save_error(
                    user, reply, started, one_line(str(exc), ERROR_TEXT_WIDTH) or repr(exc), ""
                )
            raise
        finally:
            await self._stop_keeper()

        final: Message | None = None
        deadline = time.monotonic() + engine.final_save_seconds
        while final is None:
            try:
                final = await self._save_reply(user, reply, started, end)
            except ThreadlineError as err:
                # Disk full, say: the text is still here; keep trying, and tell them at once.
                self._problem = one_line(str(err)) or type(err).__name__
                problem = self._take_problem()
                if problem is not None:
                    yield problem
                if time.monotonic() >= deadline or not _retryable(err):
                    raise ThreadlineError(
                        f"the reply could not be saved ({self._problem}): "
                        f"{self._saved_chars:,} of {len(self.text_so_far):,} characters are "
                        "in the database"
                    ) from None
                await asyncio.sleep(min(1.0, max(0.05, engine.checkpoint_interval)))
        yield ReplyFinished(final)

    async def _begin(self) -> tuple[Session, Message, bool]:
        """Save the user's message (and make the session of a SessionRequest) with the turn's
        heartbeat, in one transaction; a retry finds the message it answers."""
        store = self.engine.store
        request = self.request
        if request is not None:
            assert self.text is not None
            watermark = {WATERMARK_KEY: 0} if self.engine.memory.enabled else None
            session, user, created = await store.begin_turn(
                None,
                self.text,
                working_dir=request.working_dir,
                continue_window_hours=request.continue_window_hours,
                title=derive_title(self.text),
                provider=request.provider or self.engine.provider.name,
                model=request.model,
                system_prompt=request.system_prompt,
                metadata=watermark,
            )
            if not created and self.model_override is None:
                # A continued session answers with its own model, as a chosen session does.
                self.model = self.engine.resolve_model(session)
            assert user is not None
            return session, user, created
        session, saved, _ = await store.begin_turn(self.session.id, self.text)
        if saved is not None:
            return session, saved, False
        self.session = session
        try:
            return session, await self._last_user_message(), False
        except BaseException:
            with suppress(Exception):
                await store.end_turn(session.id)
            raise

    async def _first_write(self, text: str) -> Message:
        """Create the reply's row. A cancel arriving meanwhile waits for it, so the row is known."""
        write = asyncio.ensure_future(
            self.engine.store.add_message(
                self.session.id, "assistant", text, model=self.model, complete=False
            )
        )
        try:
            row = await asyncio.shield(write)
        except asyncio.CancelledError:
            self._first_row = await write
            self._reply_id = self._first_row.id
            self._saved_chars = len(text)
            raise
        self._reply_id = row.id
        self._saved_chars = len(text)
        return row

    async def _last_user_message(self) -> Message:
        store = self.engine.store
        before: int | None = None
        while True:
            page = await store.get_messages(self.session.id, before_id=before, limit=50)
            for message in reversed(page):
                if message.role == "user":
                    return message
            if len(page) < 50:
                raise ThreadlineError("nothing to retry: the session has no user message")
            before = page[0].id

    async def _remember_settings(self, session: Session, user: Message, created: bool) -> Session:
        """Record the system prompt and (on the first turn) the title.

        The model is remembered only once it has answered (see _remember_model), so a
        mistyped `--model` does not stick to the session.
        """
        changes: dict[str, Any] = {}
        if session.provider is None:
            changes["provider"] = self.engine.provider.name
        if self.system_prompt is not None and (self.system_prompt or None) != session.system_prompt:
            changes["system_prompt"] = self.system_prompt or None
        first = session.message_count == 1  # the message just saved is the session's first
        if self.text is not None and session.title is None and first and not created:
            title = derive_title(self.text)
            if title:
                changes["title"] = title
        store = self.engine.store
        if self.engine.memory.enabled and WATERMARK_KEY not in session.metadata:
            # Chatted in here: extract memories from it once it goes idle (see chat/memory.py).
            session = await store.patch_session_metadata(session.id, {WATERMARK_KEY: 0})
        if changes:
            return await store.update_session(session.id, **changes)
        fresh = await store.get_session(session.id)
        return fresh or session

    async def _remember_model(self) -> None:
        """After a successful reply: the session continues with the model that gave it."""
        session = self.session
        provider = self.engine.provider.name
        if session.model != self.model or session.provider != provider:
            self.session = await self.engine.store.update_session(
                session.id, model=self.model, provider=provider
            )

    # ------------------------------------------------------------------ checkpoints

    async def _keep(self) -> None:
        """Checkpoint the reply once per interval while text arrives; heartbeat when none does
        (also before the reply's first token, while the request waits).

        A write that fails (disk full) is recorded for the turn to report, and tried again at
        the next interval: the stream goes on, and the end tries to save everything.
        """
        store = self.engine.store
        interval = self.engine.checkpoint_interval
        due = time.monotonic() + interval
        self._last_write = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), max(0.0, due - time.monotonic()))
                return
            except TimeoutError:
                pass
            now = time.monotonic()
            due = max(due + interval, now + interval / 2)
            reply_id = self._reply_id
            count = len(self._parts)
            try:
                if reply_id is not None and count != self._saved_parts:
                    content = "".join(self._parts[:count])
                    await store.update_message(reply_id, content=content)
                    self._saved_parts = count
                    self._saved_chars = len(content)
                    self._last_write = now
                elif now - self._last_write >= self.engine.heartbeat_interval:
                    if reply_id is not None:
                        await store.update_message(reply_id)
                    else:
                        await store.heartbeat(self.session.id)
                    self._last_write = now
                    self.heartbeat_writes += 1
                else:
                    continue
            except ThreadlineError as err:
                self._problem = one_line(str(err)) or type(err).__name__
                continue
            self._problem = None

    async def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is None:
            return
        self._stop.set()
        # Waited for, not cancelled: a checkpoint in flight lands before the final write.
        with suppress(Exception):
            await asyncio.shield(keeper)

    # ------------------------------------------------------------------ endings

    def _elapsed_ms(self, started: float) -> int:
        return int((time.monotonic() - started) * 1000)

    async def _save_reply(
        self, user: Message, reply: Message | None, started: float, end: StreamEnd | None
    ) -> Message:
        assert end is not None
        store = self.engine.store
        fields: dict[str, Any] = {
            "input_tokens": end.input_tokens,
            "output_tokens": end.output_tokens,
            "model": end.model or self.model,
            "stop_reason": end.stop_reason or "stop",
            "response_ms": self._elapsed_ms(started),
        }
        content = "".join(self._parts)
        if reply is None:
            message = await store.add_message(
                self.session.id, "assistant", content, complete=True, **fields
            )
        else:
            message = await store.update_message(reply.id, content=content, complete=True, **fields)
        self._saved_chars = len(content)
        self.result = TurnResult(self.session.id, user, message, "complete")
        with suppress(ThreadlineError):  # the reply is saved; the model is remembered next time
            await self._remember_model()
        return message

    async def _save_error(
        self, user: Message, reply: Message | None, started: float, error: str, kind: str
    ) -> Message:
        await self._stop_keeper()
        reply = reply or self._first_row
        store = self.engine.store
        partial = "".join(self._parts)
        fields: dict[str, Any] = {
            "content": error_content(partial, error),
            "payload": {"error": error, "error_kind": kind, "partial_chars": len(partial)},
            "model": self.model,
            "stop_reason": "error",
            "response_ms": self._elapsed_ms(started),
        }
        if reply is None:
            message = await store.add_message(
                self.session.id, "assistant", complete=False, **fields
            )
        else:
            message = await store.update_message(reply.id, **fields)
        self.result = TurnResult(self.session.id, user, message, "error", error)
        return message

    async def _save_cancelled(
        self, user: Message, reply: Message | None, started: float
    ) -> Message:
        await self._stop_keeper()
        store = self.engine.store
        fields: dict[str, Any] = {
            "model": self.model,
            "stop_reason": "cancelled",
            "response_ms": self._elapsed_ms(started),
        }
        content = "".join(self._parts)
        if reply is None:
            message = await store.add_message(
                self.session.id, "assistant", content, complete=False, **fields
            )
        else:
            message = await store.update_message(reply.id, content=content, **fields)
        self.result = TurnResult(self.session.id, user, message, "cancelled")
        return message


async def run_turn(
    engine: TurnEngine,
    session: Session,
    text: str,
    *,
    model: str | None = None,
    system_prompt: str | None = None,
) -> TurnResult:
    """Send one message and wait for the reply (no streaming): for scripts and tests."""
    return await engine.start(session, text, model=model, system_prompt=system_prompt).run()


def _retryable(err: ThreadlineError) -> bool:
    """A failed final save worth trying again: not a damaged, read-only or closed store."""
    from threadline.store import DatabaseDamaged, DatabaseReadOnly, NotFoundError

    if isinstance(err, DatabaseDamaged | DatabaseReadOnly | NotFoundError):
        return False
    return "closed" not in str(err)


__all__: Sequence[str] = (
    "ContextNotice",
    "ReplyDelta",
    "ReplyFinished",
    "ReplyStarted",
    "SaveProblem",
    "SessionRequest",
    "SummarySaved",
    "SummaryStarted",
    "Turn",
    "TurnCancelled",
    "TurnEngine",
    "TurnEvent",
    "TurnFailed",
    "TurnResult",
    "UserMessageSaved",
    "derive_title",
    "run_turn",
)
