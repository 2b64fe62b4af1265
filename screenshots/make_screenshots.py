"""Write SVG screenshots of the app's main states into screenshots/ (used by the README).

    python screenshots/make_screenshots.py [NAME ...]   # all of them, or just these

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
from datetime import timedelta
from pathlib import Path

os.environ["TZ"] = "UTC"
os.environ["HOME"] = "/home/dev"
time.tzset()

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ui"))
sys.path.insert(1, str(HERE.parent / "tests"))

import imported_data  # noqa: E402
import memory_data  # noqa: E402
import sample_data  # noqa: E402
from apphelpers import make_app, settle  # noqa: E402
from composer_helpers import (  # noqa: E402
    ScriptedProvider,
    scripted_settings,
    use_provider,
    wait_for,
)

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


async def imported(pilot, sample) -> None:
    """The imported Claude Code session: thinking shown, the first tool output opened."""
    await opened(pilot, "cc", sample, "tab", "t")
    view = pilot.app.main_screen.conversation
    first = next(i for i, item in enumerate(view.items) if item.role == "tool")
    view._set_cursor(first)
    await pilot.press("enter", "home")
    await settle(pilot)


async def hostile(pilot, sample) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(sample.ids["hostile"])
    await settle(pilot)
    view = pilot.app.main_screen.conversation
    view.scroll_to(y=0, animate=False)
    await settle(pilot)


REPLY = [
    "With ",
    "jitter ",
    "the ",
    "retries ",
    "of ",
    "many ",
    "clients ",
    "spread ",
    "out:\n\n",
    "```python\n",
    "import ",
    "random\n\n",
    "def ",
    "backoff(attempt):\n",
    "    base ",
    "= ",
    "0.1 ",
    "* ",
    "2**attempt\n",
]


async def typed(pilot, sample, *lines: str) -> None:
    """The "fix" session open, the composer holding `lines`."""
    await opened(pilot, "fix", sample)
    await pilot.press("i")
    for number, line in enumerate(lines):
        if number:
            await pilot.press("ctrl+j")
        await pilot.press(*["space" if ch == " " else ch for ch in line])
    await settle(pilot)


async def generating(pilot, sample) -> None:
    """A reply streaming (frozen half-way: the scripted model waits after REPLY)."""
    await opened(pilot, "fix", sample)
    use_provider(pilot.app, ScriptedProvider(REPLY, then="hang"))
    pilot.app.main_screen.runner.send("Add jitter to the backoff?")
    view = pilot.app.main_screen.conversation
    await wait_for(pilot, lambda: view.live is not None and view.live.deltas == len(REPLY))
    pilot.app.clock.now += timedelta(seconds=2.4)
    await pilot.pause(0.3)


async def failed(pilot, sample) -> None:
    """A reply that broke off with a provider error."""
    from threadline.chat.provider import ProviderError

    await opened(pilot, "fix", sample)
    error = ProviderError(
        "the connection to http://localhost:11434/v1 broke off mid-reply (truncated): "
        "peer closed connection",
        "truncated",
    )
    words = ["On ", "Windows ", "the ", "same ", "fix ", "works, ", "but"]
    use_provider(pilot.app, ScriptedProvider(words, then=error))
    pilot.app.main_screen.runner.send("And on Windows?")
    runner = pilot.app.main_screen.runner
    await wait_for(pilot, lambda: runner.idle.is_set())
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
    ("imported", "imported", (120, 36), lambda p, s: imported(p, s)),
    (
        "composer",
        "plain",
        (120, 36),
        lambda p, s: typed(p, s, "How does this behave on Windows?", "And in Docker?"),
    ),
    ("generating", "plain", (120, 36), lambda p, s: generating(p, s)),
    ("provider-error", "plain", (120, 36), lambda p, s: failed(p, s)),
    ("new-session", "plain", (120, 36), lambda p, s: pressed(p, "n")),
    ("no-provider", "plain", (80, 24), lambda p, s: opened(p, "fix", s)),
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
    # A provider is configured (the composer is on) except in the "no-provider" picture; no
    # request is made unless a step swaps in a scripted model.
    settings = None if name == "no-provider" else scripted_settings()
    app = make_app(sample, settings=settings)
    target = HERE / f"{name}.svg"

    async def pilot(p) -> None:
        await step(p, sample)
        await p.pause(0.1)
        for widget in app.screen.query("Input, ComposerInput"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        await p.pause()
        app.save_screenshot(filename=target.name, path=str(HERE))
        app.exit()

    app.run(headless=True, size=size, auto_pilot=pilot)
    return target


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, size, step in SHOTS:
            if sys.argv[1:] and name not in sys.argv[1:]:
                continue
            db = Path(tmp) / f"{name}.db"
            if kind == "imported":
                sample = asyncio.run(imported_data.build(db))
            else:
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
