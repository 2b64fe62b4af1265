"""One-line bars: the app header, the conversation's title line and the composer's place."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from threadline.models import Scope, Session
from threadline.paths import home_short
from threadline.ui.format import plural
from threadline.ui.safe import one_line

SCOPE_LABELS = {
    Scope.DIRECTORY: "this directory",
    Scope.WORKSPACE: "this workspace",
    Scope.ALL: "all directories",
}


class HeaderBar(Static):
    """App name, the scope, the directory it is anchored at, the count and the filter."""

    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def show(
        self,
        scope: Scope,
        root: str | None,
        total: int | None,
        query: str,
        busy: str | None = None,
    ) -> None:
        parts: list[str | tuple[str, str] | Content] = [("threadline", "bold $accent"), "  "]
        parts.append((SCOPE_LABELS[scope], "bold"))
        if root is not None:
            parts += ["  ", (home_short(one_line(root)), "$text")]
        if total is not None:
            parts += [("  ·  ", "$text-muted"), (plural(total, "session"), "$text-muted")]
        if query:
            parts += [("  ·  filter ", "$text-muted"), (f"“{one_line(query)}”", "$warning")]
        if busy:
            parts += [("  ·  ", "$text-muted"), (busy, "italic $text-muted")]
        self.update(Content.assemble(*parts))


class SessionTitle(Static):
    """The open session: title, directory, message count and short id."""

    DEFAULT_CSS = """
    SessionTitle {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    def show(self, session: Session | None, short_id: str | None = None) -> None:
        if session is None:
            self.update(Content.styled("No session open", "$text-muted"))
            return
        parts: list[str | tuple[str, str]] = [(one_line(session.display_title), "bold")]
        parts += [("  ", ""), (home_short(one_line(session.working_dir)), "$text-muted")]
        parts += [
            ("  ·  ", "$text-muted"),
            (plural(session.message_count, "message"), "$text-muted"),
        ]
        if session.pinned:
            parts += [("  ·  ", "$text-muted"), ("★ pinned", "$warning")]
        if session.status == "crashed":
            parts += [("  ·  ", "$text-muted"), ("⚠ interrupted", "$error")]
        if short_id:
            parts += [("  ·  id ", "$text-muted"), (short_id, "$text-muted")]
        self.update(Content.assemble(*parts))


class ComposerPlaceholder(Static):
    """Where the composer goes (a later version); says how to write a turn meanwhile."""

    DEFAULT_CSS = """
    ComposerPlaceholder {
        dock: bottom;
        height: 3;
        padding: 0 1;
        border-top: hkey $panel-lighten-1;
        color: $text-disabled;
    }
    """

    def show(self, short_id: str | None) -> None:
        target = f" --session {short_id}" if short_id else ""
        self.update(
            Content.assemble(
                ("Writing from the app is not available in this version. ", "italic"),
                "From a shell: ",
                (f'threadline chat{target} "…"', "bold"),
            )
        )
