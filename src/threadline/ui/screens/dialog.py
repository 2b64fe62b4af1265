"""`Dialog`: the modal box every small form and question shares — centred over the dimmed
screen, a rounded accent border with a bold title. A subclass composes one container with the
class `dialog-box` (and, for a question, `dialog-question` and `dialog-buttons`); its own
DEFAULT_CSS says only where it differs (by the box's id, which outranks the class)."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    """A modal screen drawn as a centred box (see the module's docstring)."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
    }

    Dialog .dialog-box {
        width: 72;
        max-width: 95%;
        height: auto;
        border: round $accent;
        border-title-style: bold;
        background: $surface;
        padding: 1 2;
    }

    Dialog .dialog-question {
        margin-bottom: 1;
    }

    Dialog .dialog-buttons {
        height: auto;
        align-horizontal: right;
    }

    Dialog .dialog-buttons Button {
        margin-left: 2;
    }
    """
