"""The sidebar: the sessions of one scope, drawn line by line and fetched a page at a time.

Cost follows the screen: the list's virtual height comes from one count, rows are fetched from
the store in pages of PAGE_SIZE (keyset paging from the page before when it is loaded, an offset
for jumps) by workers, kept in a small LRU, and only the rows on screen are ever drawn. A list of
100,000 sessions costs what a list of 30 does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.strip import Strip

from threadline.errors import ThreadlineError
from threadline.models import Scope, SessionCursor, SessionSummary
from threadline.paths import home_short
from threadline.transcript import source_tag
from threadline.ui.format import plural, relative_age
from threadline.ui.notices import notify_error
from threadline.ui.pages import PagedRows
from threadline.ui.safe import one_line
from threadline.ui.widgets.rows import ROW_HEIGHT, RowList, row_bindings

PAGE_SIZE = 100
MAX_PAGES = 60  # rows kept in memory: 6,000, whatever the size of the scope

CountFn = Callable[[], Awaitable[int]]
PageFn = Callable[[int, SessionCursor | None, int], Awaitable[list[SessionSummary]]]


@dataclass(frozen=True)
class SessionQuery:
    """Where the rows come from: a scope's count and pages (set by the screen)."""

    count: CountFn
    page: PageFn  # (limit, before, offset) -> rows
    scope: Scope
    root: str | None  # the scope's directory (None for all), for showing relative paths


