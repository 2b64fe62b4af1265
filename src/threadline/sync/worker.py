"""The app's background sync: at start-up and every `[sync] interval_minutes`, on a thread.

Textual-free: the app hands itself over as `host` (anything with run_worker, set_interval,
call_from_thread and notify). Each sync runs on a worker thread with its own event loop and its
own connection to the database, so the UI never waits for git or for the apply; the app notices
what was applied through its usual check for outside writes. Failures are shown and lose
nothing: what was not sent stays in the journal tables for the next try.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from threadline.errors import ThreadlineError


def configured(db_path: Path, interval_minutes: float) -> bool:
    """Whether the database was set up with `threadline sync init` (a file check, no I/O wait)."""
    return interval_minutes > 0 and Path(f"{db_path}.sync", ".git").is_dir()


def run_once(db_path: Path, settings: Any, here: str | None) -> tuple[int, list[str]]:
    """One sync of the database (blocking: run it on a thread). Returns (applied, errors)."""
    from threadline.store import Store
    from threadline.sync import engine

    cfg = settings.sync
    options = engine.SyncOptions(
        recipients=list(cfg.recipients), identity=cfg.identity, interactive=False, here=here
    )

    async def go() -> tuple[int, list[str]]:
        store = await Store.open(db_path, readers=1)
        try:
            report = await engine.sync(store, options)
            return report.applied, report.errors
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except ThreadlineError as exc:
        return 0, [str(exc)]


class BackgroundSync:
    """Starts a sync now and every interval; one at a time; reports failures as notices."""

    def __init__(self, host: Any, db_path: Path, settings: Any, here: str | None) -> None:
        self.host = host
        self.db_path = db_path
        self.settings = settings
        self.here = here
        self.running = False

    def start(self) -> None:
        self.kick()
        minutes = float(self.settings.sync.interval_minutes)
        self.host.set_interval(minutes * 60, self.kick, name="background sync")

    def kick(self) -> None:
        if self.running:
            return
        self.running = True
        self.host.run_worker(self._work, thread=True, group="sync", exit_on_error=False)

    def _work(self) -> None:
        try:
            applied, errors = run_once(self.db_path, self.settings, self.here)
        finally:
            self.running = False
        for message in errors[:3]:
            self.host.call_from_thread(
                self.host.notify,
                f"Sync: {message}",
                severity="error",
                markup=False,
                timeout=10,
            )


def start_background_sync(app: Any) -> BackgroundSync | None:
    """The app's one hook: sync in the background when this database syncs."""
    settings = app.settings
    if not configured(app.db_path, float(settings.sync.interval_minutes)):
        return None
    worker = BackgroundSync(app, app.db_path, settings, app.working_dir)
    worker.start()
    return worker
