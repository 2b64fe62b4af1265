"""A yes/no question: `ModalScreen[bool]` (y or enter: yes; n or esc: no)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Static

from threadline.ui.screens.dialog import Dialog


class ConfirmScreen(Dialog[bool]):
    """Ask before something that cannot be undone. `question` is Content (stored text inside
    it must already be literal: build it with Content/Content.assemble, never markup)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=True),
        Binding("n,escape", "answer(False)", "No", show=True),
    ]

    def __init__(self, title: str, question: Content, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._yes = yes
        self._no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog-box") as box:
            box.border_title = self._title
            box.border_subtitle = "y yes · n or esc no"
            yield Static(self._question, id="confirm-question", classes="dialog-question")
            with Horizontal(id="confirm-buttons", classes="dialog-buttons"):
                yield Button(self._yes, variant="error", id="confirm-yes", compact=True)
                yield Button(self._no, id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
