"""The new-session form on `n`: an optional model and system prompt (`ModalScreen`).

The model field offers the provider's models (`GET /models`, read in a worker when the form
opens); any other name can be typed.

Nothing is written here: the session row is created when its first message is sent, so
pressing `n` and changing your mind leaves no empty session behind.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, Static

from threadline.ui.host import host
from threadline.ui.safe import one_line
from threadline.ui.screens.dialog import Dialog
from threadline.ui.turn_runner import NewSession
from threadline.ui.widgets.composer_input import ComposerInput
from threadline.ui.widgets.model_picker import ModelPicker

__all__ = ["NewSession", "NewSessionScreen"]


class NewSessionScreen(Dialog[NewSession | None]):
    """Model and system prompt for a new session in the current directory; enter starts it."""

    DEFAULT_CSS = """
    #new-session-where, #new-session-hint {
        color: $text-muted;
    }

    #new-session-where {
        margin-bottom: 1;
    }

    .new-session-label {
        text-style: bold;
    }

    #new-session-model {
        background: $boost;
    }

    #new-session-models {
        margin-bottom: 1;
    }

    #new-session-system {
        height: auto;
        min-height: 3;
        max-height: 8;
        background: $boost;
    }

    #new-session-hint {
        margin-top: 1;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=True)]

    def __init__(self, where: str, default_model: str | None) -> None:
        super().__init__()
        self._where = one_line(where)
        self._default_model = one_line(default_model) if default_model else None

    def compose(self) -> ComposeResult:
        with Vertical(id="new-session-box", classes="dialog-box") as box:
            box.border_title = "New session"
            box.border_subtitle = "enter starts it · tab next field · esc cancels"
            yield Static(
                Content.assemble(("In ", "$text-muted"), (self._where, "bold")),
                id="new-session-where",
            )
            yield Static(Content("Model"), classes="new-session-label")
            default = self._default_model or "no model configured"
            yield ModelPicker(
                placeholder=f"{default} (the default)",
                input_id="new-session-model",
                id="new-session-models",
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

    def on_mount(self) -> None:
        self._list_models()

    @work(exclusive=True, group="new-session-models", exit_on_error=False)
    async def _list_models(self) -> None:
        """The provider's models to pick from (`GET /models`); typing any name still works."""
        from threadline.chat.provider import ProviderError

        engine = host(self).engine
        lister = getattr(engine.provider, "list_models", None) if engine is not None else None
        if lister is None:
            return
        picker = self.query_one(ModelPicker)
        picker.set_status("listing the server's models…")
        try:
            models = await lister()
        except ProviderError as exc:
            if self.is_attached:
                reason = one_line(str(exc))
                reason = reason if len(reason) <= 90 else reason[:89] + "…"
                picker.set_status(f"models not listed: {reason}; type a model's name", True)
            return
        if self.is_attached:
            picker.set_models(models)
            if not models:
                picker.set_status("")

    def _choice(self) -> NewSession:
        model = self.query_one(ModelPicker).value.strip()
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
