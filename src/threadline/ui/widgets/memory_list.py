"""The memories screen's list: a directory's memories, two lines each, drawn line by line.

Like the sidebar, no widget per row: the rows are held in a list, drawn only when on screen
(cached per row, width and state), and the virtual height is rows x 2, so thousands of
memories cost what a screenful does. Facts are untrusted text (the model wrote them from a
conversation): they go through `safe.one_line` and are drawn as plain Segments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

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

from threadline.models import Memory
from threadline.ui.format import relative_age
from threadline.ui.safe import one_line

ROW_HEIGHT = 2
CATEGORY_WIDTH = 10  # "correction"


def stars(importance: int) -> str:
    """Importance 1-5 as five cells: ★★★☆☆."""
    filled = max(0, min(5, importance))
    return "★" * filled + "☆" * (5 - filled)


@dataclass(frozen=True)
class MemoryRow:
    """A memory as listed: the memory and where it came from (its session's title)."""

    memory: Memory
    # The source session's title; None when it was added by hand or its session is gone.
    source_title: str | None = None
    # The source session is in the trash.
    source_trashed: bool = False

    @property
    def superseded(self) -> bool:
        return self.memory.superseded_by is not None

    def source_text(self) -> str:
        """ "from “title”", "added by hand" or why the source is gone (one line, safe)."""
        memory = self.memory
        if memory.is_manual:
            return "added by hand"
        if memory.session_id is None:
            return "from a session since purged"
        title = one_line(self.source_title) if self.source_title else "a session"
        where = f"from “{title}”"
        if self.source_trashed:
            where += " (in the trash)"
        return where


class MemoryList(ScrollView, can_focus=True):
    """Memories, most important first; the cursor row is the one the screen acts on."""

    COMPONENT_CLASSES = {
        "memory-list--row",
        "memory-list--cursor",
        "memory-list--stars",
        "memory-list--category",
        "memory-list--fact",
        "memory-list--detail",
        "memory-list--superseded",
        "memory-list--manual",
        "memory-list--empty-title",
        "memory-list--empty-hint",
    }

    DEFAULT_CSS = """
    MemoryList {
        overflow-x: hidden;
        & > .memory-list--cursor { background: $surface-lighten-1; }
        &:focus > .memory-list--cursor { background: $block-cursor-background; }
        &:focus > .memory-list--cursor { color: $block-cursor-foreground; }
        & > .memory-list--stars { color: $warning; }
        & > .memory-list--category { color: $text-secondary; }
        & > .memory-list--fact { }
        & > .memory-list--detail { color: $text-muted; }
        & > .memory-list--superseded { color: $text-disabled; }
        & > .memory-list--manual { color: $text-accent; }
        & > .memory-list--empty-title { text-style: bold; }
        & > .memory-list--empty-hint { color: $text-muted; }
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, tooltip="Previous memory"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip="Next memory"),
        Binding("pageup", "page_up", "Page up", show=False, tooltip="A screen of memories up"),
        Binding(
            "pagedown", "page_down", "Page down", show=False, tooltip="A screen of memories down"
        ),
        Binding("home", "first", "First", show=False, tooltip="Most important memory"),
        Binding("end", "last", "Last", show=False, tooltip="Least important memory"),
    ]

    cursor: var[int] = var(0, init=False)

    class Highlighted(Message):
        """The cursor moved to another memory (or the rows changed)."""

        def __init__(self, row: MemoryRow | None) -> None:
            super().__init__()
            self.row = row

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
        self.rows: list[MemoryRow] | None = None  # None: not loaded yet
        self._empty: tuple[str, str] = ("No memories.", "")
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(512)

    # ------------------------------------------------------------------ public

    @property
    def highlighted(self) -> MemoryRow | None:
        if not self.rows or not 0 <= self.cursor < len(self.rows):
            return None
        return self.rows[self.cursor]

    def set_rows(self, rows: list[MemoryRow], keep_id: int | None = None) -> None:
        """Show these rows; the cursor stays on `keep_id` (or its place) when it can."""
        self.rows = rows
        cursor = min(self.cursor, max(0, len(rows) - 1))
        if keep_id is not None:
            for i, row in enumerate(rows):
                if row.memory.id == keep_id:
                    cursor = i
                    break
        self._cache.clear()
        self.virtual_size = Size(self._width(), len(rows) * ROW_HEIGHT)
        self._scroll_update(self.virtual_size)
        self.set_reactive(MemoryList.cursor, cursor)
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Highlighted(self.highlighted))

    def set_empty_text(self, title: str, hint: str) -> None:
        """What an empty list says (texts already safe)."""
        self._empty = (title, hint)
        self.refresh()

    def move_cursor(self, index: int) -> None:
        if self.rows:
            self.cursor = max(0, min(index, len(self.rows) - 1))

    # ------------------------------------------------------------------ keys and mouse

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh_lines(old * ROW_HEIGHT, ROW_HEIGHT)
        self.refresh_lines(new * ROW_HEIGHT, ROW_HEIGHT)
        self.post_message(self.Highlighted(self.highlighted))

    def _scroll_cursor_into_view(self) -> None:
        if self.rows:
            region = Region(0, self.cursor * ROW_HEIGHT, max(1, self._width()), ROW_HEIGHT)
            self.scroll_to_region(region, animate=False, immediate=True, force=True)

    def _page(self) -> int:
        return max(1, self.size.height // ROW_HEIGHT - 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._page())

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        if self.rows:
            self.move_cursor(len(self.rows) - 1)

    async def _on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("memory_row")
        if row is not None:
            self.focus()
            self.move_cursor(row)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def _on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        if self.rows is not None:
            self.virtual_size = Size(self._width(), len(self.rows) * ROW_HEIGHT)

    # ------------------------------------------------------------------ drawing

    def _width(self) -> int:
        return self.scrollable_content_region.width

    def _style(self, *components: str) -> Style:
        return self.get_visual_style("memory-list--row", *components).rich_style

    def render_line(self, y: int) -> Strip:
        width = self._width()
        base = self._style()
        if self.rows is None:
            text = Content("Loading…" if y == 0 else "").truncate(width)
            return Strip(
                [Segment(text.plain, self._style("memory-list--detail"))]
            ).adjust_cell_length(width, base)
        if not self.rows:
            return self._empty_line(y, width, base)
        index, sub = divmod(int(self.scroll_y) + y, ROW_HEIGHT)
        if index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        is_cursor = index == self.cursor
        now = self._clock()
        key = (row, sub, width, is_cursor, self.has_focus, relative_age(row.memory.created_at, now))
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row_line(row, sub, width, is_cursor, now)
            strip = strip.apply_meta({"memory_row": index})
            self._cache[key] = strip
        return strip

    def _render_row_line(
        self, row: MemoryRow, sub: int, width: int, is_cursor: bool, now: datetime
    ) -> Strip:
        states = ("memory-list--cursor",) if is_cursor else ()
        row_style = self._style(*states)
        faded = ("memory-list--superseded",) if row.superseded else ()

        def part(component: str) -> Style:
            # The cursor's colours win over the parts' (readable on the highlight); the
            # stars keep theirs.
            if component == "memory-list--stars":
                return self._style(*states, component, *faded)
            return self._style(component, *faded, *states)

        memory = row.memory
        segments = [Segment(" ", row_style)]
        if sub == 0:
            segments.append(Segment(stars(memory.importance), part("memory-list--stars")))
            segments.append(Segment("  ", row_style))
            category = memory.category.ljust(CATEGORY_WIDTH)
            segments.append(Segment(category, part("memory-list--category")))
            segments.append(Segment("  ", row_style))
            used = 1 + 5 + 2 + CATEGORY_WIDTH + 2
            fact = Content(one_line(memory.fact)).truncate(max(0, width - used - 1), ellipsis=True)
            segments.append(Segment(fact.plain, part("memory-list--fact")))
        else:
            indent = " " * (5 + 2 + CATEGORY_WIDTH + 2)
            segments.append(Segment(indent, row_style))
            detail: list[tuple[str, str]] = []
            if row.superseded:
                detail.append((f"superseded by #{memory.superseded_by}", "memory-list--detail"))
                detail.append((" · ", "memory-list--detail"))
            source = row.source_text()
            source_part = "memory-list--manual" if memory.is_manual else "memory-list--detail"
            detail.append((source, source_part))
            detail.append((f" · {relative_age(memory.created_at, now)}", "memory-list--detail"))
            detail.append((f" · #{memory.id}", "memory-list--detail"))
            room = max(0, width - 1 - len(indent))
            for text, component in detail:
                shown = Content(text).truncate(room, ellipsis=True).plain
                if not shown:
                    break
                segments.append(Segment(shown, part(component)))
                room -= len(shown)
        return Strip(segments).crop(0, width).adjust_cell_length(width, row_style)

    def _empty_line(self, y: int, width: int, base: Style) -> Strip:
        title, hint = self._empty
        lines: list[tuple[Content, str]] = [(Content(""), "memory-list--empty-hint")]
        for part in Content(title).wrap(max(1, width - 4)):
            lines.append((part, "memory-list--empty-title"))
        if hint:
            lines.append((Content(""), "memory-list--empty-hint"))
            for paragraph in hint.split("\n"):
                for part in Content(paragraph).wrap(max(1, width - 4)):
                    lines.append((part, "memory-list--empty-hint"))
        if y >= len(lines):
            return Strip.blank(width, base)
        content, component = lines[y]
        segments = [Segment("  ", base), Segment(content.plain, self._style(component))]
        return Strip(segments).adjust_cell_length(width, base)
