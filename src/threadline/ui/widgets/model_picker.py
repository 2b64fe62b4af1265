"""A model field with the server's models below it to pick from (free text still allowed).

Used by the provider setup form and the new-session form (`n`). Typing narrows the list
(chat/provider_setup.matching_models); ↓ moves into it, enter or a click copies a name into the
field. Model names come from a server: untrusted, shown through `one_line` as Content.
"""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from threadline.chat.provider_setup import matching_models
from threadline.ui.format import plural
from threadline.ui.safe import one_line


class ModelPicker(Vertical):
    """The model field, the server's models (hidden until there are some) and a status line."""

    DEFAULT_CSS = """
    ModelPicker {
        height: auto;
    }
    ModelPicker > OptionList {
        height: auto;
        max-height: 6;
        border: none;
        padding: 0;
        background: $boost;
        display: none;
    }
    ModelPicker.-listed > OptionList {
        display: block;
    }
    ModelPicker > .model-picker--status {
        color: $text-muted;
        height: auto;
    }
    ModelPicker > .model-picker--status.-error {
        color: $text-error;
    }
    """

    class Picked(Message):
        """A model was chosen from the list (enter or click)."""

        def __init__(self, picker: ModelPicker, model: str) -> None:
            super().__init__()
            self.picker = picker
            self.model = model

        @property
        def control(self) -> ModelPicker:
            return self.picker

    def __init__(
        self,
        *,
        value: str = "",
        placeholder: str = "",
        input_id: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._value = value
        self._placeholder = placeholder
        self._input_id = input_id
        self.models: list[str] = []
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        yield Input(
            value=self._value, placeholder=self._placeholder, id=self._input_id, compact=True
        )
        yield OptionList(compact=True)
        status = Static(Content(""), classes="model-picker--status")
        status.display = False
        yield status

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def options(self) -> OptionList:
        return self.query_one(OptionList)

    @property
    def value(self) -> str:
        return self.input.value

    @property
    def shown(self) -> list[str]:
        """The models listed now (narrowed by what is typed)."""
        return list(self._shown)

    def set_status(self, text: str, error: bool = False) -> None:
        """The line under the list (text already safe: built from literals and one_line)."""
        status = self.query_one(".model-picker--status", Static)
        status.set_class(error, "-error")
        status.update(Content(text))
        status.display = bool(text)

    def set_models(self, models: list[str]) -> None:
        """The server's models (sorted); the list shows those matching what is typed."""
        self.models = list(models)
        self._refilter()
        if models:
            self.set_status(
                f"{plural(len(models), 'model')} on the server · type to narrow, ↓ to pick"
            )

    def clear_models(self) -> None:
        self.models = []
        self._refilter()

    def _refilter(self) -> None:
        shown = matching_models(self.models, self.input.value)
        if shown == self._shown:
            return
        self._shown = shown
        options = self.options
        options.clear_options()
        options.add_options([Option(Content(one_line(name))) for name in shown])
        self.set_class(bool(shown), "-listed")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        if event.input is self.input:
            self._refilter()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        if 0 <= index < len(self._shown):
            model = self._shown[index]
            field = self.input
            with field.prevent(Input.Changed):
                field.value = model
            field.cursor_position = len(model)
            field.focus()
            self.post_message(self.Picked(self, model))

    def on_key(self, event: events.Key) -> None:
        if event.key == "down" and self.input.has_focus and self._shown:
            event.stop()
            self.options.focus()
            if self.options.highlighted is None:
                self.options.highlighted = 0
        elif event.key == "up" and self.options.has_focus and self.options.highlighted == 0:
            event.stop()
            self.input.focus()
