"""Set up a model provider from inside the app (the palette, or `i` while none is set up).

A form over the app: the server (a preset fills its usual base URL and key variable, or any
OpenAI-compatible base URL), the NAME of the environment variable holding the API key (never
the key), and the model. The connection test lists the server's models (`GET /models`, in a
worker) to pick from; saving writes [provider] into config.toml (0600, the rest of the file
kept, on a thread) and closes with the file written, after which the app makes its turn engine
again: the composer works without a restart. What the answers mean is in
chat/provider_setup.py; presets and the test in chat/connect.py.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Select, Static

from threadline.chat.connect import PRESETS, preset_for_url
from threadline.chat.provider_setup import (
    ProviderAnswers,
    SetupProblem,
    check_answers,
    check_base_url_answer,
    check_key_env_answer,
    key_for,
    key_note,
    save_provider,
)
from threadline.errors import ThreadlineError
from threadline.paths import home_short
from threadline.ui.format import plural
from threadline.ui.safe import one_line
from threadline.ui.screens.dialog import Dialog
from threadline.ui.widgets.model_picker import ModelPicker

OTHER = "other"
FIELDS = {"base_url": "#setup-url", "api_key_env": "#setup-key", "model": "#setup-model"}


class ProviderSetupScreen(Dialog[Path | None]):
    """The provider form; closes with the config file written, or None (esc)."""

    DEFAULT_CSS = """
    #setup-box {
        width: 84;
        max-width: 100%;
        max-height: 100%;
        padding: 0 1;
    }

    .setup-row {
        height: auto;
    }

    #setup-box > .setup-row:first-of-type, .setup-test-row, .setup-model-row {
        margin-top: 1;
    }

    .setup-label {
        width: 14;
        color: $text-muted;
    }

    #setup-preset, #setup-url, #setup-key, #setup-models {
        width: 1fr;
    }

    .setup-note {
        padding-left: 14;
        color: $text-muted;
    }

    .setup-note.-error, #setup-result.-error {
        color: $text-error;
    }

    #setup-result {
        width: 1fr;
        padding-left: 2;
        color: $text-muted;
    }

    #setup-result.-ok {
        color: $text-success;
    }

    #setup-where {
        margin-top: 1;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "save", "Save", show=False),
        Binding("ctrl+t", "test", "Test", show=False),
    ]

    def __init__(
        self,
        config_file: Path,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__()
        self.config_file = config_file
        self._base_url = base_url or ""
        self._key_env = api_key_env or ""
        self._model = model or ""
        self.tested: str | None = None  # the base URL whose models are listed
        self.saved: ProviderAnswers | None = None

    def compose(self) -> ComposeResult:
        preset = preset_for_url(self._base_url)
        options = [(Content(f"{p.label}  {p.base_url}"), p.name) for p in PRESETS]
        options.append((Content("Another server (type its base URL)"), OTHER))
        initial = preset.name if preset else (OTHER if self._base_url else Select.NULL)
        with Vertical(id="setup-box", classes="dialog-box") as box:
            box.border_title = "Set up a model provider"
            box.border_subtitle = "ctrl+t tests · ctrl+s saves · esc cancels"
            with Horizontal(classes="setup-row"):
                yield Static(Content("Server"), classes="setup-label")
                yield Select(
                    options,
                    prompt="Choose a server…",
                    value=initial,
                    compact=True,
                    id="setup-preset",
                )
            with Horizontal(classes="setup-row"):
                yield Static(Content("Base URL"), classes="setup-label")
                yield Input(
                    value=self._base_url,
                    placeholder="http://host:port/v1",
                    compact=True,
                    id="setup-url",
                )
            with Horizontal(classes="setup-row"):
                yield Static(Content("Key variable"), classes="setup-label")
                yield Input(
                    value=self._key_env,
                    placeholder="none (no key), or a name such as OPENAI_API_KEY",
                    compact=True,
                    id="setup-key",
                )
            yield Static(Content(""), id="setup-key-note", classes="setup-note")
            with Horizontal(classes="setup-row setup-test-row"):
                yield Static(Content(""), classes="setup-label")
                yield Button("Test connection", compact=True, id="setup-test")
                yield Static(Content(""), id="setup-result")
            with Horizontal(classes="setup-row setup-model-row"):
                yield Static(Content("Model"), classes="setup-label")
                yield ModelPicker(
                    value=self._model,
                    placeholder="a model the server knows",
                    input_id="setup-model",
                    id="setup-models",
                )
            yield Static(
                Content.assemble(
                    ("Saves [provider] in ", "$text-muted"),
                    (home_short(one_line(str(self.config_file))), "$text"),
                    (" (mode 0600). The key itself is never written.", "$text-muted"),
                    (overrides_note(), "$text-warning"),
                ),
                id="setup-where",
            )

    def on_mount(self) -> None:
        self._show_key_note()
        if self._base_url:
            self.action_test()
        else:
            self.query_one("#setup-preset", Select).focus()

    # ------------------------------------------------------------------ fields

    @property
    def picker(self) -> ModelPicker:
        return self.query_one(ModelPicker)

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def _show_key_note(self) -> None:
        note = self.query_one("#setup-key-note", Static)
        try:
            name = check_key_env_answer(self._value("#setup-key"))
        except SetupProblem as exc:
            note.set_class(True, "-error")
            note.update(Content(one_line(str(exc))))
            return
        note.set_class(False, "-error")
        note.update(Content(key_note(name)))

    def _result(self, text: str, kind: str = "") -> None:
        """The line beside the test button: kind "", "ok" or "error" (text already safe)."""
        result = self.query_one("#setup-result", Static)
        result.set_classes(f"-{kind}" if kind else "")
        result.update(Content(text))

    @on(Select.Changed, "#setup-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        preset = next((p for p in PRESETS if p.name == event.value), None)
        if preset is None:
            if event.value == OTHER:
                self.query_one("#setup-url", Input).focus()
            return
        url = self.query_one("#setup-url", Input)
        key = self.query_one("#setup-key", Input)
        if url.value != preset.base_url:
            url.value = preset.base_url
            key.value = preset.api_key_env or ""
        self._show_key_note()
        self.action_test()

    @on(Input.Changed, "#setup-key")
    def _key_typed(self) -> None:
        self._show_key_note()

    @on(Input.Changed, "#setup-url")
    def _url_typed(self, event: Input.Changed) -> None:
        preset = preset_for_url(event.value.strip())
        select = self.query_one("#setup-preset", Select)
        wanted = preset.name if preset else (OTHER if event.value.strip() else Select.NULL)
        if select.value != wanted:
            with select.prevent(Select.Changed):
                select.value = wanted
        if self.tested is not None and event.value.strip().rstrip("/") != self.tested:
            self.tested = None
            self.picker.clear_models()
            self._result("")

    @on(Input.Submitted, "#setup-url")
    @on(Input.Submitted, "#setup-key")
    def _url_submitted(self) -> None:
        self.action_test()

    @on(Input.Submitted, "#setup-model")
    def _model_submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#setup-test")
    def _test_pressed(self) -> None:
        self.action_test()

    @on(ModelPicker.Picked)
    def _picked(self) -> None:
        self.picker.input.focus()

    # ------------------------------------------------------------------ the test

    def action_test(self) -> None:
        """List the server's models (GET /models) in a worker; stale answers are dropped."""
        try:
            url = check_base_url_answer(self._value("#setup-url"))
            key_env = check_key_env_answer(self._value("#setup-key"))
        except SetupProblem as exc:
            self._problem(exc)
            return
        self._result(f"listing the models of {one_line(url)}…")
        self._test(url, key_env)

    @work(exclusive=True, group="setup-test", exit_on_error=False)
    async def _test(self, url: str, key_env: str | None) -> None:
        from threadline.chat.connect import check_connection

        check = await check_connection(url, key_for(key_env))
        if not self.is_attached:
            return
        if not check.ok:
            self.tested = None
            self.picker.clear_models()
            self._result(f"✖ {one_line(check.error or 'the server did not answer')}", "error")
            return
        self.tested = url.rstrip("/")
        models = check.models
        self.picker.set_models(models)
        if models:
            self._result(f"✓ connected: {plural(len(models), 'model')}", "ok")
        else:
            self._result("✓ connected, but the server lists no models: type one", "ok")
        if not self.picker.value.strip() and len(models) == 1:
            self.picker.input.value = models[0]
        self.picker.input.focus()

    # ------------------------------------------------------------------ saving

    def _problem(self, problem: SetupProblem) -> None:
        self._result(f"✖ {one_line(str(problem))}", "error")
        self.query_one(FIELDS[problem.field], Input).focus()

    def action_save(self) -> None:
        try:
            answers = check_answers(
                self._value("#setup-url"), self._value("#setup-key"), self.picker.value
            )
        except SetupProblem as exc:
            self._problem(exc)
            return
        self._save(answers)

    @work(exclusive=True, group="setup-save", exit_on_error=False)
    async def _save(self, answers: ProviderAnswers) -> None:
        import asyncio

        try:
            path = await asyncio.to_thread(save_provider, answers, self.config_file)
        except ThreadlineError as exc:
            self._result(f"✖ not saved: {one_line(str(exc))}", "error")
            return
        self.saved = answers
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)


def overrides_note() -> str:
    """ " Note: THREADLINE_BASE_URL is set here and overrides …" when the environment overrides
    what the form saves (empty otherwise)."""
    from threadline.config import ProviderConfig, provider_env_sources

    env = provider_env_sources(ProviderConfig())
    names = [env[key] for key in ("base_url", "model") if key in env]
    if not names:
        return ""
    verb = "is" if len(names) == 1 else "are"
    return f" Note: {' and '.join(names)} {verb} set here and override what is saved."
