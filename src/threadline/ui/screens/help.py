"""The `?` screen: every key of the screen below, grouped by where it works (from the bindings)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from threadline.ui.keys import KeySection
from threadline.ui.screens.dialog import Dialog


class HelpScreen(Dialog[None]):
    """A list of the keys (the screen that opens it says which); esc, q or ? closes it."""

    DEFAULT_CSS = """
    #help-box {
        width: 90;
        max-height: 90%;
        padding: 0 1;
    }

    #help-grid {
        grid-size: 2;
        grid-columns: 12 1fr;
        grid-gutter: 0 1;
        height: auto;
    }

    #help-grid .title {
        column-span: 2;
        padding-top: 1;
    }
    """

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", show=True),
    ]

    def __init__(self, sections: list[KeySection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc closes · ^p finds any action by name"
            with Grid(id="help-grid"):
                for section in self.sections:
                    yield Static(Content.styled(section.title, "bold $accent"), classes="title")
                    for entry in section.entries:
                        yield Static(Content.styled(entry.keys, "bold"), classes="keys")
                        yield Static(Content(entry.description), classes="what")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
