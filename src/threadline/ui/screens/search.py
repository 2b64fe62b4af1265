"""The search screen: full-text search over messages and summaries, as you type.

Typing searches DEBOUNCE seconds after the last key, in an exclusive worker: a newer search
cancels the one before (the store interrupts its query) and a stale answer is never shown.
While typing, the last word is taken as a prefix (`retr` searches `retr*`); enter searches the
text exactly as written and moves to the results. The scope starts as the sidebar's and a key
widens it; another key orders by relevance instead of newest first. Enter on a hit closes the
screen with the hit (the main screen opens the session at it); esc closes it with none.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from threadline.errors import ThreadlineError
from threadline.models import Scope, SearchHit
from threadline.paths import home_short, workspace_root
from threadline.store import MAX_QUERY_CHARS, SearchQueryError
from threadline.ui.format import plural
from threadline.ui.safe import one_line
from threadline.ui.widgets.bars import SCOPE_LABELS
from threadline.ui.widgets.search_results import SearchResults

# A search costs a few milliseconds whatever is typed (store/search.py), so the wait after the
# last key is short: key to painted hits stays within ~150 ms, debounce included.
DEBOUNCE = 0.06
BUSY_DELAY = 0.1  # "searching…" shows when a search takes longer than this
LIMIT = 100
# A prefix needs this many characters. Any length costs about the same (the store expands it
# into at most EXPAND_MAX exact terms), but one letter would match a good part of the language.
PREFIX_MIN = 2

SearchFn = Callable[[str, Scope, bool], Awaitable[list[SearchHit]]]

_WORD = re.compile(r"\w+")
# Control characters (a paste can hold any): the search treats them as spaces anyway, and the
# field must not echo an escape sequence to the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def typed_query(text: str) -> str:
    """The query to run while the text is still being typed: its last word as a prefix.

    `retr` searches `retr*` and `"the yo` searches `"the yo"*`. Nothing is added when the
    text ends with a space (the word is finished), when the last word is shorter than
    PREFIX_MIN, is `OR`, is negated, already ends in `*` or is not a bare word.
    """
    if not text or text[-1].isspace() or len(text) >= MAX_QUERY_CHARS:
        return text
    quote = text.rfind('"')
    if text.count('"') % 2 == 1 and (quote == 0 or text[quote - 1].isspace()):
        words = text[quote + 1 :].split()
        if words and len(words[-1]) >= PREFIX_MIN and _WORD.fullmatch(words[-1]):
            return text + '"*'
        return text
    last = text.split()[-1]
    if last == "OR" or len(last) < PREFIX_MIN or not _WORD.fullmatch(last):
        return text
    return text + "*"


@dataclass(frozen=True)
class SearchOutcome:
    """What the screen closes with: the query and order to offer next time, and the chosen hit."""

    query: str
    rank: bool
    hit: SearchHit | None = None
    scope: Scope | None = None  # the scope searched last (offered again with the query)


class QueryInput(Input):
    """The query field: control characters typed or pasted into it become spaces."""

    def validate_value(self, value: str) -> str:
        return _CONTROL.sub(" ", value)


class SearchBar(Static):
    """The screen's header line: scope, order, and how many hits (or that it is searching)."""

    DEFAULT_CSS = """
    SearchBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def show(
        self, scope: Scope, root: str | None, rank: bool, count: int | None, busy: bool
    ) -> None:
        parts: list[str | tuple[str, str]] = [("Search", "bold $accent"), "  "]
        parts.append((SCOPE_LABELS[scope], "bold"))
        if root is not None:
            parts += ["  ", (home_short(one_line(root)), "$text")]
        parts += [("  ·  ", "$text-muted"), ("by relevance" if rank else "newest first", "bold")]
        if busy:
            parts += [("  ·  ", "$text-muted"), ("searching…", "italic $text-muted")]
        elif count is not None:
            shown = plural(count, "match", "matches")
            if count >= LIMIT:
                shown = f"the {'best' if rank else 'newest'} {LIMIT}"
            parts += [("  ·  ", "$text-muted"), (shown, "$text-muted")]
        self.update(Content.assemble(*parts), layout=False)  # one line whatever it says


SYNTAX = [
    ("words", "messages with every word, in any order"),
    ('"a phrase"', "the words next to each other"),
    ("word*", "words starting with it (the word you are typing already is)"),
    ("-word", "leave out messages with the word"),
    ("a OR b", "either word"),
]


class SearchScreen(Screen[SearchOutcome]):
    """Type to search; ↓ or enter goes to the hits; enter opens one; esc goes back."""

    DEFAULT_CSS = """
    SearchScreen {
        layout: vertical;
        overflow: hidden;
    }

    #search-input {
        margin: 1 0 0 0;
        padding: 0 1;
        background: $boost;
    }

    #search-message {
        height: 1fr;
        padding: 1 2;
    }

    #search-results {
        margin-top: 1;
    }
    """

    AUTO_FOCUS = "#search-input"

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close the search, back to where you were"),
        Binding(
            "ctrl+s",
            "cycle_scope",
            "Scope",
            tooltip="Search wider: this directory → this workspace → all directories",
        ),
        Binding(
            "ctrl+r",
            "toggle_rank",
            "Rank",
            tooltip="Order by relevance (among the newest matches) or newest first",
        ),
        Binding("down", "to_results", "Results", show=False, tooltip="Go down to the results"),
        Binding("ctrl+f", "to_query", "Query", show=False, tooltip="Back to the query"),
    ]

    def __init__(
        self,
        search: SearchFn,
        scope: Scope,
        working_dir: str,
        clock: Callable[[], datetime],
        *,
        query: str = "",
        rank: bool = False,
    ) -> None:
        super().__init__(id="search")
        self._search_fn = search
        self.scope = scope
        self.working_dir = working_dir
        self.clock = clock
        self.rank = rank
        self._initial_query = query
        self._timer: Timer | None = None
        self._generation = 0
        self._busy = False
        self._count: int | None = None
        self.shown_query: str | None = None  # the query whose hits are on screen
        # The text (stripped) whose answer is on screen: hits, none, an error, or "" for the
        # help. None before the first.
        self.answered: str | None = None
        self._last: tuple[str, bool] | None = None  # (text, as typed) of the last search run
        self._workspace: str | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield SearchBar(id="search-bar")
        yield QueryInput(
            value=self._initial_query,
            placeholder="search messages and summaries",
            id="search-input",
            compact=True,
            select_on_focus=False,  # coming back from the hits, typing goes on where it was
        )
        yield Static(id="search-message")
        yield SearchResults(id="search-results")
        yield Footer()

    @property
    def input(self) -> Input:
        return self.query_one("#search-input", Input)

    @property
    def results(self) -> SearchResults:
        return self.query_one(SearchResults)

    def on_mount(self) -> None:
        self.results.display = False
        self._update_bar()
        if self._initial_query.strip():
            self.input.select_all()  # the last query, offered: typing replaces it
            self._run(self._initial_query, typed=False)
        else:
            self._show_help()

    def root(self) -> str | None:
        """The directory the scope is anchored at (None for all directories)."""
        if self.scope is Scope.ALL:
            return None
        if self.scope is Scope.WORKSPACE:
            if self._workspace is None:  # looked up once: it walks up looking for .git
                self._workspace = workspace_root(self.working_dir)
            return self._workspace
        return self.working_dir

    def _where(self) -> str:
        root = self.root()
        label = SCOPE_LABELS[self.scope]
        return f"{label} ({home_short(one_line(root))})" if root else label

    def _update_bar(self) -> None:
        self.query_one(SearchBar).show(self.scope, self.root(), self.rank, self._count, self._busy)

    # ------------------------------------------------------------------ states

    def _message(self, *lines: Content) -> None:
        message = self.query_one("#search-message", Static)
        message.update(Content("\n").join(lines), layout=False)
        message.display = True
        results = self.results
        if results.has_focus:
            self.set_focus(self.input)
        results.display = False
        results.clear()

    @property
    def searching(self) -> bool:
        """A search is under way (its answer not shown yet)."""
        return self._busy

    def _show_help(self) -> None:
        self._count = None
        self.shown_query = None
        self.answered = ""
        self._update_bar()
        width = max(len(syntax) for syntax, _ in SYNTAX) + 3
        lines = [
            Content.styled(f"Type to search every message and summary in {self._where()}.", "bold"),
            Content(""),
        ]
        for syntax, meaning in SYNTAX:
            lines.append(
                Content.assemble(
                    ("  " + syntax.ljust(width), "bold $text-accent"), (meaning, "$text-muted")
                )
            )
        lines += [
            Content(""),
            Content.styled(
                "enter searches exactly as written · ↓ goes to the results · "
                "ctrl+s widens the scope · ctrl+r orders by relevance · esc closes",
                "$text-muted",
            ),
        ]
        self._message(*lines)

    def _show_nothing(self, title: str, hint: str = "", *, error: bool = False) -> None:
        """No hits: the list says why (its empty state)."""
        results = self.results
        if results.has_focus:
            self.set_focus(self.input)
        results.show_nothing(title, hint, error=error)
        self.query_one("#search-message", Static).display = False
        results.display = True

    def _show_no_hits(self, query: str) -> None:
        if self.scope is not Scope.ALL:
            hint = f"ctrl+s widens the search to {SCOPE_LABELS[self.scope.next()]}."
        else:
            hint = "Try fewer words, or word* for words that start with it."
        self._show_nothing(f"No matches for “{one_line(query)}” in {self._where()}.", hint)

    def _show_error(self, text: str) -> None:
        self._show_nothing(f"Cannot search for that: {one_line(text)}", error=True)

    def _show_hits(self, hits: list[SearchHit]) -> None:
        results = self.results
        results.show(hits, self.clock(), self.scope, self.root())
        self.query_one("#search-message", Static).display = False
        results.display = True

    # ------------------------------------------------------------------ searching

    @on(Input.Changed, "#search-input")
    def _typed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE, self._search_as_typed)

    def _search_as_typed(self) -> None:
        self._timer = None
        self._run(self.input.value, typed=True)

    @on(Input.Submitted, "#search-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._run(self.input.value, typed=False, then_focus=True)

    def _run(self, text: str, typed: bool, then_focus: bool = False) -> None:
        """Search for `text` (its last word as a prefix when `typed`), or show the help.

        With `then_focus`, the hits take the focus when there are any.
        """
        self._last = (text, typed)
        if not text.strip():
            self._generation += 1  # drop whatever is still running
            self.workers.cancel_group(self, "search")
            self._busy = False
            self._show_help()
            return
        query = typed_query(text) if typed else text
        self._search(query, text.strip(), self.scope, self.rank, then_focus)

    def _rerun(self) -> None:
        if self._last is not None:
            self._run(*self._last)
        else:
            self._run(self.input.value, typed=False)

    @work(group="search", exclusive=True, exit_on_error=False)
    async def _search(
        self, query: str, shown: str, scope: Scope, rank: bool, then_focus: bool = False
    ) -> None:
        self._generation += 1
        generation = self._generation
        self._busy = True
        # Say "searching…" only when it takes a while: a fast answer paints in one frame.
        self.set_timer(BUSY_DELAY, lambda: self._show_busy(generation))
        try:
            hits = await self._search_fn(query, scope, rank)
        except ThreadlineError as exc:  # SearchQueryError: the text cannot be searched
            if generation == self._generation:
                self._busy = False
                self._count = None
                if isinstance(exc, SearchQueryError):
                    self.shown_query = shown
                self._update_bar()
                self._show_error(str(exc))
                self.answered = shown
            return
        if generation != self._generation:
            return  # a newer search started while this one finished: drop it
        self._busy = False
        self._count = len(hits)
        self.shown_query = shown
        self._update_bar()
        if hits:
            self._show_hits(hits)
            if then_focus:
                self.set_focus(self.results)
        else:
            self._show_no_hits(shown)
        self.answered = shown

    def _show_busy(self, generation: int) -> None:
        if generation == self._generation and self._busy:
            self._update_bar()

    # ------------------------------------------------------------------ keys

    def action_cycle_scope(self) -> None:
        self.scope = self.scope.next()
        self._update_bar()
        self._rerun()

    def action_toggle_rank(self) -> None:
        self.rank = not self.rank
        self._update_bar()
        self._rerun()

    def action_to_results(self) -> None:
        results = self.results
        if results.display and results.hits:
            self.set_focus(results)

    def action_to_query(self) -> None:
        self.set_focus(self.input)

    def action_close(self) -> None:
        self.dismiss(SearchOutcome(self.input.value, self.rank, scope=self.scope))

    @on(SearchResults.Chosen)
    def _chosen(self, event: SearchResults.Chosen) -> None:
        event.stop()
        self.dismiss(SearchOutcome(self.input.value, self.rank, event.hit, self.scope))

    def on_key(self, event: events.Key) -> None:
        """In the results, typing goes back to the query; ↑ on the first hit does too."""
        results = self.results
        if self.focused is not results:
            return
        field = self.input
        if event.key == "up" and results.cursor == 0:
            event.stop()
            event.prevent_default()
            self.set_focus(field)
        elif event.key == "backspace":
            event.stop()
            event.prevent_default()
            self.set_focus(field)
            field.action_delete_left()
        elif event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self.set_focus(field)
            field.insert_text_at_cursor(event.character)
