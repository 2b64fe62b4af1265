"""What the line-drawn lists and the conversation pane share: the empty-state words, and a
scrolling list of fixed-height rows with a cursor (the sidebar and the memories list).

No widget per row: a subclass says how many rows there are, gives one when asked (None while
it is being read) and draws one line of it; the base draws only the lines on screen, caches
them, keeps the cursor in view and handles the keys and clicks every list has.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

ROW_HEIGHT = 2  # two lines a row: what it is, then its details
LINE_CACHE = 512  # drawn lines kept (a few screens)


@lru_cache(maxsize=8)
def message_lines(title: str, hint: str, room: int) -> tuple[tuple[Content, bool], ...]:
    """An empty list's (or pane's) words, wrapped to `room` cells: a blank line, the title,
    then, after a blank line, each paragraph of the hint. (line, is it the title)

    Cached: every line of the pane asks for them on every paint."""
    room = max(1, room)
    lines: list[tuple[Content, bool]] = [(Content(""), False)]
    lines += [(part, True) for part in Content(title).wrap(room)]
    if hint:
        lines.append((Content(""), False))
        for paragraph in hint.split("\n"):
            lines += [(part, False) for part in Content(paragraph).wrap(room)]
    return tuple(lines)


def message_line(
    lines: Sequence[tuple[Content, bool]],
    y: int,
    width: int,
    indent: int,
    base: Style,
    title: Style,
    hint: Style,
) -> Strip:
    """Line `y` of `message_lines`, indented, padded to `width`."""
    if y >= len(lines):
        return Strip.blank(width, base)
    content, is_title = lines[y]
    segments = [Segment(" " * indent, base), Segment(content.plain, title if is_title else hint)]
    return Strip(segments).adjust_cell_length(width, base)


def row_bindings(
    noun: str, nouns: str, first: str, last: str, extra: list[BindingType] | None = None
) -> list[BindingType]:
    """The keys of a list of `nouns`: ↑/k ↓/j, page up/down, home/end (and `extra`)."""
    return [
        Binding("up,k", "cursor_up", "Up", show=False, tooltip=f"Previous {noun}"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip=f"Next {noun}"),
        Binding("pageup", "page_up", "Page up", show=False, tooltip=f"A screen of {nouns} up"),
        Binding(
            "pagedown", "page_down", "Page down", show=False, tooltip=f"A screen of {nouns} down"
        ),
        Binding("home", "first", "First", show=False, tooltip=first),
        Binding("end", "last", "Last", show=False, tooltip=last),
        *(extra or []),
    ]


class RowList(ScrollView, can_focus=True):
    """A line-drawn list of ROW_HEIGHT-line rows with a cursor.

    Subclasses set PREFIX (their component classes are `PREFIX--row`, `PREFIX--cursor`,
    `PREFIX--empty-title`, `PREFIX--empty-hint`, `PREFIX--placeholder`) and implement
    `row_count`, `row_at`, `row_key` and `draw_row_line`.
    """

    PREFIX = "row-list"
    EMPTY_INDENT = 2  # the empty-state words start this many cells in
    # Lines past the last row: drawn as an empty placeholder (True) or as blank lines. The
    # two look the same; the sidebar's pictures were taken with the former.
    PLACEHOLDER_PAST_END = False

    cursor: var[int] = var(0, init=False)
    """Index of the highlighted row."""

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._empty: tuple[str, str] = ("Nothing here.", "")
        self._line_cache: LRUCache[tuple[object, ...], Strip] = LRUCache(LINE_CACHE)

    # ------------------------------------------------------------------ for subclasses

    def row_count(self) -> int | None:
        """How many rows there are (None: not known yet; "Loading…" is drawn)."""
        raise NotImplementedError

    def row_at(self, index: int) -> object | None:
        """Row `index`, or None while it is being read (a placeholder is drawn)."""
        raise NotImplementedError

    def row_key(self, row: object, index: int, is_cursor: bool) -> Hashable:
        """What the drawing of `row` depends on besides its line, width and focus."""
        return (row, is_cursor)

    def draw_row_line(self, row: object, index: int, sub: int, width: int, cursor: bool) -> Strip:
        """Line `sub` (0 .. ROW_HEIGHT - 1) of `row`, `width` cells wide."""
        raise NotImplementedError

    def cursor_moved(self, old: int, new: int) -> None:
        """The cursor moved (a hook)."""

    def row_clicked(self, index: int) -> None:
        """A row was clicked (the cursor is on it already)."""

    # ------------------------------------------------------------------ public

    def set_empty_text(self, title: str, hint: str) -> None:
        """What to say when the list is empty (already sanitised by the caller or literal)."""
        self._empty = (title, hint)
        if self.row_count() == 0:
            self.refresh()

    def move_cursor(self, index: int) -> None:
        count = self.row_count()
        if count:
            self.cursor = max(0, min(index, count - 1))

    @property
    def drawn_lines(self) -> int:
        """How many drawn lines are kept (what was on screen lately, not the whole list)."""
        return len(self._line_cache)

    def redraw(self) -> None:
        """Forget the drawn lines (rows or what they depend on changed) and repaint."""
        self._line_cache.clear()
        self.refresh()

    def refresh_row(self, index: int) -> None:
        self.refresh_lines(index * ROW_HEIGHT, ROW_HEIGHT)

    def set_row_count(self, count: int, cursor: int) -> None:
        """The rows were (re)read: size the list and put the cursor (without moving events)."""
        self._line_cache.clear()
        self.virtual_size = Size(self._width(), count * ROW_HEIGHT)
        self._scroll_update(self.virtual_size)
        self.set_reactive(RowList.cursor, cursor)
        self._scroll_cursor_into_view()
        self.refresh()

    # ------------------------------------------------------------------ keys and mouse

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh_row(old)
        self.refresh_row(new)
        self.cursor_moved(old, new)

    def _scroll_cursor_into_view(self) -> None:
        if self.row_count():
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
        count = self.row_count()
        if count:
            self.move_cursor(count - 1)

    async def _on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row_index")
        if row is not None:
            self.focus()
            self.move_cursor(row)
            self.row_clicked(row)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()

    def _on_resize(self, event: events.Resize) -> None:
        self._line_cache.clear()
        count = self.row_count()
        if count is not None:
            self.virtual_size = Size(self._width(), count * ROW_HEIGHT)

    # ------------------------------------------------------------------ drawing

    def _width(self) -> int:
        return self.scrollable_content_region.width

    def part_style(self, *components: str) -> Style:
        """The Rich style of these component classes over the row's (themes apply)."""
        return self.get_visual_style(f"{self.PREFIX}--row", *components).rich_style

    def render_line(self, y: int) -> Strip:
        width = self._width()
        base = self.part_style()
        count = self.row_count()
        if count is None:
            return self._text_line("Loading…" if y == 0 else "", width)
        if count == 0:
            title, hint = self._empty
            indent = self.EMPTY_INDENT
            lines = message_lines(title, hint, width - 2 * indent)
            prefix = self.PREFIX
            return message_line(
                lines,
                y,
                width,
                indent,
                base,
                self.part_style(f"{prefix}--empty-title"),
                self.part_style(f"{prefix}--empty-hint"),
            )
        index, sub = divmod(int(self.scroll_y) + y, ROW_HEIGHT)
        if index >= count:
            return (
                self._text_line("", width)
                if self.PLACEHOLDER_PAST_END
                else Strip.blank(width, base)
            )
        row = self.row_at(index)
        if row is None:
            return self._text_line("  …" if sub == 0 else "", width)
        is_cursor = index == self.cursor
        key = (self.row_key(row, index, is_cursor), index, sub, width, self.has_focus)
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self.draw_row_line(row, index, sub, width, is_cursor)
            strip = strip.apply_meta({"row_index": index})
            self._line_cache[key] = strip
        return strip

    def _text_line(self, text: str, width: int) -> Strip:
        content = Content(text).truncate(width, ellipsis=True)
        style = self.part_style(f"{self.PREFIX}--placeholder")
        return Strip([Segment(content.plain, style)]).adjust_cell_length(width, self.part_style())
