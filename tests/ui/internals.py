"""The one place the UI tests read Textual's private attributes (its compositor, its toasts,
its driver, its paint hook). When Textual changes them, only this module changes."""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from textual.app import App
from textual.strip import Strip


def screen_strips(app: App) -> list[list[Strip]]:
    """What a full repaint of the current screen draws, line by line."""
    return app.screen._compositor.render_full_update().strips


def terminal_output(app: App) -> str:
    """The exact characters a full repaint would write to the terminal."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


def screen_segments(app: App) -> list[Segment]:
    """Every segment on screen (with its style, meta included)."""
    return [segment for line in screen_strips(app) for strip in line for segment in strip]


def notifications(app: App) -> list[str]:
    """The messages of the notifications shown now (toasts not yet expired)."""
    return [n.message for n in app._notifications]


def on_paint(app: App, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` each time the app hands a frame to its driver; returns the undo."""
    display = app._display

    def painted(screen, renderable) -> None:  # noqa: ANN001
        display(screen, renderable)
        callback()

    app._display = painted  # type: ignore[method-assign]

    def undo() -> None:
        app._display = display  # type: ignore[method-assign]

    return undo


def send_raw(app: App, event) -> None:  # noqa: ANN001
    """Deliver an event as the terminal driver does (no waiting in between, unlike Pilot)."""
    event.set_sender(app)
    app._driver.send_message(event)


def look_for_idle_in(window: float, monkeypatch) -> None:  # noqa: ANN001
    """Pilot waits, after each key it presses and in each `pause()`, until the process looks
    idle: less than 5 % of a CPU used during one sleep of Textual's granularity (20 ms).
    Look in shorter sleeps of `window` seconds (the same 5 % share counts as idle): the
    checks are as strict, and a key costs `2 * window` of waiting instead of 40 ms."""
    from textual import _wait

    monkeypatch.setattr(_wait, "SLEEP_GRANULARITY", window)
    monkeypatch.setattr(_wait, "SLEEP_IDLE", window / 20)
