"""The conversation's window of timeline items, kept apart from drawing (no Textual here).

A session can hold thousands of messages; the conversation pane holds a window of them: a page
read from the store, grown by older or newer pages as one scrolls, bounded (pages far from the
screen are dropped and read again when scrolled back to). This module keeps that window and its
rules, as toolong keeps a log file's lines apart from the widget that draws them:

- paging in both directions (keyset, by timeline position) and opening around one item;
- the fold: the messages the latest summary stands for are left out (the summary stands in)
  when there are many of them, shown faded when not, and `f` switches;
- merging what changed at the end of the session (new items, items still streaming, a summary
  written meanwhile that takes its place inside the window);
- the cursor and the search mark, which follow their items when entries come and go;
- one staleness token: every read remembers the token it started under, and what it read is
  dropped if the window was replaced (or began to be) meanwhile.

The view (`widgets/conversation.py`) lays entries out in lines and draws them; each `Entry`
carries a layout slot (`height`, `exact`) that this module only ever invalidates.

Items are drawn as blocks; a block can have parts that open and close (a summary's body; an
imported message's tool call inputs, tool output, injected context). Which parts are open is
kept here per item (`toggle`), and reaches the drawing through `BlockState`, which is part of
the drawing's cache key.

Messages imported from other tools (threadline.transcript) are paired here: a reply's tool call
shows the answer of the tool message in the window that answers it ("⚙ Bash  pytest -q  → exit
0"), and that tool message is drawn as one tight line of output under it. Thinking is shown or
hidden for the whole window (`show_thinking`).
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from threadline.models import Message, Session, Summary, SummarySpan, TimelineItem
from threadline.transcript import calls_of, message_kind, pieces, result_of, result_summary

Position = tuple[int, int]
ItemKey = tuple[str, int]
# (before, after, limit) -> up to `limit` items before `before` (newest last) or after `after`.
TimelineFn = Callable[[Position | None, Position | None, int], Awaitable[list[TimelineItem]]]
# (message id, radius) -> up to `radius` items before the message, it, and `radius` after.
AroundFn = Callable[[int, int], Awaitable[list[TimelineItem]]]

PAGE_SIZE = 100  # the first page of a session, and jumps
OLDER_PAGE = 50  # each page added while scrolling: small, so each costs little
TAIL_SIZE = 40  # items re-read from the end when another process changed the session
AROUND_RADIUS = 50  # items each side of a message opened from a search hit
# The window never holds more: a page added at one end drops entries from the other end
# (read again when scrolled back to), so memory stays flat however far one scrolls.
MAX_ITEMS = 200
# The messages the latest summary stands for are folded away (the summary shows in their
# place) when there are more than this many of them; fewer are shown, faded.
FOLD_MIN = 10
# The part of a block that `toggle` opens by default: a summary's whole text.
BODY = "body"


def item_key(item: TimelineItem) -> ItemKey:
    """An item's identity in the window: ("m", message id) or ("s", summary id)."""
    return ("m", item.id) if isinstance(item, Message) else ("s", item.id)


def order_key(item: TimelineItem) -> tuple[int, int, int]:
    """Timeline order (as the store sorts): position, then id."""
    pos, sub = item.position
    return (pos, sub, item.id)


class SummarySource(Protocol):
    """What the window asks about a session's summaries (the Store does this)."""

    async def latest_summary(self, session_id: str) -> Summary | None: ...

    async def summary_spans(
        self, session_id: str, summaries: Sequence[Summary]
    ) -> dict[int, SummarySpan]: ...


@dataclass(frozen=True)
class BlockState:
    """What changes how one item is drawn (part of the drawing's cache key)."""

    expanded: bool = False  # the block's BODY part is open (a summary shown whole)
    show_meta: bool = False
    mark: str | None = None  # "interrupted" | "streaming" | "error" | "cancelled" | None
    # The latest summary stands for this item: drawn faded.
    covered: bool = False
    # For a summary: where its range sits in the session (None: not known).
    span: SummarySpan | None = None
    # Other parts of the block that are open, by name.
    open_parts: frozenset[str] = frozenset()
    # Imported messages: the model's reasoning is shown (else one line says it is there).
    show_thinking: bool = False
    # An imported reply: the answer of each of its calls that the window holds, by call id
    # (what `→` shows on the call's line).
    results: tuple[tuple[str, str], ...] = ()
    # An imported tool message: its call is in the window, drawn just above (so its line does
    # not repeat the tool's name); `tight`: the next entry is a tool message too (no spacer).
    paired: bool = False
    tight: bool = False


