"""The search screen's list of hits: an OptionList of two-line prompts drawn to fit the width.

The list is bounded (the screen asks the store for at most a hundred hits), so an OptionList is
fine here. Each prompt is a small `Visual` built from `Content` pieces, never markup: the first
line is the session's title, the role and age of the match and (in wider scopes) its directory;
the second is the snippet with the matched words highlighted, moved left when needed so the
first match is on screen. Every piece of stored text passes through `safe.one_line` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import PurePosixPath

from textual.binding import Binding
from textual.content import Content
from textual.css.styles import RulesMap
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from threadline.models import Scope, SearchHit
from threadline.paths import home_short
from threadline.ui.format import relative_age
from threadline.ui.safe import clean, one_line

ROLE_LABELS = {
    "user": "You",
    "assistant": "Assistant",
    "system": "System",
    "tool": "Tool",
    None: "Summary",
}
MATCH_STYLE = "bold $text-warning underline"
TITLE_STYLE = "bold"
DETAIL_STYLE = "$text-muted"
INDENT = "  "
LEAD = 12  # characters kept before the first match when the snippet is moved left
_SPACES = re.compile(r"\s+")


def snippet_content(hit: SearchHit) -> tuple[Content, int]:
    """The snippet on one line with the matches styled, and where the first match starts."""
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
        parts.append((text, MATCH_STYLE if matched else ""))
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
    """What one hit shows, prepared once (plain data: the prompt lays it out per width)."""

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


class HitPrompt(Visual):
    """Two lines for one hit, laid out for the width it is drawn at.

    What it shows is prepared on first draw, so a hundred hits cost little until scrolled to.
    """

    def __init__(self, hit: SearchHit, now: datetime, scope: Scope, root: str | None) -> None:
        self._args = (hit, now, scope, root)

    @cached_property
    def view(self) -> HitView:
        return hit_view(*self._args)

    def header(self, width: int) -> Content:
        view = self.view
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
        parts: list[Content | tuple[str, str]] = [
            title.stylize(TITLE_STYLE),
            (details, DETAIL_STYLE),
        ]
        if directory:
            parts.append((" · " + directory, DETAIL_STYLE))
        return Content.assemble(*parts).truncate(width, ellipsis=True)

    def snippet(self, width: int) -> Content:
        view = self.view
        room = max(1, width - len(INDENT))
        snippet = view.snippet
        # Move the text left when the first match would fall off the end of the line.
        if view.first_match > LEAD and view.first_match + 8 > room:
            snippet = Content("…") + snippet[view.first_match - LEAD :]
        return Content(INDENT) + snippet.truncate(room, ellipsis=True)

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        strips: list[Strip] = []
        for line in (self.header(width), self.snippet(width)):
            strips.extend(line.render_strips(width, 1, style, options))
        return strips[:height] if height is not None else strips

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return max(1, container_width)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return 2


class SearchResults(OptionList):
    """The hits of a search, newest (or most relevant) first; enter or a click opens one."""

    BINDINGS = [
        Binding("enter", "select", "Open", tooltip="Open the session at the highlighted match"),
    ]

    DEFAULT_CSS = """
    SearchResults {
        width: 1fr;
        height: 1fr;
        border: none;
        padding: 0;
        background: $surface;
        &:focus { border: none; background-tint: transparent; }
        & > .option-list--option { padding: 0 1; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(markup=False, id=id)
        self.hits: list[SearchHit] = []

    def show(self, hits: list[SearchHit], now: datetime, scope: Scope, root: str | None) -> None:
        """Replace the hits (the first one highlighted)."""
        self.hits = list(hits)
        options: list[Option | None] = []
        for i, hit in enumerate(self.hits):
            if i:
                options.append(None)  # a rule between hits
            options.append(Option(HitPrompt(hit, now, scope, root), id=str(i)))
        self.set_options(options)
        self.highlighted = 0 if self.hits else None

    def clear(self) -> None:
        """No hits (a search found none, or failed)."""
        self.hits = []
        self.clear_options()

    @property
    def highlighted_hit(self) -> SearchHit | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.hits):
            return None
        return self.hits[index]
