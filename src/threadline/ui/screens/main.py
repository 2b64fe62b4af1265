"""The main screen: header, sidebar of sessions, conversation pane, composer, footer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from threadline.errors import ThreadlineError
from threadline.models import Scope, SearchHit, Session, SessionSummary, TimelineItem
from threadline.paths import home_short, workspace_root
from threadline.ui.drafts import NEW, Drafts, drafts_path
from threadline.ui.host import Host, host
from threadline.ui.notices import notify_error
from threadline.ui.safe import clean, one_line
from threadline.ui.turn_runner import TurnRunner
from threadline.ui.widgets.bars import HeaderBar, KeyFooter, SessionTitle
from threadline.ui.widgets.composer import Composer
from threadline.ui.widgets.conversation import ConversationView
from threadline.ui.widgets.session_list import PAGE_SIZE, SessionList, SessionQuery

if TYPE_CHECKING:
    from textual.widget import AwaitMount
    from textual.widgets import TextArea

    from threadline.chat.turns import TurnEngine
    from threadline.sources.found import FoundHistory
    from threadline.store import Store
    from threadline.ui.keys import KeySection
    from threadline.ui.memory_tasks import MemoryStatus
    from threadline.ui.screens.memories import JumpTo
    from threadline.ui.turn_runner import NewSession
    from threadline.ui.widgets.composer_input import ComposerInput

UNDO_SECONDS = 10.0
FILTER_DELAY = 0.15
DRAFT_SAVE_SECONDS = 1.0  # typing is saved (to the drafts file) at most this long after
# The first frame waits for the sidebar's rows at most this long (then "Loading…" shows).
FIRST_FRAME_HOLD = 0.3


def _retrieve(task: asyncio.Future[Any]) -> None:
    """An error of a read nobody awaited (the app closed first) is not reported as lost."""
    if not task.cancelled():
        task.exception()


def filter_hint(scope: Scope, *, typing: bool) -> str:
    """What to do when the filter matches nothing: keys that work where the focus is (while
    typing in the filter, `s` is text), and a wider scope only when there is one."""
    if scope is Scope.ALL:
        return "esc clears the filter"
    if typing:
        return "esc clears the filter · enter, then s, widens the scope"
    return "esc clears the filter · s widens the scope"


class MainScreen(Screen[None]):
    """Sessions on the left, the open conversation on the right."""

    AUTO_FOCUS = "SessionList"

    BINDINGS = [
        Binding("q", "app.quit", "Quit", tooltip="Quit threadline"),
        Binding("question_mark", "help", "Help", tooltip="Show every key"),
        Binding("slash", "filter", "Filter", tooltip="Filter the sessions by title and preview"),
        Binding(
            "escape",
            "cancel_reply",
            "Cancel",
            show=False,  # the composer says "esc cancels" while a reply streams
            tooltip="Cancel the reply being written",
        ),
        Binding(
            "escape",
            "leave",
            "Leave",
            show=False,
            tooltip="Leave the composer (the draft stays) or the conversation",
        ),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the filter"),
        Binding(
            "s",
            "cycle_scope",
            "Scope",
            tooltip="Cycle the scope: this directory → this workspace → all directories",
        ),
        Binding("n", "new_session", "New", tooltip="New session in the current directory"),
        Binding("r", "rename", "Rename", tooltip="Rename the session"),
        Binding("p", "pin", "Pin", tooltip="Pin or unpin the session (pinned stay on top)"),
        Binding("d", "delete", "Delete", tooltip="Move the session to the trash (u undoes)"),
        Binding("u", "undo_delete", "Undo", show=False, tooltip="Undo the last delete"),
        Binding(
            "m",
            "toggle_meta",
            "Details",
            show=False,
            tooltip="Show or hide each message's time, model, tokens and response time",
        ),
        Binding(
            "t",
            "toggle_thinking",
            "Thinking",
            show=False,
            tooltip="Show or hide the model's reasoning in sessions imported from other tools",
        ),
        Binding("i", "focus_composer", "Write", tooltip="Write a message (focus the composer)"),
        Binding(
            "ctrl+r",
            "retry",
            "Retry",
            show=False,
            tooltip="Answer your last message again (after an error or a cancel)",
        ),
        Binding(
            "M",
            "memories",
            "Memories",
            show=False,
            tooltip="The project's memories (what new sessions are told)",
        ),
        Binding(
            "Z",
            "summarise",
            "Summarise",
            show=False,
            tooltip="Summarise the session's older messages now",
        ),
        Binding(
            "T",
            "trash",
            "Trash",
            show=False,
            tooltip="The trash: restore sessions deleted earlier, or purge them",
        ),
        Binding(
            "ctrl+f",
            "search",
            "Search",
            show=False,
            tooltip="Search every message and summary as you type; enter opens a match",
        ),
    ]

    def __init__(
        self,
        scope: Scope = Scope.DIRECTORY,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._resumed = False
        self.store: Store | None = None
        self.mounted = asyncio.Event()
        self.rows_ready = asyncio.Event()  # the sidebar's first rows are in (see load)
        self.scope = scope
        self.query_text = ""
        self.total: int | None = None
        self.open_session_id: str | None = None
        self._busy: str | None = None
        self._filter_timer: Timer | None = None
        self._filter_mounting: AwaitMount | None = None
        self._read_ahead: SessionQuery | None = None  # the first rows, being read (read_ahead)
        self._last_deleted: tuple[str, str, float, bool] | None = None
        self._auto_opened = False
        self._short_ids: dict[str, str] = {}
        self.runner = TurnRunner(self)
        self.summarising: set[str] = set()  # sessions being summarised now (Z)
        # (query, by relevance, scope) of the last search, offered again by ctrl+f.
        self._last_search: tuple[str, bool, Scope | None] = ("", False, None)
        # Composer drafts, one per session (see ui/drafts.py): the composer holds the draft
        # of `draft_key` (a session id, or NEW for the session the next message makes).
        self.drafts = Drafts(None)
        self._reading_drafts: asyncio.Future[tuple[Drafts, str | None]] | None = None
        self.draft_key = NEW
        self._draft_timer: Timer | None = None
        self._draft_problem = False
        # Other tools' history found on this machine (None: not looked for yet).
        self._other_history: list[FoundHistory] | None = None

    @property
    def host(self) -> Host:
        """The app: settings, directory, clock, store and turn engine."""
        return host(self)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        clock = self.host.clock
        # Kept: the turn runner and the poller reach them many times a second, and after an
        # await they may run while the app is closing (a query would then find nothing).
        self._sessions = SessionList(clock, id="sessions")
        self._conversation = ConversationView(clock, id="conversation")
        self._composer = Composer(clock, id="composer")
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            # Lit from the start: the list takes the focus (AUTO_FOCUS), and a class added
            # then would restyle the sidebar again before the first frame.
            with Vertical(id="sidebar", classes="-lit"):
                # (The filter field is mounted above the list when first wanted: see
                # filter_input.)
                yield self._sessions
            with Vertical(id="main"):
                yield SessionTitle(id="session-title")
                yield self._conversation
                yield self._composer
        yield KeyFooter(hold=True)

    @property
    def sessions(self) -> SessionList:
        return self._sessions

    @property
    def conversation(self) -> ConversationView:
        return self._conversation

    @property
    def filter_input(self) -> Input:
        """The sidebar's filter field. Hidden until `/`; made (hidden) when first wanted, not
        at start-up: the first frame does not show it, and an Input costs its styling."""
        for field in self.query("#filter").results(Input):
            return field
        field = Input(placeholder="filter titles and previews", id="filter", compact=True)
        field.display = False
        self._filter_mounting = self.query_one("#sidebar").mount(field, before=self.sessions)
        return field

    @property
    def composer(self) -> Composer:
        return self._composer

    def sidebar_has_focus(self) -> bool:
        return self.focused is self.sessions

    # ------------------------------------------------------------------ focus

    # The pane lit (class "-lit") while focus is in it: its border or title.
    LIT_PANES = ("#sidebar", "#session-title", "#composer")

    def lit_pane(self) -> str | None:
        """The pane the focus lights: "#sidebar" (the list or the filter), "#session-title"
        (the conversation) or "#composer"; None when focus is elsewhere."""
        focused = self.focused
        if focused is None:
            return None
        if focused is self.sessions or focused.id == "filter":
            return "#sidebar"
        if focused is self.conversation:
            return "#session-title"
        if focused.id == "composer-input":
            return "#composer"
        return None

    def _show_focus(self) -> None:
        """The focused pane's border and title light up (where single keys go is never a
        guess). The class is set on the panes, not the screen: a focus change restyles the
        two panes concerned, not every widget on the screen (each dropping its drawing)."""
        if not self.query("#composer"):
            return
        lit = self.lit_pane()
        for pane in self.LIT_PANES:
            self.query_one(pane).set_class(pane == lit, "-lit")
        if self.query_text:
            self._update_empty_text()  # its hint names the keys that work where focus is

    @on(events.ScreenResume)
    async def _hold_first_frame(self, event: events.ScreenResume) -> None:
        # (Runs before Screen's own handler, which lays the screen out and paints it.) The
        # first frame waits for the sidebar's rows (a few milliseconds once the database is
        # open; at most FIRST_FRAME_HOLD): painting "Loading…" first costs a whole frame,
        # and the database threads' answers wait behind it. The event loop runs meanwhile.
        if not self._resumed:
            try:
                await asyncio.wait_for(self.rows_ready.wait(), FIRST_FRAME_HOLD)
            except TimeoutError:
                pass

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # (Runs before Screen's own handler.) The first time, every widget was styled as it
        # was mounted, just now: styling them all again is the first frame's largest cost.
        if not self._resumed:
            self._resumed = True
            event.refresh_styles = False

    def on_descendant_focus(self) -> None:
        self._show_focus()

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._show_focus)

    def on_resize(self) -> None:
        # Below 120 columns the footer loses its padding, and below 100 the "^p palette" key
        # (? and the composer's hint name it), so the main keys (Delete and Write included)
        # fit in 80.
        for footer in self.query(KeyFooter):
            footer.compact = self.size.width < 120
            palette = self.size.width >= 100
            if footer.show_command_palette != palette:
                footer.show_command_palette = palette
                footer.refresh(recompose=True)  # the palette key is composed, not styled

    def on_mount(self) -> None:
        self.mounted.set()
        self.read_drafts()  # (while the database opens)
        if not self.query("#composer"):
            return  # the app is ending (the database could not be opened) before composing
        self._update_header()
        self.query_one(SessionTitle).show(None)
        self.runner.update()
        self.conversation.show_empty(
            "Pick a session on the left, or write below to start one.",
            "enter opens it · tab moves between the list, the conversation and the composer"
            " · ? lists every key",
        )

    # ------------------------------------------------------------------ store

    def read_drafts(self) -> asyncio.Future[tuple[Drafts, str | None]]:
        """Read the drafts file on a thread (once: started when the screen is mounted, while the
        database opens; `load` waits for it). The drafts, and the problem reading them if any."""
        if self._reading_drafts is None:
            drafts = Drafts(drafts_path(self.host.db_path))

            async def read() -> tuple[Drafts, str | None]:
                return drafts, await asyncio.to_thread(drafts.load)

            self._reading_drafts = asyncio.ensure_future(read())
        return self._reading_drafts

    async def load(self, store: Store) -> None:
        """The database is open: load the sidebar (and the drafts)."""
        self.store = store
        self.conversation.summaries = store
        drafts, problem = await self.read_drafts()
        if problem is not None:
            self.notify(clean(problem), severity="warning", markup=False, timeout=10)
        # What was typed before they were read stays (it is the newest).
        for key in self.drafts.keys():
            drafts.set(key, self.drafts.get(key))
        self.drafts = drafts
        if self.is_attached and not self.composer.text.strip():
            self._set_composer_text(drafts.get(self.draft_key))
        await self._reload_sessions()
        self.rows_ready.set()

    # ------------------------------------------------------------------ drafts

    def _set_composer_text(self, text: str) -> None:
        if self.composer.text != text:
            self.composer.text = text

    def swap_draft(self, key: str) -> None:
        """The composer now writes to `key` (a session id, or NEW): keep its text as the draft
        of the one it wrote to, and show `key`'s."""
        if key == self.draft_key or not self.is_attached:
            return
        self.drafts.set(self.draft_key, self.composer.text)
        self.draft_key = key
        self._set_composer_text(self.drafts.get(key))
        self._schedule_draft_save()

    def adopt_new_draft(self, session_id: str) -> None:
        """The new-session message made `session_id`: what is left of its draft goes with it."""
        if self.draft_key == NEW:
            self.drafts.set(NEW, "")
            self.draft_key = session_id
            self.drafts.set(session_id, self.composer.text)
        else:
            self.drafts.move(NEW, session_id)
        self._schedule_draft_save()

    def take_sent(self, key: str, sent: str) -> None:
        """`sent`, written in `key`'s draft, was saved as a message: take it out of the draft
        (what was typed after it stays)."""
        if key == self.draft_key and self.is_attached:
            composer = self.composer
            if composer.text.startswith(sent):
                self._set_composer_text(composer.text[len(sent) :].lstrip("\n"))
        else:
            self.drafts.remove_prefix(key, sent)
        self._schedule_draft_save()

    def restore_sent(self, key: str, text: str) -> None:
        """`text` from `key`'s draft was not sent: it goes back (unless more was typed)."""
        if key == self.draft_key and self.is_attached:
            if not self.composer.text.strip():
                self._set_composer_text(text)
        elif not self.drafts.get(key).strip():
            self.drafts.set(key, text)
        self._schedule_draft_save()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "composer-input":  # (the composer's text area: built late)
            self.drafts.set(self.draft_key, self.composer.text)
            self._schedule_draft_save()

    def _schedule_draft_save(self) -> None:
        if self._draft_timer is None and self.drafts.dirty and self.is_attached:
            self._draft_timer = self.set_timer(DRAFT_SAVE_SECONDS, self._save_drafts_soon)

    def _save_drafts_soon(self) -> None:
        self._draft_timer = None
        self.run_worker(self.save_drafts(), group="drafts", exit_on_error=False)

    async def save_drafts(self) -> None:
        """Write the changed drafts (on a thread); a failure is said once."""
        drafts = self.drafts
        if self.is_attached:
            drafts.set(self.draft_key, self.composer.text)
        changes = drafts.take_changes()
        if not changes:
            return
        try:
            await asyncio.to_thread(drafts.write, changes)
        except OSError as exc:
            drafts.keep_changes(changes)
            if not self._draft_problem:
                self._draft_problem = True
                self.notify(
                    clean(f"Drafts not saved to {drafts.path}: {exc.strerror or exc}"),
                    severity="warning",
                    markup=False,
                    timeout=10,
                )

    def _root(self) -> str | None:
        directory = self.host.working_dir
        if self.scope is Scope.ALL:
            return None
        if self.scope is Scope.WORKSPACE:
            return workspace_root(directory)
        return directory

    def read_ahead(self, store: Store) -> None:
        """Start reading the sidebar's first rows (the count and the first page, on the
        store's threads) now, while the screen is still being built: the load that follows
        finds them read, and the first frame, which waits for them, is not held up."""
        if self._read_ahead is None:
            self._read_ahead = self._session_query(store, ahead=True)

    def _session_query(self, store: Store | None = None, ahead: bool = False) -> SessionQuery:
        store, scope, directory = store or self.store, self.scope, self.host.working_dir
        assert store is not None
        text = self.query_text or None

        async def count() -> int:
            return await store.count_sessions(scope, directory, text)

        async def page(limit: int, before, offset: int) -> list[SessionSummary]:  # noqa: ANN001
            return await store.list_sessions(scope, directory, limit, before, text, offset=offset)

        if not ahead:
            return SessionQuery(count=count, page=page, scope=scope, root=self._root())
        # Started now; each answers the first call that asks for it (then the store is asked).
        counting = asyncio.ensure_future(count())
        reading = asyncio.ensure_future(page(PAGE_SIZE, None, 0))
        counting.add_done_callback(_retrieve)
        reading.add_done_callback(_retrieve)
        counted: asyncio.Future[int] | None = counting
        first: asyncio.Future[list[SessionSummary]] | None = reading

        async def count_ahead() -> int:
            nonlocal counted
            task, counted = counted, None
            return await (task or count())

        async def page_ahead(limit: int, before, offset: int) -> list[SessionSummary]:  # noqa: ANN001
            nonlocal first
            task, first = first, None
            if task is not None and (limit, before, offset) == (PAGE_SIZE, None, 0):
                return await task
            return await page(limit, before, offset)

        return SessionQuery(count=count_ahead, page=page_ahead, scope=scope, root=self._root())

    async def _reload_sessions(self, keep_id: str | None = None) -> None:
        if self.store is None:
            return
        self._update_empty_text()
        query, self._read_ahead = self._read_ahead, None
        if query is None or query.scope is not self.scope or self.query_text:
            query = self._session_query()
        await self.sessions.load(query, keep_id=keep_id)

    async def reload_sessions(self, keep_id: str | None = None) -> None:
        """Reload the sidebar, keeping the cursor on `keep_id` (wherever it moved)."""
        await self._reload_sessions(keep_id)

    def _update_empty_text(self) -> None:
        where = home_short(one_line(self._root() or "")) or "any directory"
        found = self._other_history
        if found and not self.query_text:
            tools = ", ".join(f.label for f in found)
            commands = "\n".join(f.command for f in found)
            self.sessions.set_empty_text(
                f"No sessions yet, but this machine has history from {tools}."
                if self.scope is Scope.ALL
                else f"No sessions in {where} yet, but this machine has history from {tools}.",
                f"Bring it in from a shell:\n{commands}\nor press n for a new session here.",
            )
        elif self.query_text:
            self.sessions.set_empty_text(
                f"No session matches “{one_line(self.query_text)}”.",
                filter_hint(
                    self.scope, typing=self.focused is not None and self.focused.id == "filter"
                ),
            )
        elif self.scope is Scope.ALL:
            self.sessions.set_empty_text(
                "No sessions yet.",
                'Start one in a shell:\nthreadline chat "…"\nor press n for a new one here.',
            )
        else:
            self.sessions.set_empty_text(
                f"No sessions in {where} yet.",
                'Start one in a shell here:\nthreadline chat "…"\n'
                "or press n for a new one. s shows other directories.",
            )

    def _update_header(self) -> None:
        self.query_one(HeaderBar).show(
            self.scope, self._root(), self.total, self.query_text, self._busy
        )

    def set_busy(self, text: str | None) -> None:
        self._busy = text
        self._update_header()

    @on(SessionList.Loaded)
    def _sessions_loaded(self, event: SessionList.Loaded) -> None:
        self.total = event.total
        self._update_header()
        if event.total == 0 and self._other_history is None:
            # After the rows' paint (the first start's: what it imports would hold it up).
            self.call_after_refresh(self._look_for_other_history)
        # The key hints are drawn once the rows are on screen (see KeyFooter).
        self.call_after_refresh(self.query_one(KeyFooter).release)
        if not self._auto_opened and event.total and self.open_session_id is None:
            self._auto_opened = True
            # After the list has painted: opening draws Markdown (and loads Pygments).
            self.call_after_refresh(self._open_highlighted)

    def _open_highlighted(self) -> None:
        first = self.sessions.highlighted
        if first is not None and self.open_session_id is None:
            self.open_session(first.id)

    @work(group="other-history", exclusive=True, exit_on_error=False)
    async def _look_for_other_history(self) -> None:
        """The database is empty: is another tool's history on this machine? (A few stats,
        on a thread; looked for once.) The empty list then names the import commands."""
        from threadline.sources.found import histories_found

        store = self.store
        if store is None:
            return
        self._other_history = []
        try:
            if await store.count_sessions(Scope.ALL, None):
                return  # history of its own already: no advice
        except ThreadlineError:
            return
        self._other_history = await asyncio.to_thread(histories_found)
        if self._other_history and self.sessions.total == 0:
            self._update_empty_text()

    async def data_changed(self) -> None:
        """Another process (or a cleanup) wrote: refresh the list and the open session."""
        if self.store is None:
            return
        highlighted = self.sessions.highlighted
        await self._reload_sessions(keep_id=highlighted.id if highlighted else None)
        session_id = self.open_session_id
        if session_id is None or not self.is_attached:
            return
        try:
            session = await self.store.get_session(session_id)
        except ThreadlineError:
            return
        if not self.is_attached:
            return  # the app is closing: the widgets are going or gone
        if session is None or session.deleted_at is not None:
            self.close_session(
                "This session was moved to the trash.",
                "threadline sessions restore brings it back.",
            )
            return
        self.conversation.set_session(session)
        self._show_title(session)
        await self.conversation.refresh_tail()

    # ------------------------------------------------------------------ opening

    @on(SessionList.Opened)
    def _session_chosen(self, event: SessionList.Opened) -> None:
        self.open_session(event.summary.id)
        # Its keys (k/j, f, c, y, e) work at once; esc goes back to the list.
        self.conversation.focus()

    @work(group="open-session", exclusive=True, exit_on_error=False)
    async def open_session(
        self, session_id: str, at_message: int | None = None, at_summary: int | None = None
    ) -> None:
        """Open a session at its end, or around `at_message` with that message (or the summary
        `at_summary`, which ends at it) selected and marked: a search hit, a memory's source
        message. A message the latest summary folds away is shown, the range unfolded."""
        store = self.store
        if store is None:
            return
        try:
            session = await store.get_session(session_id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if session is None or session.deleted_at is not None:
            self.notify("That session is gone (trashed or purged elsewhere).", severity="warning")
            await self._reload_sessions()
            return
        await self.show_session(session, at_message, at_summary)

    async def show_session(
        self, session: Session, at_message: int | None = None, at_summary: int | None = None
    ) -> None:
        """Show `session` (already fetched) in the pane, at its end or around `at_message` /
        `at_summary` (see open_session), and mark it open in the list."""
        store = self.store
        if store is None:
            return
        self._switching_to(session.id)
        self.open_session_id = session.id
        self.swap_draft(session.id)
        self.sessions.set_open(session.id)
        self._show_title(session)

        async def timeline(before, after, limit):  # noqa: ANN001, ANN202
            return await store.timeline(session.id, before, limit, after=after)

        if at_message is None:
            await self.conversation.open(session, timeline)
        else:

            async def around(message_id: int, radius: int) -> list[TimelineItem]:
                return await store.timeline_around(session.id, message_id, radius)

            target = ("s", at_summary) if at_summary is not None else ("m", at_message)
            if not await self.conversation.open_at(session, timeline, around, at_message, target):
                self.notify("That message is no longer in the session.", severity="warning")
            if self.open_session_id == session.id:
                self.conversation.focus()
        self.runner.session_opened(session.id)
        if session.id not in self._short_ids:
            try:
                self._short_ids.update(await store.short_ids([session.id]))
            except ThreadlineError:
                pass
            if self.open_session_id == session.id:
                self._show_title(session)

    def _switching_to(self, session_id: str) -> None:
        """Leaving the open session for another: its new messages go to memory extraction."""
        previous = self.open_session_id
        if previous is not None and previous != session_id:
            if previous == self.runner.writing_id:
                return  # half a turn is not queued: the idle scan takes it once it is over
            self.host.memory_tasks.session_left(previous)

    def _show_title(self, session: Session) -> None:
        short = self._short_ids.get(session.id)
        self.query_one(SessionTitle).show(session, short)

    def show_title(self, session: Session) -> None:
        """Update the title line (title, message count) of the open session."""
        self._show_title(session)

    def close_session(self, title: str, hint: str = "") -> None:
        """Show no session: `title` and `hint` in the pane (texts already safe)."""
        self.open_session_id = None
        self.swap_draft(NEW)
        self.sessions.set_open(None)
        self.query_one(SessionTitle).show(None)
        self.conversation.show_empty(title, hint)
        self.runner.update()

    def show_draft(self, title: str, hint: str, placeholder: str) -> None:
        """A new session not written yet: `title` and `hint` in the pane, `placeholder` as
        its title (texts already safe)."""
        self.close_session(title, hint)
        self.query_one(SessionTitle).show(None, placeholder=placeholder)

    # ------------------------------------------------------------------ scope and filter

    async def action_cycle_scope(self) -> None:
        self.scope = self.scope.next()
        self._update_header()
        await self._reload_sessions()

    async def action_filter(self) -> None:
        field = self.filter_input
        mounting, self._filter_mounting = self._filter_mounting, None
        if mounting is not None:
            await mounting
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, self._apply_filter)

    async def _apply_filter(self) -> None:
        text = self.filter_input.value.strip()
        if text == self.query_text:
            return
        self.query_text = text
        self._update_header()
        await self._reload_sessions()

    @on(Input.Submitted, "#filter")
    async def _filter_submitted(self) -> None:
        await self._apply_filter()
        self.sessions.focus()

    async def action_clear_filter(self) -> None:
        if not self.query("#filter") and not self.query_text:
            return  # never opened
        field = self.filter_input
        if not field.display and not self.query_text:
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
        field.value = ""
        field.display = False
        self.sessions.focus()
        if self.query_text:
            self.query_text = ""
            self._update_header()
            await self._reload_sessions()

    # ------------------------------------------------------------------ session actions

    def target(self) -> tuple[str, str] | None:
        """(id, title) of the session an action applies to: the highlighted row when the list
        has focus, else the open session."""
        if self.focused is self.sessions or self.open_session_id is None:
            row = self.sessions.highlighted
            if row is not None:
                return row.id, row.display_title
            return None
        session = self.conversation.session
        if session is not None:
            return session.id, session.display_title
        return None

    def _store_or_warn(self) -> Store | None:
        if self.store is None:
            self.notify("The database is not open yet.", severity="warning")
        return self.store

    def action_new_session(self) -> None:
        from threadline.ui.screens.new_session import NewSessionScreen

        where = home_short(one_line(self.host.working_dir))
        default = self.host.settings.effective_provider().model
        self.app.push_screen(NewSessionScreen(where, default), callback=self._new_session_chosen)

    def _new_session_chosen(self, choice: NewSession | None) -> None:
        if choice is not None:
            self.runner.start_draft(choice)

    def action_rename(self) -> None:
        target = self.target()
        if target is None:
            self.notify("No session to rename.", severity="warning")
            return
        from threadline.ui.screens.rename import RenameScreen

        session_id, title = target
        current = self._current_title(session_id)
        self.app.push_screen(
            RenameScreen(current, title),
            callback=lambda new: self._renamed(session_id, new),
        )

    def _current_title(self, session_id: str) -> str:
        for row in self.sessions.loaded_rows:
            if row.id == session_id:
                return row.title or ""
        session = self.conversation.session
        if session is not None and session.id == session_id:
            return session.title or ""
        return ""

    def _renamed(self, session_id: str, new_title: str | None) -> None:
        if new_title is not None:
            self._rename(session_id, new_title)

    @work(group="session-action", exit_on_error=False)
    async def _rename(self, session_id: str, new_title: str) -> None:
        store = self._store_or_warn()
        if store is None:
            return
        title = " ".join(new_title.split()) or None
        try:
            session = await store.update_session(session_id, title=title)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        await self._reload_sessions(keep_id=session_id)
        if self.open_session_id == session_id:
            self.conversation.set_session(session)
            self._show_title(session)
        if title:
            self.notify(f"Renamed to “{one_line(title)}”.", markup=False)
        else:
            self.notify("Title cleared; the first message shows instead.", markup=False)

    @work(group="session-action", exit_on_error=False)
    async def action_pin(self) -> None:
        store = self._store_or_warn()
        target = self.target()
        if store is None or target is None:
            return
        session_id, title = target
        try:
            current = await store.get_session(session_id)
            if current is None:
                return
            session = await store.update_session(session_id, pinned=not current.pinned)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        await self._reload_sessions(keep_id=session_id)
        if self.open_session_id == session_id:
            self.conversation.set_session(session)
            self._show_title(session)
        verb = "Pinned" if session.pinned else "Unpinned"
        self.notify(f"{verb} “{one_line(title)}”.", markup=False)

    @work(group="session-action", exit_on_error=False)
    async def action_delete(self) -> None:
        store = self._store_or_warn()
        target = self.target()
        if store is None:
            return
        if target is None:
            self.notify("No session to delete.", severity="warning")
            return
        session_id, title = target
        try:
            moved = await store.delete_session(session_id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if not moved:
            self.notify("That session was already in the trash.", severity="warning")
            return
        was_open = self.open_session_id == session_id
        self._last_deleted = (session_id, title, time.monotonic(), was_open)
        self.notify(
            f"Moved “{one_line(title)}” to the trash. Press u to undo.",
            title="Deleted",
            timeout=UNDO_SECONDS,
            markup=False,
        )
        if was_open:
            self.close_session(
                f"“{one_line(title)}” is in the trash.",
                "u brings it back (for a few seconds; later: threadline sessions restore).",
            )
        await self._reload_sessions()
        self.sessions.focus()

    @work(group="session-action", exit_on_error=False)
    async def action_undo_delete(self) -> None:
        store = self._store_or_warn()
        last = self._last_deleted
        if store is None:
            return
        if last is None or time.monotonic() - last[2] > UNDO_SECONDS:
            self.notify(
                "Nothing to undo. See the trash with `threadline sessions trash` and bring a "
                "session back with `threadline sessions restore ID`.",
                severity="warning",
            )
            return
        session_id, title, _, was_open = last
        self._last_deleted = None
        try:
            restored = await store.restore_session(session_id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if not restored:
            self.notify("That session could not be restored.", severity="warning")
            return
        await self._reload_sessions(keep_id=session_id)
        if was_open:
            self.open_session(session_id)
        self.notify(f"Restored “{one_line(title)}”.", markup=False)

    def action_toggle_meta(self) -> None:
        self.conversation.toggle_meta()

    def action_toggle_thinking(self) -> None:
        if not self.conversation.toggle_thinking():
            shown = "shown" if self.conversation.window.show_thinking else "hidden"
            self.notify(
                f"Reasoning will be {shown}: only sessions imported from other tools keep it.",
                markup=False,
            )

    # ------------------------------------------------------------------ writing (see turn_runner)

    def action_focus_composer(self) -> None:
        composer = self.composer
        if composer.enabled:
            composer.input.focus()
            return
        if self.host.engine_error is None and self.host.engine_ready.is_set():
            self.host.open_provider_setup()
            return
        problem = self.runner.not_ready()
        if problem:
            self.notify(clean(problem), severity="warning", markup=False, timeout=10)

    def on_composer_input_submitted(self, event: ComposerInput.Submitted) -> None:
        if event.input.id == "composer-input":
            event.stop()
            self.runner.send(event.text)

    def action_cancel_reply(self) -> None:
        if not self.runner.cancel():
            raise SkipAction()

    def action_retry(self) -> None:
        self.runner.retry()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_reply":
            return self.runner.busy_here  # otherwise esc leaves the composer
        if action == "leave":
            focused = self.focused
            return focused is self.conversation or (
                focused is not None and focused.id == "composer-input"
            )
        return True

    def action_leave(self) -> None:
        """esc: from the composer to the conversation (or the list when no session is open),
        keeping the draft; from the conversation to the list."""
        if self.focused is self.conversation or self.open_session_id is None:
            self.sessions.focus()
        else:
            self.conversation.focus()

    async def action_route(self, action: str) -> None:
        """A conversation key pressed in the list acts on the open session."""
        if self.open_session_id is None:
            return
        await self.conversation.run_action(action)

    # ------------------------------------------------------------------ summaries and memory

    def action_memories(self) -> None:
        from threadline.ui.screens.memories import MemoriesScreen

        if self._store_or_warn() is None:
            return
        # Installed once and pushed again each time: composing it is the costly part.
        if not self.app.is_screen_installed("memories"):
            self.app.install_screen(MemoriesScreen(), name="memories")
        screen = self.app.get_screen("memories")
        assert isinstance(screen, MemoriesScreen)
        screen.stale = True
        screen.open_session = self.conversation.session if self.open_session_id else None
        self.app.push_screen(screen, callback=self._memory_jump)

    def _memory_jump(self, jump: JumpTo | None) -> None:
        """The memories screen closed on a memory's source: open it there."""
        if jump is not None:
            self.open_session(jump.session_id, jump.message_id)

    @work(group="summarise", exit_on_error=False)
    async def action_summarise(self) -> None:
        """Summarise the session now: everything but its newest messages (Z)."""
        from threadline.ui.summaries import summarise_now

        await summarise_now(self)

    def summary_engine(self) -> TurnEngine:
        """The turn engine summaries are written with (raises ProviderNotConfigured)."""
        return self.host.memory_tasks.engine()

    def memory_status_changed(self, status: MemoryStatus) -> None:
        """The extraction queue changed: the header's indicator follows."""
        if self.query("#header"):
            self.query_one(HeaderBar).set_memory(status.indicator())

    def action_search(self) -> None:
        store = self._store_or_warn()
        if store is None:
            return
        from threadline.ui.screens.search import LIMIT, SearchOutcome, SearchScreen

        directory = self.host.working_dir

        async def search(query: str, scope: Scope, rank: bool) -> list[SearchHit]:
            return await store.search(query, scope, directory, LIMIT, rank=rank)

        def done(outcome: SearchOutcome | None) -> None:
            if outcome is None:
                return
            self._last_search = (outcome.query, outcome.rank, outcome.scope)
            hit = outcome.hit
            if hit is not None and hit.message_id is not None:
                self.open_session(hit.session_id, hit.message_id, hit.summary_id)

        query, rank, last_scope = self._last_search
        # The query comes back with the scope it was searched in (else: the sidebar's).
        scope = last_scope if query and last_scope is not None else self.scope
        self.app.push_screen(
            SearchScreen(search, scope, directory, self.host.clock, query=query, rank=rank),
            callback=done,
        )

    def action_help(self) -> None:
        from threadline.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.key_sections()))

    def action_trash(self) -> None:
        if self._store_or_warn() is None:
            return
        from threadline.ui.screens.trash import TrashScreen

        screen = TrashScreen()

        def closed(open_id: str | None) -> None:
            if open_id is not None:
                self.open_session(open_id)
            if open_id is not None or screen.restored:
                self.run_worker(
                    self._reload_sessions(keep_id=open_id),
                    group="session-action",
                    exit_on_error=False,
                )

        self.app.push_screen(screen, callback=closed)

    # ------------------------------------------------------------------ palette

    def key_sections(self) -> list[KeySection]:
        """Every key of this screen and its views, grouped by where it works."""
        # (Imported here: help and the palette need them, the first frame does not.)
        from threadline.ui.keys import KeyGroup, key_sections
        from threadline.ui.widgets.composer_input import ComposerInput

        mounted = bool(self.query("#composer"))
        return key_sections(
            self.app,
            [
                KeyGroup("Anywhere", MainScreen, self),
                KeyGroup("Session list", SessionList, self.sessions if mounted else None),
                KeyGroup("Conversation", ConversationView, self.conversation if mounted else None),
                KeyGroup("Composer", ComposerInput, self.composer.input if mounted else None),
            ],
        )

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Every key of this screen and its views, as command palette entries."""
        for section in self.key_sections():
            for entry in section.entries:
                if entry.run is None:
                    continue
                yield SystemCommand(
                    entry.description, f"{section.title} · key: {entry.keys}", entry.run
                )
