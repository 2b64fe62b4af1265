"""The composer: a multi-line text area under the conversation, and one status line below it.

Enter sends; ctrl+j (always) or shift+enter (where the terminal reports it: kitty's keyboard
protocol, or tmux with `extended-keys on`) inserts a new line. Typed keys are text: the app's
one-letter keys do not fire while the composer has focus. The status line says what enter
will do (or, while a reply streams, how long it has been going and how many tokens arrived),
or, when no model provider is configured, how to configure one.

The text area (composer_input.py: Textual's TextArea, its import, styles and first layout) is
not part of the first screen: a one-line stand-in showing its placeholder takes its place
until the app has painted the sidebar and calls `build()`, or until anything needs the text
area sooner (`input`: a focus, a click on the stand-in). Text set before holds until then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget

from threadline.ui.format import plural
from threadline.ui.safe import one_line

if TYPE_CHECKING:
    from threadline.ui.widgets.composer_input import ComposerInput

PLACEHOLDER = "Write a message…"

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


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


class ComposerStandIn(Widget):
    """Where the text area will be, until it is built: its placeholder, drawn as it draws it.
    A click builds the text area and focuses it."""

    DEFAULT_CSS = """
    ComposerStandIn {
        height: 1;
        padding: 0 1;
        background: $surface;
        color: $text 40%;
    }
    """

    def render(self) -> str:
        return PLACEHOLDER

    def on_click(self, event: events.Click) -> None:
        parent = self.parent
        if isinstance(parent, Composer) and parent.enabled:
            event.stop()
            parent.input.focus()


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
    Composer.-disabled > ComposerInput, Composer.-disabled > ComposerStandIn {
        display: none;
    }
    """

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._ticker: Timer | None = None
        self.tick: Callable[[], object] | None = None  # called 10 times a second while busy
        self._area: ComposerInput | None = None
        self._stand_in = ComposerStandIn()
        self._text = ""  # what the text area will start with (until it is built)

    def compose(self) -> ComposeResult:
        yield self._stand_in if self._area is None else self._area
        yield ComposerStatus(self._clock, id="composer-status")

    @property
    def built(self) -> bool:
        """The text area exists (it replaced the stand-in)."""
        return self._area is not None

    def build(self) -> ComposerInput:
        """Put the text area in the stand-in's place (once), holding the text set so far.
        It is in the DOM on return (focus it, set its text); Textual mounts it next."""
        if self._area is not None:
            return self._area
        from threadline.ui.widgets.composer_input import ComposerInput

        area = ComposerInput(
            self._text,
            id="composer-input",
            soft_wrap=True,
            compact=True,
            highlight_cursor_line=False,
            placeholder=PLACEHOLDER,
        )
        area.disabled = self.has_class("-disabled")
        self._area = area
        if self._text:
            area.move_cursor(area.document.end)
        self._text = ""
        if self._stand_in.is_attached:  # else the composer is yet to compose: it yields `area`
            self.mount(area, before=self._stand_in)
            self._stand_in.remove()
        return area

    @property
    def input(self) -> ComposerInput:
        """The text area (built now if it was not yet)."""
        return self.build()

    @property
    def status(self) -> ComposerStatus:
        return self.query_one(ComposerStatus)

    @property
    def text(self) -> str:
        return self._text if self._area is None else self._area.text

    @text.setter
    def text(self, value: str) -> None:
        area = self._area
        if area is None:
            self._text = value
            return
        area.text = value
        area.move_cursor(area.document.end)

    @property
    def enabled(self) -> bool:
        return not self.has_class("-disabled")

    def _writing(self) -> bool:
        return self._area is not None and self._area.has_focus

    def _show_title(self) -> None:
        """The border's title says whether keys type here, and how to leave."""
        if self._writing():
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
        was_focused = self._writing()
        self.set_class(disabled, "-disabled")
        if self._area is not None:
            self._area.disabled = disabled
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
