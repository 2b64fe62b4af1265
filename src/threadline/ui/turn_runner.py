"""Turns written from the app: the composer's text goes to the turn engine, its events to the pane.

The UI never talks to a provider: it starts a turn on the engine and shows what comes back.

- UserMessageSaved: the message appears in the pane at once; the session moves to the top of
  the sidebar (and a session made by this message appears there, selected, with its title).
- ReplyStarted / ReplyDelta: the reply streams into the pane (the view repaints it at most
  20 times a second, drawing only the reply's last Markdown block again).
- ReplyFinished / TurnFailed / TurnCancelled: the reply is drawn in its final form; an error
  or a cancel shows in the conversation next to the turn.
- SummaryStarted / SummarySaved / ContextNotice: "summarising…" in the composer, the summary
  in the pane, a notification.

One turn runs at a time: sending while a reply streams is refused with a notice (the text
stays in the composer), since the next message's context should hold the reply.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from threadline.errors import ThreadlineError
from threadline.paths import home_short
from threadline.ui.notices import Notifier, notify_error
from threadline.ui.safe import clean, one_line
from threadline.ui.widgets.composer import Composer, ComposerState

if TYPE_CHECKING:
    from threadline.chat.turns import Turn, TurnEngine, TurnEvent
    from threadline.models import Message, Session
    from threadline.store import Store
    from threadline.ui.host import Host
    from threadline.ui.widgets.conversation import ConversationView
    from threadline.ui.widgets.session_list import SessionList


YIELD_SECONDS = 0.005


@dataclass(frozen=True)
class NewSession:
    """What the new-session form chose for the next message's new session (None: the
    configured default / no system prompt)."""

    model: str | None = None
    system_prompt: str | None = None


class RunnerScreen(Notifier, Protocol):
    """What the runner needs of the screen it serves (the main screen)."""

    store: Store | None
    open_session_id: str | None
    draft_key: str  # whose draft the composer holds (a session id, or "" for a new session)

    @property
    def host(self) -> Host: ...

    @property
    def conversation(self) -> ConversationView: ...

    @property
    def sessions(self) -> SessionList: ...

    @property
    def composer(self) -> Composer: ...

    @property
    def is_attached(self) -> bool: ...

    def sidebar_has_focus(self) -> bool: ...

    async def show_session(
        self, session: Session, at_message: int | None = None, at_summary: int | None = None
    ) -> None: ...

    def show_title(self, session: Session) -> None: ...

    def show_draft(self, title: str, hint: str, placeholder: str) -> None:
        """No session open: `title` and `hint` in the pane, `placeholder` as its title."""
        ...

    async def reload_sessions(self, keep_id: str | None = None) -> None: ...

    def take_sent(self, key: str, sent: str) -> None: ...

    def restore_sent(self, key: str, text: str) -> None: ...

    def adopt_new_draft(self, session_id: str) -> None: ...

    def run_worker(
        self,
        work: Any,
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> Any: ...


@dataclass
class Running:
    """The turn under way."""

    turn: Turn
    session_id: str
    started: datetime
    view: ConversationView
    label: str = "waiting for the model"
    tokens: int = 0
    reply: Message | None = None
    # A new session's choices (model, system prompt) until the message makes the session.
    choice: NewSession | None = None


class TurnRunner:
    """Sends messages from the composer and shows the turns' events on the main screen."""

    def __init__(self, screen: RunnerScreen) -> None:
        self.screen = screen
        self.running: Running | None = None
        self.draft: NewSession | None = None  # `n`: the next message starts a new session
        # A model or system prompt chosen in the form, kept until the session's first reply
        # succeeds (the engine remembers the model on the session only then).
        self._chosen: dict[str, NewSession] = {}
        self._failed: set[str] = set()  # sessions whose last reply failed or was cancelled
        self._sent: str | None = None  # the text being sent, until it is saved
        self._sent_key = ""  # the draft it was written in
        self.idle = asyncio.Event()
        self.idle.set()

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """A turn is under way (in whichever session)."""
        return self.running is not None

    @property
    def busy_here(self) -> bool:
        """A turn is under way in the session the view shows (esc cancels it)."""
        running = self.running
        return running is not None and self._is_open(running.session_id)

    def _is_open(self, session_id: str) -> bool:
        """Does the view show `session_id` ("": the new session the turn is making)?"""
        open_id = self.screen.open_session_id
        if session_id == "":
            return open_id is None
        return open_id == session_id

    @property
    def writing_id(self) -> str | None:
        """The session a reply is being written in (None: none, or not made yet)."""
        running = self.running
        return running.session_id or None if running is not None else None

    def _mark_writing(self) -> None:
        """The sidebar marks the session being written in."""
        if self.screen.is_attached:
            self.screen.sessions.set_writing(self.writing_id)

    def _engine(self) -> TurnEngine | None:
        return self.screen.host.engine

    def _composer(self) -> Composer:
        composer = self.screen.composer
        composer.tick = self._tick
        return composer

    def _tick(self) -> None:
        if self.running is not None:
            self.update()

    def not_ready(self) -> str | None:
        """Why nothing can be sent from the view as it is (None: ready): the full message."""
        from threadline.chat.hints import not_configured_message

        app = self.screen.host
        if app.engine_error is not None:
            return app.engine_error
        from threadline import paths

        settings = app.settings
        config = settings.source or paths.config_path()
        return not_configured_message(
            settings.effective_provider(), home_short(str(config)), model=self._model_hint()
        )

    def _model_hint(self) -> str | None:
        """The model the next turn names explicitly (the form's, else the open session's)."""
        if self.draft is not None:
            return self.draft.model
        session = self.screen.conversation.session
        if session is None or self.screen.open_session_id is None:
            return None
        chosen = self._chosen.get(session.id)
        return (chosen.model if chosen else None) or session.model

    def model_label(self) -> str | None:
        return self._model_hint() or self.screen.host.settings.effective_provider().model

    def update(self) -> None:
        """Bring the composer's state up to date with the view and the running turn."""
        composer = self._composer()
        running = self.running
        if running is not None and self._is_open(running.session_id):
            composer.show(
                ComposerState(
                    "busy",
                    model=self.model_label(),
                    label=running.label,
                    started=running.started,
                    tokens=running.tokens,
                )
            )
            self.screen.conversation.writable = True
            return
        problem = self.not_ready()
        if problem is not None:
            composer.show(ComposerState("disabled", note=_short_hint(self.screen, problem)))
            self.screen.conversation.writable = False
            return
        self.screen.conversation.writable = True
        note = ""
        session_id = self.screen.open_session_id
        if running is not None:
            note = "● replying in another session"
        elif self.draft is not None or session_id is None:
            note = "a new session"
        elif session_id in self._failed:
            note = "ctrl+r answers your last message again"
        composer.show(ComposerState("idle", model=self.model_label(), note=note))

    def show_progress(self, label: str | None = None, tokens: int | None = None) -> None:
        """What the running turn is doing (the composer shows it at its next tick)."""
        running = self.running
        if running is None:
            return
        if label is not None:
            running.label = label
        if tokens is not None:
            running.tokens = tokens
        # Shown by the composer's next tick (a tenth of a second at most): a repaint of its
        # own for each change would cost more than it shows.

    def waiting_for_lock(self, seconds: float) -> None:
        """Another process holds the database: say why the message is not saved yet."""
        self.show_progress(
            f"waiting for the database ({seconds:.0f} s): another program is writing"
        )

    # ------------------------------------------------------------------ actions

    def send(self, text: str) -> bool:
        """Send `text` (the composer's); False when it was refused (the text stays)."""
        if not text.strip():
            return False
        if not self.idle.is_set():  # a turn runs (or is starting)
            if self.running is None or self.busy_here:
                where = "press esc to cancel it"
            else:
                where = "open it (● in the list) and press esc to cancel it"
            self.screen.notify(
                f"A reply is still being written (one at a time): wait for it, or {where}. "
                "Your text stays in the composer.",
                severity="warning",
                markup=False,
            )
            return False
        problem = self.not_ready()
        if problem is not None:
            notify_error(self.screen, problem, timeout=10)
            return False
        if self.screen.store is None:
            self.screen.notify("The database is not open yet.", severity="warning")
            return False
        self._start(text, retry=False)
        return True

    def retry(self) -> None:
        """Answer the open session's last user message again (after an error or a cancel)."""
        if not self.idle.is_set():
            self.screen.notify("A reply is still being written.", severity="warning")
            return
        if self.screen.open_session_id is None or self.draft is not None:
            self.screen.notify("No session to retry in.", severity="warning")
            return
        problem = self.not_ready()
        if problem is not None:
            notify_error(self.screen, problem, timeout=10)
            return
        self._start(None, retry=True)

    def cancel(self) -> bool:
        """Cancel the reply being written in the open session (esc); False when there is
        none (a reply written in another session goes on)."""
        running = self.running
        if running is None or not self._is_open(running.session_id):
            return False
        running.label = "cancelling"
        running.turn.cancel()
        self.update()
        return True

    def start_draft(self, choice: NewSession) -> None:
        """`n` then the form: the next message starts a new session with these settings.

        Nothing is written until that message is sent (no empty sessions pile up)."""
        screen = self.screen
        where = home_short(one_line(screen.host.working_dir))
        model = choice.model or screen.host.settings.effective_provider().model
        lines = [f"Model: {one_line(model) if model else 'none configured'}"]
        if choice.system_prompt:
            prompt = one_line(choice.system_prompt)
            lines.append(f"System prompt: {prompt[:200]}{'…' if len(prompt) > 200 else ''}")
        lines.append("Write the first message below: the session is saved when you send it.")
        screen.show_draft(
            f"New session in {where}", "\n".join(lines), "New session (not saved yet)"
        )
        self.draft = choice
        self.update()
        composer = self._composer()
        if composer.enabled:
            composer.input.focus()

    def session_opened(self, session_id: str) -> None:
        """The view now shows `session_id`: a draft is dropped; a reply still streaming into
        it is shown live again."""
        self.draft = None
        running = self.running
        if running is not None and running.session_id == session_id and running.reply:
            self.screen.run_worker(
                self.screen.conversation.stream_begin(running.reply, running.turn.text_so_far),
                group="turn-reattach",
            )
        self.update()

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the running turn (the app is closing) and wait until its reply is saved."""
        if self.running is not None:
            self.running.turn.cancel()
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ the turn

    def _start(self, text: str | None, *, retry: bool) -> None:
        screen = self.screen
        draft = self.draft
        session = None if draft is not None else screen.conversation.session
        if screen.open_session_id is None:
            session = None
        # The composer empties when the message is saved, in the same repaint that shows it in
        # the pane (and keeps it if saving fails).
        self._sent = text
        self._sent_key = screen.draft_key
        self.idle.clear()
        screen.run_worker(
            self._run(session, text, draft, retry),
            group="turn",
            exclusive=True,
            exit_on_error=False,
        )

    async def _run(
        self, session: Session | None, text: str | None, draft: NewSession | None, retry: bool
    ) -> None:
        screen = self.screen
        app = screen.host
        try:
            await app.engine_ready.wait()
            engine = app.engine
            store = screen.store
            if engine is None or store is None:
                self._restore(text)
                return
            choice = draft or NewSession()
            try:
                if session is None:
                    # The session is made with the message, in one transaction: a refusal or
                    # a crash leaves no empty session.
                    from threadline.chat.turns import SessionRequest

                    assert text is not None
                    turn = engine.start(
                        SessionRequest(app.working_dir),
                        text,
                        model=choice.model,
                        system_prompt=choice.system_prompt,
                    )
                else:
                    chosen = self._chosen.get(session.id, NewSession())
                    if retry:
                        turn = engine.retry(session, model=chosen.model)
                    else:
                        assert text is not None
                        turn = engine.start(
                            session,
                            text,
                            model=chosen.model,
                            system_prompt=chosen.system_prompt,
                        )
                        # Given once: the engine remembers it on the session.
                        self._chosen[session.id] = NewSession(model=chosen.model)
            except ThreadlineError as exc:
                notify_error(screen, exc, timeout=10)
                self._restore(text)
                return
            session_id = session.id if session is not None else ""
            self.running = Running(turn, session_id, app.clock(), screen.conversation)
            self.running.choice = choice if session is None else None
            self._failed.discard(session_id)
            self._mark_writing()
            self.update()
            outcome = "error"
            from threadline.chat.turns import ReplyDelta

            running = self.running
            assert running is not None
            try:
                async with aclosing(aiter(turn)) as events:
                    yielded = time.monotonic()
                    async for event in events:
                        if type(event) is ReplyDelta:  # the hot path: once per token
                            running.tokens += 1
                            if self.screen.open_session_id == running.session_id:
                                running.view.stream_append(event.text)
                        else:
                            await self._show(event)
                        # A fast stream can arrive already buffered, and then reading it never
                        # waits: let keys and repaints in every few milliseconds.
                        now = time.monotonic()
                        if now - yielded > YIELD_SECONDS:
                            await asyncio.sleep(0)
                            yielded = time.monotonic()
                if turn.result is not None:
                    outcome = turn.result.outcome
            except ThreadlineError as exc:
                # Not the provider (that ends in TurnFailed): the store, or nothing to retry.
                if turn.session_id is None or self._sent is not None:
                    # The message was not saved (another process held the database, or it
                    # is damaged): it stays in the composer.
                    notify_error(
                        screen,
                        f"Not sent: {one_line(str(exc))}. Your message is still in the "
                        "composer: press enter to send it again.",
                        title="Not saved",
                        timeout=15,
                    )
                else:
                    notify_error(screen, exc, timeout=10)
            finally:
                self.running = None
                self._mark_writing()
            saved_id = turn.session_id
            if saved_id is None:
                return
            if outcome == "complete":
                self._chosen.pop(saved_id, None)
            else:
                self._failed.add(saved_id)
            await self._after(saved_id)
        finally:
            self.running = None
            self._sent = None
            self.idle.set()
            if screen.is_attached:
                self._mark_writing()
                self.update()
                app.memory_tasks.reply_ended()

    def _take_sent_text(self) -> None:
        """The message is saved: take its text out of the composer (what was typed since
        stays)."""
        sent, self._sent = self._sent, None
        if sent is None:
            return
        self.screen.take_sent(self._sent_key, sent)

    def _restore(self, text: str | None) -> None:
        """Put a message that was not sent back in its draft (unless more was typed)."""
        if text is None or not self.screen.is_attached:
            return
        self.screen.restore_sent(self._sent_key, text)

    def _shown(self, session_id: str) -> bool:
        return self.screen.open_session_id == session_id

    async def _show(self, event: TurnEvent) -> None:
        from threadline.chat.turns import (
            ContextNotice,
            ReplyDelta,
            ReplyFinished,
            ReplyStarted,
            SummarySaved,
            SummaryStarted,
            TurnCancelled,
            TurnFailed,
            UserMessageSaved,
        )

        running = self.running
        assert running is not None
        if isinstance(event, ReplyDelta):  # the hot path: once per token
            running.tokens += 1
            if self.screen.open_session_id == running.session_id:
                running.view.stream_append(event.text)
            return
        screen = self.screen
        view = running.view
        if isinstance(event, UserMessageSaved):
            self._take_sent_text()
            session = event.session
            if running.choice is not None:  # the session was made with this message
                running.session_id = session.id
                screen.adopt_new_draft(session.id)
                self._mark_writing()
                self._chosen[session.id] = NewSession(model=running.choice.model)
                if self.draft is running.choice:
                    self.draft = None
                running.choice = None
            if screen.open_session_id is None and self.draft is None:
                # The message made this session: open it (the pane was empty or a draft).
                await screen.show_session(session)
            elif self._shown(session.id):
                view.set_session(session)
                screen.show_title(session)
                await view.append_items([event.message])
            if self._leads_sidebar(session.id):
                screen.sessions.update_row(session)  # already on top: new count and age
            else:
                self._refresh_sidebar(session.id)  # it moves up (or appears)
            self.show_progress("waiting for the model")
        elif isinstance(event, SummaryStarted):
            self.show_progress("summarising earlier messages")
        elif isinstance(event, SummarySaved):
            if self._shown(running.session_id):
                await view.refresh_tail()  # the summary takes its place, as Z's does
        elif isinstance(event, ContextNotice):
            screen.notify(clean(event.text), severity="warning", markup=False, timeout=10)
        elif isinstance(event, ReplyStarted):
            running.reply = event.message
            self.show_progress("generating")
            if self._shown(running.session_id):
                await view.stream_begin(event.message)
        elif isinstance(event, ReplyFinished | TurnFailed | TurnCancelled):
            if self._shown(running.session_id):
                await view.stream_end(event.message)
            elif isinstance(event, TurnFailed):
                notify_error(screen, event.error, "The reply failed: ", timeout=10)

    def _leads_sidebar(self, session_id: str) -> bool:
        """Is the session already first in the list (after the pinned ones, or first of them)?
        Then the row is updated in place; the list is reloaded after the turn."""
        rows = self.screen.sessions.loaded_rows
        mine = next((row for row in rows if row.id == session_id), None)
        if mine is None:
            return False
        first = next(row for row in rows if row.pinned == mine.pinned)
        return first.id == session_id

    def _refresh_sidebar(self, session_id: str) -> None:
        """Reload the list beside the turn (not in its way), keeping the highlight where the
        user left it unless it was on this session (which then moves to the top with it)."""
        screen = self.screen
        highlighted = screen.sessions.highlighted
        keep = session_id
        if highlighted is not None and highlighted.id != session_id:
            if screen.open_session_id != session_id or screen.sidebar_has_focus():
                keep = highlighted.id
        screen.run_worker(
            screen.reload_sessions(keep),
            group="turn-sidebar",
            exclusive=True,
            exit_on_error=False,
        )

    async def _after(self, session_id: str) -> None:
        """The turn is over: the session's counts in the title and the list."""
        screen = self.screen
        store = screen.store
        if store is None or not screen.is_attached:
            return
        try:
            session = await store.get_session(session_id)
        except ThreadlineError:
            return
        if session is None:
            return
        if self._shown(session_id):
            screen.conversation.set_session(session)
            screen.show_title(session)
        self._refresh_sidebar(session_id)


def _short_hint(screen: RunnerScreen, message: str) -> str:
    """The disabled composer's hint: what is missing and that `i` (or the palette's "Set up a
    model provider") opens the setup form."""
    if screen.host.engine_error is not None:
        return one_line(message)
    if not screen.host.settings.effective_provider().base_url:
        return "No model provider yet: press i to set one up (ctrl+p: Set up a model provider)"
    return "No model chosen yet: press i to choose one (ctrl+p: Set up a model provider)"
