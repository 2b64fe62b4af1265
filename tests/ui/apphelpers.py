"""Helpers for driving the app in tests: build it on a sample database, wait for it, read it.

Tests wait on events (the app painting a frame, its workers finishing), never on a sleep or a
clock: a busy machine makes them slower, not wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import sample_data
from internals import on_paint, screen_segments, screen_strips, terminal_output  # noqa: F401
from sample_data import API, NOW
from textual.pilot import Pilot
from textual.widget import Widget

from threadline.config import Settings
from threadline.ui.app import ThreadlineApp


class FixedClock:
    """The app's clock in tests: NOW unless moved."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


def quiet_settings() -> Settings:
    """Defaults, with auto-cleanup off (the sample has a 40-day-old session)."""
    settings = Settings()
    settings.session.auto_cleanup = False
    return settings


def make_app(
    db: Path | sample_data.Sample,
    working_dir: str = API,
    settings: Settings | None = None,
    poll_seconds: float = 0.2,
    capture_seconds: float | None = None,
) -> ThreadlineApp:
    path = db.path if isinstance(db, sample_data.Sample) else db
    return ThreadlineApp(
        path,
        settings or quiet_settings(),
        working_dir,
        clock=FixedClock(),
        poll_seconds=poll_seconds,
        capture_seconds=capture_seconds,
    )


# Seconds with not a single frame painted: the app is stuck. Never reached on a busy machine
# (an app that runs paints often); only there so that a broken app fails instead of hanging.
HANG_GUARD = 120.0


def _ready(app: ThreadlineApp) -> bool:
    return bool(app.fatal_error) or (app.started and app.main_screen.total is not None)


async def until(
    pilot: Pilot,
    condition: Callable[[], object],
    what: str = "",
    wake: asyncio.Event | None = None,
) -> None:
    """Let the app run until `condition()` holds, looking again after each frame it paints
    (and each time `wake` is set, for what changes without painting)."""
    app = pilot.app
    if condition():
        return
    changed = wake or asyncio.Event()
    undo = on_paint(app, changed.set)
    try:
        while not condition():
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), HANG_GUARD)
            except TimeoutError:
                raise AssertionError(f"stuck waiting for {what or condition}") from None
            await pilot.pause()
    finally:
        undo()


async def settle(pilot: Pilot) -> None:
    """Wait until the store is open, the list counted and no worker runs.

    Workers start from message handlers (a loaded list opens its first session), so one quiet
    moment is not enough: wait for three in a row.
    """
    app = pilot.app
    assert isinstance(app, ThreadlineApp)
    await until(pilot, lambda: _ready(app), "the store to open and the list to load")
    quiet = 0
    while quiet < 3:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        quiet = 0 if any(worker.is_running for worker in app.workers) else quiet + 1
    for widget in app.screen.query("Input"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()


def screen_lines(app: ThreadlineApp) -> list[str]:
    """The text of every line on screen, as the terminal would show it."""
    return ["".join(strip.text for strip in line) for line in screen_strips(app)]


def screen_text(app: ThreadlineApp) -> str:
    return "\n".join(screen_lines(app))


def widget_lines(widget: Widget) -> list[str]:
    """The lines a widget shows on screen (its region of the screen)."""
    region = widget.region
    lines = screen_lines(widget.app)  # type: ignore[arg-type]
    return [line[region.x : region.right] for line in lines[region.y : region.bottom]]


def find_on_screen(app: ThreadlineApp, text: str) -> tuple[int, int] | None:
    """(x, y) of the first place `text` is shown, or None."""
    for y, line in enumerate(screen_lines(app)):
        x = line.find(text)
        if x >= 0:
            return x, y
    return None
