"""One-line bars: the app header and the conversation's title line."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

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
