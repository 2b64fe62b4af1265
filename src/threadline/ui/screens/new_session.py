"""The new-session form on `n`: an optional model and system prompt (`ModalScreen`).

Nothing is written here: the session row is created when its first message is sent, so
pressing `n` and changing your mind leaves no empty session behind.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from threadline.ui.safe import one_line
from threadline.ui.turn_runner import NewSession
from threadline.ui.widgets.composer import ComposerInput

__all__ = ["NewSession", "NewSessionScreen"]


class NewSessionScreen(ModalScreen[NewSession | None]):
    """Model and system prompt for a new session in the current directory; enter starts it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=True)]

    def __init__(self, where: str, default_model: str | None) -> None:
        super().__init__()
        self._where = one_line(where)
        self._default_model = one_line(default_model) if default_model else None

    def compose(self) -> ComposeResult:
        with Vertical(id="new-session-box") as box:
            box.border_title = "New session"
            box.border_subtitle = "enter starts it · tab next field · esc cancels"
            yield Static(
                Content.assemble(("In ", "$text-muted"), (self._where, "bold")),
                id="new-session-where",
            )
            yield Static(Content("Model"), classes="new-session-label")
            default = self._default_model or "no model configured"
            yield Input(
                placeholder=f"{default} (the default)", id="new-session-model", compact=True
            )
            yield Static(Content("System prompt"), classes="new-session-label")
            yield ComposerInput(
                id="new-session-system",
                soft_wrap=True,
                compact=True,
                highlight_cursor_line=False,
                placeholder="(none)  ctrl+j: new line",
            )
            yield Static(
                Content(
                    "Nothing is saved until you send the first message: the session then "
                    "appears in the list with its title."
                ),
                id="new-session-hint",
            )

    def _choice(self) -> NewSession:
        model = self.query_one("#new-session-model", Input).value.strip()
        system = self.query_one("#new-session-system", ComposerInput).text.strip()
        return NewSession(model=model or None, system_prompt=system or None)

    @on(Input.Submitted, "#new-session-model")
    def _model_submitted(self) -> None:
        self.dismiss(self._choice())

    @on(ComposerInput.Submitted, "#new-session-system")
    def _system_submitted(self, event: ComposerInput.Submitted) -> None:
        event.stop()
        self.dismiss(self._choice())

    def action_cancel(self) -> None:
        self.dismiss(None)
