"""The sidebar: the sessions of one scope, drawn line by line and fetched a page at a time.

Cost follows the screen: the list's virtual height comes from one count, rows are fetched from
the store in pages of PAGE_SIZE (keyset paging from the page before when it is loaded, an offset
for jumps) by workers, kept in a small LRU, and only the rows on screen are ever drawn. A list of
100,000 sessions costs what a list of 30 does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from threadline.errors import ThreadlineError
from threadline.models import Scope, SessionCursor, SessionSummary
from threadline.paths import home_short
from threadline.ui.format import plural, relative_age
from threadline.ui.safe import clean, one_line

PAGE_SIZE = 100
ROW_HEIGHT = 2
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


class SessionList(ScrollView, can_focus=True):
    """A line-rendered, lazily paged list of sessions (two lines a row)."""

    COMPONENT_CLASSES = {
        "session-list--row",
        "session-list--cursor",
        "session-list--title",
        "session-list--detail",
        "session-list--age",
        "session-list--pin",
        "session-list--crashed",
        "session-list--open",
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
        & > .session-list--open { color: $accent; }
        & > .session-list--placeholder { color: $text-disabled; }
        & > .session-list--empty-title { text-style: bold; color: $text; }
        & > .session-list--empty-hint { color: $text-muted; }
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, tooltip="Previous session"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip="Next session"),
        Binding("pageup", "page_up", "Page up", show=False, tooltip="A screen of sessions up"),
        Binding(
            "pagedown", "page_down", "Page down", show=False, tooltip="A screen of sessions down"
        ),
        Binding("home", "first", "First", show=False, tooltip="First session"),
        Binding("end", "last", "Last", show=False, tooltip="Last session"),
        Binding("enter", "open", "Open", tooltip="Open the highlighted session"),
    ]

    cursor: var[int] = var(0, init=False)
    """Index of the highlighted row."""

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
        self._generation = 0
        self.total: int | None = None
        self._pages: OrderedDict[int, list[SessionSummary]] = OrderedDict()
        self._pending: set[int] = set()
        self._wanted: set[int] = set()
        self.open_id: str | None = None
        self._empty: tuple[str, str] = ("No sessions.", "")
        self._line_cache: LRUCache[tuple[object, ...], Strip] = LRUCache(512)

    # ------------------------------------------------------------------ public

    @property
    def highlighted(self) -> SessionSummary | None:
        """The session under the cursor, when its page is loaded."""
        return self._row(self.cursor, fetch=False)

    @property
    def loaded_rows(self) -> list[SessionSummary]:
        """The rows in memory, in list order (for tests and the screen)."""
        rows: list[SessionSummary] = []
        for page in sorted(self._pages):
            rows.extend(self._pages[page])
        return rows

    def set_empty_text(self, title: str, hint: str) -> None:
        """What to say when the list is empty (already sanitised by the caller or literal)."""
        self._empty = (title, hint)
        if self.total == 0:
            self.refresh()

    def set_open(self, session_id: str | None) -> None:
        self.open_id = session_id
        self._line_cache.clear()
        self.refresh()

    async def load(self, query: SessionQuery, keep_id: str | None = None) -> None:
        """Count and fetch the rows around the cursor, then swap them in at once.

        Rows on screen stay until the new ones arrive, so a refresh never flashes. With
        `keep_id`, the cursor follows that session if it is among the fetched rows.
        """
        self._generation += 1
        generation = self._generation
        same_source = self._query is not None and self._query.scope == query.scope
        self._query = query
        try:
            total = await query.count()
            cursor = min(self.cursor, max(0, total - 1)) if same_source else 0
            first_visible = int(self.scroll_y) // ROW_HEIGHT if same_source else 0
            wanted = {cursor // PAGE_SIZE, first_visible // PAGE_SIZE}
            wanted.add((first_visible + self._visible_rows()) // PAGE_SIZE)
            wanted = {p for p in wanted if p * PAGE_SIZE < max(total, 1)}
            pages: dict[int, list[SessionSummary]] = {}
            for page in sorted(wanted):
                before = None
                if page - 1 in pages and len(pages[page - 1]) == PAGE_SIZE:
                    before = pages[page - 1][-1].cursor
                offset = 0 if before is not None else page * PAGE_SIZE
                pages[page] = await query.page(PAGE_SIZE, before, offset)
        except ThreadlineError as exc:
            if generation == self._generation:
                self.app.notify(clean(str(exc)), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self._pages = OrderedDict(sorted(pages.items()))
        self._pending.clear()
        self._line_cache.clear()
        self.total = total
        if keep_id is not None:
            for page, rows in self._pages.items():
                for i, row in enumerate(rows):
                    if row.id == keep_id:
                        cursor = page * PAGE_SIZE + i
        self.virtual_size = Size(self._width(), total * ROW_HEIGHT)
        self._scroll_update(self.virtual_size)
        if not same_source:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.set_reactive(SessionList.cursor, cursor)
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Loaded(total))

    def update_row(self, session: SessionSummary) -> bool:
        """Show a loaded row's new counts, age and title in place (after the app's own write,
        when its place in the list does not change), without asking the store."""
        fields = {name: getattr(session, name) for name in SessionSummary.model_fields}
        for page, rows in self._pages.items():
            for i, row in enumerate(rows):
                if row.id == session.id:
                    fields["preview"] = fields["preview"] or row.preview
                    rows[i] = SessionSummary(**fields)
                    self.refresh_lines((page * PAGE_SIZE + i) * ROW_HEIGHT, ROW_HEIGHT)
                    return True
        return False

    def move_cursor(self, index: int) -> None:
        if self.total:
            self.cursor = max(0, min(index, self.total - 1))

    # ------------------------------------------------------------------ rows

    def _visible_rows(self) -> int:
        return max(1, self.size.height // ROW_HEIGHT + 1)

    def _width(self) -> int:
        return self.scrollable_content_region.width

    def _row(self, index: int, fetch: bool = True) -> SessionSummary | None:
        if self.total is None or not 0 <= index < self.total:
            return None
        page, offset = divmod(index, PAGE_SIZE)
        rows = self._pages.get(page)
        if rows is None:
            if fetch:
                self._want(page)
            return None
        self._pages.move_to_end(page)
        return rows[offset] if offset < len(rows) else None

    def _want(self, page: int) -> None:
        if page in self._pending or page in self._wanted:
            return
        if not self._wanted:
            self.call_after_refresh(self._fetch_wanted)
        self._wanted.add(page)

    def _fetch_wanted(self) -> None:
        wanted, self._wanted = sorted(self._wanted), set()
        for page in wanted:
            if page not in self._pages and page not in self._pending:
                self._pending.add(page)
                self.run_worker(
                    self._fetch_page(page, self._generation),
                    group="session-pages",
                    exit_on_error=False,
                )

    async def _fetch_page(self, page: int, generation: int) -> None:
        query = self._query
        if query is None:
            return
        previous = self._pages.get(page - 1)
        before = previous[-1].cursor if previous and len(previous) == PAGE_SIZE else None
        try:
            rows = await query.page(PAGE_SIZE, before, 0 if before else page * PAGE_SIZE)
        except ThreadlineError as exc:
            self._pending.discard(page)
            self.app.notify(clean(str(exc)), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self._pending.discard(page)
        self._pages[page] = rows
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        self.refresh()

    # ------------------------------------------------------------------ keys and mouse

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh_lines(old * ROW_HEIGHT, ROW_HEIGHT)
        self.refresh_lines(new * ROW_HEIGHT, ROW_HEIGHT)

    def _scroll_cursor_into_view(self) -> None:
        if self.total:
            region = Region(0, self.cursor * ROW_HEIGHT, max(1, self._width()), ROW_HEIGHT)
            self.scroll_to_region(region, animate=False, immediate=True, force=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - max(1, self.size.height // ROW_HEIGHT - 1))

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + max(1, self.size.height // ROW_HEIGHT - 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        if self.total:
            self.move_cursor(self.total - 1)

    def action_open(self) -> None:
        summary = self.highlighted
        if summary is not None:
            self.post_message(self.Opened(summary))

    async def _on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("session_row")
        if row is not None:
            self.focus()
            self.move_cursor(row)
            self.action_open()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()

    def _on_resize(self, event: events.Resize) -> None:
        self._line_cache.clear()
        if self.total is not None:
            self.virtual_size = Size(self._width(), self.total * ROW_HEIGHT)

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self._width()
        line = int(self.scroll_y) + y
        base = self._style()
        if self.total is None:
            return self._text_line("Loading…", "session-list--placeholder", width, y == 0)
        if self.total == 0:
            return self._empty_line(y, width, base)
        index, sub = divmod(line, ROW_HEIGHT)
        summary = self._row(index)
        if summary is None:
            text = "  …" if sub == 0 and index < self.total else ""
            return self._text_line(text, "session-list--placeholder", width, True)
        is_cursor = index == self.cursor
        now = self._clock()
        key = (
            summary,
            sub,
            width,
            is_cursor,
            summary.id == self.open_id,
            self.has_focus,
            relative_age(summary.updated_at, now),
            self._query.scope if self._query else None,
        )
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self._render_row_line(summary, sub, width, is_cursor, now)
            strip = strip.apply_meta({"session_row": index})
            self._line_cache[key] = strip
        return strip

    def _style(self, *components: str) -> Style:
        """The Rich style of these component classes over the widget's own (themes apply)."""
        return self.get_visual_style("session-list--row", *components).rich_style

    def _text_line(self, text: str, component: str, width: int, show: bool) -> Strip:
        base = self._style()
        content = Content(text if show else "").truncate(width, ellipsis=True)
        return Strip([Segment(content.plain, self._style(component))]).adjust_cell_length(
            width, base
        )

    def _empty_line(self, y: int, width: int, base: Style) -> Strip:
        title, hint = self._empty
        lines: list[tuple[Content, str]] = [(Content(""), "session-list--empty-hint")]
        for part in Content(title).wrap(max(1, width - 2)):
            lines.append((part, "session-list--empty-title"))
        if hint:
            lines.append((Content(""), "session-list--empty-hint"))
            for paragraph in hint.split("\n"):
                for part in Content(paragraph).wrap(max(1, width - 2)):
                    lines.append((part, "session-list--empty-hint"))
        if y >= len(lines):
            return Strip.blank(width, base)
        content, component = lines[y]
        segments = [Segment(" ", base), Segment(content.plain, self._style(component))]
        return Strip(segments).adjust_cell_length(width, base)

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
            detail.append((plural(summary.message_count, "msg"), "session-list--detail"))
            if summary.status == "crashed":
                detail.append((" · ", "session-list--detail"))
                detail.append(("⚠ interrupted", "session-list--crashed"))
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
