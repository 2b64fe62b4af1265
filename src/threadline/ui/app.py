"""The threadline app: opens the store inside its event loop, then shows the main screen.

`run_app` is what `threadline` (no subcommand) calls. A database that cannot be opened ends
the app before anything is drawn to stay: `run_app` raises ThreadlineError, which the CLI
prints as one `threadline: error: ...` line with exit status 1; the file is untouched (the
store refuses before writing).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from threadline.errors import ThreadlineError
from threadline.models import Scope
from threadline.ui.idle_gc import TICK as IDLE_GC_TICK
from threadline.ui.idle_gc import IdleCollector
from threadline.ui.memory_tasks import UPKEEP_SECONDS, MemoryTasks
from threadline.ui.resources import stylesheets
from threadline.ui.safe import clean

if TYPE_CHECKING:
    from threadline.chat.turns import TurnEngine
    from threadline.config import Settings
    from threadline.store import Store
    from threadline.ui.screens.main import MainScreen

POLL_SECONDS = 1.0
# The latest the cyclic garbage collector is turned back on after start-up (it normally is
# 1 s after the sidebar's first paint).
GC_BACK_ON_SECONDS = 10.0
# How long a write waits while another process holds the database (then the message stays in
# the composer with a notice).
WRITE_PATIENCE = 60.0


def system_clock() -> datetime:
    return datetime.now(UTC)


_frozen = False


def _freeze_start_up() -> None:
    """What start-up made (Textual, the modules, the screen) lives as long as the app: keep it
    out of the collector's way, or every full collection walks it all again (on a busy
    machine, hundreds of milliseconds that a key press waits for). Once per process, after
    one collection (so no garbage is frozen with it)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    gc.enable()  # (the CLI turns the collector off while the app starts: see run_app_command)


