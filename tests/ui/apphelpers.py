"""Helpers for driving the app in tests: build it on a sample database, wait for it, read it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sample_data
from rich.segment import Segment
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
) -> ThreadlineApp:
    path = db.path if isinstance(db, sample_data.Sample) else db
    return ThreadlineApp(
        path,
        settings or quiet_settings(),
        working_dir,
        clock=FixedClock(),
        poll_seconds=poll_seconds,
    )


async def settle(pilot: Pilot) -> None:
    """Wait until the store is open, the list counted and no worker has run for a while.

    Workers start from message handlers (a loaded list opens its first session), so one quiet
    moment is not enough: wait for three in a row.
    """
    app = pilot.app
    assert isinstance(app, ThreadlineApp)
    quiet = 0
    for _ in range(400):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        ready = app.fatal_error or (app.started and app.main_screen.total is not None)
        if ready and not any(worker.is_running for worker in app.workers):
            quiet += 1
            if quiet >= 3:
                break
        else:
            quiet = 0
        await asyncio.sleep(0.005)
    for widget in app.screen.query("Input"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()


def screen_lines(app: ThreadlineApp) -> list[str]:
    """The text of every line on screen, as the terminal would show it."""
    update = app.screen._compositor.render_full_update()
    return ["".join(strip.text for strip in line) for line in update.strips]


def screen_segments(app: ThreadlineApp) -> list[Segment]:
    """Every segment on screen (with its style, meta included)."""
    update = app.screen._compositor.render_full_update()
    return [segment for line in update.strips for strip in line for segment in strip]


def screen_text(app: ThreadlineApp) -> str:
    return "\n".join(screen_lines(app))


def terminal_output(app: ThreadlineApp) -> str:
    """The exact characters a full repaint would write to the terminal."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


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
