"""Summaries: condense a session's older messages so the context never grows without bound.

A summary row stands for every message from its first_message_id to its last_message_id. Each
new summary is written from the previous one plus the messages after it, and its range starts
where the previous one's did, so the latest summary always stands for everything up to its
last message, and a request is: system prompt, memories, latest summary, the messages after it.

What gets summarised: the messages after the latest summary, except the newest
`keep_recent` (counting messages that are sent to the model), oldest first, as many as fit one
request. When they do not all fit, several rounds follow one another (each building on the
last); `max_rounds` bounds the work one call does.

The request is streamed and collected: a summary is saved only once the model has finished
it, so an error or a cancel never leaves a partial summary behind.

    async for summary in summarise_rounds(store, provider, session, model, keep_recent=20,
                                          max_tokens=16000):
        ...                                  # each summary is saved before it is yielded
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from threadline.chat.context import MESSAGE_OVERHEAD, as_chat, estimate_tokens, sendable
from threadline.chat.provider import ChatMessage, ProviderError, complete
from threadline.errors import ThreadlineError
from threadline.transcript import is_imported

if TYPE_CHECKING:
    from threadline.chat.provider import Provider
    from threadline.models import Message, Session, Summary
    from threadline.store import Store

# The first line of the summariser's instructions (the fake server recognises requests by it).
SUMMARY_INSTRUCTIONS_HEAD = (
    "You write the running summary of a conversation between a user and an AI assistant"
)
SUMMARY_INSTRUCTIONS = (
    SUMMARY_INSTRUCTIONS_HEAD + ", so that the conversation can go on without its older "
    "messages.\n"
    "Keep what the rest of the conversation needs: the user's goals, requests and preferences; "
    "decisions and their reasons; facts, names, file paths, commands, code identifiers and "
    "numbers that matter; questions still open and work still to do. Drop greetings, "
    "repetition and dead ends.\n"
    "Write in the conversation's language, as short paragraphs or bullet points, in at most "
    "about {words} words. Messages are labelled with their position in the conversation; do "
    "not mention those numbers. Reply with the summary only."
)
# Messages read per page while looking for the range to summarise.
PAGE_SIZE = 256
# Rounds a turn may run before its request (the rest waits for the next turn).
TURN_MAX_ROUNDS = 3
TRUNCATED_MARK = "\n[… cut here: the message was too long to summarise whole]"


@dataclass(frozen=True, slots=True)
class SummaryRange:
    """The next stretch of a session to summarise, and the summary it builds on."""

    previous: Summary | None
    # Oldest first; messages that are never sent (errors, tool calls) are left out.
    messages: list[Message]
    # The range the new summary row will stand for.
    first_message_id: int
    last_message_id: int
    # Each message's 1-based position in the session (what people see), parallel to messages.
    positions: list[int] = field(default_factory=list)


def summary_budget(max_tokens: int) -> int:
    """How long a summary may be: an eighth of the context, between 200 and 2,000 tokens."""
    return max(200, min(2000, max_tokens // 8))


def render_message(
    message: Message, limit_tokens: int | None = None, *, position: int | None = None
) -> str:
    """A message as a transcript entry, cut to `limit_tokens`: `[message 12, user]` (its
    position in the session, the numbering people see) or, without a position, `[user #id]`
    (memory extraction, whose answers name the database id of their source message). A message
    imported from another tool is read as a model is sent it (`context.as_chat`: its tool calls
    and results as text, without its reasoning)."""
    text = message.content.strip()
    if is_imported(message.payload):
        chat = as_chat(message)
        text = chat.content.strip() if chat is not None else ""
    if limit_tokens is not None and estimate_tokens(text) > limit_tokens:
        text = text[: max(0, limit_tokens * 4 - len(TRUNCATED_MARK))] + TRUNCATED_MARK
    if position is not None:
        return f"[message {position}, {message.role}]\n{text}"
    return f"[{message.role} #{message.id}]\n{text}"


def summary_request(
    previous: Summary | None,
    messages: Sequence[Message],
    *,
    max_tokens: int,
    positions: Sequence[int] | None = None,
) -> list[ChatMessage]:
    """The request that folds `messages` into the `previous` summary (or starts one).

    `positions` are the messages' 1-based positions in the session (next_range gives them);
    without them the messages are numbered from 1.
    """
    words = summary_budget(max_tokens) * 3 // 4
    system = SUMMARY_INSTRUCTIONS.format(words=words)
    limit = _chunk_budget(previous, max_tokens)
    numbers = list(positions) if positions is not None else list(range(1, len(messages) + 1))
    transcript = "\n\n".join(
        render_message(m, limit, position=n) for m, n in zip(messages, numbers, strict=True)
    )
    if previous is not None:
        prompt = (
            "The summary so far, standing for the earlier messages:\n<summary>\n"
            f"{previous.content.strip()}\n</summary>\n\n"
            f"The messages that follow it:\n<conversation>\n{transcript}\n</conversation>\n\n"
            "Write the updated summary, covering the summary so far and these messages."
        )
    else:
        prompt = (
            f"The conversation:\n<conversation>\n{transcript}\n</conversation>\n\n"
            "Write its summary."
        )
    return [ChatMessage("system", system), ChatMessage("user", prompt)]


def _chunk_budget(previous: Summary | None, max_tokens: int) -> int:
    """Tokens left for the transcript in a summary request of at most `max_tokens`
    (never fewer than 256: a tiny budget still makes progress)."""
    fixed = estimate_tokens(SUMMARY_INSTRUCTIONS) + 200 + 3 * MESSAGE_OVERHEAD
    if previous is not None:
        fixed += estimate_tokens(previous.content)
    return max(256, max_tokens - fixed - summary_budget(max_tokens))


async def _oldest_kept_id(
    store: Store, session_id: str, after: int, keep: int, upto_id: int | None
) -> int | None:
    """The id of the oldest of the newest `keep` sendable messages after `after` (up to
    `upto_id`); None when there are no more than `keep` of them (nothing to summarise)."""
    before = upto_id + 1 if upto_id is not None else 2**62
    limit = max(2 * keep, 64)
    count = 0
    while True:
        page = await store.get_messages(session_id, before_id=before, after_id=after, limit=limit)
        for message in reversed(page):
            if sendable(message):
                count += 1
                if count == keep:
                    return message.id
        if len(page) < limit:
            return None
        before = page[0].id


async def next_range(
    store: Store,
    session_id: str,
    *,
    keep_recent: int,
    max_tokens: int,
    upto_id: int | None = None,
) -> SummaryRange | None:
    """The next stretch to summarise (None: everything but the newest `keep_recent` is covered).

    Reads the latest summary, the newest `keep_recent` messages, then the uncovered messages
    oldest first until one request's worth (`max_tokens`) is gathered.
    """
    previous = await store.latest_summary(session_id)
    after = previous.last_message_id if previous is not None else 0
    cutoff = await _oldest_kept_id(store, session_id, after, max(1, keep_recent), upto_id)
    if cutoff is None:
        return None
    budget = _chunk_budget(previous, max_tokens)
    # A message longer than a whole request (a pasted log) goes in cut to fit.
    limit = budget
    chosen: list[Message] = []
    positions: list[int] = []
    position = await store.count_messages_before(session_id, after + 1)
    first_id: int | None = None
    last_id: int | None = None
    used = 0
    cursor = after
    while True:
        page = await store.get_messages(session_id, after_id=cursor, limit=PAGE_SIZE)
        done = len(page) < PAGE_SIZE
        for message in page:
            if message.id >= cutoff:
                done = True
                break
            position += 1
            if sendable(message):
                entry = render_message(message, limit, position=position)
                cost = estimate_tokens(entry) + MESSAGE_OVERHEAD
                if chosen and used + cost > budget:
                    done = True
                    break
                chosen.append(message)
                positions.append(position)
                used += cost
            if first_id is None:
                first_id = message.id
            last_id = message.id
        if done or not page:
            break
        cursor = page[-1].id
    if first_id is None or last_id is None or not chosen:
        # Only messages that are never sent lie before the kept ones: nothing worth a request.
        return None
    first = previous.first_message_id if previous is not None else first_id
    return SummaryRange(previous, chosen, first, last_id, positions)


async def summarise_range(
    store: Store,
    provider: Provider,
    session: Session,
    model: str,
    stretch: SummaryRange,
    *,
    max_tokens: int,
) -> Summary:
    """Ask the model for the summary of `stretch` and save it once it is complete.

    Raises:
        ProviderError: the request failed or the reply was empty (nothing is saved).
    """
    request = summary_request(
        stretch.previous, stretch.messages, max_tokens=max_tokens, positions=stretch.positions
    )
    result = await complete(provider, request, model)
    text = result.text.strip()
    if not text:
        raise ProviderError("the model returned an empty summary", "malformed")
    return await store.save_summary(
        session.id,
        text,
        stretch.first_message_id,
        stretch.last_message_id,
        token_count=result.end.output_tokens or estimate_tokens(text),
        model=result.end.model or model,
    )


async def summarise_rounds(
    store: Store,
    provider: Provider,
    session: Session,
    model: str,
    *,
    keep_recent: int,
    max_tokens: int,
    upto_id: int | None = None,
    max_rounds: int | None = None,
) -> AsyncGenerator[Summary, None]:
    """Summarise until only the newest `keep_recent` messages are left uncovered (or for
    `max_rounds` requests), yielding each summary once it is saved.

    Raises:
        ProviderError: a request failed; the summaries yielded before it stay saved.
    """
    rounds = 0
    while max_rounds is None or rounds < max_rounds:
        stretch = await next_range(
            store, session.id, keep_recent=keep_recent, max_tokens=max_tokens, upto_id=upto_id
        )
        if stretch is None:
            return
        yield await summarise_range(store, provider, session, model, stretch, max_tokens=max_tokens)
        rounds += 1


async def summarise_session(
    store: Store,
    provider: Provider,
    session: Session,
    model: str,
    *,
    keep_recent: int,
    max_tokens: int,
    max_rounds: int | None = None,
) -> list[Summary]:
    """Summarise now (the on-demand path); [] when there is nothing to summarise."""
    from contextlib import aclosing

    saved: list[Summary] = []
    rounds = summarise_rounds(
        store,
        provider,
        session,
        model,
        keep_recent=keep_recent,
        max_tokens=max_tokens,
        max_rounds=max_rounds,
    )
    async with aclosing(rounds):
        async for summary in rounds:
            saved.append(summary)
    return saved


# ---------------------------------------------------------------------- compacting


@dataclass(frozen=True, slots=True)
class CompactPlan:
    """What compacting a session would remove: the messages its latest summary covers."""

    summary: Summary | None
    removable: int


async def compact_plan(store: Store, session_id: str) -> CompactPlan:
    summary = await store.latest_summary(session_id)
    if summary is None:
        return CompactPlan(None, 0)
    count = await store.count_messages_before(session_id, summary.last_message_id + 1)
    return CompactPlan(summary, count)


async def compact_session(
    store: Store,
    session_id: str,
    summary: Summary | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Remove the messages the latest summary (or `summary`, as shown to someone who
    confirmed) covers; returns how many went.

    In short transactions (Store.delete_messages_before), `progress(removed_so_far)` after
    each; interrupted, the summary still stands for what is left and compacting again
    finishes.

    Raises:
        ThreadlineError: the session has no summary (nothing would stand for the messages).
    """
    summary = summary or await store.latest_summary(session_id)
    if summary is None:
        raise ThreadlineError("nothing to compact: the session has no summary yet")
    return await store.delete_messages_before(
        session_id, summary.last_message_id + 1, progress=progress
    )
