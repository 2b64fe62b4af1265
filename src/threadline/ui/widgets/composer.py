"""The composer: a multi-line text area under the conversation, and one status line below it.

Enter sends; ctrl+j (always) or shift+enter (where the terminal reports it: kitty's keyboard
protocol, or tmux with `extended-keys on`) inserts a new line. Typed keys are text: the app's
one-letter keys do not fire while the composer has focus. The status line says what enter
will do (or, while a reply streams, how long it has been going and how many tokens arrived),
or, when no model provider is configured, how to configure one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import TextArea

from threadline.ui.format import plural
from threadline.ui.safe import clean, one_line

# What terminals send for "a new line, not send": ctrl+j is a plain line feed, so it works
# everywhere; shift+enter arrives as CSI u (kitty protocol) or, through tmux with extended
# keys, as xterm's modifyOtherKeys form, which Textual names "shift+\r". (alt+enter without
# those protocols is ESC CR, which Textual reports as a plain enter.)
NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "shift+\r", "alt+enter", "ctrl+enter"})
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


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


@dataclass(frozen=True)
class ComposerState:
    """What the status line says.

    kind: "idle" (ready), "busy" (a turn is under way), "disabled" (nothing can be sent).
    """

    kind: str = "idle"
    model: str | None = None
    note: str = ""  # idle: what is special (a new session, a failed reply); disabled: the hint
    label: str = ""  # busy: "generating", "summarising earlier messages", "waiting for the model"
    started: datetime | None = None
    tokens: int = 0


class ComposerStatus(Widget):
    """The line under the text area (wraps only for the disabled hint)."""

    DEFAULT_CSS = """
    ComposerStatus {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.state = ComposerState()

    def show(self, state: ComposerState) -> None:
        old, self.state = self.state, state
        # Only the disabled hint can change the height.
        self.refresh(layout="disabled" in (old.kind, state.kind) and old != state)

    def elapsed(self) -> float:
        started = self.state.started
        if started is None:
            return 0.0
        return max(0.0, (self._clock() - started).total_seconds())

    def render(self) -> Content:
        state = self.state
        width = max(1, self.content_size.width)
        if state.kind == "disabled":
            return Content.assemble(("✎ ", "$warning"), (state.note, "$text-warning"))
        right = Content(one_line(state.model)) if state.model else Content("")
        if state.kind == "busy":
            seconds = self.elapsed()
            frame = SPINNER[int(seconds * 10) % len(SPINNER)]
            parts: list[str | tuple[str, str]] = [
                (f"{frame} {state.label}… ", "bold $text-warning"),
                (f"{seconds:.1f} s", "$text-warning"),
            ]
            if state.tokens:
                parts.append((f" · {plural(state.tokens, 'token')}", "$text-warning"))
            parts.append((" · esc cancels", "$text-muted"))
            left = Content.assemble(*parts)
        else:
            parts = []
            if state.note:
                parts += [(state.note, "$text-warning"), ("  ", "")]
            parts.append(("enter sends · ctrl+j new line", "$text-muted"))
            left = Content.assemble(*parts)
        if right.cell_length and left.cell_length + 2 + right.cell_length <= width:
            gap = width - left.cell_length - right.cell_length
            return Content.assemble(left, " " * gap, right.stylize("$text-muted"))
        return left.truncate(width, ellipsis=True)


class Composer(Vertical):
    """The composer under the conversation: the text area and its status line."""

    DEFAULT_CSS = """
    Composer {
        dock: bottom;
        height: auto;
        max-height: 50%;
        border-top: hkey $panel-lighten-1;
    }
    Composer > ComposerInput {
        height: auto;
        min-height: 1;
        max-height: 10;
        border: none;
        padding: 0 1;
        background: $surface;
    }
    Composer > ComposerInput:focus {
        background: $boost;
    }
    Composer.-disabled > ComposerInput {
        display: none;
    }
    """

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._ticker: Timer | None = None
        self.tick: Callable[[], object] | None = None  # called 10 times a second while busy

    def compose(self) -> ComposeResult:
        area = ComposerInput(
            id="composer-input",
            soft_wrap=True,
            compact=True,
            highlight_cursor_line=False,
            placeholder="Write a message…",
        )
        yield area
        yield ComposerStatus(self._clock, id="composer-status")

    @property
    def input(self) -> ComposerInput:
        return self.query_one(ComposerInput)

    @property
    def status(self) -> ComposerStatus:
        return self.query_one(ComposerStatus)

    @property
    def text(self) -> str:
        return self.input.text

    @text.setter
    def text(self, value: str) -> None:
        area = self.input
        area.text = value
        area.move_cursor(area.document.end)

    @property
    def enabled(self) -> bool:
        return not self.has_class("-disabled")

    def _show_title(self) -> None:
        """The border's title says whether keys type here, and how to leave."""
        if self.input.has_focus:
            self.border_title = "✎ writing · keys type here · esc leaves"
        else:
            self.border_title = "i writes" if self.enabled else None

    def on_descendant_focus(self) -> None:
        self._show_title()

    def on_descendant_blur(self) -> None:
        self._show_title()

    def on_mount(self) -> None:
        self._show_title()

    def show(self, state: ComposerState) -> None:
        """Set the status line (and, for "disabled", hide the text area)."""
        disabled = state.kind == "disabled"
        was_focused = self.input.has_focus
        self.set_class(disabled, "-disabled")
        self.input.disabled = disabled
        self.status.show(state)
        if state.kind == "busy":
            if self._ticker is None:
                self._ticker = self.set_interval(0.1, self._tick, name="composer tick")
        elif self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if disabled and was_focused:
            self.screen.focus_next()
        self._show_title()

    def _tick(self) -> None:
        if self.tick is not None:
            self.tick()
        else:
            self.status.refresh()