class ThreadlineApp(App[int]):
    """Browse the sessions of a directory (or workspace, or everything) and read them."""

    TITLE = "threadline"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        settings: Settings,
        working_dir: str,
        *,
        clock: Callable[[], datetime] | None = None,
        poll_seconds: float = POLL_SECONDS,
        scope: Scope = Scope.DIRECTORY,
        upkeep_seconds: float = UPKEEP_SECONDS,
        capture_seconds: float | None = None,
        opening: concurrent.futures.Future[Store] | None = None,
    ) -> None:
        """`opening`: the store of `db_path`, already being opened (Store.open_in_background:
        the CLI starts it before importing the app); None: the app opens it."""
        css: list[str | PurePath] = [*stylesheets()]
        super().__init__(css_path=css)
        self.db_path = Path(db_path)
        self.settings = settings
        self.working_dir = working_dir
        self.clock = clock or system_clock
        self.poll_seconds = poll_seconds
        self.initial_scope = scope
        self.store: Store | None = None
        self._opening = opening
        # The turn engine (None until engine_ready; stays None when no provider is set up,
        # with engine_error saying why).
        self.engine: TurnEngine | None = None
        self.engine_error: str | None = None
        self.engine_ready = asyncio.Event()
        self.fatal_error: str | None = None
        self._main_screen: MainScreen | None = None
        self._data_version: int | None = None
        self._polling = False
        # Summaries and project memory: the engine, the extraction upkeep, the queue's status.
        self.memory_tasks = MemoryTasks(self, upkeep_seconds)
        # Coding agents' histories followed live ([sources]).
        from threadline.ui.capture_tasks import CaptureTasks

        self.capture = CaptureTasks(self, capture_seconds)
        self._bad_theme: str | None = None
        self._apply_theme(settings.ui.theme)
        # Full garbage collections wait for a pause in the input (ui/idle_gc.py).
        self.idle_gc = IdleCollector()

    def _apply_theme(self, name: str) -> None:
        if name in self.available_themes:
            self.theme = name
        else:
            self._bad_theme = name

    # ------------------------------------------------------------------ lifecycle

    def get_default_screen(self) -> Screen:
        # The main screen is composed while the store opens (see on_load); it shows
        # "Loading…" until the store is ready.
        from threadline.ui.screens.main import MainScreen

        # Made with the classes it will have at its first frame (the width's breakpoint, the
        # focused list's border): each class added later restyles the whole screen.
        width = self.size.width
        _, wide = max((at, name) for at, name in self.HORIZONTAL_BREAKPOINTS or [] if width >= at)
        self._main_screen = MainScreen(
            scope=self.initial_scope, id="main", classes=f"{wide} -focus-list"
        )
        return self._main_screen

    @property
    def main_screen(self) -> MainScreen:
        """The browsing screen."""
        if self._main_screen is None:
            raise RuntimeError("the app has not started")
        return self._main_screen

    @property
    def started(self) -> bool:
        """The browsing screen exists (the app got as far as making it)."""
        return self._main_screen is not None

    def on_load(self) -> None:
        # Open the database on its threads while Textual composes and mounts the screen.
        self.run_worker(self._start(), group="start", exit_on_error=False)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_chosen)
        # Whatever becomes of start-up, the collector is back on by then.
        self.set_timer(GC_BACK_ON_SECONDS, _freeze_start_up, name="collector back on")
        bad = self._bad_theme
        if bad:
            choices = ", ".join(sorted(self.available_themes))
            self.notify(
                f"Unknown theme {clean(bad)!r} in the config; using {self.theme}. "
                f"Themes: {choices}.",
                severity="warning",
                markup=False,
                timeout=10,
            )

    async def _start(self) -> None:
        """Open the store, then load the main screen once it is mounted."""
        try:
            if self._opening is not None:
                store = await asyncio.wrap_future(self._opening)
            else:
                from threadline.store import Store

                store = await Store.open(self.db_path, clock=self.clock)
        except ThreadlineError as exc:
            self._fail(str(exc))
            return
        except OSError as exc:
            self._fail(f"{self.db_path}: {exc.strerror or exc}")
            return
        self.store = store
        # A damaged file stops everything at once with what to do; a write waiting for another
        # process's lock says so in the composer (and gives up after WRITE_PATIENCE seconds,
        # leaving the message in the composer).
        store.on_damage(self._show_damage)
        store.wait_for_lock(WRITE_PATIENCE, self._lock_wait)
        try:
            self._data_version = await store.outside_data_version()
        except ThreadlineError:
            self._data_version = None
        screen = self.main_screen
        screen.read_ahead(store)  # (while the screen is composed and mounted)
        await screen.mounted.wait()
        await screen.load(store)
        # What follows (the engine's imports on a thread, the collector) would hold the GIL
        # while the rows paint: it waits for that paint.
        await self._next_refresh()
        # The composer's text area is not part of the first screen (see widgets/composer.py).
        screen.composer.build()
        await self._start_engine(store)
        # Once the first session has had time to open (its paint is not held up either).
        self.set_timer(1.0, lambda: self.call_after_refresh(_freeze_start_up))
        self.idle_gc.start()
        self.set_interval(IDLE_GC_TICK, self.idle_gc.tick, name="idle collections")
        self.set_interval(self.poll_seconds, self._poll, name="data-version poll")
        self.memory_tasks.start()
        from threadline.sync.worker import start_background_sync  # sync: the one hook

        self.background_sync = start_background_sync(self)
        self.run_worker(self._finish_search_index(store), group="search-index", exit_on_error=False)
        if self.settings.session.auto_cleanup:
            await self._auto_cleanup(store)
        await self.capture.start(store)

    async def _next_refresh(self) -> None:
        """Return after the next screen refresh (the rows just loaded are on screen)."""
        painted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not painted.done():
                painted.set_result(None)

        self.call_after_refresh(done)
        await painted

    async def _finish_search_index(self, store: Store) -> None:
        """After an upgrade, build the search index in the background (short write steps;
        search uses the previous index meanwhile), with its progress in the header."""
        if store.read_only:
            return
        try:
            if (await store.search_build_state()).finished:
                return
        except ThreadlineError:
            return
        screen = self.main_screen

        def progress(done: int, total: int) -> None:
            screen.set_busy(f"indexing for search {done * 100 // max(total, 1)}%")

        screen.set_busy("indexing for search…")
        try:
            await store.build_search_index(progress)
        except ThreadlineError as exc:
            from threadline.ui.notices import notify_error

            notify_error(self, exc, "Indexing for search stopped (it resumes next time): ")
        finally:
            screen.set_busy(None)

    async def _start_engine(self, store: Store) -> None:
        """The turn engine, after the first paint (its HTTP client is imported on a thread)."""
        import importlib

        from threadline.chat.provider import ProviderError

        # Imported on a thread (tens of milliseconds), so the first paint is not held up.
        await asyncio.to_thread(importlib.import_module, "threadline.chat.turns")
        if self.settings.effective_provider().base_url:
            await asyncio.to_thread(importlib.import_module, "threadline.chat.openai_compat")
        from threadline.chat.turns import TurnEngine

        try:
            self.engine = TurnEngine.from_settings(store, self.settings)
        except ProviderError:
            self.engine = None  # the composer says how to configure one
        except ThreadlineError as exc:
            self.engine, self.engine_error = None, str(exc)
        self.engine_ready.set()
        if self._main_screen is not None and self._main_screen.is_attached:
            self._main_screen.runner.update()

    def writing_reply(self) -> bool:
        """A reply is being written (streaming) in the app now."""
        screen = self._main_screen
        return screen is not None and screen.runner.busy

    def _theme_chosen(self, theme: object) -> None:
        """A theme chosen in the palette is remembered: [ui] theme in config.toml (written on
        a thread; themes the config cannot name, such as a plugin's, are not saved)."""
        from threadline.config import THEMES

        name = self.theme
        if name == self.settings.ui.theme or name not in THEMES:
            return
        self.settings.ui.theme = name
        self.run_worker(self._save_theme(name), group="config", exit_on_error=False)

    async def _save_theme(self, name: str) -> None:
        from threadline.chat.provider_setup import config_file
        from threadline.config_write import set_config_value

        path = config_file(self.settings.source)
        try:
            await asyncio.to_thread(set_config_value, "ui", "theme", name, path)
        except ThreadlineError as exc:
            from threadline.ui.notices import notify_error

            notify_error(self, exc, "Theme not saved: ")

    # ------------------------------------------------------------------ provider setup

    def open_provider_setup(self) -> None:
        """The provider form (palette, or `i` while none is set up); saving it makes the turn
        engine again from the file written, so the composer works without a restart."""
        from threadline.chat.provider_setup import config_file
        from threadline.ui.screens.setup import ProviderSetupScreen

        cfg = self.settings.provider
        form = ProviderSetupScreen(
            config_file(self.settings.source),
            base_url=cfg.base_url,
            api_key_env=cfg.api_key_env,
            model=cfg.model,
        )

        def saved(path: Path | None) -> None:
            if path is not None:
                self.run_worker(self.reload_config(path), group="config", exit_on_error=False)

        self.push_screen(form, callback=saved)

    async def reload_config(self, path: Path) -> None:
        """Read the settings again from `path` (on a thread) and make the turn engine anew; a
        reply still streaming finishes on the engine it started with."""
        from threadline.config import load_settings

        try:
            settings = await asyncio.to_thread(load_settings, path)
        except ThreadlineError as exc:
            from threadline.ui.notices import notify_error

            notify_error(self, exc, "Settings not reloaded: ")
            return
        self.settings = settings
        old, self.engine, self.engine_error = self.engine, None, None
        self.engine_ready.clear()
        if self.store is not None:
            await self._start_engine(self.store)
        if old is not None:
            self.run_worker(self._close_when_idle(old), group="config", exit_on_error=False)
        provider = settings.effective_provider()
        if self.engine is not None:
            from threadline.text import redact_url

            self.notify(
                f"Saved to {path}. Ready: {provider.model or 'no default model'} on "
                f"{redact_url(provider.base_url or '')}.",
                title="Model provider",
                markup=False,
            )
        else:
            self.notify(f"Saved to {path}.", title="Model provider", markup=False)

    async def _close_when_idle(self, engine: TurnEngine) -> None:
        if self._main_screen is not None:
            await self._main_screen.runner.idle.wait()
        await engine.aclose()

    def _show_damage(self, problem: str) -> None:
        from threadline.ui.screens.damaged import DamagedScreen

        if not isinstance(self.screen, DamagedScreen):
            self.push_screen(DamagedScreen(self.db_path, problem))

    def _lock_wait(self, seconds: float) -> None:
        if self._main_screen is not None and self._main_screen.is_attached:
            self._main_screen.runner.waiting_for_lock(seconds)

    def _fail(self, message: str) -> None:
        """End the app at once: `run_app` prints the message as one line, exit status 1."""
        self.fatal_error = message
        self.exit(1, return_code=1)

    async def _auto_cleanup(self, store: Store) -> None:
        """Retention on start (off the UI thread): see ui/auto_cleanup.py."""
        from threadline.ui import auto_cleanup

        await auto_cleanup.run(self, store)

    async def _poll(self) -> None:
        """Notice writes by other processes (PRAGMA data_version) and refresh what is shown.

        The app's own writes do not count: it shows them as it makes them."""
        store = self.store
        if store is None or self._polling:
            return
        self._polling = True
        try:
            version = await store.outside_data_version()
        except ThreadlineError:
            return
        finally:
            self._polling = False
        screen = self._main_screen
        if version != self._data_version and screen is not None and screen.is_attached:
            self._data_version = version
            await screen.data_changed()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseEvent)):
            self.idle_gc.activity()
        await super().on_event(event)

    async def on_unmount(self) -> None:
        self.idle_gc.stop()
        if self._main_screen is not None:
            # A reply still streaming is cancelled and its partial text saved first.
            await self._main_screen.runner.stop()
            try:
                await self._main_screen.save_drafts()
            except Exception:  # noqa: BLE001 - quitting goes on; a draft is not a message
                pass
        if self.store is not None:
            # Before the engine closes: the session left open goes to extraction with it.
            screen = self._main_screen
            await self.memory_tasks.shutdown(screen.open_session_id if screen else None)
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.aclose()
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()

    # ------------------------------------------------------------------ palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from threadline.ui.screens.main import MainScreen
        from threadline.ui.screens.memories import MemoriesScreen
        from threadline.ui.screens.trash import TrashScreen

        if isinstance(screen, MainScreen | MemoriesScreen | TrashScreen):
            yield from screen.palette_commands()
        if isinstance(screen, MainScreen):
            yield SystemCommand(
                "Set up a model provider",
                "Server, API key variable and model: tests the connection, writes config.toml",
                self.open_provider_setup,
            )
            for title, help_text, callback in self.capture.palette_commands():
                yield SystemCommand(title, help_text, callback)


def run_app(
    *,
    db_path: str | os.PathLike[str],
    settings: Settings,
    working_dir: str,
    clock: Callable[[], datetime] | None = None,
    opening: concurrent.futures.Future[Store] | None = None,
) -> int:
    """Run the app until the user quits; returns the exit status. `opening`: the store of
    `db_path` being opened already (see ThreadlineApp).

    Raises:
        ThreadlineError: the store could not be opened, or the install has no stylesheets
            (the caller prints it as one line; nothing was drawn to stay).
    """
    from threadline.ui.paste import install

    try:
        app = ThreadlineApp(db_path, settings, working_dir, clock=clock, opening=opening)
    except FileNotFoundError as exc:  # a broken install without its stylesheets
        raise ThreadlineError(str(exc)) from None
    install()  # pastes holding ESC arrive whole and in order (see ui/paste.py)
    # The modules and classes loaded so far live as long as the process: out of the
    # collector's sight, so the collections start-up triggers do not walk them (cheap: no
    # collection is run here).
    gc.freeze()
    try:
        app.run()
    finally:
        gc.enable()
    if app.fatal_error is not None:
        raise ThreadlineError(app.fatal_error)
    return int(app.return_code or 0)
