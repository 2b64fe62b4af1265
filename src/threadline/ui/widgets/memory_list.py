"""The memories screen's list: a directory's memories, two lines each, drawn line by line.

Like the sidebar, no widget per row: the rows are held in a list, drawn only when on screen
(cached per row, width and state), and the virtual height is rows x 2, so thousands of
memories cost what a screenful does. Facts are untrusted text (the model wrote them from a
conversation): they go through `safe.one_line` and are drawn as plain Segments.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.message import Message
from textual.strip import Strip

from threadline.models import Memory
from threadline.ui.format import relative_age
from threadline.ui.safe import one_line
from threadline.ui.widgets.rows import RowList, row_bindings

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


class MemoryList(RowList):
    """Memories, most important first; the cursor row is the one the screen acts on."""

    PREFIX = "memory-list"

    COMPONENT_CLASSES = {
        "memory-list--row",
        "memory-list--cursor",
        "memory-list--stars",
        "memory-list--category",
        "memory-list--fact",
        "memory-list--detail",
        "memory-list--superseded",
        "memory-list--manual",
        "memory-list--placeholder",
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
        & > .memory-list--placeholder { color: $text-muted; }
        & > .memory-list--empty-title { text-style: bold; }
        & > .memory-list--empty-hint { color: $text-muted; }
    }
    """

    BINDINGS = row_bindings("memory", "memories", "Most important memory", "Least important memory")

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
        self._empty = ("No memories.", "")

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
        self.set_row_count(len(rows), cursor)
        self.post_message(self.Highlighted(self.highlighted))

    # ------------------------------------------------------------------ rows

    def row_count(self) -> int | None:
        return None if self.rows is None else len(self.rows)

    def row_at(self, index: int) -> MemoryRow | None:
        rows = self.rows
        return rows[index] if rows is not None and 0 <= index < len(rows) else None

    def row_key(self, row: object, index: int, is_cursor: bool) -> Hashable:
        assert isinstance(row, MemoryRow)
        return (row, is_cursor, relative_age(row.memory.created_at, self._clock()))

    def draw_row_line(self, row: object, index: int, sub: int, width: int, cursor: bool) -> Strip:
        assert isinstance(row, MemoryRow)
        return self._render_row_line(row, sub, width, cursor, self._clock())

    def cursor_moved(self, old: int, new: int) -> None:
        self.post_message(self.Highlighted(self.highlighted))

    def _style(self, *components: str) -> Style:
        return self.part_style(*components)

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