def expandable(item: TimelineItem) -> bool:
    """Whether the block has a body that `toggle` opens: a summary's whole text, an imported
    reply's call inputs, a tool's output, injected context."""
    if isinstance(item, Summary):
        return True
    kind = message_kind(item.payload)
    if kind in ("tool_result", "meta"):
        return True
    if kind == "info":
        return any(p.kind == "subagent" for p in pieces(item.content, item.payload))
    return kind == "reply" and bool(calls_of(item.payload))


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


@dataclass(eq=False)
class Entry:
    """One item of the window, and the view's layout slot for it."""

    item: TimelineItem
    key: ItemKey
    version: int = 0  # bumped when the item changes (drawings are cached by it)
    height: int | None = None  # lines it takes; None: not measured since it changed
    exact: bool = False  # `height` comes from a drawing, not an estimate

    def relayout(self) -> None:
        """Its drawing (not the item) changed: measure it again."""
        self.height = None
        self.exact = False


@dataclass(frozen=True)
class FoldOutcome:
    """What `toggle_fold` did: `problem` says why nothing changed; `jump` that the folded
    window must be read again from the latest summary (`jump_to_start`)."""

    problem: str | None = None
    jump: bool = False


@dataclass(frozen=True)
class TailOutcome:
    """What `refresh_tail` did: entries changed; the window was read again from the end."""

    changed: bool = False
    reopened: bool = False


