"""Automatic cleanup at start-up asks before moving more than a handful of sessions (issue 10):
how many and why; move them, not now, or turn it off (written to config.toml)."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import timedelta

import pytest
from apphelpers import make_app, quiet_settings, settle, until
from internals import notifications
from sample_data import API, NOW, Sample

from threadline import paths
from threadline.store import Store


def titles(app) -> list[str]:
    return [row.display_title for row in app.main_screen.sessions.loaded_rows]


def notes(app) -> list[str]:
    return notifications(app)


class _At:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def crowded_db(plain_db: Sample) -> Sample:
    """The plain sample plus twelve sessions idle for 50 days."""

    async def fill() -> None:
        clock = _At()
        store = await Store.open(plain_db.path, clock=clock)
        try:
            for i in range(12):
                clock.now = NOW - timedelta(days=50, minutes=i)
                s = await store.create_session(API, title=f"Long-idle chat {i:02d}")
                await store.add_message(s.id, "user", "from a while ago")
        finally:
            await store.close()

    asyncio.run(fill())
    return plain_db


def cleaning(days: int = 30):
    settings = quiet_settings()
    settings.session.auto_cleanup = True
    settings.session.retention_days = days
    return settings


async def live_count(app) -> int:
    return await app.store.count_sessions("all")


async def test_a_large_automatic_cleanup_asks_first(crowded_db: Sample):
    app = make_app(crowded_db, settings=cleaning())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.id == "cleanup-ask", "the question")
        text = str(app.screen.query_one("#choice-question").render())
        assert "would move 13 sessions to the trash" in text  # 12 + the 40-day-old one
        assert "13 idle for more than 30 days" in text
        # Not now: nothing moved, nothing asked again in this run.
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is app.main_screen
        assert await live_count(app) == 17
        assert "Long-idle chat 00" in titles(app)
        assert not any("Auto-cleanup moved" in n for n in notes(app))
    # Next start it asks again; this time: move them.
    app = make_app(crowded_db, settings=cleaning())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.id == "cleanup-ask", "the question")
        await pilot.press("m")
        await until(pilot, lambda: any("Auto-cleanup moved" in n for n in notes(app)))
        await settle(pilot)
        assert "moved 13 sessions to the trash" in next(n for n in notes(app) if "moved" in n)
        assert await live_count(app) == 4
        assert "Long-idle chat 00" not in titles(app)


async def test_turning_automatic_cleanup_off_from_the_question(crowded_db: Sample):
    app = make_app(crowded_db, settings=cleaning())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.id == "cleanup-ask", "the question")
        await pilot.press("o")
        await until(pilot, lambda: any("Automatic cleanup is off" in n for n in notes(app)))
        assert await live_count(app) == 17
    saved = tomllib.loads(paths.config_path().read_text())
    assert saved["session"]["auto_cleanup"] is False


async def test_a_small_automatic_cleanup_just_runs(plain_db: Sample):
    app = make_app(plain_db, settings=cleaning())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("Auto-cleanup moved" in n for n in notes(app)))
        assert app.screen is app.main_screen
        assert await live_count(app) == 4


def test_cleanup_question_snapshot(snap_compare, crowded_db: Sample):
    """The cleanup question over the main screen at 80x24: "Cleanup" box saying automatic
    cleanup would move 13 sessions to the trash (13 idle for more than 30 days, 0 beyond the
    1,000 kept), how long the trash keeps them and how to restore, how to list them and what
    turning off does; buttons "Move them", "Not now" (focused), "Turn off"; the subtitle
    "m move them · n not now · o turn off"."""

    async def run(pilot) -> None:
        await until(pilot, lambda: pilot.app.screen.id == "cleanup-ask", "the question")
        await pilot.pause()

    app = make_app(crowded_db, settings=cleaning())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run)
