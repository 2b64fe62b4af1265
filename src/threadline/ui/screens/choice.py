"""A question with a few answers, each on a key: `ModalScreen[str]` (the answer's name).

Used where the app asks something once and acts on the answer: an automatic cleanup that
would move many sessions, following another tool's history. esc gives the `cancel` answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Static

from threadline.ui.screens.dialog import Dialog


@dataclass(frozen=True)
class Choice:
    name: str  # what the screen is dismissed with
    label: str  # the button's words
    key: str  # its key (one letter)
    variant: str = "default"


class ChoiceScreen(Dialog[str]):
    """Ask `question` (Content: stored text inside must already be literal) with `choices`;
    `focus` names the one focused at first, `cancel` the answer esc gives."""

    def __init__(
        self,
        title: str,
        question: Content,
        choices: list[Choice],
        *,
        focus: str,
        cancel: str,
        screen_id: str | None = None,
    ) -> None:
        super().__init__(id=screen_id)
        self._title = title
        self._question = question
        self._choices = choices
        self._focus = focus
        self._cancel = cancel
        for choice in choices:
            self._bindings.bind(choice.key, f"answer({choice.name!r})", choice.label, show=False)
        self._bindings.bind("escape", f"answer({cancel!r})", "Close", show=False)

    def compose(self) -> ComposeResult:
        with Vertical(id="choice-box", classes="dialog-box") as box:
            box.border_title = self._title
            box.border_subtitle = " · ".join(f"{c.key} {c.label.lower()}" for c in self._choices)
            yield Static(self._question, id="choice-question", classes="dialog-question")
            with Horizontal(id="choice-buttons", classes="dialog-buttons"):
                for choice in self._choices:
                    yield Button(
                        choice.label,
                        variant=choice.variant,  # type: ignore[arg-type]
                        id=f"choice-{choice.name}",
                        compact=True,
                    )

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self._focus}", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        assert event.button.id is not None
        self.dismiss(event.button.id.removeprefix("choice-"))

    def action_answer(self, name: str) -> None:
        self.dismiss(name)
