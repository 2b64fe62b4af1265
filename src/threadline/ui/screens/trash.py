"""The trash (T): sessions moved there, in every directory; restore them or purge them for good.

Undo after `d` lasts seconds; this is where a session deleted earlier (by `d`, the CLI or
auto-cleanup) comes back. The rows are the sidebar's line-drawn, page-at-a-time list
(SessionList) over the store's trashed sessions, so a trash of 100,000 sessions opens as fast
as an empty one. `r` restores the highlighted session, enter restores it and opens it, `D`
purges it after a confirmation (messages and summaries go; memories keep their facts).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING

from rich.segment import Segment
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Footer, Static

from threadline.errors import ThreadlineError
from threadline.models import Scope, SessionSummary
from threadline.paths import home_short
from threadline.ui.format import plural, relative_age
from threadline.ui.host import Host, host
from threadline.ui.keys import KeyGroup, KeySection, key_sections
from threadline.ui.notices import notify_error
from threadline.ui.safe import one_line
from threadline.ui.widgets.rows import row_bindings
from threadline.ui.widgets.session_list import SessionList, SessionQuery

if TYPE_CHECKING:
    from threadline.store import Store


class TrashList(SessionList):
    """The trashed sessions: title and age on the first line; when it was trashed, its message
    count and its directory on the second."""

    BINDINGS = row_bindings(
        "session",
        "sessions",
        "First session",
        "Last session",
        [Binding("enter", "open", "Restore+open", tooltip="Restore the session and open it")],
    )

    def row_key(self, row: object, index: int, is_cursor: bool) -> Hashable:
        assert isinstance(row, SessionSummary)
        trashed = row.deleted_at or row.updated_at
        return (super().row_key(row, index, is_cursor), relative_age(trashed, self._clock()))

    def draw_row_line(self, row: object, index: int, sub: int, width: int, cursor: bool) -> Strip:
        assert isinstance(row, SessionSummary)
        if sub == 0:
            return super().draw_row_line(row, index, sub, width, cursor)
        base = ("session-list--cursor",) if cursor else ()
        row_style = self._style(*base)
        detail = self._style(*base, "session-list--detail")
        trashed = relative_age(row.deleted_at or row.updated_at, self._clock())
        when = "trashed now" if trashed == "now" else f"trashed {trashed} ago"
        text = f"{when} · {plural(row.message_count, 'msg')} · "
        room = max(0, width - 2 - len(text))
        where = Content(home_short(one_line(row.working_dir)))
        if where.cell_length > room:
            where = Content("…" + where.plain[-max(0, room - 1) :]) if room else Content("")
        segments = [Segment("  ", row_style), Segment(text + where.plain, detail)]
        return Strip(segments).adjust_cell_length(width, row_style)


class TrashScreen(Screen[str | None]):
    """Sessions in the trash. Closes with the id of a session to open (enter), or None."""

    DEFAULT_CSS = """
    TrashScreen {
        layout: vertical;
    }

    #trash-header {
        height: 1;
        background: $panel;
        padding: 0 1;
    }

    #trash-list {
        height: 1fr;
    }
    """

    AUTO_FOCUS = "TrashList"

    BINDINGS = [
        Binding("escape,q,T", "back", "Back", tooltip="Back to the sessions"),
        Binding("r", "restore", "Restore", tooltip="Bring the session back (it stays here)"),
        Binding("D", "purge", "Purge", tooltip="Remove the session for good (asks first)"),
        Binding("question_mark", "help", "Help", show=False, tooltip="Show every key"),
    ]

    def __init__(self, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.restored: list[str] = []  # ids restored here (the sidebar reloads on return)

    @property
    def host(self) -> Host:
        return host(self)

    @property
    def trash(self) -> TrashList:
        return self.query_one(TrashList)

    def compose(self) -> ComposeResult:
        yield Static(id="trash-header")
        yield TrashList(self.host.clock, id="trash-list")
        yield Footer()

    def on_mount(self) -> None:
        days = self.host.settings.session.trash_days
        self.trash.set_empty_text(
            "The trash is empty.",
            f"d moves a session here; it stays {plural(days, 'day')} before it is purged."
            if days
            else "d moves a session here.",
        )
        self._show_header(None)
        self.reload()

    def _show_header(self, total: int | None) -> None:
        parts: list[str | tuple[str, str]] = [
            ("threadline", "bold $accent"),
            "  ",
            ("trash", "bold"),
        ]
        if total is not None:
            parts += [("  ·  ", "$text-muted"), (plural(total, "session"), "$text-muted")]
        days = self.host.settings.session.trash_days
        if days:
            parts += [("  ·  ", "$text-muted"), (f"purged after {days} d", "$text-muted")]
        self.query_one("#trash-header", Static).update(Content.assemble(*parts))

    def _store(self) -> Store | None:
        store = self.host.store
        if store is None:
            self.notify("The database is not open yet.", severity="warning")
        return store

    def _query(self, store: Store) -> SessionQuery:
        async def count() -> int:
            return await store.count_sessions(Scope.ALL, None, trashed=True)

        async def page(limit: int, before, offset: int) -> list[SessionSummary]:  # noqa: ANN001
            return await store.list_sessions(
                Scope.ALL, None, limit, before, trashed=True, offset=offset
            )

        return SessionQuery(count=count, page=page, scope=Scope.ALL, root=None)

    @work(group="trash-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        store = self._store()
        if store is not None:
            await self.trash.load(self._query(store))

    @on(SessionList.Loaded)
    def _loaded(self, event: SessionList.Loaded) -> None:
        self._show_header(event.total)

    @on(SessionList.Opened)
    def _opened(self, event: SessionList.Opened) -> None:
        event.stop()
        self.action_restore_open()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.dismiss(None)

    def action_restore(self) -> None:
        self._restore(open_it=False)

    def action_restore_open(self) -> None:
        self._restore(open_it=True)

    @work(group="trash-action", exit_on_error=False)
    async def _restore(self, open_it: bool) -> None:
        store = self._store()
        row = self.trash.highlighted
        if store is None or row is None:
            return
        try:
            restored = await store.restore_session(row.id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        title = one_line(row.display_title)
        if not restored:
            self.notify("That session is no longer in the trash.", severity="warning")
        else:
            self.restored.append(row.id)
            self.notify(f"Restored “{title}”.", markup=False)
        if open_it and restored:
            self.dismiss(row.id)
            return
        await self.trash.load(self._query(store))

    def action_purge(self) -> None:
        row = self.trash.highlighted
        if row is None:
            return
        from threadline.ui.screens.confirm import ConfirmScreen

        question = Content.assemble(
            "Remove “",
            (one_line(row.display_title), "bold"),
            f"” ({plural(row.message_count, 'message')}) for good? "
            "Its messages and summaries cannot be brought back; memories keep their facts.",
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._purge(row.id, row.display_title)

        self.app.push_screen(
            ConfirmScreen("Purge session", question, yes="Purge"), callback=answered
        )

    @work(group="trash-action", exit_on_error=False)
    async def _purge(self, session_id: str, title: str) -> None:
        store = self._store()
        if store is None:
            return
        try:
            purged = await store.purge_session(session_id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if purged:
            self.notify(f"Purged “{one_line(title)}” for good.", markup=False)
        await self.trash.load(self._query(store))

    # ------------------------------------------------------------------ keys

    def key_sections(self) -> list[KeySection]:
        return key_sections(
            self.app,
            [
                KeyGroup("Trash", TrashScreen, self),
                KeyGroup("List", TrashList, self.trash if self.is_mounted else None),
            ],
        )

    def action_help(self) -> None:
        from threadline.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.key_sections()))

    def palette_commands(self) -> Iterable[SystemCommand]:
        for section in self.key_sections():
            for entry in section.entries:
                if entry.run is not None:
                    yield SystemCommand(
                        entry.description, f"{section.title} · key: {entry.keys}", entry.run
                    )
