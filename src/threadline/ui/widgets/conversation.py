"""The conversation pane: a session's timeline drawn line by line, newest page first.

No widget per message. The view holds a window of timeline items (a page from the store, grown
by older or newer pages as you scroll), draws each item to Strips only when it comes near the
screen (cached per item, width and state), and guesses the height of the others. A layout pass
("settle") runs before each paint that moved: it draws the items around the viewport and keeps
the line at the top of the screen where it was while heights above it are refined or a page is
prepended, so nothing jumps. Opening a session draws its last screen first (bottom-up).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip

from threadline.errors import ThreadlineError
from threadline.models import Message, Session, Summary, SummarySpan, TimelineItem
from threadline.ui.format import plural
from threadline.ui.safe import clean
from threadline.ui.widgets.blocks import (
    BlockState,
    BlockStyles,
    code_blocks,
    estimate_height,
    fade,
    item_key,
    render_block,
)
from threadline.ui.widgets.live import LiveReply

Position = tuple[int, int]
TimelineFn = Callable[[Position | None, Position | None, int], Awaitable[list[TimelineItem]]]
# (message id, radius) -> up to `radius` items before the message, it, and `radius` after.
AroundFn = Callable[[int, int], Awaitable[list[TimelineItem]]]

PAGE_SIZE = 100  # the first page of a session, and jumps
OLDER_PAGE = 50  # each page added while scrolling: small, so each costs little
LIVE_FPS = 20  # at most this many repaints a second of a reply being streamed
TAIL_SIZE = 40  # items re-read from the end when another process changed the session
AROUND_RADIUS = 50  # items each side of a message opened from a search hit
FOUND_CONTEXT = 2  # lines shown above a message opened from a search hit
GUTTER = 2
BANNER = 2
# The messages the latest summary stands for are folded away (the summary shows in their
# place) when there are more than this many of them; fewer are shown, faded.
FOLD_MIN = 10


class SummarySource(Protocol):
    """What the view asks about a session's summaries (the Store does this)."""

    async def latest_summary(self, session_id: str) -> Summary | None: ...

    async def summary_spans(
        self, session_id: str, summaries: Sequence[Summary]
    ) -> dict[int, SummarySpan]: ...


def order_key(item: TimelineItem) -> tuple[int, int, int]:
    """Timeline order (as the store sorts): position, then id."""
    pos, sub = item.position
    return (pos, sub, item.id)


@dataclass
class SummaryFacts:
    """The open session's latest summary, where each summary sits, and whether the messages
    the latest one stands for are folded away."""

    latest: Summary | None = None
    spans: dict[int, SummarySpan] = field(default_factory=dict)
    folded: bool = False

    @property
    def latest_span(self) -> SummarySpan | None:
        return None if self.latest is None else self.spans.get(self.latest.id)

    def covers(self, item: TimelineItem) -> bool:
        """The latest summary stands for this item (a message of its range, an older summary)."""
        latest = self.latest
        if latest is None:
            return False
        if isinstance(item, Summary):
            return item.id != latest.id and order_key(item) < order_key(latest)
        return latest.first_message_id <= item.id <= latest.last_message_id

    def hides(self, item: TimelineItem) -> bool:
        """Folded: everything before the latest summary is left out of the window."""
        latest = self.latest
        return self.folded and latest is not None and order_key(item) < order_key(latest)


@dataclass
class Entry:
    item: TimelineItem
    key: tuple[str, int]
    height: int
    exact: bool = False
    version: int = 0


