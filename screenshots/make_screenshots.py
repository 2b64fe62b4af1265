"""Write SVG screenshots of the app's main states into screenshots/ (used by the README).

    python screenshots/make_screenshots.py

They are made from the same fixed sample database, clock, time zone and home directory as the
snapshot tests (tests/ui/sample_data.py), headless, so they are the same on every machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ["TZ"] = "UTC"
os.environ["HOME"] = "/home/dev"
time.tzset()

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ui"))

import memory_data  # noqa: E402
import sample_data  # noqa: E402
from apphelpers import make_app, settle  # noqa: E402

Step = Callable[..., Awaitable[None]]


async def opened(pilot, session: str, sample, *keys: str) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(sample.ids[session])
    await settle(pilot)
    await pilot.press(*keys)
    await settle(pilot)


async def pressed(pilot, *keys: str, pause: float = 0.0) -> None:
    await settle(pilot)
    await pilot.press(*keys)
    if pause:
        await pilot.pause(pause)
    await settle(pilot)


async def expanded_summary(pilot) -> None:
    await settle(pilot)
    await pilot.press("m", "tab")
    view = pilot.app.main_screen.conversation
    while view.cursor_item is not None and view.cursor_item.kind != "summary":
        await pilot.press("k")
    await pilot.press("enter")
    await settle(pilot)


async def hostile(pilot, sample) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(sample.ids["hostile"])
    await settle(pilot)
    view = pilot.app.main_screen.conversation
    view.scroll_to(y=0, animate=False)
    await settle(pilot)


async def searched(pilot, *keys: str, then: tuple[str, ...] = ()) -> None:
    await settle(pilot)
    await pilot.press("ctrl+f")
    await settle(pilot)
    await pilot.press(*keys)
    await pilot.pause(0.25)
    await settle(pilot)
    for key in then:
        await pilot.press(key)
        await settle(pilot)


SHOTS: list[tuple[str, str, tuple[int, int], Callable]] = [
    ("sessions", "plain", (120, 36), lambda p, s: settle(p)),
    ("conversation", "plain", (120, 36), lambda p, s: opened(p, "fix", s, "tab")),
    ("summary-and-details", "plain", (120, 36), lambda p, s: expanded_summary(p)),
    ("small-terminal", "plain", (80, 24), lambda p, s: opened(p, "fix", s)),
    ("all-directories", "full", (120, 36), lambda p, s: pressed(p, "s", "s")),
    ("filter", "plain", (120, 36), lambda p, s: pressed(p, "slash", *"flaky", pause=0.3)),
    ("help", "plain", (120, 36), lambda p, s: pressed(p, "question_mark")),
    ("rename", "plain", (120, 36), lambda p, s: pressed(p, "j", "r")),
    ("delete-and-undo", "plain", (120, 36), lambda p, s: pressed(p, "d", pause=0.2)),
    ("untrusted-text", "full", (120, 36), lambda p, s: hostile(p, s)),
    ("memories", "memories", (120, 36), lambda p, s: pressed(p, "M")),
    ("memory-add", "memories", (120, 36), lambda p, s: pressed(p, "M", "a")),
    (
        "summary-folded",
        "summarised",
        (120, 36),
        lambda p, s: opened(p, "summarised", s, "tab", "home"),
    ),
    ("search", "plain", (120, 36), lambda p, s: searched(p, "ctrl+s", "ctrl+s", *"how")),
    (
        "search-opened",
        "long",
        (120, 36),
        lambda p, s: searched(p, *"150", then=("down", "enter")),
    ),
]


def shoot(name: str, sample, size: tuple[int, int], step: Callable) -> Path:
    app = make_app(sample)
    target = HERE / f"{name}.svg"

    async def pilot(p) -> None:
        await step(p, sample)
        await p.pause(0.1)
        app.save_screenshot(filename=target.name, path=str(HERE))
        app.exit()

    app.run(headless=True, size=size, auto_pilot=pilot)
    return target


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, size, step in SHOTS:
            db = Path(tmp) / f"{name}.db"
            sample = asyncio.run(sample_data.build(db, hostile=(kind == "full")))
            if kind == "memories":
                asyncio.run(memory_data.add_memories(sample))
            if kind == "summarised":
                sample.ids["summarised"] = asyncio.run(
                    memory_data.add_summarised_session(db, 300, 280)
                )
            if kind == "long":
                asyncio.run(sample_data.add_long_session(db, 300))
            print(shoot(name, sample, size, step).relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
