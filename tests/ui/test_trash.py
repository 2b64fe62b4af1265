"""The trash in the app (T): sessions deleted earlier listed from every directory, restored
(r, or enter to restore and open), purged after a confirmation (D then y)."""

from __future__ import annotations

from apphelpers import make_app, settle, until, widget_lines
from sample_data import Sample

from threadline.store import Store
from threadline.ui.screens.confirm import ConfirmScreen
from threadline.ui.screens.trash import TrashScreen

SIZE = (100, 30)


async def trash_some(db: Sample, *names: str) -> None:
    async with await Store.open(db.path) as store:
        for name in names:
            assert await store.delete_session(db.ids[name])


async def open_trash(pilot) -> TrashScreen:
    await settle(pilot)
    await pilot.press("T")
    await until(pilot, lambda: isinstance(pilot.app.screen, TrashScreen), "the trash")
    screen = pilot.app.screen
    assert isinstance(screen, TrashScreen)
    await until(pilot, lambda: screen.trash.total is not None, "the trash to load")
    await pilot.pause()
    return screen


def sidebar_ids(app) -> set[str]:
    return {row.id for row in app.main_screen.sessions.loaded_rows}


async def test_the_trash_lists_every_directory_and_r_restores(plain_db: Sample):
    await trash_some(plain_db, "fix", "web")
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert plain_db.ids["fix"] not in sidebar_ids(app)
        trash = await open_trash(pilot)
        rows = {row.id for row in trash.trash.loaded_rows}
        assert rows == {plain_db.ids["fix"], plain_db.ids["web"]}  # ~/src/web's too
        text = "\n".join(widget_lines(trash.trash))
        assert "trashed now" in text and "~/src/web" in text
        header = "\n".join(widget_lines(trash.query_one("#trash-header")))
        assert "2 sessions" in header and "purged after 30 d" in header
        # r on the "fix" row: it leaves the trash, the list stays open.
        while trash.trash.highlighted is None or trash.trash.highlighted.id != plain_db.ids["fix"]:
            await pilot.press("down")
        await pilot.press("r")
        await until(pilot, lambda: trash.trash.total == 1, "the restore")
        await pilot.press("escape")
        await until(pilot, lambda: plain_db.ids["fix"] in sidebar_ids(app), "the sidebar")
    async with await Store.open(plain_db.path) as store:
        session = await store.get_session(plain_db.ids["fix"])
        assert session is not None and session.deleted_at is None


async def test_enter_restores_and_opens(plain_db: Sample):
    await trash_some(plain_db, "fix")
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_trash(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main_screen, "back to the sessions")
        await until(
            pilot, lambda: app.main_screen.open_session_id == plain_db.ids["fix"], "it opens"
        )
        await settle(pilot)
        assert plain_db.ids["fix"] in sidebar_ids(app)


async def test_purge_asks_first_and_removes_for_good(plain_db: Sample):
    await trash_some(plain_db, "fix")
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        trash = await open_trash(pilot)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("n")  # no: nothing happens
        await until(pilot, lambda: app.screen is trash, "the answer")
        assert trash.trash.total == 1
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: trash.trash.total == 0, "the purge")
        assert "The trash is empty." in "\n".join(widget_lines(trash.trash))
    async with await Store.open(plain_db.path) as store:
        assert await store.get_session(plain_db.ids["fix"]) is None


async def test_the_trash_is_in_the_palette_and_help(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.main_screen)]
        assert any("trash" in t.lower() for t in titles)
        trash = await open_trash(pilot)
        assert "The trash is empty." in "\n".join(widget_lines(trash.trash))
        titles = [c.title for c in app.get_system_commands(trash)]
        assert "Remove the session for good (asks first)" in titles
