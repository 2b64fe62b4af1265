"""The `?` screen: every key, grouped by where it works (built from the bindings)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from threadline.ui.keys import key_sections


class HelpScreen(ModalScreen[None]):
    """A list of the keys; esc, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", show=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc closes · ^p finds any action by name"
            yield Static(self._keys_text(), id="help-text")

    def _keys_text(self) -> Content:
        parts: list[str | tuple[str, str]] = []
        sections = key_sections(self.app)
        width = max(len(e.keys) for s in sections for e in s.entries)
        for number, section in enumerate(sections):
            if number:
                parts.append("\n")
            parts += [(section.title, "bold $accent"), "\n"]
            for entry in section.entries:
                parts += [(f"  {entry.keys:<{width}}", "bold"), f"  {entry.description}\n"]
        return Content.assemble(*parts).rstrip()

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