class ConversationView(ScrollView, can_focus=True):
    """A session's messages and summaries, rendered on demand."""

    COMPONENT_CLASSES = {
        "conversation--label-user",
        "conversation--label-assistant",
        "conversation--label-system",
        "conversation--label-tool",
        "conversation--gutter-user",
        "conversation--gutter-assistant",
        "conversation--gutter-system",
        "conversation--gutter-tool",
        "conversation--gutter-summary",
        "conversation--cursor-gutter",
        "conversation--cursor-header",
        "conversation--found-gutter",
        "conversation--found-header",
        "conversation--meta",
        "conversation--body",
        "conversation--dim-body",
        "conversation--interrupted",
        "conversation--streaming",
        "conversation--summary-label",
        "conversation--summary-body",
        "conversation--more",
        "conversation--banner",
        "conversation--fold",
        "conversation--empty-title",
        "conversation--empty-hint",
    }

    DEFAULT_CSS = """
    ConversationView {
        overflow-x: hidden;
        & > .conversation--label-user { color: $text-primary; text-style: bold; }
        & > .conversation--label-assistant { color: $text-success; text-style: bold; }
        & > .conversation--label-system { color: $text-warning; text-style: bold italic; }
        & > .conversation--label-tool { color: $text-secondary; text-style: bold; }
        & > .conversation--gutter-user { color: $primary; }
        & > .conversation--gutter-assistant { color: $success 60%; }
        & > .conversation--gutter-system { color: $warning 60%; }
        & > .conversation--gutter-tool { color: $text-secondary 60%; }
        & > .conversation--gutter-summary { color: $text-muted; }
        & > .conversation--cursor-gutter { color: $accent; text-style: bold; }
        & > .conversation--cursor-header { background: $accent 25%; }
        & > .conversation--found-gutter { color: $warning; text-style: bold; }
        & > .conversation--found-header { background: $warning 30%; }
        & > .conversation--meta { color: $text-muted; }
        & > .conversation--body { }
        & > .conversation--dim-body { color: $text-muted; }
        & > .conversation--interrupted { color: $error; text-style: bold; }
        & > .conversation--streaming { color: $warning; }
        & > .conversation--summary-label { color: $text-muted; text-style: bold; }
        & > .conversation--summary-body { color: $text-muted; }
        & > .conversation--more { color: $accent; }
        & > .conversation--banner { color: $text-disabled; }
        & > .conversation--fold { color: $accent; }
        & > .conversation--empty-title { text-style: bold; }
        & > .conversation--empty-hint { color: $text-muted; }
    }
    """

    BINDINGS = [
        Binding("up", "scroll_lines(-1)", "Up", show=False, tooltip="Scroll up a line"),
        Binding("down", "scroll_lines(1)", "Down", show=False, tooltip="Scroll down a line"),
        Binding("pageup", "scroll_pages(-1)", "Page up", show=False, tooltip="Scroll up a screen"),
        Binding(
            "pagedown", "scroll_pages(1)", "Page down", show=False, tooltip="Scroll down a screen"
        ),
        Binding("home", "first", "Top", show=False, tooltip="Go to the start of the session"),
        Binding("end", "last", "Bottom", show=False, tooltip="Go to the latest message"),
        Binding("k", "cursor(-1)", "Prev", show=False, tooltip="Select the previous message"),
        Binding("j", "cursor(1)", "Next", show=False, tooltip="Select the next message"),
        Binding(
            "enter,e",
            "toggle_summary",
            "Expand",
            show=False,
            tooltip="Expand or collapse the selected summary",
        ),
        Binding("c", "copy_message", "Copy", tooltip="Copy the selected message's text"),
        Binding("y", "copy_code", "Copy code", tooltip="Copy the selected message's code blocks"),
        Binding(
            "f",
            "toggle_fold",
            "Fold",
            show=False,
            tooltip="Show (faded) or fold away the messages the latest summary stands for",
        ),
    ]

    class Loaded(TextualMessage):
        """A session's last screen is drawn (or a page was added)."""

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
        self.session: Session | None = None
        self._source: TimelineFn | None = None
        self._entries: list[Entry] = []
        self._tops: list[int] = [BANNER]
        self._dirty = False
        self._generation = 0
        self._window = 0  # bumped each time the entries are replaced (a new window)
        self.has_older = False
        self.has_newer = False
        self._loading_older = False
        self._loading_newer = False
        self.cursor: int | None = None
        self.found: tuple[str, int] | None = None  # the item opened from a search hit, marked
        self.show_meta = False
        self._expanded: set[tuple[str, int]] = set()
        self._follow = True
        self._settling = False
        self._settle_scheduled = False
        self._cache: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(400)
        self._line_cache: LRUCache[tuple[object, ...], tuple[list[Strip], Strip]] = LRUCache(600)
        self._styles: BlockStyles | None = None
        self._empty: tuple[str, str] = ("", "")
        self._width = 0
        self.pages_loaded = 0
        self.writable = False  # the composer can write here (changes the empty-session hint)
        self._live: LiveReply | None = None
        self._live_strips: tuple[tuple[object, ...], list[Strip]] | None = None
        self._live_due = False
        self._live_painted = 0.0
        # Set by the screen once the store is open: summary positions and the fold.
        self.summaries: SummarySource | None = None
        self._facts = SummaryFacts()
        self._fold_choice: bool | None = None  # the user's f for this session (None: default)

    # ------------------------------------------------------------------ public

    @property
    def items(self) -> list[TimelineItem]:
        return [entry.item for entry in self._entries]

    @property
    def cursor_item(self) -> TimelineItem | None:
        if self.cursor is None or not 0 <= self.cursor < len(self._entries):
            return None
        return self._entries[self.cursor].item

    def show_empty(self, title: str, hint: str = "") -> None:
        """Show a message instead of a conversation (texts already safe)."""
        self._generation += 1
        self.session = None
        self._source = None
        self._live = None
        self._facts = SummaryFacts()
        self.found = None
        self._set_entries([])
        self._empty = (title, hint)
        self._update_virtual_size()
        self.refresh()

    async def open(self, session: Session, source: TimelineFn) -> None:
        """Show `session`: fetch its newest page and draw its last screen first."""
        self._generation += 1
        generation = self._generation
        same = self.session is not None and self.session.id == session.id
        choice = self._fold_choice if same else None
        try:
            facts = await self._summary_facts(session.id, choice)
            items, dropped, raw = await self._fetch(
                source, session.id, facts, None, None, PAGE_SIZE
            )
        except ThreadlineError as exc:
            self.app.notify(clean(str(exc)), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self.session = session
        self._source = source
        self._live = None
        self._facts = facts
        self._fold_choice = choice
        self._expanded = set()
        self.found = None
        self._cache.clear()
        self._set_entries(items)
        self.has_older = raw == PAGE_SIZE and not dropped
        self.has_newer = False
        self.cursor = len(self._entries) - 1 if self._entries else None
        self._empty = (
            ("No messages yet.", "Write the first message below.")
            if self.writable
            else (
                "No messages yet.",
                "Write the first turn from a shell:\n"
                f'threadline chat --session {session.id.replace("-", "")[:12]} "…"',
            )
        )
        self._follow = True
        self.pages_loaded = 1
        self._settle()
        self.refresh()
        self.post_message(self.Loaded())

    async def open_at(
        self,
        session: Session,
        source: TimelineFn,
        around: AroundFn,
        message_id: int,
        target: tuple[str, int],
    ) -> bool:
        """Show `session` around one item, select it and mark it (a search hit, a memory's
        source message).

        `target` is the item's key: ("m", message id), or ("s", summary id) for a summary, whose
        `message_id` is then its last message; a summary opens expanded. When the item is among
        what the latest summary folds away, the range is shown (unfolded, faded) instead. The
        mark stays until the cursor moves. Returns False when the item is no longer there (the
        nearest one is selected instead).
        """
        self._generation += 1
        generation = self._generation
        same = self.session is not None and self.session.id == session.id
        choice = self._fold_choice if same else None
        sub = 1 if target[0] == "s" else 0
        try:
            facts = await self._summary_facts(session.id, choice, (message_id, sub, target[1]))
            raw = await around(message_id, AROUND_RADIUS)
            items = await self._visible(session.id, facts, raw)
        except ThreadlineError as exc:
            self.app.notify(clean(str(exc)), severity="error", markup=False)
            return False
        if generation != self._generation:
            return False
        self.session = session
        self._source = source
        self._live = None  # as open(): a reply streaming here is shown again by the runner
        self._facts = facts
        self._fold_choice = choice
        self._expanded = {target} if target[0] == "s" else set()
        self._cache.clear()
        self._set_entries(items)
        # timeline_around: up to radius + 1 items up to the message, up to radius after it;
        # when the fold hid some of the first ones, the window starts at the latest summary.
        head = sum(1 for item in raw if item.position < (message_id, 1))
        hidden = len(raw) - len(items)
        self.has_older = head >= AROUND_RADIUS + 1 and not hidden
        self.has_newer = len(raw) - head >= AROUND_RADIUS
        index = next((i for i, e in enumerate(self._entries) if e.key == target), None)
        found = index is not None
        if index is None:
            index = min(max(0, head - hidden), len(self._entries) - 1) if self._entries else None
        self.cursor = index
        self.found = target if found else None
        self._empty = ("No messages left in this session.", "")
        self._follow = False
        self.pages_loaded = 1
        if index is None:
            self._settle()
        else:
            context = min(FOUND_CONTEXT, max(0, self.scrollable_content_region.height // 4))
            self._settle((index, -context))
        self.refresh()
        self.post_message(self.Loaded())
        return found

    async def _summary_facts(
        self,
        session_id: str,
        choice: bool | None,
        target: tuple[int, int, int] | None = None,
    ) -> SummaryFacts:
        """The session's latest summary and its span; whether its range starts folded (never
        when `target`, an item's timeline order, is among what the fold would hide)."""
        facts = SummaryFacts()
        if self.summaries is None:
            return facts
        latest = await self.summaries.latest_summary(session_id)
        if latest is None:
            return facts
        facts.latest = latest
        facts.spans.update(await self.summaries.summary_spans(session_id, [latest]))
        span = facts.latest_span
        covered = span.covered if span is not None else 0
        facts.folded = covered > FOLD_MIN if choice is None else choice
        if target is not None and target < order_key(latest):
            facts.folded = False  # the item asked for is among the folded ones
        return facts

    async def _fetch(
        self,
        source: TimelineFn,
        session_id: str,
        facts: SummaryFacts,
        before: Position | None,
        after: Position | None,
        limit: int,
    ) -> tuple[list[TimelineItem], bool, int]:
        """A page from `source` without what the fold hides, with the spans of its summaries
        fetched. Returns (items, whether the fold hid any, how many the source gave)."""
        raw = await source(before, after, limit)
        items = await self._visible(session_id, facts, raw)
        return items, len(items) < len(raw), len(raw)

    async def _visible(
        self, session_id: str, facts: SummaryFacts, raw: list[TimelineItem]
    ) -> list[TimelineItem]:
        """`raw` without what the fold hides; the spans of its summaries fetched."""
        items = [item for item in raw if not facts.hides(item)]
        missing = [i for i in items if isinstance(i, Summary) and i.id not in facts.spans]
        if missing and self.summaries is not None:
            facts.spans.update(await self.summaries.summary_spans(session_id, missing))
        return items

    def set_session(self, session: Session) -> None:
        """Update the session record (status, title) without reloading the timeline."""
        if self.session is not None and session.id == self.session.id:
            self.session = session
            self._invalidate_marks()
            self.refresh_lines(0, BANNER)  # "start of the session · N messages"

    async def refresh_tail(self) -> None:
        """Merge what changed at the end of the session (new or still-streaming messages, and
        a summary written meanwhile, which takes its place inside the window)."""
        source, generation, facts = self._source, self._generation, self._facts
        session, window = self.session, self._window
        if source is None or session is None or self.has_newer:
            return
        try:
            items, _, raw = await self._fetch(source, session.id, facts, None, None, TAIL_SIZE)
        except ThreadlineError:
            return
        if not self._current(generation, window) or not items:
            return
        index = {entry.key: i for i, entry in enumerate(self._entries)}
        if self._entries and item_key(items[0]) not in index and raw == TAIL_SIZE:
            if items[0].position > self._entries[-1].item.position:
                # More arrived than the tail holds: start again from the newest page.
                await self.open(session, source)
                return
        anchor = self._anchor()
        changed = False
        last = order_key(self._entries[-1].item) if self._entries else (-1, -1, -1)
        inserts: list[TimelineItem] = []
        for item in items:
            key = item_key(item)
            if self._live is not None and key == self._live.key:
                continue  # the stream being shown is ahead of its last checkpoint
            at = index.get(key)
            if at is not None:
                entry = self._entries[at]
                if entry.item != item:
                    entry.item = item
                    entry.version += 1
                    entry.exact = False
                    entry.height = self._estimate(at)
                    changed = True
            elif order_key(item) > last:
                self._entries.append(Entry(item, key, 0))
                self._entries[-1].height = self._estimate(len(self._entries) - 1)
                changed = True
            elif self._entries and order_key(item) > order_key(self._entries[0].item):
                inserts.append(item)
        for item in inserts:
            keys = [order_key(entry.item) for entry in self._entries]
            at = bisect.bisect_left(keys, order_key(item))
            self._entries.insert(at, Entry(item, item_key(item), 0))
            self._entries[at].height = self._estimate(at)
            if self.cursor is not None and at <= self.cursor:
                self.cursor += 1
            if anchor is not None and at <= anchor[0]:
                anchor = (anchor[0] + 1, anchor[1])
            changed = True
        newest = max((i for i in items if isinstance(i, Summary)), key=order_key, default=None)
        if newest is not None and (
            facts.latest is None or order_key(newest) > order_key(facts.latest)
        ):
            # A summary was written (a turn, Z, another process): it is the latest now, and
            # what it stands for fades; when following the end, the default fold applies too.
            facts.latest = newest
            span = facts.latest_span
            fold = (span.covered if span else 0) > FOLD_MIN
            if self._fold_choice is not None:
                fold = self._fold_choice
            if fold and anchor is None:
                self._fold_window()
            changed = True
        if changed:
            self._dirty = True
            self._invalidate_marks()
            self._settle(anchor)
            self.refresh()

    # ------------------------------------------------------------------ the fold

    @property
    def folded(self) -> bool:
        """The messages the latest summary stands for are left out (the summary stands in)."""
        return self._facts.folded

    @property
    def latest_summary(self) -> Summary | None:
        return self._facts.latest

    def toggle_fold(self) -> str | None:
        """Fold away or show (faded) what the latest summary stands for; returns why not."""
        facts = self._facts
        if self.session is None:
            return "No session is open."
        if facts.latest is None:
            return "This session has no summary: nothing to fold."
        span = facts.latest_span
        if span is not None and span.compacted:
            return "The summarised messages were compacted away: only the summary is left."
        if facts.folded:
            facts.folded = False
            self._fold_choice = False
            latest_key = item_key(facts.latest)
            if self._entries and (
                self._entries[0].key == latest_key
                or order_key(self._entries[0].item) > order_key(facts.latest)
            ):
                self.has_older = True
            self._dirty = True
            self._settle()
        else:
            self._fold_choice = True
            if not self._fold_window():
                self.run_worker(self._jump(True), group="conversation-jump", exclusive=True)
        self.refresh()
        return None

    def _fold_window(self) -> bool:
        """Fold: drop the entries before the latest summary. False when it is not in the
        window and the window lies among what it stands for (the caller jumps to it)."""
        facts = self._facts
        latest = facts.latest
        if latest is None:
            return True
        facts.folded = True
        key = item_key(latest)
        at = next((i for i, entry in enumerate(self._entries) if entry.key == key), None)
        if at is None:
            if self._entries and order_key(self._entries[0].item) > order_key(latest):
                return True  # the window is after it; older pages will stop there
            return False
        anchor = self._anchor()
        if self.found is not None and any(e.key == self.found for e in self._entries[:at]):
            self.found = None  # the marked item is folded away
        del self._entries[:at]
        if self.cursor is not None:
            self.cursor = max(0, self.cursor - at)
        if anchor is not None:
            anchor = (anchor[0] - at, anchor[1]) if anchor[0] >= at else (0, -BANNER)
        self.has_older = False
        self._dirty = True
        self._settle(anchor)
        return True

    def toggle_meta(self) -> None:
        self.show_meta = not self.show_meta
        self._relayout()

    def toggle_summary(self, index: int | None = None) -> bool:
        index = self.cursor if index is None else index
        if index is None or not 0 <= index < len(self._entries):
            return False
        entry = self._entries[index]
        if not isinstance(entry.item, Summary):
            return False
        anchor = self._anchor()
        self._expanded ^= {entry.key}
        entry.exact = False
        entry.height = self._estimate(index)
        self._dirty = True
        self._settle(anchor)
        self._scroll_entry_into_view(index)
        self.refresh()
        return True

    # ------------------------------------------------------------------ turns written here

    @property
    def live(self) -> LiveReply | None:
        """The reply being streamed into the view, if any."""
        return self._live

    def _shows(self, session_id: str) -> bool:
        return self.session is not None and self.session.id == session_id

    async def append_items(self, items: list[TimelineItem]) -> None:
        """Show items this app just wrote at the end of the open session, and follow the end.

        An item already in the window (same id) is replaced. When the window does not reach
        the end of the session (after `home`), the newest page is loaded instead.
        """
        if not items or self._source is None or not self._shows(items[0].session_id):
            return
        if self.has_newer:
            assert self.session is not None
            await self.open(self.session, self._source)
            return
        index = {entry.key: i for i, entry in enumerate(self._entries)}
        was_last = self.cursor is None or self.cursor >= len(self._entries) - 1
        for item in items:
            key = item_key(item)
            at = index.get(key)
            if at is not None:
                entry = self._entries[at]
                entry.item = item
                entry.version += 1
                entry.exact = False
                entry.height = self._estimate(at)
            else:
                self._entries.append(Entry(item, key, 0))
                self._entries[-1].height = self._estimate(len(self._entries) - 1)
                index[key] = len(self._entries) - 1
        if was_last and self._entries:
            self.cursor = len(self._entries) - 1
        self._dirty = True
        self._invalidate_marks()
        self._follow = True
        self._settle()
        self.refresh()

    async def stream_begin(self, message: Message, text: str = "") -> None:
        """Show `message` (a reply row just written) as the live reply; `text` is what has
        arrived so far. Deltas follow with `stream_append`."""
        if not self._shows(message.session_id):
            return
        live = LiveReply(message.model_copy(update={"content": ""}))
        if text:
            live.append(text)
        self._live = live
        self._live_strips = None
        # Its header shows now; the text from the first repaint on (a reply that is over
        # within 1/LIVE_FPS s is drawn once, finished).
        self._live_painted = time.monotonic()
        await self.append_items([live.message])

    def stream_append(self, text: str) -> None:
        """More text of the live reply; the view repaints at most LIVE_FPS times a second (less
        when drawing is slow), never once per token."""
        live = self._live
        if live is None:
            return
        live.append(text)
        if not self._live_due:
            self._live_due = True
            # Pace by the cost of the last drawing too: drawing takes at most a third of the time.
            interval = max(1 / LIVE_FPS, 3 * live.render_seconds)
            delay = self._live_painted + interval - time.monotonic()
            if delay > 0.001:
                self.set_timer(delay, self._paint_live, name="live reply")
            else:
                self.call_later(self._paint_live)

    def _paint_live(self) -> None:
        self._live_due = False
        live = self._live
        if live is None:
            return
        index = len(self._entries) - 1
        while index >= 0 and self._entries[index].key != live.key:
            index -= 1
        if index < 0:
            return
        entry = self._entries[index]
        entry.version += 1
        old_height = entry.height
        self._strips(index)
        self._live_painted = time.monotonic()
        if self._follow:
            self._settle()
            self.refresh()
        else:
            self._recompute()
            self._update_virtual_size()
            self.refresh_lines(self._tops[index], max(old_height, entry.height))

    async def stream_end(self, message: Message) -> None:
        """The reply ended (finished, failed or cancelled): draw its final form (added at the
        end if it never streamed, e.g. an error before the first token)."""
        live = self._live
        if live is not None and live.key == item_key(message):
            self._live = None
            self._live_strips = None
        else:
            live = None
        if not self._shows(message.session_id):
            return
        key = item_key(message)
        for i in range(len(self._entries) - 1, -1, -1):
            entry = self._entries[i]
            if entry.key == key:
                anchor = self._anchor()
                entry.item = message
                entry.version += 1
                entry.exact = False
                entry.height = self._estimate(i)
                if live is not None:
                    # Its finished blocks are drawn already: only the last one is drawn again.
                    width, state = self._content_width(), self._state(i)
                    final = live.render_final(
                        message,
                        width,
                        state,
                        self._block_styles(),
                        self.app.console,
                        self.app.console_options,
                        self._clock(),
                    )
                    if final is not None:
                        self._cache[(key, entry.version, width, state)] = final
                self._dirty = True
                self._settle(anchor)
                self.refresh()
                return
        await self.append_items([message])

    # ------------------------------------------------------------------ entries and heights

    def _set_entries(self, items: list[TimelineItem]) -> None:
        # A new window: pages and tails still being read were asked for the old one.
        self._window += 1
        self._loading_older = self._loading_newer = False
        self._entries = [Entry(item, item_key(item), 0) for item in items]
        width = self._content_width()
        for i in range(len(self._entries)):
            self._entries[i].height = self._estimate(i, width)
        self._dirty = True
        self._recompute()

    def _content_width(self) -> int:
        return max(4, self.scrollable_content_region.width - GUTTER - 1)

    def _state(self, index: int) -> BlockState:
        entry = self._entries[index]
        item = entry.item
        return BlockState(
            expanded=entry.key in self._expanded,
            show_meta=self.show_meta,
            mark=self._mark(index),
            covered=self._facts.covers(item),
            span=self._facts.spans.get(item.id) if isinstance(item, Summary) else None,
        )

    def _mark(self, index: int) -> str | None:
        item = self._entries[index].item
        if not isinstance(item, Message) or item.complete:
            return None
        if item.stop_reason in ("error", "cancelled"):
            return item.stop_reason
        is_last = index == len(self._entries) - 1 and not self.has_newer
        if is_last and self.session is not None and self.session.status == "active":
            return "streaming"
        return "interrupted"

    def _invalidate_marks(self) -> None:
        for i, entry in enumerate(self._entries):
            if isinstance(entry.item, Message) and not entry.item.complete:
                entry.exact = False
                entry.height = self._estimate(i)
                self._dirty = True

    def _estimate(self, index: int, width: int | None = None) -> int:
        width = self._content_width() if width is None else width
        return estimate_height(self._entries[index].item, width, self._state(index))

    def _recompute(self) -> None:
        if not self._dirty:
            return
        tops = [BANNER]
        total = BANNER
        for entry in self._entries:
            total += entry.height
            tops.append(total)
        self._tops = tops
        self._dirty = False

    def _index_at(self, line: int) -> int:
        """The entry drawn at virtual line `line` (>= BANNER)."""
        self._recompute()
        return max(0, min(len(self._entries) - 1, bisect.bisect_right(self._tops, line) - 1))

    def _block_styles(self) -> BlockStyles:
        if self._styles is None:
            base = self._style()
            part = self._style

            dark = self.app.current_theme.dark if self.app.current_theme else True
            self._styles = BlockStyles(
                base=base,
                labels={
                    role: part(f"conversation--label-{role}")
                    for role in ("user", "assistant", "system", "tool")
                },
                meta=part("conversation--meta"),
                body=part("conversation--body"),
                dim_body=part("conversation--dim-body"),
                interrupted=part("conversation--interrupted"),
                streaming=part("conversation--streaming"),
                summary_label=part("conversation--summary-label"),
                summary_body=part("conversation--summary-body"),
                more=part("conversation--more"),
                code_theme="monokai" if dark else "friendly",
            )
        return self._styles

    def _style(self, *components: str) -> Style:
        """The Rich style of these component classes over the widget's own (themes apply)."""
        return self.get_visual_style(*components).rich_style

    def _strips(self, index: int) -> list[Strip]:
        """The drawn lines of an entry (cached); makes its height exact."""
        entry = self._entries[index]
        width = self._content_width()
        state = self._state(index)
        key = (entry.key, entry.version, width, state)
        live = self._live
        if live is not None and entry.key == live.key:
            # Drawn from its chunks, kept in one slot (not the LRU: it changes all the time).
            if self._live_strips is not None and self._live_strips[0] == key:
                drawn = self._live_strips[1]
            else:
                drawn = live.render(
                    width,
                    state,
                    self._block_styles(),
                    self.app.console,
                    self.app.console_options,
                    self._clock(),
                )
                self._live_strips = (key, drawn)
            if not entry.exact or entry.height != len(drawn):
                if entry.height != len(drawn):
                    self._dirty = True
                entry.height = len(drawn)
                entry.exact = True
            return drawn
        strips = self._cache.get(key)
        if strips is None:
            strips = render_block(
                entry.item,
                width,
                state,
                self._block_styles(),
                self.app.console,
                self.app.console_options,
                self._clock(),
            )
            self._cache[key] = strips
        if not entry.exact or entry.height != len(strips):
            if entry.height != len(strips):
                self._dirty = True
            entry.height = len(strips)
            entry.exact = True
        return strips

    # ------------------------------------------------------------------ layout

    def _anchor(self) -> tuple[int, int] | None:
        """(entry index, line offset within it) at the top of the screen; None when following."""
        if self._follow or not self._entries:
            return None
        top = int(self.scroll_y)
        if top < BANNER:
            return (0, top - BANNER)
        index = self._index_at(top)
        return (index, top - self._tops[index])

    def _settle(self, anchor: tuple[int, int] | None = None, margin_above: bool = True) -> None:
        """Draw the entries around the viewport and put the scroll position where it belongs."""
        self._settle_scheduled = False
        if not self._entries:
            self._update_virtual_size()
            return
        height = max(1, self.scrollable_content_region.height)
        if anchor is None and not self._follow:
            anchor = self._anchor()
        if anchor is None:
            # Bottom-up: the last screen (and one more above it) is drawn first.
            covered, index = 0, len(self._entries) - 1
            while index >= 0 and covered < 2 * height:
                covered += len(self._strips(index))
                index -= 1
            self._recompute()
            self._update_virtual_size()
            self._set_scroll(self.max_scroll_y)
        else:
            index, offset = anchor
            index = max(0, min(index, len(self._entries) - 1))
            covered, i = -offset, index
            while i < len(self._entries) and covered < 2 * height:
                covered += len(self._strips(i))
                i += 1
            covered, i = 0, index - 1
            while margin_above and i >= 0 and covered < height:
                covered += len(self._strips(i))
                i -= 1
            self._recompute()
            offset = min(offset, self._entries[index].height - 1)
            self._update_virtual_size()
            self._set_scroll(self._tops[index] + offset)
        self._maybe_load_more()

    def _relayout(self) -> None:
        """Heights are stale (width or a global state changed): re-estimate, keep the anchor."""
        anchor = self._anchor()
        width = self._content_width()
        for i, entry in enumerate(self._entries):
            entry.exact = False
            entry.height = self._estimate(i, width)
        self._dirty = True
        self._settle(anchor)
        self.refresh()

    def _update_virtual_size(self) -> None:
        self._recompute()
        if self._entries:
            total = self._tops[-1]
        else:
            total = 0
        size = Size(self.scrollable_content_region.width, total)
        if size != self.virtual_size:
            self._settling = True
            try:
                # Not `self.virtual_size = size`: that lays out the whole screen, once per
                # repaint of a streaming reply. The pane's size does not depend on its content;
                # only its scrollbar does, and _scroll_update lays out if that appears.
                self.set_reactive(ScrollView.virtual_size, size)
                self._scroll_update(size)
                self.refresh()
            finally:
                self._settling = False

    def _set_scroll(self, y: int) -> None:
        self._settling = True
        try:
            self.scroll_to(y=max(0, y), animate=False, immediate=True, force=True)
        finally:
            self._settling = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._settling or not self._entries:
            return
        self._follow = not self.has_newer and round(new_value) >= self.max_scroll_y
        self._settle()

    def _on_resize(self, event: events.Resize) -> None:
        width = self._content_width()
        if width != self._width:
            self._width = width
            self._styles = None
            self._relayout()
        else:
            self._settle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._cache.clear()
        self._line_cache.clear()
        if self._entries:
            self._relayout()

    def _maybe_load_more(self) -> None:
        if self._source is None:
            return
        height = max(1, self.scrollable_content_region.height)
        y = int(self.scroll_y)
        if self.has_older and not self._loading_older and y < 2 * height:
            self._loading_older = True
            self.run_worker(self._load_older(), group="conversation-older", exit_on_error=False)
        if self.has_newer and not self._loading_newer and y > self.max_scroll_y - 2 * height:
            self._loading_newer = True
            self.run_worker(self._load_newer(), group="conversation-newer", exit_on_error=False)

    async def _load_older(self) -> None:
        generation, source, facts = self._generation, self._source, self._facts
        window = self._window
        try:
            if source is None or not self._entries or self.session is None:
                return
            first = self._entries[0].item.position
            try:
                items, dropped, raw = await self._fetch(
                    source, self.session.id, facts, first, None, OLDER_PAGE
                )
            except ThreadlineError as exc:
                self.app.notify(clean(str(exc)), severity="error", markup=False)
                return
            if not self._current(generation, window):
                return
            self.prepend(items, complete=raw < OLDER_PAGE or dropped)
        finally:
            if window == self._window:
                self._loading_older = False

    def prepend(self, items: list[TimelineItem], complete: bool) -> None:
        """Add an older page above the window, keeping what is on screen where it is."""
        anchor = self._anchor()
        known = {entry.key for entry in self._entries}
        new = [Entry(item, item_key(item), 0) for item in items if item_key(item) not in known]
        self._entries[0:0] = new
        width = self._content_width()
        for i in range(len(new)):
            self._entries[i].height = self._estimate(i, width)
        if self.cursor is not None:
            self.cursor += len(new)
        self.has_older = not complete and bool(new)
        self.pages_loaded += 1
        self._dirty = True
        if anchor is not None:
            anchor = (anchor[0] + len(new), anchor[1])
        # The new items are above the screen: paint first, draw them (keeping the anchor)
        # right after, before they can scroll into view.
        self._settle(anchor, margin_above=False)
        self.refresh()
        self.call_after_refresh(self._settle)
        self.post_message(self.Loaded())

    async def _load_newer(self) -> None:
        generation, source, facts = self._generation, self._source, self._facts
        window = self._window
        try:
            if source is None or not self._entries or self.session is None:
                return
            last = self._entries[-1].item.position
            try:
                items, _, raw = await self._fetch(
                    source, self.session.id, facts, None, last, OLDER_PAGE
                )
            except ThreadlineError as exc:
                self.app.notify(clean(str(exc)), severity="error", markup=False)
                return
            if not self._current(generation, window):
                return
            anchor = self._anchor()
            known = {entry.key for entry in self._entries}
            start = len(self._entries)
            self._entries += [Entry(i, item_key(i), 0) for i in items if item_key(i) not in known]
            width = self._content_width()
            for i in range(start, len(self._entries)):
                self._entries[i].height = self._estimate(i, width)
            self.has_newer = raw == OLDER_PAGE
            self._dirty = True
            self._settle(anchor)
            self.refresh()
        finally:
            if window == self._window:
                self._loading_newer = False

    def _current(self, generation: int, window: int) -> bool:
        """A read started at (generation, window) still applies: no open or jump began since
        (it may still be fetching: the generation moves first) and none replaced the window."""
        return generation == self._generation and window == self._window

    async def _jump(self, to_start: bool) -> None:
        """Replace the window with the first (or last) page of the session; folded, the first
        page starts at the latest summary."""
        source, session, facts = self._source, self.session, self._facts
        if source is None or session is None:
            return
        if not to_start:
            await self.open(session, source)
            return
        self._generation += 1
        generation = self._generation
        start = (0, 0)
        if facts.folded and facts.latest is not None:
            start = (facts.latest.last_message_id, 0)
        try:
            items, _, raw = await self._fetch(source, session.id, facts, None, start, PAGE_SIZE)
        except ThreadlineError as exc:
            self.app.notify(clean(str(exc)), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self.found = None
        self._set_entries(items)
        self.has_older = False
        self.has_newer = raw == PAGE_SIZE
        self.cursor = 0 if self._entries else None
        self._follow = False
        self._settle((0, -BANNER))
        self.refresh()

    # ------------------------------------------------------------------ keys

    def action_scroll_lines(self, delta: int) -> None:
        self.scroll_to(y=self.scroll_y + delta, animate=False)

    def action_scroll_pages(self, delta: int) -> None:
        page = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_y + delta * page, animate=False)

    def action_first(self) -> None:
        if self.has_older:
            self.run_worker(self._jump(True), group="conversation-jump", exclusive=True)
        else:
            self.scroll_to(y=0, animate=False)
            if self._entries:
                self._set_cursor(0)

    def action_last(self) -> None:
        if self.has_newer:
            self.run_worker(self._jump(False), group="conversation-jump", exclusive=True)
        else:
            self._follow = True
            self._settle()
            if self._entries:
                self._set_cursor(len(self._entries) - 1)

    def action_cursor(self, delta: int) -> None:
        if not self._entries:
            return
        if self.cursor is None or not self._is_visible(self.cursor):
            start = self._first_visible() if delta > 0 else self._last_visible()
            self._set_cursor(start)
            return
        target = self.cursor + delta
        if target < 0:
            self.scroll_to(y=0, animate=False)  # brings the older page in
            return
        self._set_cursor(min(target, len(self._entries) - 1))

    def action_toggle_summary(self) -> None:
        self.toggle_summary()

    def action_toggle_fold(self) -> None:
        problem = self.toggle_fold()
        if problem:
            self.app.notify(problem, severity="warning")

    def action_copy_message(self) -> None:
        item = self.cursor_item
        if item is None:
            self.app.notify("No message to copy.", severity="warning")
            return
        self.app.copy_to_clipboard(item.content)
        what = "summary" if isinstance(item, Summary) else "message"
        self.app.notify(f"Copied the {what} ({plural(len(item.content), 'character')}).")

    def action_copy_code(self) -> None:
        item = self.cursor_item
        if item is None:
            self.app.notify("No message to copy from.", severity="warning")
            return
        blocks = code_blocks(item.content)
        if not blocks:
            self.app.notify("This message has no code blocks.", severity="warning")
            return
        self.app.copy_to_clipboard("\n\n".join(blocks))
        lines = sum(block.count("\n") + 1 for block in blocks)
        self.app.notify(f"Copied {plural(len(blocks), 'code block')} ({plural(lines, 'line')}).")

    def _set_cursor(self, index: int) -> None:
        old = self.cursor
        self.cursor = index
        self._clear_found(index)
        self._scroll_entry_into_view(index)
        if old is not None and old != index:
            self._refresh_entry(old)
        self._refresh_entry(index)

    def _clear_found(self, index: int) -> None:
        """The search mark stays until the cursor moves to another item."""
        if self.found is None:
            return
        if not 0 <= index < len(self._entries) or self._entries[index].key != self.found:
            self.found = None
            self.refresh()

    def _refresh_entry(self, index: int) -> None:
        if 0 <= index < len(self._entries):
            self._recompute()
            self.refresh_lines(self._tops[index], self._entries[index].height)

    def _scroll_entry_into_view(self, index: int) -> None:
        self._strips(index)
        self._recompute()
        top, height = self._tops[index], self._entries[index].height
        view = max(1, self.scrollable_content_region.height)
        y = int(self.scroll_y)
        if top < y or height > view:
            target = top
        elif top + height > y + view:
            target = top + height - view
        else:
            return
        self._follow = False
        self.scroll_to(y=target, animate=False, immediate=True, force=True)

    def _is_visible(self, index: int) -> bool:
        self._recompute()
        y, view = int(self.scroll_y), self.scrollable_content_region.height
        top, bottom = self._tops[index], self._tops[index + 1]
        return top < y + view and bottom > y

    def _first_visible(self) -> int:
        return self._index_at(max(BANNER, int(self.scroll_y)))

    def _last_visible(self) -> int:
        bottom = int(self.scroll_y) + self.scrollable_content_region.height - 1
        return self._index_at(max(BANNER, bottom))

    async def _on_click(self, event: events.Click) -> None:
        if event.style.meta.get("conversation_fold"):
            self.toggle_fold()
            return
        key = event.style.meta.get("conversation_entry")
        if key is None:
            return
        for i, entry in enumerate(self._entries):
            if entry.key == tuple(key):
                old = self.cursor
                self.cursor = i
                self._clear_found(i)
                if old is not None:
                    self._refresh_entry(old)
                self._refresh_entry(i)
                if isinstance(entry.item, Summary):
                    self.toggle_summary(i)
                break

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style()
        if not self._entries:
            return self._empty_line(y, width, base)
        line = int(self.scroll_y) + y
        if line < BANNER:
            return self._banner_line(line, width, base)
        self._recompute()
        if line >= self._tops[-1]:
            return Strip.blank(width, base)
        index = self._index_at(line)
        entry = self._entries[index]
        was_exact = entry.exact
        strips = self._strips(index)
        if not was_exact and not self._settle_scheduled:
            self._settle_scheduled = True
            self.call_after_refresh(self._settle)
        offset = line - self._tops[index]
        if not 0 <= offset < len(strips):
            return Strip.blank(width, base)
        is_cursor = index == self.cursor and self.has_focus
        is_found = entry.key == self.found
        # Whole screen lines are kept too: a reply streaming at the bottom scrolls every line
        # on screen, and joining gutters and meta costs more than the compositor's own work.
        line_key = (id(strips), offset, is_cursor, is_found, width)
        cached = self._line_cache.get(line_key)
        if cached is not None and cached[0] is strips:
            return cached[1]
        strip = strips[offset]
        is_spacer = offset == len(strips) - 1
        if is_spacer:
            gutter = Strip.blank(GUTTER, base)
        elif is_cursor or is_found:
            kind = "found" if is_found else "cursor"
            style = self._style(f"conversation--{kind}-gutter")
            gutter = Strip([Segment("▌ ", style)], GUTTER)
            if offset == 0:
                header = self._style(f"conversation--{kind}-header")
                strip = Strip(
                    list(
                        Segment.apply_style(iter(strip), post_style=Style(bgcolor=header.bgcolor))
                    ),
                    strip.cell_length,
                )
        else:
            role = "summary" if isinstance(entry.item, Summary) else entry.item.role
            style = self._style(f"conversation--gutter-{role}")
            gutter = Strip([Segment("▎ ", style)], GUTTER)
            if self._facts.covers(entry.item):
                gutter = fade([gutter], base)[0]
        joined = Strip.join([gutter, strip]).adjust_cell_length(width, base)
        drawn = joined.apply_meta({"conversation_entry": entry.key})
        self._line_cache[line_key] = (strips, drawn)
        return drawn

    def _banner_line(self, line: int, width: int, base: Style) -> Strip:
        if line != 0:
            return Strip.blank(width, base)
        facts = self._facts
        span = facts.latest_span
        meta: dict[str, object] = {}
        style = self._style("conversation--banner")
        if self.has_older:
            text = (
                "↑ loading earlier messages…"
                if self._loading_older
                else ("↑ earlier messages load as you scroll up")
            )
        elif (
            facts.folded
            and facts.latest is not None
            and span is not None
            and not span.compacted
            and self._entries
            and self._entries[0].key == item_key(facts.latest)
        ):
            text = (
                f"▸ {plural(span.covered, 'earlier message')} folded into the summary below · "
                "f shows them"
            )
            style = self._style("conversation--fold")
            meta = {"conversation_fold": 1}
        elif self.session is not None:
            text = f"start of the session · {plural(self.session.message_count, 'message')}"
            if facts.latest is not None and span is not None and not span.compacted:
                text += " · faded = summarised (f folds)"
        else:
            text = ""
        content = Content(text).truncate(max(0, width - GUTTER), ellipsis=True)
        strip = Strip(
            [Segment(" " * GUTTER, base), Segment(content.plain, style)]
        ).adjust_cell_length(width, base)
        return strip.apply_meta(meta) if meta else strip

    def _empty_line(self, y: int, width: int, base: Style) -> Strip:
        title, hint = self._empty
        lines: list[tuple[Content, str]] = [(Content(""), "conversation--empty-hint")]
        room = max(1, width - 4)
        for part in Content(title).wrap(room):
            lines.append((part, "conversation--empty-title"))
        if hint:
            lines.append((Content(""), "conversation--empty-hint"))
            for paragraph in hint.split("\n"):
                for part in Content(paragraph).wrap(room):
                    lines.append((part, "conversation--empty-hint"))
        if y >= len(lines):
            return Strip.blank(width, base)
        content, component = lines[y]
        style = self._style(component)
        return Strip([Segment("  ", base), Segment(content.plain, style)]).adjust_cell_length(
            width, base
        )

    def region_of(self, index: int) -> Region:
        """Where an entry is in virtual coordinates (for tests)."""
        self._recompute()
        return Region(
            0, self._tops[index], self.scrollable_content_region.width, self._entries[index].height
        )
