"""The rename dialog: a `ModalScreen[str | None]` (None when cancelled, "" clears the title)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, Static

from threadline.ui.safe import one_line
from threadline.ui.screens.dialog import Dialog


class RenameScreen(Dialog[str | None]):
    """Edit a session's title; enter saves, esc cancels, an empty title shows the preview again."""

    DEFAULT_CSS = """
    #rename-box {
        width: 64;
    }

    #rename-current, #rename-hint {
        color: $text-muted;
        margin-bottom: 1;
    }

    #rename-hint {
        margin: 1 0 0 0;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=True)]

    def __init__(self, title: str, shown_as: str) -> None:
        super().__init__()
        self._title = one_line(title)
        self._shown_as = one_line(shown_as)

    def compose(self) -> ComposeResult:
        with Vertical(id="rename-box", classes="dialog-box") as box:
            box.border_title = "Rename session"
            box.border_subtitle = "enter saves · esc cancels"
            yield Static(
                Content.assemble(("Now: ", "$text-muted"), (self._shown_as, "bold")),
                id="rename-current",
            )
            yield Input(
                value=self._title, placeholder="(empty: show the first message)", id="rename-input"
            )
            yield Static(
                Content("Leave empty to go back to the first message as the title."),
                id="rename-hint",
            )

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
