"""The memories screen (M): what threadline remembers about this directory, and the queue.

Lists the directory's memories, most important first (superseded ones hidden until `s`),
with the highlighted one's whole fact and provenance below; `a` adds one by hand, `e` edits,
`d` deletes (after a confirmation), enter jumps to the message it came from. The bottom panel
shows the extraction queue for this directory (due, running, retrying, failed with the last
error); `x` extracts from the open session now and `r` retries the failed extractions.

Facts are untrusted text (a model wrote them from a conversation): they reach the screen only
through `safe.clean`/`one_line`, as Content or Segments, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from threadline import paths
from threadline.errors import ThreadlineError
from threadline.models import Memory, Session
from threadline.ui.format import plural, relative_age
from threadline.ui.host import Host, host
from threadline.ui.keys import KeyGroup, KeySection, key_sections, merged
from threadline.ui.notices import notify_error
from threadline.ui.safe import clean, one_line
from threadline.ui.widgets.memory_list import MemoryList, MemoryRow, stars

if TYPE_CHECKING:
    from threadline.chat.memory import ExtractionStatus
    from threadline.store import Store
    from threadline.ui.memory_tasks import MemoryStatus
    from threadline.ui.screens.memory_form import MemoryDraft

STATE_LABELS = {
    "due": ("● queued", "$text-muted"),
    "running": ("● extracting", "$accent"),
    "retrying": ("● retrying", "$warning"),
    "failed": ("✖ failed", "bold $error"),
}
STATUS_ROWS = 3


def brief(reason: str) -> str:
    """The gist of a long reason (what comes before its first colon), on one line."""
    return one_line(reason).split(": ")[0].split("; ")[0]


@dataclass(frozen=True)
class JumpTo:
    """What the screen closes with when enter asks for a memory's source: open this session
    (at this message, when it is still there)."""

    session_id: str
    message_id: int | None


class MemoriesScreen(Screen[JumpTo | None]):
    """A directory's project memory: list, provenance, add/edit/delete, the extraction queue.

    Closes with a `JumpTo` (enter on a memory with a source) or None (esc)."""

    DEFAULT_CSS = """
    MemoriesScreen {
        layout: vertical;
    }

    #memories-header {
        height: 1;
        background: $panel;
        padding: 0 1;
    }

    #memories-body {
        height: 1fr;
    }

    #memory-list {
        height: 1fr;
    }

    #memory-detail {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: hkey $panel-lighten-1;
    }

    #memory-status {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: hkey $panel-lighten-1;
        background: $boost;
    }
    """

    AUTO_FOCUS = "MemoryList"

    BINDINGS = [
        Binding("escape,q,M", "back", "Back", tooltip="Back to the sessions"),
        Binding("question_mark", "help", "Help", show=False, tooltip="Show every key"),
        Binding("enter", "jump", "Source", tooltip="Open the session at the memory's message"),
        Binding("a", "add", "Add", tooltip="Add a memory by hand"),
        Binding("e", "edit", "Edit", tooltip="Edit the memory's fact, category or importance"),
        Binding("d", "delete", "Delete", tooltip="Delete the memory (asks first)"),
        Binding("s", "toggle_superseded", "Superseded", tooltip="Show or hide superseded ones"),
        Binding("x", "extract", "Extract", tooltip="Extract memories from the open session now"),
        Binding(
            "r",
            "retry_failed",
            "Retry failed",
            show=False,
            tooltip="Give failed extractions three new attempts, and run them",
        ),
    ]

    def __init__(self, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.show_superseded = False
        self.memories: list[Memory] | None = None
        self._rows: list[MemoryRow] = []
        self._by_id: dict[int, Memory] = {}
        self._status: MemoryStatus | None = None
        # Set by whoever pushes the screen: it reloads when it is shown.
        self.stale = True
        # Set by whoever pushes the screen: the session open there (x extracts from it).
        self.open_session: Session | None = None
        self._shown_directory: str | None = None

    @property
    def host(self) -> Host:
        return host(self)

    @property
    def directory(self) -> str:
        """The open session's directory (the app's when none is open): its memories are
        shown, and x extracts from that session."""
        if self.open_session is not None:
            return self.open_session.working_dir
        return paths.resolve_dir(self.host.working_dir)

    @property
    def memory_list(self) -> MemoryList:
        return self.query_one(MemoryList)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="memories-header")
        with Vertical(id="memories-body"):
            yield MemoryList(self.host.clock, id="memory-list")
            yield Static(id="memory-detail")
            yield Static(id="memory-status")
        yield Footer()

    def on_mount(self) -> None:
        self._show_directory()
        self._show_detail(None)

    def _show_directory(self) -> None:
        where = paths.home_short(one_line(self.directory))
        self.memory_list.set_empty_text(
            f"No memories for {where} yet.",
            "Facts are extracted from this directory's sessions once they go quiet, or now "
            "with x on the open session. a adds one by hand.",
        )
        self._show_header()

    def on_screen_resume(self) -> None:
        """Shown from the main screen (the first time, or again: the screen is kept) rather
        than uncovered by one of its dialogs: read what may have changed meanwhile."""
        if not self.stale:
            return
        self.stale = False
        if self.directory != self._shown_directory:
            # Another directory's memories: none of the last one's stay on screen meanwhile.
            self._shown_directory = self.directory
            self.memories = None
            self._rows = []
            self._by_id = {}
            self.memory_list.set_rows([], None)
            self._show_directory()
        self.memory_status_changed(self.host.memory_tasks.status)
        self.load()
        self.run_worker(
            self.host.memory_tasks.refresh_status(), group="memory-status", exit_on_error=False
        )

    def _store(self) -> Store | None:
        store = self.host.store
        if store is None:
            self.notify("The database is not open yet.", severity="warning")
        return store

    # ------------------------------------------------------------------ loading

    @work(group="memories-load", exclusive=True, exit_on_error=False)
    async def load(self, keep_id: int | None = None) -> None:
        """Read the directory's memories (superseded included) and their sessions' titles."""
        store = self._store()
        if store is None:
            return
        try:
            memories = await store.get_memories(self.directory, None, include_superseded=True)
            sessions = await store.get_session_summaries(
                [m.session_id for m in memories if m.session_id is not None]
            )
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if keep_id is None and self.memory_list.highlighted is not None:
            keep_id = self.memory_list.highlighted.memory.id
        self.memories = memories
        self._by_id = {m.id: m for m in memories}
        self._rows = []
        for memory in memories:
            session = sessions.get(memory.session_id) if memory.session_id else None
            self._rows.append(
                MemoryRow(
                    memory,
                    session.display_title if session is not None else None,
                    session is not None and session.deleted_at is not None,
                )
            )
        self._show_rows(keep_id)

    def _show_rows(self, keep_id: int | None = None) -> None:
        rows = [r for r in self._rows if self.show_superseded or not r.superseded]
        self.memory_list.set_rows(rows, keep_id)
        self._show_header()

    def _show_header(self) -> None:
        where = paths.home_short(one_line(self.directory))
        parts: list[tuple[str, str] | str] = [
            ("threadline", "bold $accent"),
            "  ",
            ("memories", "bold"),
            "  ",
            (where, "$text"),
        ]
        if self.memories is not None:
            superseded = sum(1 for m in self.memories if m.superseded_by is not None)
            current = len(self.memories) - superseded
            parts += [("  ·  ", "$text-muted"), (plural(current, "memory", "memories"), "")]
            if superseded:
                shown = "shown" if self.show_superseded else "hidden (s shows them)"
                parts += [("  ·  ", "$text-muted"), (f"{superseded:,} superseded {shown}", "")]
        self.query_one("#memories-header", Static).update(Content.assemble(*parts))

    # ------------------------------------------------------------------ the detail panel

    @on(MemoryList.Highlighted)
    def _highlighted(self, event: MemoryList.Highlighted) -> None:
        self._show_detail(event.row)

    def _show_detail(self, row: MemoryRow | None) -> None:
        panel = self.query_one("#memory-detail", Static)
        if row is None:
            panel.update("")
            panel.display = False
            return
        panel.display = True
        memory = row.memory
        now = self.host.clock()
        lines: list[Content] = [Content(clean(memory.fact))]
        meta: list[tuple[str, str]] = [
            (stars(memory.importance), "$warning"),
            (f" importance {memory.importance} · {memory.category} · ", "$text-muted"),
            (row.source_text(), "$text-muted"),
        ]
        if memory.source_message_id is not None and not memory.is_manual:
            meta.append((f", message #{memory.source_message_id}", "$text-muted"))
        age = relative_age(memory.created_at, now)
        if memory.is_manual:  # "added by hand now", "added by hand 3 h ago"
            when = " now" if age == "now" else f" {age} ago"
        else:
            when = " · added now" if age == "now" else f" · {age} ago"
        meta.append((when, "$text-muted"))
        lines.append(Content.assemble(*meta))
        if memory.superseded_by is not None:
            newer = self._by_id.get(memory.superseded_by)
            text = one_line(newer.fact) if newer is not None else "(deleted)"
            lines.append(
                Content.assemble(
                    (f"Superseded by #{memory.superseded_by}: ", "$warning"), (text, "$text-muted")
                )
            )
        hint = self._jump_hint(memory)
        if hint:
            lines.append(Content.styled(hint, "italic $text-muted"))
        panel.update(Content("\n").join(lines))

    @staticmethod
    def _jump_hint(memory: Memory) -> str:
        if memory.is_manual or memory.session_id is None:
            return ""
        if memory.source_message_id is None:
            return "enter opens its session (the exact message is gone)"
        return "enter opens the session at this message"

    # ------------------------------------------------------------------ the queue's status

    def memory_status_changed(self, status: MemoryStatus) -> None:
        previous, self._status = self._status, status
        if previous is not None and previous.running and not status.running and self.is_mounted:
            self.load()  # an extraction just ended: it may have added memories
        if not self.query("#memory-status"):
            return
        panel = self.query_one("#memory-status", Static)
        panel.update(self._status_content(status))

    def _status_content(self, status: MemoryStatus) -> Content:
        directory = self.directory
        rows = [r for r in status.rows if r.working_dir == directory]
        others = len(status.rows) - len(rows)
        lines: list[Content] = []
        title: list[tuple[str, str] | str] = [("Extraction", "bold")]
        if status.running:
            title += ["  ", ("extracting…", "italic $accent")]
        if status.unavailable:
            lines.append(
                Content.assemble(
                    *title,
                    "  ",
                    (f"unavailable here: {brief(status.unavailable)}", "$warning"),
                )
            )
            if not rows:
                lines.append(
                    Content.styled(
                        "Memories added with a are still given to new sessions; x says how "
                        "to set up a provider.",
                        "$text-muted",
                    )
                )
        elif not rows:
            lines.append(
                Content.assemble(*title, "  ", ("nothing queued for this directory", "$text-muted"))
            )
        else:
            failed = sum(1 for r in rows if r.state == "failed")
            counts = [f"{len(rows) - failed:,} queued"] if len(rows) > failed else []
            counts += [f"{failed:,} failed"] if failed else []
            lines.append(Content.assemble(*title, "  ", (" · ".join(counts), "")))
        for row in rows[:STATUS_ROWS]:
            lines.append(self._status_line(row))
        if len(rows) > STATUS_ROWS:
            lines.append(Content.styled(f"  … and {len(rows) - STATUS_ROWS:,} more", "$text-muted"))
        if others:
            lines.append(
                Content.styled(
                    f"  {plural(others, 'extraction')} queued for other directories",
                    "$text-muted",
                )
            )
        return Content("\n").join(lines)

    def _status_line(self, row: ExtractionStatus) -> Content:
        label, style = STATE_LABELS.get(row.state, (row.state, ""))
        pending = row.pending
        parts: list[tuple[str, str] | str] = [
            "  ",
            (label.ljust(13), style),
            (f"“{one_line(row.session_title or '(session gone)')}”", ""),
        ]
        if row.range_text:  # items of one session told apart
            parts.append((f" {row.range_text}", "$text-muted"))
        if pending.attempt_count:
            parts.append((f"  {plural(pending.attempt_count, 'attempt')} of 3", "$text-muted"))
        if row.state == "retrying":
            wait = relative_age(self.host.clock(), pending.next_attempt_at)
            parts.append((f" · next in {wait}", "$text-muted"))
        if pending.error_message:
            parts.append((f" · {one_line(pending.error_message)}", "$error"))
        return Content.assemble(*parts)

    # ------------------------------------------------------------------ keys

    def action_back(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        from threadline.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.key_sections()))

    def action_toggle_superseded(self) -> None:
        self.show_superseded = not self.show_superseded
        keep = self.memory_list.highlighted
        self._show_rows(keep.memory.id if keep else None)

    def action_add(self) -> None:
        from threadline.ui.screens.memory_form import MemoryForm

        self.app.push_screen(MemoryForm("Add a memory"), callback=self._added)

    def _added(self, draft: MemoryDraft | None) -> None:
        if draft is not None:
            self._save_new(draft)

    @work(group="memory-write", exit_on_error=False)
    async def _save_new(self, draft: MemoryDraft) -> None:
        store = self._store()
        if store is None:
            return
        try:
            memory = await store.save_memory(
                self.directory, draft.fact, draft.category, draft.importance, is_manual=True
            )
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        self.notify(f"Remembered #{memory.id}: “{one_line(memory.fact)}”.", markup=False)
        self.load(keep_id=memory.id)

    def action_edit(self) -> None:
        from threadline.ui.screens.memory_form import MemoryForm

        row = self.memory_list.highlighted
        if row is None:
            self.notify("No memory to edit.", severity="warning")
            return
        memory = row.memory
        form = MemoryForm(
            f"Edit memory #{memory.id}", memory.fact, memory.category, memory.importance
        )
        self.app.push_screen(form, callback=lambda draft: self._edited(memory, form, draft))

    def _edited(self, memory: Memory, form: object, draft: MemoryDraft | None) -> None:
        if draft is not None:
            from threadline.ui.screens.memory_form import MemoryForm

            assert isinstance(form, MemoryForm)
            self._update(memory, form.initial_fact, draft)

    @work(group="memory-write", exit_on_error=False)
    async def _update(self, memory: Memory, shown_fact: str, draft: MemoryDraft) -> None:
        store = self._store()
        if store is None:
            return
        changes: dict[str, object] = {}
        # The field showed the fact on one line, control characters made visible: only a
        # fact the user actually changed is written back.
        if draft.fact != shown_fact:
            changes["fact"] = draft.fact
        if draft.category != memory.category:
            changes["category"] = draft.category
        if draft.importance != memory.importance:
            changes["importance"] = draft.importance
        if not changes:
            self.notify("Nothing changed.")
            return
        try:
            updated = await store.update_memory(memory.id, **changes)  # type: ignore[arg-type]
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        self.notify(f"Updated #{updated.id}.", markup=False)
        self.load(keep_id=updated.id)

    def action_delete(self) -> None:
        from threadline.ui.screens.confirm import ConfirmScreen

        row = self.memory_list.highlighted
        if row is None:
            self.notify("No memory to delete.", severity="warning")
            return
        memory = row.memory
        parts: list[tuple[str, str] | str] = [
            "Forget this memory for good?\n\n",
            (one_line(memory.fact), "bold"),
        ]
        replaced = [m for m in self.memories or [] if m.superseded_by == memory.id]
        if replaced:
            parts.append(
                (
                    "\n\nThe memory it superseded will be current again."
                    if len(replaced) == 1
                    else f"\n\nThe {len(replaced):,} memories it superseded will be current again.",
                    "$text-muted",
                )
            )
        self.app.push_screen(
            ConfirmScreen(
                f"Delete memory #{memory.id}", Content.assemble(*parts), "Delete", "Keep"
            ),
            callback=lambda yes: self._confirmed_delete(memory, yes),
        )

    def _confirmed_delete(self, memory: Memory, yes: bool | None) -> None:
        if yes:
            self._delete(memory)

    @work(group="memory-write", exit_on_error=False)
    async def _delete(self, memory: Memory) -> None:
        store = self._store()
        if store is None:
            return
        try:
            gone = await store.delete_memory(memory.id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if gone:
            self.notify(f"Forgot #{memory.id}: “{one_line(memory.fact)}”.", markup=False)
        else:
            self.notify("That memory was already gone.", severity="warning")
        self.load()

    @work(group="memory-jump", exclusive=True, exit_on_error=False)
    async def action_jump(self) -> None:
        """Open the memory's session at its source message (in the main screen)."""
        row = self.memory_list.highlighted
        store = self._store()
        if row is None or store is None:
            return
        memory = row.memory
        if memory.is_manual:
            self.notify("Added by hand: it has no source message.", severity="warning")
            return
        if memory.session_id is None:
            self.notify("Its session was purged; the memory stays.", severity="warning")
            return
        try:
            session = await store.get_session(memory.session_id)
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if session is None:
            self.notify("Its session was purged; the memory stays.", severity="warning")
            return
        if session.deleted_at is not None:
            self.notify(
                f"Its session “{one_line(session.display_title)}” is in the trash: "
                "`threadline sessions restore` brings it back.",
                severity="warning",
                markup=False,
            )
            return
        if memory.source_message_id is None:
            self.notify("The exact message is gone (compacted); showing the session.", markup=False)
        self.dismiss(JumpTo(session.id, memory.source_message_id))

    @work(group="memory-extract", exclusive=True, exit_on_error=False)
    async def action_extract(self) -> None:
        """Extract memories from the open session now (its failed extractions included)."""
        from threadline.chat.provider import ProviderNotConfigured

        session = self.open_session
        if session is None:
            self.notify(
                "No session is open: open one (esc, then enter on a session) and come back.",
                severity="warning",
            )
            return
        title = one_line(session.display_title)
        self.notify(f"Extracting memories from “{title}”…", markup=False, timeout=3)
        try:
            report = await self.host.memory_tasks.extract_now(session.id)
        except ProviderNotConfigured as exc:
            notify_error(self, exc, "Cannot extract: ")
            return
        except ThreadlineError as exc:
            notify_error(self, exc, "Extraction failed: ")
            return
        failed = report.failed
        if failed:
            outcome = failed[-1]
            then = (
                "given up after 3 attempts"
                if outcome.gave_up
                else "it is retried later; x tries again now"
            )
            self.notify(
                f"Extraction failed: {one_line(outcome.error)} ({then}).",
                severity="error",
                markup=False,
            )
        added = report.memories_added
        if added:
            self.notify(f"Remembered {plural(added, 'new fact')} from “{title}”.", markup=False)
        elif not failed:
            self.notify(f"Nothing new to remember in “{title}”.", markup=False)
        self.load()

    @work(group="memory-extract", exclusive=True, exit_on_error=False)
    async def action_retry_failed(self) -> None:
        from threadline.chat.provider import ProviderNotConfigured

        tasks = self.host.memory_tasks
        try:
            count = await tasks.extractor().retry_failed()
        except ProviderNotConfigured as exc:
            notify_error(self, exc, "Cannot extract: ")
            return
        except ThreadlineError as exc:
            notify_error(self, exc)
            return
        if not count:
            self.notify("No failed extraction to retry.")
            await tasks.refresh_status()
            return
        self.notify(f"Retrying {plural(count, 'failed extraction')}.")
        tasks.run_upkeep()

    # ------------------------------------------------------------------ palette

    def key_sections(self) -> list[KeySection]:
        """This screen's keys (and the list's moves), then the keys that work anywhere."""
        groups = [
            KeyGroup("", MemoriesScreen, self),
            KeyGroup("", MemoryList, None, only=("cursor_up", "cursor_down")),
        ]
        sections = key_sections(self.app, groups, also=False)
        return [merged("Memories screen (M)", sections), *key_sections(self.app, [])]

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's keys as command palette entries."""
        for entry in self.key_sections()[0].entries:
            if entry.run is not None:
                yield SystemCommand(entry.description, f"Memories · key: {entry.keys}", entry.run)