class SessionList(RowList):
    """A line-rendered, lazily paged list of sessions (two lines a row)."""

    PREFIX = "session-list"
    EMPTY_INDENT = 1
    PLACEHOLDER_PAST_END = True

    COMPONENT_CLASSES = {
        "session-list--row",
        "session-list--cursor",
        "session-list--title",
        "session-list--detail",
        "session-list--age",
        "session-list--pin",
        "session-list--crashed",
        "session-list--writing",
        "session-list--open",
        "session-list--source",
        "session-list--placeholder",
        "session-list--empty-title",
        "session-list--empty-hint",
    }

    DEFAULT_CSS = """
    SessionList {
        overflow-x: hidden;
        & > .session-list--cursor { background: $surface-lighten-1; }
        &:focus > .session-list--cursor { background: $block-cursor-background; }
        &:focus > .session-list--cursor { color: $block-cursor-foreground; }
        & > .session-list--title { text-style: bold; }
        & > .session-list--detail { color: $text-muted; }
        & > .session-list--age { color: $text-muted; }
        & > .session-list--pin { color: $warning; }
        & > .session-list--crashed { color: $error; text-style: bold; }
        & > .session-list--writing { color: $warning; text-style: bold; }
        & > .session-list--open { color: $accent; }
        & > .session-list--source { color: $text-secondary; text-style: bold; }
        & > .session-list--placeholder { color: $text-disabled; }
        & > .session-list--empty-title { text-style: bold; color: $text; }
        & > .session-list--empty-hint { color: $text-muted; }
    }
    """

    BINDINGS = row_bindings(
        "session",
        "sessions",
        "First session",
        "Last session",
        [
            Binding(
                "enter",
                "open",
                "Open",
                tooltip="Open the highlighted session (its conversation takes the keys)",
            ),
            # The open conversation's keys that mean nothing in the list act on it.
            Binding(
                "f",
                "screen.route('toggle_fold')",
                "Fold",
                show=False,
                tooltip="Show or fold away the open session's summarised messages",
            ),
            Binding(
                "c",
                "screen.route('copy_message')",
                "Copy",
                show=False,
                tooltip="Copy the open session's selected message",
            ),
            Binding(
                "y",
                "screen.route('copy_code')",
                "Copy code",
                show=False,
                tooltip="Copy the code blocks of the open session's selected message",
            ),
            Binding(
                "e",
                "screen.route('toggle_summary')",
                "Expand",
                show=False,
                tooltip="Expand or collapse the open session's selected summary",
            ),
        ],
    )

    class Opened(Message):
        """A session was chosen (enter or click)."""

        def __init__(self, summary: SessionSummary) -> None:
            super().__init__()
            self.summary = summary

    class Loaded(Message):
        """The list was (re)counted; `total` rows match."""

        def __init__(self, total: int) -> None:
            super().__init__()
            self.total = total

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._clock = clock
        self._query: SessionQuery | None = None
        self.pages: PagedRows[SessionSummary] = PagedRows(PAGE_SIZE, MAX_PAGES)
        self.open_id: str | None = None
        self.writing_id: str | None = None  # the session this app is writing a reply in
        self._empty = ("No sessions.", "")

    # ------------------------------------------------------------------ public

    @property
    def total(self) -> int | None:
        """How many sessions the list holds (None: not counted yet)."""
        return self.pages.total

    @property
    def highlighted(self) -> SessionSummary | None:
        """The session under the cursor, when its page is loaded."""
        return self.pages.row(self.cursor, want=False)

    @property
    def loaded_rows(self) -> list[SessionSummary]:
        """The rows in memory, in list order (for tests and the screen)."""
        return self.pages.loaded_rows

    def set_open(self, session_id: str | None) -> None:
        self.open_id = session_id
        self.redraw()

    def set_writing(self, session_id: str | None) -> None:
        """Mark the session a reply is being written in (None: none)."""
        if session_id != self.writing_id:
            self.writing_id = session_id
            self.redraw()

    async def load(self, query: SessionQuery, keep_id: str | None = None) -> None:
        """Count and fetch the rows around the cursor, then swap them in at once.

        Rows on screen stay until the new ones arrive, so a refresh never flashes. With
        `keep_id`, the cursor follows that session if it is among the fetched rows.
        """
        same_source = self._query is not None and self._query.scope == query.scope
        self._query = query
        cursor = self.cursor if same_source else 0
        first_visible = int(self.scroll_y) // ROW_HEIGHT if same_source else 0
        around = [cursor, first_visible, first_visible + self._visible_rows()]
        try:
            total = await self.pages.reload(query.count, query.page, around)
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return
        if total is None:
            return  # a later load is under way
        cursor = min(cursor, max(0, total - 1))
        if keep_id is not None:
            kept = self.pages.find(keep_id)
            cursor = cursor if kept is None else kept
        self.set_row_count(total, cursor)
        if not same_source:
            self.scroll_to(y=0, animate=False, immediate=True)
            self._scroll_cursor_into_view()
        self.post_message(self.Loaded(total))

    def update_row(self, session: SessionSummary) -> bool:
        """Show a loaded row's new counts, age and title in place (after the app's own write,
        when its place in the list does not change), without asking the store."""
        index = self.pages.find(session.id)
        if index is None:
            return False
        row = self.pages.row(index, want=False)
        fields = {name: getattr(session, name) for name in SessionSummary.model_fields}
        fields["preview"] = fields["preview"] or (row.preview if row else None)
        self.pages.replace(index, SessionSummary(**fields))
        self.refresh_row(index)
        return True

    # ------------------------------------------------------------------ rows

    def _visible_rows(self) -> int:
        return max(1, self.size.height // ROW_HEIGHT + 1)

    def row_count(self) -> int | None:
        return self.pages.total

    def row_at(self, index: int) -> SessionSummary | None:
        row = self.pages.row(index)
        if row is None and self.pages.wanted:
            self.call_after_refresh(self._read_wanted)
        return row

    def _read_wanted(self) -> None:
        token = self.pages.token
        for page in self.pages.take_wanted():
            self.run_worker(self._read(page, token), group="session-pages", exit_on_error=False)

    async def _read(self, page: int, token: int) -> None:
        try:
            if await self.pages.read(page, token):
                self.refresh()
        except ThreadlineError as exc:
            notify_error(self.app, exc)

    def row_key(self, row: object, index: int, is_cursor: bool) -> Hashable:
        assert isinstance(row, SessionSummary)
        return (
            row,
            is_cursor,
            row.id == self.open_id,
            row.id == self.writing_id,
            relative_age(row.updated_at, self._clock()),
            self._query.scope if self._query else None,
        )

    def draw_row_line(self, row: object, index: int, sub: int, width: int, cursor: bool) -> Strip:
        assert isinstance(row, SessionSummary)
        return self._render_row_line(row, sub, width, cursor, self._clock())

    # ------------------------------------------------------------------ keys and mouse

    def action_open(self) -> None:
        summary = self.highlighted
        if summary is not None:
            self.post_message(self.Opened(summary))

    def row_clicked(self, index: int) -> None:
        self.action_open()

    # ------------------------------------------------------------------ drawing

    def _style(self, *components: str) -> Style:
        """The Rich style of these component classes over the row's (themes apply)."""
        return self.part_style(*components)

    def _render_row_line(
        self, summary: SessionSummary, sub: int, width: int, is_cursor: bool, now: datetime
    ) -> Strip:
        row = ("session-list--cursor",) if is_cursor else ()
        row_style = self._style(*row)

        def part(component: str) -> Style:
            return self._style(*row, component)

        mark = "▌" if summary.id == self.open_id else " "
        segments = [Segment(mark, part("session-list--open")), Segment(" ", row_style)]
        used = 2
        if sub == 0:
            age = relative_age(summary.updated_at, now)
            right = f" {age} "
            if summary.pinned:
                segments.append(Segment("★ ", part("session-list--pin")))
                used += 2
            room = max(0, width - used - len(right))
            title = Content(one_line(summary.display_title)).truncate(room, ellipsis=True)
            segments.append(Segment(title.plain, part("session-list--title")))
            used += title.cell_length
            gap = max(0, width - used - len(right))
            segments.append(Segment(" " * gap, row_style))
            segments.append(Segment(right, part("session-list--age")))
        else:
            detail: list[tuple[str, str]] = []
            tag = source_tag(summary.source)
            if tag:
                detail.append((tag, "session-list--source"))
                detail.append((" · ", "session-list--detail"))
            detail.append((plural(summary.message_count, "msg"), "session-list--detail"))
            if summary.id == self.writing_id or (summary.writing and summary.status != "crashed"):
                detail.append((" · ", "session-list--detail"))
                detail.append(("● writing…", "session-list--writing"))
            elif summary.status == "crashed":
                detail.append((" · ", "session-list--detail"))
                detail.append(("⚠ interrupted", "session-list--crashed"))
            elif summary.reply_failed:
                detail.append((" · ", "session-list--detail"))
                detail.append(("⚠ reply failed", "session-list--crashed"))
            elif summary.unanswered:
                detail.append((" · ", "session-list--detail"))
                detail.append(("no reply", "session-list--crashed"))
            where = self._where(summary)
            if where:
                detail.append((" · ", "session-list--detail"))
                room = width - used - sum(len(t) for t, _ in detail) - 1
                detail.append((_left_ellipsis(where, room), "session-list--detail"))
            for text, component in detail:
                segments.append(Segment(text, part(component)))
        return Strip(segments).adjust_cell_length(width, row_style)

    def _where(self, summary: SessionSummary) -> str:
        """The directory to show: all of it in the "all" scope, relative in a workspace."""
        query = self._query
        if query is None or query.scope is Scope.DIRECTORY:
            return ""
        directory = one_line(summary.working_dir)
        if query.scope is Scope.WORKSPACE and query.root:
            if summary.working_dir == query.root:
                return ""
            try:
                return "./" + str(PurePosixPath(directory).relative_to(one_line(query.root)))
            except ValueError:
                return home_short(directory)
        return home_short(directory)


def _left_ellipsis(text: str, room: int) -> str:
    """Keep the end of a path when it does not fit: `…/src/api`."""
    if room <= 0:
        return ""
    content = Content(text)
    if content.cell_length <= room:
        return text
    if room == 1:
        return "…"
    tail = text[-(room - 1) :]
    while Content(tail).cell_length > room - 1:
        tail = tail[1:]
    return "…" + tail
