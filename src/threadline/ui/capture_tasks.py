"""The app's live capture: follow the coding agents' histories [sources] turns on.

At start-up: a history found on this machine that the config says nothing about is asked about
once (what was found, how many sessions; follow / don't / later), and the answer is written to
config.toml. Then a worker takes in the followed histories, and looks for changes every
POLL_SECONDS (a stat of the session files, on a thread: see capture.Watch), taking in what is
new or grown; what it adds refreshes the list like any other write. The first pass shows its
progress in the header and says what it took in. Nothing here blocks the UI thread: the walk
and the config write run on threads, the loading on the store's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.content import Content
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from threadline.errors import ThreadlineError
from threadline.ui.notices import notify_error

if TYPE_CHECKING:
    from textual.app import App
    from textual.timer import Timer

    from threadline import capture
    from threadline.config import Settings
    from threadline.importing import ImportProgress
    from threadline.store import Store
    from threadline.ui.screens.main import MainScreen


class CaptureHost(Protocol):
    """What capture uses of the app (ui/ modules never import the app module)."""

    settings: Settings

    @property
    def main_screen(self) -> MainScreen: ...


class CaptureTasks:
    """Asks once, then follows. `pass_done` is set after every look for changes (tests wait on
    it); `passes` counts them."""

    def __init__(self, app: CaptureHost, seconds: float | None = None) -> None:
        """`seconds`: between two looks for changes (None: capture.POLL_SECONDS). The app
        makes this before its first frame: `threadline.capture` is imported when used."""
        self.host = app
        self.seconds = seconds
        self.passes = 0
        self.pass_done = asyncio.Event()
        self.following: list[str] = []  # the source names followed now
        self._timer: Timer | None = None
        self._runner: capture.Capture | None = None
        self._watch: capture.Watch | None = None
        self._store: Store | None = None
        self._first = True
        self._running = False
        self._look_worker: Worker[None] | None = None
        self._reported: set[str] = set()

    @property
    def app(self) -> App[Any]:
        return cast("App[Any]", self.host)

    async def start(self, store: Store) -> None:
        """Ask about undecided histories (once), and follow the ones turned on."""
        from threadline import capture

        try:
            found = await asyncio.to_thread(capture.undecided, self.host.settings)
        except (OSError, ThreadlineError):
            found = []
        if found:
            self.ask(store, found)
        self.follow(store)

    # ------------------------------------------------------------------ asking

    def ask(self, store: Store, found: list[capture.Found]) -> None:
        from threadline.ui.screens.choice import Choice, ChoiceScreen

        lines = "\n".join(f"  {f.describe()}" for f in found)
        total = sum(f.sessions for f in found)
        them = "it" if total == 1 else "them"
        question = Content(
            "threadline found coding-agent history on this machine:\n"
            f"{lines}\n\n"
            f"Take {them} in now, and new sessions as they happen while threadline runs? "
            "What is taken in stays here when the agent deletes its files (Claude Code does "
            "after 30 days).\n\n"
            "The answer is kept under [sources] in the config (claude_code, codex = true or "
            "false); `threadline capture` does the same from cron."
        )
        choices = [
            Choice("yes", "Yes, follow", "y", "primary"),
            Choice("no", "No", "n"),
            Choice("later", "Ask later", "l"),
        ]

        async def answered(answer: str | None) -> None:
            if answer in ("yes", "no"):
                await self.remember(found, answer == "yes")
                if answer == "yes":
                    self.follow(store)

        self.app.push_screen(
            ChoiceScreen(
                "Agent history",
                question,
                choices,
                focus="yes",
                cancel="later",
                screen_id="capture-ask",
            ),
            answered,
        )

    async def remember(self, found: list[capture.Found], follow: bool) -> None:
        """Write the answer to config.toml (on a thread) and to the settings in use."""
        from threadline import capture, paths
        from threadline.config_write import update_config

        settings = self.host.settings
        for f in found:
            setattr(settings.sources, f.followed.key, follow)
        target = settings.source or paths.config_path()
        try:
            await asyncio.to_thread(update_config, capture.answer_changes(found, follow), target)
        except ThreadlineError as exc:
            notify_error(self.app, exc, "Could not save the answer: ")
            return
        if not follow:
            keys = ", ".join(f"{f.followed.key} = false" for f in found)
            self.app.notify(
                f"Not following them ({keys} under [sources] in {paths.home_short(str(target))}).",
                title="Agent history",
                markup=False,
            )

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        """Follow / stop following each agent history, for the command palette."""
        from threadline import capture

        store = self._store or getattr(self.host, "store", None)
        if store is None:
            return []
        out = []
        for f in capture.followed(self.host.settings):
            follow = not f.enabled

            async def toggle(f: capture.Followed = f, follow: bool = follow) -> None:
                await self.set_following(store, f, follow)

            if follow:
                title = f"Follow {f.label} history"
                help_text = f"take in {f.label}'s sessions now and as they happen (saved in config)"
            else:
                title = f"Stop following {f.label} history"
                help_text = f"{f.key} = false under [sources]; what was taken in stays"
            out.append((title, help_text, toggle))
        return out

    async def set_following(self, store: Store, f: capture.Followed, follow: bool) -> None:
        from threadline import paths
        from threadline.config_write import set_config_value

        settings = self.host.settings
        setattr(settings.sources, f.key, follow)
        target = settings.source or paths.config_path()
        try:
            await asyncio.to_thread(set_config_value, "sources", f.key, follow, target)
        except ThreadlineError as exc:
            notify_error(self.app, exc, "Could not save it: ")
        self.follow(store)
        # A look begun before the change may still be reading the histories followed then:
        # the change holds once it is over (nothing from a history no longer followed after).
        worker = self._look_worker
        if worker is not None and worker.is_running:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()
        verb = "Following" if follow else "Stopped following"
        self.app.notify(
            f"{verb} {f.label} history ({f.key} = {'true' if follow else 'false'} under "
            "[sources]).",
            title="Agent history",
            markup=False,
        )

    # ------------------------------------------------------------------ following

    def follow(self, store: Store) -> None:
        """(Re)start following the histories turned on now: a pass at once, then a look for
        changes every `seconds` (a timer starts each as a short worker; none runs forever)."""
        from threadline import capture

        histories = [f for f in capture.followed(self.host.settings) if f.enabled]
        names = [f.name for f in histories]
        self._store = store
        if names == self.following and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.following = names
        if not histories:
            self._runner = None
            return
        self._runner = capture.Capture(histories)
        self._watch = capture.Watch([f.path for f in histories])
        self._first = True
        self._store = store
        self._tick()
        seconds = capture.POLL_SECONDS if self.seconds is None else self.seconds
        self._timer = self.app.set_interval(seconds, self._tick, name="capture")

    def _tick(self) -> None:
        if self._running or self._runner is None:
            return
        self._running = True
        self._look_worker = self.app.run_worker(self._look(), group="capture", exit_on_error=False)

    async def _look(self) -> None:
        runner, watch, store = self._runner, self._watch, self._store
        try:
            assert runner is not None and watch is not None and store is not None
            if await asyncio.to_thread(watch.changed) and runner is self._runner:
                first, self._first = self._first, False
                await self._pass(store, runner, first)
        except ThreadlineError as exc:
            notify_error(self.app, exc, "Capture failed: ")
        finally:
            self._running = False
            self.passes += 1
            self.pass_done.set()

    async def _pass(self, store: Store, runner: capture.Capture, first: bool) -> None:
        screen = self.host.main_screen
        counts: dict[str, int] = {}

        def progress(f: capture.Followed, p: ImportProgress) -> None:
            if not first:
                return
            counts[f.name] = p.messages
            done = sum(counts.values())
            files = f"{p.files_done:,}/{p.files_total:,} files"
            screen.set_busy(f"taking in {f.label}: {files} · {done:,} messages")

        errors: list[str] = []
        try:
            result = await runner.run(
                store, progress=progress, on_file_error=lambda _, m: errors.append(m)
            )
        finally:
            if first:
                screen.set_busy(None)
        if first and (result.sessions or result.updated):
            names = ", ".join(f.label for f in runner.histories)
            grown = f", {result.updated:,} grown" if result.updated else ""
            self.app.notify(
                f"Took in {result.sessions:,} new session{'s' if result.sessions != 1 else ''}"
                f"{grown} ({result.messages:,} messages) from {names}. New ones follow while "
                "threadline runs.",
                title="Agent history",
                markup=False,
                timeout=8,
            )
        for message in errors:
            if message not in self._reported:
                self._reported.add(message)
                self.app.notify(message, title="Capture", severity="warning", markup=False)
        if result.changed:
            await screen.data_changed()
