"""Start-up's first frame: it already shows the sidebar's rows (no "Loading…" frame painted and
then painted over), unless the database is slow to answer: then it is not held any longer."""

from __future__ import annotations

import asyncio

import pytest
from apphelpers import make_app, on_paint, screen_text, settle, until
from sample_data import Sample

from threadline.store import Store
from threadline.ui.screens import main


async def test_the_first_frame_shows_the_rows(plain_db: Sample):
    app = make_app(plain_db)
    painted: list[tuple[int | None, str]] = []

    def frame() -> None:
        if not painted:
            painted.append((app.main_screen.sessions.total, screen_text(app)))

    on_paint(app, frame)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
    total, text = painted[0]
    assert total == 4
    assert "Design: the session s" in text
    assert "Loading…" not in text


async def test_a_slow_database_does_not_hold_the_first_frame(
    plain_db: Sample, monkeypatch: pytest.MonkeyPatch
):
    answer = asyncio.Event()
    count = Store.count_sessions

    async def slow_count(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        await answer.wait()
        return await count(self, *args, **kwargs)

    monkeypatch.setattr(Store, "count_sessions", slow_count)
    monkeypatch.setattr(main, "FIRST_FRAME_HOLD", 0.01)
    app = make_app(plain_db)
    painted: list[str] = []
    on_paint(app, lambda: painted.append(screen_text(app)))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: painted, "a frame while the count is not answered")
        assert app.main_screen.sessions.total is None
        assert "Loading…" in painted[0]
        answer.set()
        await settle(pilot)
        assert "Design: the session s" in screen_text(app)


async def test_the_filter_field_is_made_when_first_opened(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.main_screen
        assert not screen.query("#filter")  # not part of the first screen
        await pilot.press("escape")  # clearing a filter never opened changes nothing
        assert not screen.query("#filter")
        await pilot.press("slash", *"flaky")
        assert app.focused is screen.filter_input
        await until(pilot, lambda: screen.query_text == "flaky", "the filter applied")
        await settle(pilot)
        assert [row.display_title for row in screen.sessions.loaded_rows] == [
            "Fix the flaky retry test"
        ]
