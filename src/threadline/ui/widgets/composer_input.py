"""The composer's text area (a TextArea): enter sends, ctrl+j / shift+enter insert a new line.

A module of its own: Textual's TextArea is imported only when the composer builds its text area
(after the first paint of the sidebar, or when something needs it sooner; see composer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from threadline.ui.safe import clean

# What terminals send for "a new line, not send": ctrl+j is a plain line feed, so it works
# everywhere; shift+enter arrives as CSI u (kitty protocol) or, through tmux with extended
# keys, as xterm's modifyOtherKeys form, which Textual names "shift+\r". (alt+enter without
# those protocols is ESC CR, which Textual reports as a plain enter.)
NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "shift+\r", "alt+enter", "ctrl+enter"})


class ComposerInput(TextArea):
    """The text area: enter sends, ctrl+j / shift+enter insert a new line, pastes are made
    visible (control characters shown as ^X, like stored text)."""

    BINDINGS = [
        Binding("enter", "submit", "Send", tooltip="Send the message"),
        Binding(
            "ctrl+j",
            "newline",
            "New line",
            tooltip="Insert a new line (shift+enter too, where the terminal reports it)",
        ),
    ]

    @dataclass
    class Submitted(Message):
        """Enter was pressed: `text` is the composer's whole text."""

        input: ComposerInput
        text: str

        @property
        def control(self) -> ComposerInput:
            return self.input

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        # Textual gives "/" no character here, so the footer would offer "/ Filter" while
        # typing; it is text like every printable key.
        return key == "slash" or super().check_consume_key(key, character)

    async def _on_key(self, event: events.Key) -> None:
        # Runs before TextArea's own handler (which would insert "\n" for enter).
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()
        event.stop()
        if self.read_only or self.disabled:
            return
        start, end = self.selection
        result = self.replace(clean(event.text), start, end, maintain_selection_offset=False)
        self.move_cursor(result.end_location)
        self.focus()

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        if self.read_only:
            return
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)
