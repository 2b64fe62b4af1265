"""The app syncs in the background when the database syncs: at start-up, off the UI thread,
and a failure is shown as a notice while the app goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

from sync.helpers import machines
from threadline.config import Settings
from threadline.store import Store
from threadline.ui.app import ThreadlineApp


def _settings() -> Settings:
    settings = Settings()
    settings.session.auto_cleanup = False
    settings.memory.extraction = False
    return settings


async def _wait_for_sync(app: ThreadlineApp, pilot: object) -> None:
    await app.engine_ready.wait()
    for _ in range(100):
        await app.workers.wait_for_complete()
        worker = getattr(app, "background_sync", None)
        if worker is not None and not worker.running:
            return
        await pilot.pause()  # type: ignore[attr-defined]
    raise AssertionError("the background sync never finished")


async def test_the_app_applies_other_machines_at_start(tmp_path: Path) -> None:
    a, b = await machines(tmp_path, 2)
    assert a.store is not None
    await b.init()
    await b.close()
    session = await a.store.create_session(a.project, title="written on a")
    await a.store.add_message(session.id, "user", "hello b")
    await a.init()
    await a.close()
    app = ThreadlineApp(b.db, _settings(), b.project)
    async with app.run_test() as pilot:
        await _wait_for_sync(app, pilot)
        assert app.background_sync is not None
    async with await Store.open(b.db) as store:
        assert [s.title for s in await store.list_sessions("all")] == ["written on a"]


async def test_a_failed_background_sync_is_shown(tmp_path: Path) -> None:
    (a,) = await machines(tmp_path, 1)
    await a.init()
    await a.close()
    shutil.rmtree(a.remote_repo)  # the remote is gone
    app = ThreadlineApp(a.db, _settings(), a.project)
    async with app.run_test() as pilot:
        await _wait_for_sync(app, pilot)
        for _ in range(50):
            if app._notifications:
                break
            await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("Sync: cannot fetch") for m in messages), messages
    async with await Store.open(a.db) as store:
        state = await store.journal.state()
        assert state.last_error and "cannot fetch" in state.last_error


async def test_no_background_sync_when_not_set_up(tmp_path: Path) -> None:
    (a,) = await machines(tmp_path, 1)
    await a.close()
    app = ThreadlineApp(a.db, _settings(), a.project)
    async with app.run_test():
        await app.engine_ready.wait()
        await app.workers.wait_for_complete()
        assert app.background_sync is None
