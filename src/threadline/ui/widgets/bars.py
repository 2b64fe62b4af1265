"""One-line bars: the app header, the conversation's title line and the key footer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen

from threadline.models import Scope, Session
from threadline.paths import home_short
from threadline.transcript import source_name
from threadline.ui.format import plural
from threadline.ui.safe import one_line

SCOPE_LABELS = {
    Scope.DIRECTORY: "this directory",
    Scope.WORKSPACE: "this workspace",
    Scope.ALL: "all directories",
}


class HeaderBar(Widget):
    """App name, the scope, the directory it is anchored at, the count and the filter.

    Fits its width by priority: the separators tighten first, then the directory is cut from
    the left (its end names it), then the app's name goes; what the scope is, the count, the
    filter, what is busy and the memory indicator stay."""

    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    _shown: tuple[Scope, str | None, int | None, str, str | None] | None = None
    _memory: Content | None = None

    def set_memory(self, status: Content | None) -> None:
        """The memory extraction indicator at the end of the line (None: nothing to say)."""
        if status != self._memory:
            self._memory = status
            self.refresh()

    def show(
        self,
        scope: Scope,
        root: str | None,
        total: int | None,
        query: str,
        busy: str | None = None,
    ) -> None:
        shown = (scope, root, total, query, busy)
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def line(self, width: int) -> Content:
        """The header fitted to `width` cells."""
        if self._shown is None:
            return Content("")
        scope, root, total, query, busy = self._shown
        where = home_short(one_line(root)) if root is not None else None
        for wide, name in ((True, True), (False, True), (False, False)):
            content = self._assemble(scope, where, total, query, busy, wide, name)
            if content.cell_length <= width:
                return content
        # Still too long: cut the directory from the left, down to a few cells.
        rest = self._assemble(scope, None, total, query, busy, False, False).cell_length
        if where:
            room = max(4, width - rest - 1)  # the gap before the directory
            cut = where if len(where) <= room else "…" + where[-(room - 1) :]
            content = self._assemble(scope, cut, total, query, busy, False, False)
        return content.truncate(width, ellipsis=True)

    def _assemble(
        self,
        scope: Scope,
        where: str | None,
        total: int | None,
        query: str,
        busy: str | None,
        wide: bool,
        name: bool,
    ) -> Content:
        gap, sep = ("  ", "  ·  ") if wide else (" ", " · ")
        parts: list[str | tuple[str, str] | Content] = []
        if name:
            parts += [("threadline", "bold $accent"), gap]
        parts.append((SCOPE_LABELS[scope], "bold"))
        if where:
            parts += [gap, (where, "$text")]
        if total is not None:
            parts += [(sep, "$text-muted"), (plural(total, "session"), "$text-muted")]
        if query:
            parts += [(f"{sep}filter ", "$text-muted"), (f"“{one_line(query)}”", "$warning")]
        if busy:
            parts += [(sep, "$text-muted"), (busy, "italic $text-muted")]
        if self._memory is not None:
            parts += [(sep, "$text-muted"), self._memory]
        return Content.assemble(*parts)

    def render(self) -> Content:
        return self.line(self.content_size.width)


class SessionTitle(Widget):
    """The open session: title (cut to fit), directory, message count, marks and short id."""

    DEFAULT_CSS = """
    SessionTitle {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._session: Session | None = None
        self._short_id: str | None = None
        self._placeholder = "No session open"

    def show(
        self, session: Session | None, short_id: str | None = None, placeholder: str | None = None
    ) -> None:
        """Show `session`, or (None) `placeholder` (default: "No session open")."""
        self._session, self._short_id = session, short_id
        self._placeholder = placeholder or "No session open"
        self.refresh()

    def render(self) -> Content:
        session = self._session
        if session is None:
            return Content.styled(self._placeholder, "$text-muted")
        sep = ("  ·  ", "$text-muted")
        # (priority, parts) in display order; what does not fit beside a readable title is
        # left out, least important first.
        extras: list[tuple[float, list[tuple[str, str]]]] = [
            (3, [("  ", ""), (home_short(one_line(session.working_dir)), "$text-muted")]),
            (0, [sep, (plural(session.message_count, "message"), "$text-muted")]),
        ]
        if session.pinned:
            extras.append((1, [sep, ("★ pinned", "$warning")]))
        if session.status == "crashed":
            extras.append((2, [sep, ("⚠ interrupted", "$error")]))
        if session.source:
            source = f"from {one_line(source_name(session.source))}"
            extras.append((3.5, [sep, (source, "$text-secondary")]))
        if self._short_id:
            extras.append((4, [("  ·  id ", "$text-muted"), (self._short_id, "$text-muted")]))
        title = Content(one_line(session.display_title))
        width = self.content_size.width
        want = min(title.cell_length, max(24, width // 2))
        chosen: set[float] = set()
        used = 0
        for priority, parts in sorted(extras, key=lambda extra: extra[0]):
            size = sum(len(text) for text, _ in parts)
            if want + used + size <= width:
                chosen.add(priority)
                used += size
        tail = [part for priority, parts in extras if priority in chosen for part in parts]
        room = max(1, width - used)
        title = title.truncate(room, ellipsis=True).stylize("bold")
        return Content.assemble(title, *tail).truncate(width, ellipsis=True)


class KeyFooter(Footer):
    """Textual's footer, rebuilt once for a burst of binding changes, and (with `hold`) not
    built before the screen says its content is on screen.

    The stock footer rebuilds its keys (a dozen widgets, each styled) after every change of
    the bindings, and start-up changes them several times in a row (focus settling, the
    composer's state): the frames wait for each rebuild. This one rebuilds once, after the
    refresh that follows the last change, from the bindings in force then. Held, it leaves its
    line empty until `release()` (the main screen calls it once the sidebar's rows are
    painted, so the rows are not held up by the key hints; at most HOLD_SECONDS)."""

    HOLD_SECONDS = 1.0
    _rebuild_pending = False
    _built: tuple[object, ...] | None = None

    def __init__(self, *, hold: bool = False) -> None:
        super().__init__()
        self._held = hold

    def on_mount(self) -> None:
        super().on_mount()
        if self._held:
            self.set_timer(self.HOLD_SECONDS, self.release)

    def release(self) -> None:
        """Build the keys now (and from now on, whenever the bindings change)."""
        if self._held:
            self._held = False
            if self.is_attached:
                self.bindings_changed(self.screen)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if self._held or not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    def _shown(self) -> tuple[object, ...]:
        """What the keys are built from: the shown bindings in force (and the palette's)."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return (
            self.show_command_palette,
            tuple(
                (key, binding.action, binding.description, binding.group, enabled, tooltip)
                for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
                if binding.show or key == palette
            ),
        )

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        if not self.is_attached:
            return
        # Focus moving between widgets with the same keys (or a binding refresh that changed
        # nothing shown) leaves the keys as they are: a rebuild restyles a dozen widgets.
        shown = self._shown()
        if shown == self._built:
            return
        self._built = shown
        # The keys bind to the footer's reactives (data_bind reads the running message pump):
        # compose as the footer, whoever asked for the rebuild.
        from textual._context import active_message_pump

        token = active_message_pump.set(self)
        try:
            await self.recompose()
        finally:
            active_message_pump.reset(token)
