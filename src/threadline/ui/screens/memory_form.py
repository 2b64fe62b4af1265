"""The add/edit memory dialog: a `ModalScreen[MemoryDraft | None]` (None when cancelled)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Input, Label, Select, Static

from threadline.models import CATEGORIES
from threadline.ui.safe import one_line
from threadline.ui.screens.dialog import Dialog

IMPORTANCE_LABELS = {
    5: "5 ★★★★★ essential",
    4: "4 ★★★★☆",
    3: "3 ★★★☆☆",
    2: "2 ★★☆☆☆",
    1: "1 ★☆☆☆☆ minor",
}


@dataclass(frozen=True)
class MemoryDraft:
    """What the form gives back."""

    fact: str
    category: str
    importance: int


class MemoryForm(Dialog[MemoryDraft | None]):
    """Write or edit a memory: the fact, its category and its importance (1-5)."""

    DEFAULT_CSS = """
    #memory-form .field-label {
        color: $text-muted;
        margin-top: 1;
    }

    #memory-form .field-label:first-of-type {
        margin-top: 0;
    }

    #memory-choices {
        height: auto;
    }

    #memory-choices > Vertical {
        height: auto;
        width: 1fr;
    }

    #memory-category {
        margin-right: 2;
    }

    #memory-error {
        height: auto;
        margin-top: 1;
        display: none;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("ctrl+s", "save", "Save", show=True),
    ]

    def __init__(
        self,
        title: str = "Add a memory",
        fact: str = "",
        category: str = "fact",
        importance: int = 3,
    ) -> None:
        super().__init__()
        self._title = title
        # A single line, control characters made visible: the field never shows raw bytes.
        self.initial_fact = one_line(fact)
        self._category = category if category in CATEGORIES else "fact"
        self._importance = importance if 1 <= importance <= 5 else 3

    def compose(self) -> ComposeResult:
        with Vertical(id="memory-form", classes="dialog-box") as box:
            box.border_title = self._title
            box.border_subtitle = "enter or ^s saves · tab moves · esc cancels"
            yield Label("Fact", classes="field-label")
            yield Input(
                value=self.initial_fact,
                placeholder="one self-contained sentence",
                id="memory-fact",
            )
            with Horizontal(id="memory-choices"):
                with Vertical():
                    yield Label("Category", classes="field-label")
                    yield Select(
                        [(name, name) for name in CATEGORIES],
                        value=self._category,
                        allow_blank=False,
                        id="memory-category",
                    )
                with Vertical():
                    yield Label("Importance", classes="field-label")
                    yield Select(
                        [(label, value) for value, label in IMPORTANCE_LABELS.items()],
                        value=self._importance,
                        allow_blank=False,
                        id="memory-importance",
                    )
            yield Static("", id="memory-error")

    @on(Input.Submitted, "#memory-fact")
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        fact = " ".join(self.query_one("#memory-fact", Input).value.split())
        if not fact:
            error = self.query_one("#memory-error", Static)
            error.update(Content.styled("Write the fact first (or esc to cancel).", "$error"))
            error.display = True
            self.query_one("#memory-fact", Input).focus()
            return
        category = self.query_one("#memory-category", Select).value
        importance = self.query_one("#memory-importance", Select).value
        assert isinstance(category, str) and isinstance(importance, int)
        self.dismiss(MemoryDraft(fact, category, importance))

    def action_cancel(self) -> None:
        self.dismiss(None)
