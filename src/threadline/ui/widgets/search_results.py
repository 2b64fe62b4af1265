"""The search screen's list of hits: two lines a hit, drawn line by line (a `RowList`).

Like the sidebar and the memories list, no widget per hit: the hits (at most the hundred the
screen asks for) are held in a list, and only the lines on screen are laid out and drawn. The
first line of a hit is the session's title, the role and age of the match and (in wider scopes)
its directory; the second is the snippet with the matched words highlighted, moved left when
needed so the first match is on screen. Every piece of stored text passes through
`safe.one_line` first and is laid out as `Content` whose spans name parts of the row ("title",
"detail", "match"), never markup; the parts' colours come from the component classes.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from rich.segment import Segment
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.strip import Strip
from textual.style import Style

from threadline.models import Scope, SearchHit
from threadline.paths import home_short
from threadline.ui.format import relative_age
from threadline.ui.safe import clean, one_line
from threadline.ui.widgets.rows import RowList, row_bindings

ROLE_LABELS = {
    "user": "You",
    "assistant": "Assistant",
    "system": "System",
    "tool": "Tool",
    None: "Summary",
}
# The parts of a row (span styles of the laid-out lines; component classes search-results--PART).
TITLE, DETAIL, MATCH = "title", "detail", "match"
PAD = 1  # cells left blank at each side of a row
INDENT = "  "  # the snippet's, under the title
LEAD = 12  # characters kept before the first match when the snippet is moved left
_SPACES = re.compile(r"\s+")


def snippet_content(hit: SearchHit) -> tuple[Content, int]:
    """The snippet on one line with the matches marked, and where the first match starts."""
    parts: list[tuple[str, str]] = []
    first = -1
    at = 0
    for raw, matched in hit.snippet_parts():
        # Keep the single spaces between runs; fold newlines and runs of blanks into one.
        text = _SPACES.sub(" ", clean(raw).replace("\t", " "))
        if not parts:
            text = text.lstrip()
        if not text:
            continue
        if matched and first < 0:
            first = at
        parts.append((text, MATCH if matched else ""))
        at += len(text)
    content = Content.assemble(*parts)
    return content.rstrip(), max(first, 0)


def where(hit: SearchHit, scope: Scope, root: str | None) -> str:
    """The hit's directory as the list shows it: none in one directory, relative in a
    workspace, ~-shortened everywhere else."""
    if scope is Scope.DIRECTORY:
        return ""
    directory = one_line(hit.working_dir)
    if scope is Scope.WORKSPACE and root:
        if hit.working_dir == root:
            return ""
        try:
            return "./" + str(PurePosixPath(directory).relative_to(one_line(root)))
        except ValueError:
            pass
    return home_short(directory)


@dataclass(frozen=True)
class HitView:
    """What one hit shows, prepared once (plain data: the lines are laid out per width)."""

    title: str
    details: str
    directory: str
    snippet: Content
    first_match: int


def hit_view(hit: SearchHit, now: datetime, scope: Scope, root: str | None) -> HitView:
    snippet, first = snippet_content(hit)
    return HitView(
        title=one_line(hit.session_title) or "(empty session)",
        details=f"{ROLE_LABELS.get(hit.role, 'Message')} · {relative_age(hit.created_at, now)}",
        directory=where(hit, scope, root),
        snippet=snippet,
        first_match=first,
    )


def _left_ellipsis(text: str, room: int) -> str:
    """Keep the end of a path when it does not fit: `…/src/api`."""
    if room <= 0:
        return ""
    if Content(text).cell_length <= room:
        return text
    if room == 1:
        return "…"
    tail = text[-(room - 1) :]
    while Content(tail).cell_length > room - 1:
        tail = tail[1:]
    return "…" + tail


def header_line(view: HitView, width: int) -> Content:
    """The hit's first line, `width` cells at most: title, role · age[ · directory]."""
    title = Content(view.title)
    details = f"  {view.details}"
    used = len(details)
    directory = ""
    # The directory gets what the title does not need, down to a short tail.
    if view.directory:
        room = width - used - 3 - min(title.cell_length, max(16, width // 3))
        if room >= 8:
            directory = _left_ellipsis(view.directory, room)
            used += 3 + len(directory)
    title = title.truncate(max(1, width - used), ellipsis=True)
    parts: list[Content | tuple[str, str]] = [title.stylize(TITLE), (details, DETAIL)]
    if directory:
        parts.append((" · " + directory, DETAIL))
    return Content.assemble(*parts).truncate(width, ellipsis=True)


def snippet_line(view: HitView, width: int) -> Content:
    """The hit's second line, `width` cells at most: the snippet, indented, its first match
    on screen."""
    room = max(1, width - len(INDENT))
    snippet = view.snippet
    # Move the text left when the first match would fall off the end of the line.
    if view.first_match > LEAD and view.first_match + 8 > room:
        snippet = Content("…") + snippet[view.first_match - LEAD :]
    return Content(INDENT) + snippet.truncate(room, ellipsis=True)


class HitRow:
    """One hit as listed; what it shows is prepared on first draw."""

    __slots__ = ("hit", "_args", "_view")

    def __init__(self, hit: SearchHit, now: datetime, scope: Scope, root: str | None) -> None:
        self.hit = hit
        self._args = (now, scope, root)
        self._view: HitView | None = None

    @property
    def view(self) -> HitView:
        if self._view is None:
            self._view = hit_view(self.hit, *self._args)
        return self._view


class SearchResults(RowList):
    """The hits of a search, newest (or most relevant) first; enter or a click opens one.

    With no hits it shows why (no matches, or the query cannot be searched) as its empty state.
    """

    PREFIX = "search-results"

    COMPONENT_CLASSES = {
        "search-results--row",
        "search-results--cursor",
        "search-results--title",
        "search-results--detail",
        "search-results--match",
        "search-results--placeholder",
        "search-results--empty-title",
        "search-results--empty-hint",
    }

    DEFAULT_CSS = """
    SearchResults {
        width: 1fr;
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
        & > .search-results--cursor { background: $surface-lighten-1; }
        &:focus > .search-results--cursor { background: $block-cursor-background; }
        &:focus > .search-results--cursor { color: $block-cursor-foreground; }
        & > .search-results--title { text-style: bold; }
        & > .search-results--detail { color: $text-muted; }
        & > .search-results--match { color: $text-warning; text-style: bold underline; }
        & > .search-results--placeholder { color: $text-disabled; }
        & > .search-results--empty-title { text-style: bold; color: $text; }
        & > .search-results--empty-hint { color: $text-muted; }
        &.-error > .search-results--empty-title { color: $text-error; }
    }
    """

    BINDINGS = row_bindings(
        "match",
        "matches",
        "First match",
        "Last match",
        [Binding("enter", "open", "Open", tooltip="Open the session at the highlighted match")],
    )

    class Chosen(Message):
        """A hit was chosen (enter or a click): open its session at it."""

        def __init__(self, hit: SearchHit) -> None:
            super().__init__()
            self.hit = hit

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hits: list[SearchHit] = []
        self._rows: list[HitRow] = []
        self._shown = 0  # which answer is drawn: part of every cached line's key

    # ------------------------------------------------------------------ public

    def show(self, hits: list[SearchHit], now: datetime, scope: Scope, root: str | None) -> None:
        """Replace the hits (the cursor on the first one)."""
        self.hits = list(hits)
        self._rows = [HitRow(hit, now, scope, root) for hit in self.hits]
        self._shown += 1
        self.set_class(False, "-error")
        self.set_row_count(len(self._rows), 0)

    def show_nothing(self, title: str, hint: str = "", *, error: bool = False) -> None:
        """No hits, and why: `title` (and `hint`), literal text; in the error colour when the
        query could not be searched."""
        self.hits = []
        self._rows = []
        self._shown += 1
        self.set_class(error, "-error")
        self.set_empty_text(title, hint)
        self.set_row_count(0, 0)

    def clear(self) -> None:
        """No hits and nothing to say (the screen shows its help instead)."""
        self.show_nothing("")

    @property
    def highlighted_hit(self) -> SearchHit | None:
        if not 0 <= self.cursor < len(self.hits):
            return None
        return self.hits[self.cursor]

    def action_open(self) -> None:
        hit = self.highlighted_hit
        if hit is not None:
            self.post_message(self.Chosen(hit))

    # ------------------------------------------------------------------ rows

    def row_count(self) -> int:
        return len(self._rows)

    def row_at(self, index: int) -> HitRow | None:
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def row_key(self, row: object, index: int, is_cursor: bool) -> Hashable:
        return (self._shown, is_cursor)

    def row_clicked(self, index: int) -> None:
        self.action_open()

    def draw_row_line(self, row: object, index: int, sub: int, width: int, cursor: bool) -> Strip:
        assert isinstance(row, HitRow)
        states = ("search-results--cursor",) if cursor else ()
        base = self.get_visual_style("search-results--row", *states)
        room = max(1, width - 2 * PAD)
        line = header_line(row.view, room) if sub == 0 else snippet_line(row.view, room)

        def part(name: str | Style) -> Style:
            if isinstance(name, Style):
                return name
            # The cursor's colours win over the title's and the details' (readable on the
            # highlight); a match keeps its own.
            components = (*states, f"search-results--{name}")
            if name != MATCH:
                components = (f"search-results--{name}", *states)
            return self.get_visual_style("search-results--row", *components)

        pad = Segment(" " * PAD, base.rich_style)
        segments = [pad]
        segments += [
            Segment(text, style.rich_style)
            for text, style in line.render(base, end="", parse_style=part)
        ]
        return Strip(segments).crop(0, width).adjust_cell_length(width, base.rich_style)
