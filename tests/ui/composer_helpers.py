"""Helpers for the composer's tests: the fake model server, settings that point at it, waiting."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from apphelpers import quiet_settings, until, widget_lines

from threadline.config import Settings

if TYPE_CHECKING:
    from fakes.openai_server import FakeOpenAIServer


def chat_settings(server: FakeOpenAIServer, model: str = "fake") -> Settings:
    """Settings with the fake server as the provider (no retries, so errors come at once)."""
    settings = quiet_settings()
    settings.provider.base_url = server.base_url
    settings.provider.model = model
    settings.provider.max_retries = 0
    return settings


async def wait_for(pilot, condition: Callable[[], object]) -> None:
    """Let the app run until `condition()` holds (looked at after each frame it paints)."""
    await until(pilot, condition)


async def turn_done(pilot) -> None:
    """Wait until no turn runs (and the app has caught up with its end)."""
    runner = pilot.app.main_screen.runner
    await runner.idle.wait()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def pane_text(app) -> str:
    return "\n".join(widget_lines(app.main_screen.conversation))


def composer_text(app) -> str:
    return "\n".join(widget_lines(app.main_screen.query_one("#composer")))


async def type_and_send(pilot, text: str) -> None:
    """Focus the composer (i), type `text` key by key (\\n as ctrl+j) and press enter."""
    from threadline.ui.widgets.composer_input import ComposerInput

    if not isinstance(pilot.app.focused, ComposerInput):
        await pilot.press("i")
    keys: list[str] = []
    for ch in text:
        keys.append("ctrl+j" if ch == "\n" else ("space" if ch == " " else ch))
    await pilot.press(*keys)
    await pilot.press("enter")


class ScriptedProvider:
    """A provider that streams given deltas, then ends, fails or waits forever (for pictures:
    the fake server's errors name its random port, and its pauses are timing-dependent)."""

    name = "scripted"

    def __init__(
        self,
        deltas: list[str],
        *,
        then: str | Exception = "end",
        default_model: str | None = "llama3.2",
        models: list[str] | None = None,
    ) -> None:
        self.models = models or []  # what `GET /models` would list
        self.deltas = deltas
        self.then = then
        self._default_model = default_model
        self.sent = 0

    @property
    def default_model(self) -> str | None:
        return self._default_model

    async def stream(self, messages, model: str):  # noqa: ANN001, ANN201
        import asyncio

        from threadline.chat.provider import StreamEnd, TextDelta

        for delta in self.deltas:
            self.sent += 1
            yield TextDelta(delta)
            await asyncio.sleep(0)
        if isinstance(self.then, Exception):
            raise self.then
        if self.then == "hang":
            await asyncio.Event().wait()
        yield StreamEnd(model=model, stop_reason="stop", input_tokens=20, output_tokens=self.sent)

    async def list_models(self) -> list[str]:
        return list(self.models)

    async def aclose(self) -> None:
        return None


def use_provider(app, provider: ScriptedProvider) -> None:
    """Swap the running app's turn engine for one on `provider` (after the app started)."""
    from threadline.chat.turns import TurnEngine

    old, app.engine = app.engine, TurnEngine(app.store, provider)
    if old is not None:
        app.run_worker(old.aclose())
    app.main_screen.runner.update()


def scripted_settings(model: str | None = "llama3.2") -> Settings:
    """Settings that name a provider (the composer is on); pair with `use_provider`."""
    settings = quiet_settings()
    settings.provider.base_url = "http://localhost:11434/v1"
    settings.provider.model = model
    return settings
