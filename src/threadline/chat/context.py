"""What a request sends: the system prompt, the latest summary, then the newest messages that fit.

`build_context` is a pure function over store records (fast, easy to test and benchmark);
`load_context` fetches just enough of a session for it, newest first, a page at a time.

Token estimate (no tokenizer is loaded; the budget is a guard, not an invoice):
- text: ceil(characters / 4), the usual average for English prose and code in GPT-style
  tokenizers;
- plus MESSAGE_OVERHEAD (4) per message for the role and separators of the chat template;
- an assistant reply that finished with usage counts its real `output_tokens` instead.

Seams for later work: `extra_system` carries text to add after the system prompt (memories);
`ContextWindow.truncated` / `first_message_id` tell a summariser what fell out of the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threadline.chat.provider import ChatMessage
from threadline.transcript import context_message, is_imported

if TYPE_CHECKING:
    from threadline.models import Message, Session, Summary
    from threadline.store import Store

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
# Messages fetched per page by load_context.
PAGE_SIZE = 256


def estimate_tokens(text: str) -> int:
    """Estimated tokens of a text: ceil(len / CHARS_PER_TOKEN)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def message_tokens(message: Message) -> int:
    """Tokens a stored message takes in a request: real usage when known, else the estimate.

    An imported message is sent as text (`as_chat`): its estimate is that text's (its usage
    counted reasoning and tool records that are not sent)."""
    if is_imported(message.payload):
        chat = as_chat(message)
        return (estimate_tokens(chat.content) if chat else 0) + MESSAGE_OVERHEAD
    if message.role == "assistant" and message.complete and message.output_tokens:
        return message.output_tokens + MESSAGE_OVERHEAD
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD


def as_chat(message: Message) -> ChatMessage | None:
    """A stored message as the request sends it. A message imported from another tool becomes
    text (`transcript.context_message`: its tool calls and results as bracketed text, its
    reasoning, injected context and notices left out); None when it is not sent."""
    if is_imported(message.payload):
        converted = context_message(message.role, message.content, message.payload)
        if converted is None:
            return None
        return ChatMessage(converted[0], converted[1])  # type: ignore[arg-type]
    return ChatMessage(message.role, message.content)  # type: ignore[arg-type]


def sendable(message: Message) -> bool:
    """Whether a stored message belongs in a request.

    Left out: empty messages, tool messages (they need the tool call they answer), replies
    that failed (their text is our error message, not the model's) and replies still streaming.
    Kept: replies cut short by cancelling or a crash (the user saw that text). A message
    imported from another tool goes as text when `as_chat` makes one (a tool result too).
    """
    if is_imported(message.payload):
        return as_chat(message) is not None
    if message.role == "tool" or not message.content.strip():
        return False
    if message.role == "assistant":
        if message.stop_reason == "error":
            return False
        if not message.complete and message.stop_reason is None:
            return False
    return True


@dataclass(frozen=True, slots=True)
class ContextWindow:
    """The messages of one request and how they were chosen."""

    messages: list[ChatMessage]
    estimated_tokens: int
    # True when older messages (after the summary) were left out for want of room: everything
    # between the summary and first_message_id is what a summariser would condense.
    truncated: bool
    # The oldest stored message included (None: no stored message fits).
    first_message_id: int | None
    summary_id: int | None


def build_context(
    history: Sequence[Message],
    *,
    system_prompt: str | None,
    summary: Summary | None,
    max_tokens: int,
    extra_system: Sequence[str] = (),
) -> ContextWindow:
    """Assemble a request from a session's records.

    Args:
        history: the session's messages in order, oldest first, ending with the new user
            message; those covered by `summary` (id <= last_message_id) are skipped.
        system_prompt: the session's system prompt (None or empty: none).
        summary: the session's latest summary, sent as a system message in place of the
            messages it covers.
        max_tokens: the budget; the oldest messages are dropped first until the rest fit. The
            system prompt, the summary and the newest message are always kept.
        extra_system: more system text after the prompt (the seam for project memories).
    """
    head: list[ChatMessage] = []
    if system_prompt and system_prompt.strip():
        head.append(ChatMessage("system", system_prompt))
    for text in extra_system:
        if text.strip():
            head.append(ChatMessage("system", text))
    after = -1
    if summary is not None:
        head.append(ChatMessage("system", SUMMARY_PREFIX + summary.content))
        after = summary.last_message_id
    used = sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD for m in head)

    chosen: list[Message] = []
    body: list[ChatMessage] = []
    eligible = 0
    full = False
    for message in reversed(history):
        if message.id <= after:
            break
        if is_imported(message.payload):  # converted once: sendable, cost and text
            chat = as_chat(message)
            if chat is None:
                continue
            cost = estimate_tokens(chat.content) + MESSAGE_OVERHEAD
        else:
            if not sendable(message):
                continue
            chat = ChatMessage(message.role, message.content)  # type: ignore[arg-type]
            cost = message_tokens(message)
        eligible += 1
        if full:
            continue
        if chosen and used + cost > max_tokens:
            full = True
            continue
        chosen.append(message)
        body.append(chat)
        used += cost
    chosen.reverse()
    body.reverse()
    return ContextWindow(
        messages=head + body,
        estimated_tokens=used,
        truncated=eligible > len(chosen),
        first_message_id=chosen[0].id if chosen else None,
        summary_id=summary.id if summary is not None else None,
    )


async def load_context(
    store: Store,
    session: Session,
    *,
    upto_id: int,
    max_tokens: int,
    extra_system: Sequence[str] = (),
) -> ContextWindow:
    """The context for a request answering message `upto_id` of `session`.

    Reads the latest summary, then pages of messages newest first until the budget is full
    (or the summary's range is reached), so a long session costs what fits, not its length.
    """
    summary = await store.latest_summary(session.id)
    after = summary.last_message_id if summary is not None else None
    budget = max_tokens - (estimate_tokens(session.system_prompt or "") + MESSAGE_OVERHEAD)
    if summary is not None:
        budget -= estimate_tokens(SUMMARY_PREFIX + summary.content) + MESSAGE_OVERHEAD
    pages: list[list[Message]] = []
    before = upto_id + 1
    used = 0
    while True:
        page = await store.get_messages(
            session.id, before_id=before, after_id=after, limit=PAGE_SIZE
        )
        if not page:
            break
        pages.append(page)
        used += sum(message_tokens(m) for m in page if sendable(m))
        if len(page) < PAGE_SIZE or used > budget:
            break
        before = page[0].id
    history = [m for page in reversed(pages) for m in page]
    return build_context(
        history,
        system_prompt=session.system_prompt,
        summary=summary,
        max_tokens=max_tokens,
        extra_system=extra_system,
    )
