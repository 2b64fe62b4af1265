"""Summaries from the app: summarise now (Z); a turn's summary events are turn_runner.py's.

The work is chat/summarise.py's (through the turn engine); this module only says what happens
on screen: "summarising…" in the header while it runs, the result or the error as a one-line
notification, and the new summary in place in the conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from threadline.errors import ThreadlineError
from threadline.ui.format import plural, tokens
from threadline.ui.notices import Notifier, notify_error
from threadline.ui.safe import one_line

if TYPE_CHECKING:
    from threadline.chat.turns import TurnEngine
    from threadline.store import Store
    from threadline.ui.widgets.conversation import ConversationView


class SummaryScreen(Notifier, Protocol):
    """What summarising needs of the screen it runs from (the main screen)."""

    store: Store | None
    open_session_id: str | None
    summarising: set[str]  # sessions being summarised now

    @property
    def conversation(self) -> ConversationView: ...

    def target(self) -> tuple[str, str] | None:
        """(id, title) of the session an action applies to."""
        ...

    def summary_engine(self) -> TurnEngine: ...

    def set_busy(self, text: str | None) -> None: ...


def nothing_to_summarise(messages: int, keep: int) -> str:
    """Why Z did nothing: the session is short, or what is before the newest is summarised."""
    if messages <= keep:
        return (
            f"Nothing to summarise: the session has {plural(messages, 'message')}, and the "
            f"newest {plural(keep, 'message')} always stay as they are."
        )
    return (
        f"Nothing to summarise: the newest {plural(keep, 'message')} stay as they are, "
        "and everything before them is summarised already."
    )


async def summarise_now(screen: SummaryScreen) -> None:
    """Summarise the target session (the open one, or the highlighted row when the list has
    focus): everything but its newest [context] keep_recent_messages messages."""
    store = screen.store
    if store is None:
        screen.notify("The database is not open yet.", severity="warning")
        return
    target = screen.target()
    if target is None:
        screen.notify("No session to summarise.", severity="warning")
        return
    session_id, title = target
    if session_id in screen.summarising:
        screen.notify("Already summarising this session.", severity="warning")
        return
    try:
        engine = screen.summary_engine()
        session = await store.get_session(session_id)
    except ThreadlineError as exc:
        notify_error(screen, exc, "Cannot summarise: ")
        return
    if session is None:
        return
    screen.summarising.add(session_id)
    screen.set_busy("summarising…")
    screen.notify(f"Summarising “{one_line(title)}”…", markup=False, timeout=3)
    try:
        summaries = await engine.summarise(session)
    except ThreadlineError as exc:  # the provider (ProviderError) or the store
        notify_error(screen, exc, "Summarising failed: ")
        return
    finally:
        screen.summarising.discard(session_id)
        screen.set_busy(None)
    if not summaries:
        screen.notify(
            nothing_to_summarise(session.message_count, engine.keep_recent_messages), markup=False
        )
        return
    if screen.open_session_id == session_id:
        await screen.conversation.refresh_tail()
    latest = summaries[-1]
    try:
        span = (await store.summary_spans(session_id, [latest])).get(latest.id)
    except ThreadlineError:
        span = None
    where = (
        f"messages {span.first_position:,}–{span.last_position:,}"
        if span is not None and not span.compacted
        else "the earlier messages"
    )
    rounds = f" in {len(summaries)} rounds" if len(summaries) > 1 else ""
    screen.notify(
        f"Summarised {where} of “{one_line(title)}”{rounds} ({tokens(latest.token_count)} tokens).",
        title="Summary",
        markup=False,
    )