class TimelineWindow:
    """The window of a session's timeline that the conversation pane shows."""

    def __init__(self, summaries: SummarySource | None = None) -> None:
        self.summaries = summaries
        self.session: Session | None = None
        self.source: TimelineFn | None = None
        self.entries: list[Entry] = []
        self.has_older = False
        self.has_newer = False
        self.cursor: int | None = None
        self.found: ItemKey | None = None  # the item opened from a search hit, marked
        self.facts = SummaryFacts()
        self.fold_choice: bool | None = None  # the user's f for this session (None: default)
        self.live: ItemKey | None = None  # the reply streaming here (ahead of the store)
        self.pages_loaded = 0
        self.show_thinking = False  # imported messages' reasoning shown (`t`)
        self._open: dict[ItemKey, frozenset[str]] = {}
        self._index: dict[ItemKey, int] | None = None
        # Imported tool calls and results in the window, by call id (built with _index).
        self._calls: dict[str, int] | None = None
        self._results: dict[str, str] = {}
        # The staleness token: bumped when a read that replaces the window begins and when
        # the window is replaced. A read applies only under the token it started with.
        self._token = 0
        self._older_token: int | None = None  # the token a running older-page read began at
        self._newer_token: int | None = None

    # ------------------------------------------------------------------ reading it

    @property
    def items(self) -> list[TimelineItem]:
        return [entry.item for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def cursor_item(self) -> TimelineItem | None:
        if self.cursor is None or not 0 <= self.cursor < len(self.entries):
            return None
        return self.entries[self.cursor].item

    @property
    def folded(self) -> bool:
        """The messages the latest summary stands for are left out (the summary stands in)."""
        return self.facts.folded

    @property
    def latest_summary(self) -> Summary | None:
        return self.facts.latest

    @property
    def loading_older(self) -> bool:
        return self._older_token == self._token

    @property
    def loading_newer(self) -> bool:
        return self._newer_token == self._token

    def shows(self, session_id: str) -> bool:
        return self.session is not None and self.session.id == session_id

    def index_of(self, key: ItemKey) -> int | None:
        if self._index is None:
            self._index = {entry.key: i for i, entry in enumerate(self.entries)}
        return self._index.get(key)

    def _pairs(self) -> tuple[dict[str, int], dict[str, str]]:
        """(entry index of each imported call, the answer of each call answered), by call id."""
        if self._calls is None:
            calls: dict[str, int] = {}
            results: dict[str, str] = {}
            for i, entry in enumerate(self.entries):
                item = entry.item
                if not isinstance(item, Message) or item.payload is None:
                    continue
                kind = message_kind(item.payload)
                if kind == "reply":
                    for call in calls_of(item.payload):
                        if call.id:
                            calls[call.id] = i
                elif kind == "tool_result":
                    result = result_of(item.content, item.payload)
                    if result is not None and result.call_id:
                        results[result.call_id] = result_summary(result)
            self._calls, self._results = calls, results
        return self._calls, self._results

    def _tool_call_index(self, index: int) -> int | None:
        """The entry holding the call that the tool message at `index` answers (above it)."""
        item = self.entries[index].item
        if not isinstance(item, Message) or message_kind(item.payload) != "tool_result":
            return None
        result = result_of(item.content, item.payload)
        if result is None or not result.call_id:
            return None
        at = self._pairs()[0].get(result.call_id)
        return at if at is not None and at < index else None

    def _is_tool(self, index: int) -> bool:
        item = self.entries[index].item
        return isinstance(item, Message) and message_kind(item.payload) == "tool_result"

    def covered(self, index: int) -> bool:
        """The latest summary stands for this entry (it is drawn faded)."""
        return self.facts.covers(self.entries[index].item)

    def state(self, index: int, show_meta: bool = False) -> BlockState:
        entry = self.entries[index]
        item = entry.item
        parts = self._open.get(entry.key, frozenset())
        results: tuple[tuple[str, str], ...] = ()
        paired = tight = False
        kind = message_kind(item.payload) if isinstance(item, Message) else None
        if kind == "reply" and isinstance(item, Message):
            answers = self._pairs()[1]
            results = tuple(
                (call.id, answers[call.id]) for call in calls_of(item.payload) if call.id in answers
            )
        elif kind == "tool_result":
            paired = self._tool_call_index(index) is not None
            tight = index + 1 < len(self.entries) and self._is_tool(index + 1)
        return BlockState(
            expanded=BODY in parts,
            show_meta=show_meta,
            mark=self.mark(index),
            covered=self.facts.covers(item),
            span=self.facts.spans.get(item.id) if isinstance(item, Summary) else None,
            open_parts=parts - {BODY},
            show_thinking=self.show_thinking and kind == "reply",
            results=results,
            paired=paired,
            tight=tight,
        )

    def mark(self, index: int) -> str | None:
        """How an unfinished reply is marked: still streaming (the session's last message,
        the session active), interrupted, or ended by an error or a cancel."""
        item = self.entries[index].item
        if not isinstance(item, Message) or item.complete:
            return None
        if item.stop_reason in ("error", "cancelled"):
            return item.stop_reason
        is_last = index == len(self.entries) - 1 and not self.has_newer
        if is_last and self.session is not None and self.session.status == "active":
            return "streaming"
        return "interrupted"

    def is_open(self, index: int, part: str = BODY) -> bool:
        return part in self._open.get(self.entries[index].key, frozenset())

    # ------------------------------------------------------------------ opening

    def clear(self) -> None:
        """No session: an empty window (reads still running are dropped)."""
        self._begin()
        self.session = None
        self.source = None
        self.live = None
        self.facts = SummaryFacts()
        self.found = None
        self._replace([])
        self.cursor = None
        self.has_older = self.has_newer = False

    async def open(self, session: Session, source: TimelineFn) -> bool:
        """Read `session`'s newest page; False when another open or jump began meanwhile.

        Raises ThreadlineError when the store fails (the window is then as it was)."""
        token = self._begin()
        choice = self.fold_choice if self.shows(session.id) else None
        facts = await self._summary_facts(session.id, choice)
        items, dropped, raw = await self._fetch(source, session.id, facts, None, None, PAGE_SIZE)
        if token != self._token:
            return False
        self._start(session, source, facts, choice)
        self._replace(items)
        self.has_older = raw == PAGE_SIZE and not dropped
        self.has_newer = False
        self.cursor = len(self.entries) - 1 if self.entries else None
        return True

    async def open_at(
        self,
        session: Session,
        source: TimelineFn,
        around: AroundFn,
        message_id: int,
        target: ItemKey,
    ) -> bool | None:
        """Read `session` around one item, select it and mark it (a search hit, a memory's
        source message).

        `target` is the item's key: ("m", message id), or ("s", summary id) for a summary, whose
        `message_id` is then its last message; a summary opens expanded. When the item is among
        what the latest summary folds away, the range is shown (unfolded, faded) instead.
        Returns whether the item is there (if not, the nearest one is selected), or None when
        another open began meanwhile.
        """
        token = self._begin()
        choice = self.fold_choice if self.shows(session.id) else None
        sub = 1 if target[0] == "s" else 0
        facts = await self._summary_facts(session.id, choice, (message_id, sub, target[1]))
        raw = await around(message_id, AROUND_RADIUS)
        items = await self._visible(session.id, facts, raw)
        if token != self._token:
            return None
        self._start(session, source, facts, choice)
        if target[0] == "s":
            self._open[target] = frozenset({BODY})
        self._replace(items)
        # timeline_around: up to radius + 1 items up to the message, up to radius after it;
        # when the fold hid some of the first ones, the window starts at the latest summary.
        head = sum(1 for item in raw if item.position < (message_id, 1))
        hidden = len(raw) - len(items)
        self.has_older = head >= AROUND_RADIUS + 1 and not hidden
        self.has_newer = len(raw) - head >= AROUND_RADIUS
        index = self.index_of(target)
        found = index is not None
        if index is None and self.entries:
            index = min(max(0, head - hidden), len(self.entries) - 1)
        self.cursor = index
        self.found = target if found else None
        return found

    async def jump_to_start(self) -> bool:
        """Read the first page of the session (folded: starting at the latest summary);
        False when there is nothing to read or another open began meanwhile."""
        source, session, facts = self.source, self.session, self.facts
        if source is None or session is None:
            return False
        token = self._begin()
        start = (0, 0)
        if facts.folded and facts.latest is not None:
            start = (facts.latest.last_message_id, 0)
        items, _, raw = await self._fetch(source, session.id, facts, None, start, PAGE_SIZE)
        if token != self._token:
            return False
        self.found = None
        self._replace(items)
        self.has_older = False
        self.has_newer = raw == PAGE_SIZE
        self.cursor = 0 if self.entries else None
        return True

    def _start(
        self, session: Session, source: TimelineFn, facts: SummaryFacts, choice: bool | None
    ) -> None:
        self.session = session
        self.source = source
        self.live = None  # a reply streaming here is shown again by whoever streams it
        self.facts = facts
        self.fold_choice = choice
        self._open = {}
        self.found = None
        self.pages_loaded = 1

    def set_session(self, session: Session) -> bool:
        """The session record changed (status, title): True when it is the one shown."""
        if not self.shows(session.id):
            return False
        self.session = session
        self._relayout_unfinished()  # "writing…" or "interrupted" depends on its status
        return True

    # ------------------------------------------------------------------ paging

    def load_older(self) -> Awaitable[int | None] | None:
        """Start reading the page before the window (None: there is none to read, or it is
        being read). Awaited, the read adds it and returns how many entries came (None when
        the window was replaced meanwhile); entries beyond MAX_ITEMS go from the other end."""
        if self.source is None or self.session is None or not self.entries:
            return None
        if not self.has_older or self.loading_older:
            return None
        self._older_token = self._token
        return self._read_older(self._token)

    async def _read_older(self, token: int) -> int | None:
        session, source, facts = self.session, self.source, self.facts
        assert session is not None and source is not None
        try:
            first = self.entries[0].item.position
            items, dropped, raw = await self._fetch(
                source, session.id, facts, first, None, OLDER_PAGE
            )
            if token != self._token:
                return None
            added = self.prepend(items, complete=raw < OLDER_PAGE or dropped)
            self._trim_end()
            return added
        finally:
            if self._older_token == token:
                self._older_token = None

    def prepend(self, items: list[TimelineItem], complete: bool) -> int:
        """Add an older page above the window (`complete`: nothing is older)."""
        new = [Entry(i, item_key(i)) for i in items if self.index_of(item_key(i)) is None]
        self._insert(0, new)
        self.has_older = not complete and bool(new)
        self.pages_loaded += 1
        return len(new)

    def load_newer(self) -> Awaitable[int | None] | None:
        """Start reading the page after the window (see load_older)."""
        if self.source is None or self.session is None or not self.entries:
            return None
        if not self.has_newer or self.loading_newer:
            return None
        self._newer_token = self._token
        return self._read_newer(self._token)

    async def _read_newer(self, token: int) -> int | None:
        session, source, facts = self.session, self.source, self.facts
        assert session is not None and source is not None
        try:
            last = self.entries[-1].item.position
            items, _, raw = await self._fetch(source, session.id, facts, None, last, OLDER_PAGE)
            if token != self._token:
                return None
            new = [Entry(i, item_key(i)) for i in items if self.index_of(item_key(i)) is None]
            self._insert(len(self.entries), new)
            self.has_newer = raw == OLDER_PAGE
            self.pages_loaded += 1
            self._trim_start()
            return len(new)
        finally:
            if self._newer_token == token:
                self._newer_token = None

    def _trim_end(self) -> None:
        extra = len(self.entries) - MAX_ITEMS
        if extra > 0:
            self._remove(len(self.entries) - extra, len(self.entries))
            self.has_newer = True

    def _trim_start(self) -> None:
        extra = len(self.entries) - MAX_ITEMS
        if extra > 0:
            self._remove(0, extra)
            self.has_older = True

    # ------------------------------------------------------------------ the end of the session

    async def append(self, items: list[TimelineItem]) -> bool:
        """Items this app just wrote at the end of the open session (an item already in the
        window, same id, is replaced). When the window does not reach the end of the session,
        the newest page is read instead. False when nothing changed."""
        session, source = self.session, self.source
        if not items or source is None or session is None or not self.shows(items[0].session_id):
            return False
        if self.has_newer:
            return await self.open(session, source)
        was_last = self.cursor is None or self.cursor >= len(self.entries) - 1
        for item in items:
            at = self.index_of(item_key(item))
            if at is not None:
                self._update(at, item, force=True)
            else:
                self._insert(len(self.entries), [Entry(item, item_key(item))])
        if was_last and self.entries:
            self.cursor = len(self.entries) - 1
        self._relayout_unfinished()
        return True

    async def finish(self, message: Message) -> int | None:
        """A reply ended (finished, failed or cancelled): its entry takes the final message,
        or it is added at the end if it never streamed (an error before the first token).
        Returns its index; None when the window does not hold it (it does not reach the end
        of the session: the reply shows when scrolled to)."""
        if self.live == item_key(message):
            self.live = None
        if not self.shows(message.session_id):
            return None
        at = self.index_of(item_key(message))
        if at is not None:
            self._update(at, message, force=True)
            return at
        if self.has_newer or not await self.append([message]):
            return None
        return self.index_of(item_key(message))

    async def refresh_tail(self, following: bool) -> TailOutcome:
        """Merge what changed at the end of the session (new or still-streaming messages, and
        a summary written meanwhile, which takes its place inside the window). `following`:
        the view shows the end (the default fold may then apply to a new summary).

        A store error is ignored: the next refresh reads the tail again."""
        from threadline.errors import ThreadlineError

        session, source, facts = self.session, self.source, self.facts
        if source is None or session is None or self.has_newer:
            return TailOutcome()
        token = self._token
        try:
            items, _, raw = await self._fetch(source, session.id, facts, None, None, TAIL_SIZE)
        except ThreadlineError:
            return TailOutcome()
        if token != self._token or not items:
            return TailOutcome()
        entries = self.entries
        if entries and self.index_of(item_key(items[0])) is None and raw == TAIL_SIZE:
            if items[0].position > entries[-1].item.position:
                # More arrived than the tail holds: start again from the newest page.
                return TailOutcome(reopened=await self.open(session, source))
        changed = False
        last = order_key(entries[-1].item) if entries else (-1, -1, -1)
        inserts: list[TimelineItem] = []
        for item in items:
            key = item_key(item)
            if key == self.live:
                continue  # the stream being shown is ahead of its last checkpoint
            at = self.index_of(key)
            if at is not None:
                changed |= self._update(at, item)
            elif order_key(item) > last:
                self._insert(len(entries), [Entry(item, key)])
                changed = True
            elif entries and order_key(item) > order_key(entries[0].item):
                inserts.append(item)
        for item in inserts:
            keys = [order_key(entry.item) for entry in entries]
            self._insert(bisect.bisect_left(keys, order_key(item)), [Entry(item, item_key(item))])
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
            if self.fold_choice is not None:
                fold = self.fold_choice
            if fold and following:
                self._fold_window()
            changed = True
        if changed:
            self._relayout_unfinished()
        return TailOutcome(changed=changed)

    # ------------------------------------------------------------------ the fold and parts

    def toggle_fold(self) -> FoldOutcome:
        """Fold away or show (faded) what the latest summary stands for."""
        facts = self.facts
        if self.session is None:
            return FoldOutcome("No session is open.")
        if facts.latest is None:
            return FoldOutcome("This session has no summary: nothing to fold.")
        span = facts.latest_span
        if span is not None and span.compacted:
            return FoldOutcome(
                "The summarised messages were compacted away: only the summary is left."
            )
        if facts.folded:
            facts.folded = False
            self.fold_choice = False
            first = self.entries[0] if self.entries else None
            if first is not None and (
                first.key == item_key(facts.latest)
                or order_key(first.item) > order_key(facts.latest)
            ):
                self.has_older = True
            return FoldOutcome()
        self.fold_choice = True
        return FoldOutcome(jump=not self._fold_window())

    def _fold_window(self) -> bool:
        """Fold: drop the entries before the latest summary. False when it is not in the
        window and the window lies among what it stands for (read it again from the summary)."""
        facts = self.facts
        latest = facts.latest
        if latest is None:
            return True
        facts.folded = True
        at = self.index_of(item_key(latest))
        if at is None:
            entries = self.entries
            return bool(entries) and order_key(entries[0].item) > order_key(latest)
        self._remove(0, at)  # the search mark goes if its item does
        self.has_older = False
        return True

    def toggle(self, index: int, part: str = BODY) -> bool:
        """Open or close a part of an entry's block (a summary's whole text, an imported
        reply's call inputs, a tool's output, injected context)."""
        if not 0 <= index < len(self.entries):
            return False
        entry = self.entries[index]
        if part == BODY and not expandable(entry.item):
            return False
        self._open[entry.key] = self._open.get(entry.key, frozenset()) ^ {part}
        entry.relayout()
        return True

    def toggle_thinking(self) -> bool:
        """Show or hide the reasoning of imported replies; True when the window holds any
        (their drawings change)."""
        self.show_thinking = not self.show_thinking
        changed = False
        for entry in self.entries:
            item = entry.item
            if isinstance(item, Message) and message_kind(item.payload) == "reply":
                entry.relayout()
                changed = True
        return changed

    # ------------------------------------------------------------------ the cursor

    def select(self, index: int) -> bool:
        """Move the cursor; the search mark stays only while the cursor is on its item.
        Returns whether the mark went."""
        self.cursor = index
        if self.found is not None and self.index_of(self.found) != index:
            self.found = None
            return True
        return False

    # ------------------------------------------------------------------ entries

    def _begin(self) -> int:
        """A read that will replace the window begins: reads under way no longer apply."""
        self._token += 1
        return self._token

    def _replace(self, items: list[TimelineItem]) -> None:
        self._token += 1
        self.entries = [Entry(item, item_key(item)) for item in items]
        self._index = None
        self._calls = None

    def _insert(self, at: int, new: list[Entry]) -> None:
        if not new:
            return
        self.entries[at:at] = new
        self._index = None
        self._calls = None
        self._neighbour_changed(at - 1)
        if self.cursor is not None and at <= self.cursor:
            self.cursor += len(new)

    def _remove(self, start: int, end: int) -> None:
        """Drop entries [start, end): the cursor stays on its item, or the nearest kept one."""
        if end <= start:
            return
        found = None if self.found is None else self.index_of(self.found)
        if found is not None and start <= found < end:
            self.found = None
        del self.entries[start:end]
        self._index = None
        self._calls = None
        self._neighbour_changed(start - 1)
        if self.cursor is not None:
            if self.cursor >= end:
                self.cursor -= end - start
            elif self.cursor >= start:
                self.cursor = min(start, len(self.entries) - 1) if self.entries else None

    def _neighbour_changed(self, index: int) -> None:
        """The entry after `index` came or went: a tool result there ends a tight run or
        stops ending one (its spacer comes or goes), so it is measured again."""
        if 0 <= index < len(self.entries) and self._is_tool(index):
            self.entries[index].relayout()

    def _update(self, at: int, item: TimelineItem, force: bool = False) -> bool:
        """The one place an entry takes a newer copy of its item."""
        entry = self.entries[at]
        if not force and entry.item == item:
            return False
        entry.item = item
        entry.version += 1
        entry.relayout()
        self._calls = None
        return True

    def _relayout_unfinished(self) -> None:
        for entry in self.entries:
            if isinstance(entry.item, Message) and not entry.item.complete:
                entry.relayout()

    # ------------------------------------------------------------------ reads

    async def _summary_facts(
        self, session_id: str, choice: bool | None, target: tuple[int, int, int] | None = None
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
