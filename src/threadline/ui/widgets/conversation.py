"""The conversation pane: a session's timeline drawn line by line, newest page first.

No widget per message. The window of timeline items (paging, the fold, merging, the cursor)
is `ui.timeline.TimelineWindow`'s; this view lays its entries out in lines, draws each one
to Strips only when it comes near the screen (cached per item, width and state), guesses the
height of the others, shows the reply being written (its text and drawing are
`widgets.live`'s, the pace and extent of its repaints `ui.live_stream`'s), and handles keys.
A layout pass ("settle") runs before each paint that moved: it draws the entries around the
viewport and keeps the line at the top of the screen where it was while heights above it are
refined or a page is prepended, so nothing jumps. Opening a session draws its last screen
first.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

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
from threadline.models import Message, Session, Summary, TimelineItem
from threadline.ui.format import plural
from threadline.ui.live_stream import LivePace
from threadline.ui.notices import notify_error
from threadline.ui.timeline import (
    FOLD_MIN,
    AroundFn,
    BlockState,
    ItemKey,
    SummarySource,
    TimelineFn,
    TimelineWindow,
    expandable,
    item_key,
)
from threadline.ui.widgets.rows import message_line, message_lines

if TYPE_CHECKING:
    from threadline.ui.widgets.blocks import BlockStyles
    from threadline.ui.widgets.live import LiveReply

__all__ = ["FOLD_MIN", "ConversationView"]

FOUND_CONTEXT = 2  # lines shown above a message opened from a search hit
GUTTER = 2
BANNER = 2
DRAWN_ITEMS = 100  # items whose drawing is kept (a few screens' worth, whatever their size)
PREFETCH_SLICE = 0.008  # seconds of drawing the entries near the screen between two looks at input
DRAWN_LINES = 300  # screen lines kept (gutter and meta joined): a few screens


# The drawing of entries (blocks, the live reply, Markdown and code) is imported when a session
# is first drawn, not before the first frame: at start-up the pane shows a hint.


def render_block(*args: Any, **kwargs: Any) -> list[Strip]:
    """widgets.blocks.render_block (a name of this module: tests count the drawings)."""
    from threadline.ui.widgets.blocks import render_block as draw

    return draw(*args, **kwargs)


# (entry key, line offset in it) at the top of the screen (negative: the banner above it);
# a None key: the first entry.
Anchor = tuple[ItemKey | None, int]


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
        "conversation--tool",
        "conversation--thinking",
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
        & > .conversation--tool { color: $text-secondary; }
        & > .conversation--thinking { color: $text-muted; text-style: italic; }
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
            tooltip="Expand or collapse the selected block: a summary, an imported reply's tool "
            "calls (their input), a tool's output, injected context",
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
        self.window = TimelineWindow()
        self.show_meta = False
        self.writable = False  # the composer can write here (changes the empty-session hint)
        # The layout: the top line of each entry (and the end), for the entries as they were
        # when it was made; recomputed when `_dirty` (the anchor is taken from it before).
        self._keys: list[ItemKey] = []
        self._tops: list[int] = [BANNER]
        self._dirty = False
        self._follow = True
        self._settling = False
        self._settle_scheduled = False
        self._prefetch_scheduled = False
        self._cache: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(DRAWN_ITEMS)
        self._line_cache: LRUCache[tuple[object, ...], tuple[list[Strip], Strip]] = LRUCache(
            DRAWN_LINES
        )
        self._styles: BlockStyles | None = None
        self._part_styles: dict[tuple[str, bool], Style] = {}
        self._empty: tuple[str, str] = ("", "")
        self._width = 0
        self._live: LiveReply | None = None
        self._pace = LivePace()  # the live reply's repaints

    # ------------------------------------------------------------------ the window

    @property
    def summaries(self) -> SummarySource | None:
        """Where the window asks about summaries (set by the screen once the store is open)."""
        return self.window.summaries

    @summaries.setter
    def summaries(self, source: SummarySource | None) -> None:
        self.window.summaries = source

    @property
    def session(self) -> Session | None:
        return self.window.session

    @property
    def items(self) -> list[TimelineItem]:
        return self.window.items

    @property
    def cursor(self) -> int | None:
        return self.window.cursor

    @property
    def cursor_item(self) -> TimelineItem | None:
        return self.window.cursor_item

    @property
    def found(self) -> ItemKey | None:
        """The item opened from a search hit (marked until the cursor moves)."""
        return self.window.found

    @property
    def has_older(self) -> bool:
        return self.window.has_older

    @property
    def has_newer(self) -> bool:
        return self.window.has_newer

    @property
    def folded(self) -> bool:
        """The messages the latest summary stands for are left out (the summary stands in)."""
        return self.window.folded

    @property
    def latest_summary(self) -> Summary | None:
        return self.window.latest_summary

    @property
    def live(self) -> LiveReply | None:
        """The reply being streamed into the view, if any."""
        return self._live

    def item_state(self, index: int) -> BlockState:
        """How the entry at `index` is drawn (faded, expanded, marked…)."""
        return self.window.state(index, self.show_meta)

    # ------------------------------------------------------------------ opening

    def show_empty(self, title: str, hint: str = "") -> None:
        """Show a message instead of a conversation (texts already safe)."""
        self.window.clear()
        self._live = None
        self._empty = (title, hint)
        self._replaced()
        self._update_virtual_size()
        self.refresh()

    async def open(self, session: Session, source: TimelineFn) -> None:
        """Show `session`: fetch its newest page and draw its last screen first."""
        try:
            if not await self.window.open(session, source):
                return
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return
        self._live = None  # a reply streaming here is shown again by the turn runner
        self._cache.clear()
        self.call_after_refresh(self._warm_lexers)  # after the last screen's paint
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
        self._replaced()
        self._settle()
        self.refresh()
        self.post_message(self.Loaded())

    async def open_at(
        self,
        session: Session,
        source: TimelineFn,
        around: AroundFn,
        message_id: int,
        target: ItemKey,
    ) -> bool:
        """Show `session` around one item, select it and mark it (see TimelineWindow.open_at).
        Returns False when the item is no longer there (the nearest one is selected)."""
        try:
            found = await self.window.open_at(session, source, around, message_id, target)
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return False
        if found is None:
            return False
        self._live = None
        self._cache.clear()
        self._empty = ("No messages left in this session.", "")
        self._follow = False
        self._replaced()
        cursor = self.window.cursor
        if cursor is None:
            self._settle()
        else:
            context = min(FOUND_CONTEXT, max(0, self.scrollable_content_region.height // 4))
            self._settle((self.window.entries[cursor].key, -context))
        self.refresh()
        self.post_message(self.Loaded())
        return found

    async def _jump_to_start(self) -> None:
        """Replace the window with the first page (folded: from the latest summary)."""
        try:
            if not await self.window.jump_to_start():
                return
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return
        self._follow = False
        self._replaced()
        self._settle((None, -BANNER))
        self.refresh()

    async def _jump_to_end(self) -> None:
        session, source = self.window.session, self.window.source
        if session is not None and source is not None:
            await self.open(session, source)

    def set_session(self, session: Session) -> None:
        """Update the session record (status, title) without reloading the timeline."""
        if self.window.set_session(session):
            self.refresh_lines(0, BANNER)  # "start of the session · N messages"
            if any(entry.height is None for entry in self.window.entries):
                self._changed()  # an unfinished reply's mark depends on the status
                self.refresh()

    async def refresh_tail(self) -> None:
        """Merge what changed at the end of the session (new or still-streaming messages, and
        a summary written meanwhile, which takes its place inside the window)."""
        outcome = await self.window.refresh_tail(following=self._follow)
        if outcome.reopened:
            self._follow = True
            self._cache.clear()
            self._replaced()
            self._settle()
            self.refresh()
        elif outcome.changed:
            anchor = self._anchor()
            self._changed()
            self._settle(anchor)
            self.refresh()

    # ------------------------------------------------------------------ turns written here

    async def append_items(self, items: list[TimelineItem]) -> None:
        """Show items this app just wrote at the end of the open session, and follow the end.

        An item already in the window (same id) is replaced. When the window does not reach
        the end of the session (after `home`), the newest page is loaded instead.
        """
        replacing = self.window.has_newer
        if not await self.window.append(items):
            return
        if replacing:
            self._cache.clear()
            self._replaced()
        self._changed()
        self._follow = True
        self._settle()
        self.refresh()

    async def stream_begin(self, message: Message, text: str = "") -> None:
        """Show `message` (a reply row just written) as the live reply; `text` is what has
        arrived so far. Deltas follow with `stream_append`."""
        if not self.window.shows(message.session_id):
            return
        from threadline.ui.widgets.live import LiveReply

        live = LiveReply(message.model_copy(update={"content": ""}))
        if text:
            live.append(text)
        # Its header shows now; the text from the first repaint on (a reply that is over
        # within 1/LIVE_FPS s is drawn once, finished).
        self._pace = LivePace(painted=time.monotonic())
        self._live = live
        await self.append_items([live.message])
        self.window.live = live.key

    def stream_append(self, text: str) -> None:
        """More text of the live reply; the view repaints at most LIVE_FPS times a second (less
        when drawing is slow), never once per token."""
        live = self._live
        if live is None:
            return
        live.append(text)
        delay = self._pace.arrived(live.render_seconds, time.monotonic())
        if delay is None:
            return
        if delay > 0.001:
            self.set_timer(delay, self._paint_live, name="live reply")
        else:
            self.call_later(self._paint_live)

    def _paint_live(self) -> None:
        """Draw the live reply again: only its growing end is drawn anew; only its own lines
        are repainted unless it grew (then, following the end, the screen scrolls)."""
        live = self._live
        if live is None:
            return
        pace = self._pace
        pace.next_frame()
        index = self.window.index_of(live.key)
        if index is None:
            return
        old_height = self.window.entries[index].height or 0
        drawn = len(self._strips(index))
        pace.painted = time.monotonic()
        self._recompute()
        repaint = pace.repaint(
            live.stable_lines, self._tops[index], drawn, old_height, self._tops[-1]
        )
        if not repaint.grew:
            self.refresh_lines(repaint.start, repaint.count)
            return
        self._update_virtual_size()
        if self._follow:
            self._set_scroll(self.max_scroll_y)  # the screen scrolls: all of it is repainted
        else:
            self.refresh_lines(repaint.start, repaint.count)

    async def stream_end(self, message: Message) -> None:
        """The reply ended (finished, failed or cancelled): draw its final form (added at the
        end if it never streamed, e.g. an error before the first token)."""
        live = self._live
        if live is not None and live.key == item_key(message):
            self._live = None
        else:
            live = None
        anchor = self._anchor()
        at = await self.window.finish(message)
        if at is None:
            return
        entry = self.window.entries[at]
        if live is not None:
            # Its finished blocks are drawn already: only the last one is drawn again.
            width, state = self._content_width(), self.item_state(at)
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
                self._cache[(entry.key, entry.version, width, state)] = final
        self._changed()
        self._settle(anchor)
        self.refresh()

    # ------------------------------------------------------------------ the fold and toggles

    def toggle_fold(self) -> str | None:
        """Fold away or show (faded) what the latest summary stands for; returns why not."""
        anchor = self._anchor()
        outcome = self.window.toggle_fold()
        if outcome.problem:
            return outcome.problem
        if outcome.jump:
            self.run_worker(self._jump_to_start(), group="conversation-jump", exclusive=True)
        else:
            self._changed()
            self._settle(anchor if self.window.folded else None)
        self.refresh()
        return None

    def toggle_meta(self) -> None:
        self.show_meta = not self.show_meta
        self._relayout_window()

    def toggle_thinking(self) -> bool:
        """Show or hide the reasoning of imported replies; False when none is in the window."""
        if not self.window.toggle_thinking():
            return False
        self._relayout_window()
        return True

    def toggle_summary(self, index: int | None = None) -> bool:
        """Expand or collapse a block (the cursor's, or the one at `index`): a summary, an
        imported reply's tool calls, a tool's output, injected context."""
        index = self.window.cursor if index is None else index
        if index is None:
            return False
        anchor = self._anchor()
        if not self.window.toggle(index):
            return False
        self._changed()
        self._settle(anchor)
        self._scroll_entry_into_view(index)
        self.refresh()
        return True

    # ------------------------------------------------------------------ keys

    def action_scroll_lines(self, delta: int) -> None:
        self.scroll_to(y=self.scroll_y + delta, animate=False)

    def action_scroll_pages(self, delta: int) -> None:
        page = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_y + delta * page, animate=False)

    def action_first(self) -> None:
        if self.window.has_older:
            self.run_worker(self._jump_to_start(), group="conversation-jump", exclusive=True)
        else:
            self.scroll_to(y=0, animate=False)
            if self.window.entries:
                self._set_cursor(0)

    def action_last(self) -> None:
        if self.window.has_newer:
            self.run_worker(self._jump_to_end(), group="conversation-jump", exclusive=True)
        else:
            self._follow = True
            self._settle()
            if self.window.entries:
                self._set_cursor(len(self.window.entries) - 1)

    def action_cursor(self, delta: int) -> None:
        entries = self.window.entries
        if not entries:
            return
        cursor = self.window.cursor
        if cursor is None or not self._is_visible(cursor):
            self._set_cursor(self._first_visible() if delta > 0 else self._last_visible())
            return
        target = cursor + delta
        if target < 0:
            self.scroll_to(y=0, animate=False)  # brings the older page in
            return
        self._set_cursor(min(target, len(entries) - 1))

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
        from threadline.ui.widgets.blocks import code_blocks

        blocks = code_blocks(item.content)
        if not blocks:
            self.app.notify("This message has no code blocks.", severity="warning")
            return
        self.app.copy_to_clipboard("\n\n".join(blocks))
        lines = sum(block.count("\n") + 1 for block in blocks)
        self.app.notify(f"Copied {plural(len(blocks), 'code block')} ({plural(lines, 'line')}).")

    def _set_cursor(self, index: int, scroll: bool = True) -> None:
        old = self.window.cursor
        if self.window.select(index):
            self.refresh()  # the search mark went
        if scroll:
            self._scroll_entry_into_view(index)
        if old is not None and old != index:
            self._refresh_entry(old)
        self._refresh_entry(index)

    def _refresh_entry(self, index: int) -> None:
        if 0 <= index < len(self.window.entries):
            self._recompute()
            self.refresh_lines(self._tops[index], self._tops[index + 1] - self._tops[index])

    def _scroll_entry_into_view(self, index: int) -> None:
        self._strips(index)
        self._recompute()
        top, bottom = self._tops[index], self._tops[index + 1]
        view = max(1, self.scrollable_content_region.height)
        y = int(self.scroll_y)
        if top < y or bottom - top > view:
            target = top
        elif bottom > y + view:
            target = bottom - view
        else:
            return
        self._follow = False
        self.scroll_to(y=target, animate=False, immediate=True, force=True)

    def _is_visible(self, index: int) -> bool:
        self._recompute()
        y, view = int(self.scroll_y), self.scrollable_content_region.height
        return self._tops[index] < y + view and self._tops[index + 1] > y

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
        index = self.window.index_of(tuple(key))
        if index is not None:
            self._set_cursor(index, scroll=False)
            if expandable(self.window.entries[index].item):
                self.toggle_summary(index)

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style()
        entries = self.window.entries
        if not entries:
            title, hint = self._empty
            lines = message_lines(title, hint, width - 4)
            return message_line(
                lines,
                y,
                width,
                2,
                base,
                self._style("conversation--empty-title"),
                self._style("conversation--empty-hint"),
            )
        line = int(self.scroll_y) + y
        if line < BANNER:
            return self._banner_line(line, width, base)
        self._recompute()
        if line >= self._tops[-1]:
            return Strip.blank(width, base)
        index = self._index_at(line)
        entry = entries[index]
        was_exact, was_height = entry.exact, entry.height
        strips = self._strips(index)
        # Measured for the first time, or drawn again at another height (a new version of the
        # item, a finished reply drawn from the store): the layout and the scroll follow.
        if (not was_exact or entry.height != was_height) and not self._settle_scheduled:
            self._settle_scheduled = True
            self.call_after_refresh(self._settle)
        offset = line - self._tops[index]
        if not 0 <= offset < len(strips):
            return Strip.blank(width, base)
        is_cursor = index == self.window.cursor and self.has_focus
        is_found = entry.key == self.window.found
        # Whole screen lines are kept too: a reply streaming at the bottom scrolls every line
        # on screen, and joining gutters and meta costs more than the compositor's own work.
        line_key = (id(strips), offset, is_cursor, is_found, width)
        cached = self._line_cache.get(line_key)
        if cached is not None and cached[0] is strips:
            return cached[1]
        drawn = self._screen_line(index, strips, offset, width, base, is_cursor, is_found)
        self._line_cache[line_key] = (strips, drawn)
        return drawn

    def _screen_line(
        self,
        index: int,
        strips: list[Strip],
        offset: int,
        width: int,
        base: Style,
        is_cursor: bool,
        is_found: bool,
    ) -> Strip:
        """A line of an entry as the screen shows it: gutter, text, padding, and the entry's
        key as meta (for clicks), made as one Strip (each costs a few caches of its own)."""
        entry = self.window.entries[index]
        strip = strips[offset]
        segments: list[Segment]
        item = entry.item
        spacer = offset == len(strips) - 1 and (
            not isinstance(item, Message) or _has_spacer(item, self.window.state(index))
        )
        if spacer:
            segments = [Segment(" " * GUTTER, base)]
        elif is_cursor or is_found:
            kind = "found" if is_found else "cursor"
            segments = [Segment("▌ ", self._part_style(f"conversation--{kind}-gutter"))]
            if offset == 0:
                header = self._part_style(f"conversation--{kind}-header")
                strip = Strip(
                    list(
                        Segment.apply_style(iter(strip), post_style=Style(bgcolor=header.bgcolor))
                    ),
                    strip.cell_length,
                )
        else:
            role = "summary" if isinstance(entry.item, Summary) else entry.item.role
            style = self._part_style(f"conversation--gutter-{role}")
            if self.window.covered(index):
                style = self._part_style(f"conversation--gutter-{role}", faded=True)
            segments = [Segment("▎ ", style)]
        pad = width - GUTTER - strip.cell_length
        if pad < 0:  # narrower than drawn (a resize under way): cut
            strip = strip.crop(0, max(0, width - GUTTER))
            pad = width - GUTTER - strip.cell_length
        segments += list(strip)
        if pad:
            segments.append(Segment(" " * pad, base))
        meta = Style.from_meta({"conversation_entry": entry.key})
        return Strip(Segment.apply_style(segments, meta), width)

    def _part_style(self, component: str, faded: bool = False) -> Style:
        """A component's style (cached until the styles change), or its faded form."""
        key = (component, faded)
        style = self._part_styles.get(key)
        if style is None:
            style = self._style(component)
            if faded:
                from threadline.ui.widgets.blocks import fade_style

                style = fade_style(style, self._style())
            self._part_styles[key] = style
        return style

    def _banner_line(self, line: int, width: int, base: Style) -> Strip:
        if line != 0:
            return Strip.blank(width, base)
        window = self.window
        facts = window.facts
        span = facts.latest_span
        meta: dict[str, object] = {}
        style = self._style("conversation--banner")
        if window.has_older:
            text = (
                "↑ loading earlier messages…"
                if window.loading_older
                else ("↑ earlier messages load as you scroll up")
            )
        elif (
            facts.folded
            and facts.latest is not None
            and span is not None
            and not span.compacted
            and window.entries
            and window.entries[0].key == item_key(facts.latest)
        ):
            text = (
                f"▸ {plural(span.covered, 'earlier message')} folded into the summary below · "
                "f shows them"
            )
            style = self._style("conversation--fold")
            meta = {"conversation_fold": 1}
        elif window.session is not None:
            text = f"start of the session · {plural(window.session.message_count, 'message')}"
            if facts.latest is not None and span is not None and not span.compacted:
                text += " · faded = summarised (f folds)"
        else:
            text = ""
        content = Content(text).truncate(max(0, width - GUTTER), ellipsis=True)
        strip = Strip(
            [Segment(" " * GUTTER, base), Segment(content.plain, style)]
        ).adjust_cell_length(width, base)
        return strip.apply_meta(meta) if meta else strip

    def region_of(self, index: int) -> Region:
        """Where an entry is in virtual coordinates."""
        self._recompute()
        top = self._tops[index]
        return Region(0, top, self.scrollable_content_region.width, self._tops[index + 1] - top)

    def _block_styles(self) -> BlockStyles:
        if self._styles is None:
            from threadline.ui.widgets.blocks import BlockStyles

            part = self._style
            dark = self.app.current_theme.dark if self.app.current_theme else True
            self._styles = BlockStyles(
                base=part(),
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
                tool=part("conversation--tool"),
                thinking=part("conversation--thinking"),
            )
        return self._styles

    @property
    def block_styles(self) -> BlockStyles:
        """The Rich styles items are drawn with (from the component classes: themes apply)."""
        return self._block_styles()

    def _style(self, *components: str) -> Style:
        """The Rich style of these component classes over the widget's own (themes apply)."""
        return self.get_visual_style(*components).rich_style

    def component_style(self, *components: str) -> Style:
        return self._style(*components)

    def _strips(self, index: int) -> list[Strip]:
        """The drawn lines of an entry (cached); makes its height exact."""
        entry = self.window.entries[index]
        width = self._content_width()
        state = self.item_state(index)
        live = self._live
        if live is not None and entry.key == live.key:
            # Drawn from its chunks, once per repaint (not in the LRU: it changes all the time).
            drawn = self._pace.drawn(
                (width, state),
                lambda: live.render(
                    width,
                    state,
                    self._block_styles(),
                    self.app.console,
                    self.app.console_options,
                    self._clock(),
                ),
            )
        else:
            key = (entry.key, entry.version, width, state)
            cached = self._cache.get(key)
            if cached is None:
                cached = render_block(
                    entry.item,
                    width,
                    state,
                    self._block_styles(),
                    self.app.console,
                    self.app.console_options,
                    self._clock(),
                )
                self._cache[key] = cached
            drawn = cached
        if entry.height != len(drawn):
            entry.height = len(drawn)
            self._dirty = True
        entry.exact = True
        return drawn

    # ------------------------------------------------------------------ layout

    def _content_width(self) -> int:
        return max(4, self.scrollable_content_region.width - GUTTER - 1)

    def _replaced(self) -> None:
        """The window holds other entries: nothing of the old layout applies."""
        self._keys = []
        self._tops = [BANNER]
        self._dirty = True
        self._pace.forget()

    def _changed(self) -> None:
        """Entries came, went or changed (their layout slots say which)."""
        self._dirty = True

    def _recompute(self) -> None:
        """Lay the entries out again (estimating the height of those not measured)."""
        if not self._dirty:
            return
        width = self._content_width()
        tops = [BANNER]
        total = BANNER
        keys = []
        for i, entry in enumerate(self.window.entries):
            if entry.height is None:
                from threadline.ui.widgets.blocks import estimate_height

                entry.height = estimate_height(entry.item, width, self.item_state(i))
                entry.exact = False
            total += entry.height
            tops.append(total)
            keys.append(entry.key)
        self._tops, self._keys = tops, keys
        self._dirty = False

    def _index_at(self, line: int) -> int:
        """The entry drawn at virtual line `line` (>= BANNER)."""
        self._recompute()
        last = len(self.window.entries) - 1
        return max(0, min(last, bisect.bisect_right(self._tops, line) - 1))

    def _anchor(self) -> Anchor | None:
        """(entry key, line offset within it) at the top of the screen, from the layout the
        screen was drawn with; None when following the end."""
        if self._follow or not self.window.entries:
            return None
        top = int(self.scroll_y)
        if not self._keys:
            return (None, top - BANNER)
        if top < BANNER:  # the banner, above what is the first entry now
            return (self._keys[0], top - BANNER)
        index = max(0, min(len(self._keys) - 1, bisect.bisect_right(self._tops, top) - 1))
        return (self._keys[index], top - self._tops[index])

    def _settle(self, anchor: Anchor | None = None) -> None:
        """Draw the entries on screen and put the scroll position where it belongs (the
        entries around the screen are drawn after the paint: `_prefetch`)."""
        self._settle_scheduled = False
        entries = self.window.entries
        if not entries:
            self._update_virtual_size()
            return
        height = max(1, self.scrollable_content_region.height)
        if anchor is None and not self._follow:
            anchor = self._anchor()
        if anchor is None:
            # Bottom-up: the last screen (and one more above it) is drawn first.
            covered, index = 0, len(entries) - 1
            while index >= 0 and covered < 2 * height:
                covered += len(self._strips(index))
                index -= 1
            self._update_virtual_size()
            self._set_scroll(self.max_scroll_y)
        else:
            key, offset = anchor
            found = 0 if key is None else self.window.index_of(key)
            if found is None:  # it went (folded away): the top
                found, offset = 0, -BANNER
            index = max(0, min(found, len(entries) - 1))
            # Only the screen is drawn now; the screens around it are drawn after the paint,
            # a few entries at a time (`_prefetch`), so a page-up finds them drawn.
            covered, i = -offset, index
            while i < len(entries) and covered < height:
                covered += len(self._strips(i))
                i += 1
            self._recompute()
            offset = min(offset, (entries[index].height or 1) - 1)
            self._update_virtual_size()
            self._set_scroll(self._tops[index] + offset)
        self._maybe_load_more()
        if not self._prefetch_scheduled:
            self._prefetch_scheduled = True
            self.call_after_refresh(self._prefetch)

    def _unmeasured_near(self) -> int | None:
        """The nearest entry not drawn yet: above the screen within one screen, then on it
        and within two screens below it."""
        self._recompute()
        entries = self.window.entries
        if not entries:
            return None
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        first = self._index_at(max(BANNER, top))
        i = first - 1
        while i >= 0 and self._tops[i + 1] > top - height:
            if not entries[i].exact:
                return i
            i -= 1
        i = first
        while i < len(entries) and self._tops[i] < top + 3 * height:
            if not entries[i].exact:
                return i
            i += 1
        return None

    def _prefetch(self) -> None:
        """Draw the entries near the screen that are not drawn yet, for at most PREFETCH_SLICE
        seconds, keeping what is on screen where it is; then give the loop back (a key press
        waits for one slice at most) and go on."""
        self._prefetch_scheduled = False
        index = self._unmeasured_near()
        if index is None:
            return
        anchor = self._anchor()
        started = time.perf_counter()
        while index is not None:
            self._strips(index)
            if time.perf_counter() - started > PREFETCH_SLICE:
                break
            self._recompute()
            index = self._unmeasured_near()
        if self._dirty:
            self._settle(anchor)  # heights above the screen changed: keep its top line
        if index is not None and not self._prefetch_scheduled:
            self._prefetch_scheduled = True
            self.call_later(self._prefetch)

    def _relayout_window(self) -> None:
        """Heights are stale (width or a global state changed): re-estimate, keep the anchor."""
        anchor = self._anchor()
        for entry in self.window.entries:
            entry.relayout()
        self._changed()
        self._settle(anchor)
        self.refresh()

    def _update_virtual_size(self) -> None:
        self._recompute()
        total = self._tops[-1] if self.window.entries else 0
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
        if self._settling or not self.window.entries:
            return
        self._follow = not self.window.has_newer and round(new_value) >= self.max_scroll_y
        self._settle()

    def _on_resize(self, event: events.Resize) -> None:
        width = self._content_width()
        if width != self._width:
            self._width = width
            self._styles = None
            self._relayout_window()
        else:
            self._settle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._part_styles = {}
        self._cache.clear()
        self._line_cache.clear()
        if self.window.entries:
            self._relayout_window()

    # ------------------------------------------------------------------ paging

    def _maybe_load_more(self) -> None:
        height = max(1, self.scrollable_content_region.height)
        y = int(self.scroll_y)
        if y < 2 * height:
            read = self.window.load_older()
            if read is not None:
                self.run_worker(self._older(read), group="conversation-older", exit_on_error=False)
        if y > self.max_scroll_y - 2 * height:
            read = self.window.load_newer()
            if read is not None:
                self.run_worker(self._newer(read), group="conversation-newer", exit_on_error=False)

    async def _older(self, read) -> None:  # noqa: ANN001
        try:
            added = await read
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return
        if added is None:
            return
        self._warm_lexers()
        anchor = self._anchor()
        self._changed()
        # The new items are above the screen: paint first; they are drawn (keeping the
        # anchor) after it, a few at a time, before they can scroll into view (`_prefetch`).
        self._settle(anchor)
        self.refresh()
        self.post_message(self.Loaded())

    def _warm_lexers(self) -> None:
        """Build, on a thread, the lexers of the code blocks in the window not drawn yet (a
        lexer's first use costs up to a quarter of a second: not in a page-up's paint)."""
        from threadline.ui.code_lines import fence_languages, warm_lexers

        languages: set[str] = set()
        for entry in self.window.entries:
            if entry.height is None or not entry.exact:
                languages |= fence_languages(entry.item.content)
        if languages:
            self.run_worker(
                partial(warm_lexers, languages), thread=True, group="lexers", exit_on_error=False
            )

    async def _newer(self, read) -> None:  # noqa: ANN001
        try:
            added = await read
        except ThreadlineError as exc:
            notify_error(self.app, exc)
            return
        if added is None:
            return
        anchor = self._anchor()
        self._changed()
        self._settle(anchor)
        self.refresh()


def _has_spacer(message: Message, state: BlockState) -> bool:
    from threadline.ui.message_layout import has_spacer

    return has_spacer(message, state)
