"""Summaries and project memory from the app: the turn engine, extraction upkeep, queue status.

The app owns one `MemoryTasks`. Once the store is open it runs the extraction upkeep (queue the
idle sessions, work through what is due) in a worker, at start-up and every UPKEEP_SECONDS,
when a provider is configured and [memory] is on; a session the user leaves (or has open when
quitting) is queued with `session_closed`. Extraction goes through the store's queue, so
quitting or crashing mid-way loses nothing: whoever processes the queue next picks it up.

The queue's status (what is due, running, retrying or failed) is published to every screen
that has a `memory_status_changed(status)` method: the main screen's header shows a short
indicator, the memories screen the details.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from textual.content import Content

from threadline.errors import ThreadlineError
from threadline.ui.format import plural
from threadline.ui.notices import Notifier
from threadline.ui.safe import one_line

if TYPE_CHECKING:
    from textual.screen import Screen
    from textual.timer import Timer
    from textual.worker import Worker

    from threadline.chat.memory import (
        ExtractionOutcome,
        ExtractionStatus,
        MemoryExtractor,
        ProcessReport,
    )
    from threadline.chat.turns import TurnEngine
    from threadline.config import Settings
    from threadline.store import Store

UPKEEP_SECONDS = 180.0
# At quit: how long queueing the open session and handing back a running extraction may take.
CLOSE_WAIT = 1.0


@dataclass(frozen=True)
class MemoryStatus:
    """The extraction queue as the app shows it."""

    rows: list[ExtractionStatus] = field(default_factory=list)
    # This app is extracting now (an upkeep run or an "extract now").
    running: bool = False
    # Why extraction cannot run here (no provider, memory off); None when it can.
    unavailable: str | None = None

    def counts(self) -> Counter[str]:
        return Counter(row.state for row in self.rows)

    def indicator(self) -> Content | None:
        """A few words for the header ("memory: 2 queued · 1 failed"), None when idle."""
        counts = self.counts()
        parts: list[tuple[str, str]] = []
        if self.running or counts["running"]:
            parts.append(("extracting…", "italic $text-muted"))
        queued = counts["due"] + counts["retrying"]
        if queued:
            parts.append((f"{queued:,} queued", "$text-muted"))
        if counts["failed"]:
            # One quiet word for every extraction given up on (M shows them, r retries):
            # never a notification each.
            parts.append((f"{counts['failed']:,} failed", "$text-warning"))
        if not parts:
            return None
        pieces: list[tuple[str, str]] = [("memory: ", "$text-muted")]
        for i, part in enumerate(parts):
            if i:
                pieces.append((" · ", "$text-muted"))
            pieces.append(part)
        if self.unavailable and (queued or counts["failed"]):
            pieces.append((" (no extraction here)", "$text-muted"))
        return Content.assemble(*pieces)


class TaskHost(Notifier, Protocol):
    """What the tasks need of the app (ThreadlineApp is one)."""

    store: Store | None
    settings: Settings
    engine: TurnEngine | None  # the app's own, once it has one

    @property
    def screen_stack(self) -> list[Screen[Any]]: ...

    def writing_reply(self) -> bool:
        """A reply is being written (streaming) in the app now."""
        ...

    def run_worker(
        self,
        work: Any,
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> Worker[Any]: ...

    def set_interval(
        self,
        interval: float,
        callback: Callable[[], Any] | None = None,
        *,
        name: str | None = None,
        repeat: int = 0,
        pause: bool = False,
    ) -> Timer: ...


class MemoryTasks:
    """The app's engine for summaries and memory extraction, and the upkeep that runs it."""

    def __init__(self, app: TaskHost, upkeep_seconds: float = UPKEEP_SECONDS) -> None:
        self.app = app
        self.upkeep_seconds = upkeep_seconds
        self.status = MemoryStatus()
        self._engine: TurnEngine | None = None
        self._upkeep: Worker[None] | None = None
        self._extracting = 0
        self._closing = False
        self._held: list[str] = []  # notifications held while a reply is being written

    # ------------------------------------------------------------------ the engine

    def engine(self) -> TurnEngine:
        """The turn engine for the configured provider (made once, on first use).

        Raises:
            ProviderNotConfigured: no provider is configured (the message says how to set one).
        """
        shared = self.app.engine  # the app's own, once it has one
        if shared is not None:
            return shared
        if self._engine is None:
            from threadline.chat.turns import TurnEngine

            store = self.app.store
            if store is None:
                raise ThreadlineError("the database is not open yet")
            self._engine = TurnEngine.from_settings(store, self.app.settings)
        return self._engine

    def extractor(self) -> MemoryExtractor:
        """Raises ProviderNotConfigured like `engine()`."""
        return self.engine().memory_extractor()

    def unavailable(self) -> str | None:
        """Why memory extraction cannot run in this app, or None."""
        from threadline.chat.provider import ProviderNotConfigured

        if not self.app.settings.memory.enabled:
            return "project memory is off ([memory] enabled = false in the config)"
        try:
            self.engine()
        except ProviderNotConfigured as exc:
            return one_line(str(exc))
        except ThreadlineError as exc:
            return one_line(str(exc))
        return None

    # ------------------------------------------------------------------ upkeep

    def start(self) -> None:
        """The store is open: run the upkeep now (in a worker) and every upkeep_seconds."""
        self.run_upkeep()
        self.app.set_interval(self.upkeep_seconds, self.run_upkeep, name="memory upkeep")

    def run_upkeep(self) -> None:
        if self._closing or (self._upkeep is not None and self._upkeep.is_running):
            return
        self._upkeep = self.app.run_worker(
            self._run_upkeep(), group="memory-upkeep", exit_on_error=False
        )

    async def _run_upkeep(self) -> None:
        from threadline.chat.provider import ProviderNotConfigured

        store = self.app.store
        if store is None:
            return
        reason = self.unavailable()
        if reason is not None:
            await self.refresh_status(reason)
            return
        outcomes: list[ExtractionOutcome] = []
        self._extracting += 1
        try:
            await self.refresh_status()
            report = await self.extractor().upkeep(on_outcome=outcomes.append)
        except ProviderNotConfigured as exc:
            await self.refresh_status(one_line(str(exc)))
            return
        except ThreadlineError as exc:
            self.app.notify(
                f"Memory upkeep failed: {one_line(str(exc))}", severity="warning", markup=False
            )
            return
        finally:
            self._extracting -= 1
        await self.refresh_status()
        self._tell(report)

    def _tell(self, report: ProcessReport) -> None:
        """One quiet notification for what an upkeep run learned. Extractions given up on
        get none: the header's "memory: N failed" counts them (M shows why, r retries)."""
        added = report.memories_added
        if added:
            self.tell(
                f"Remembered {plural(added, 'new fact')} from your sessions. "
                "M shows the project's memories."
            )

    def tell(self, text: str) -> None:
        """A memory notification, held while a reply is being written (a toast would cover
        it) and shown when the reply ends."""
        if self.app.writing_reply():
            self._held.append(text)
            return
        self.app.notify(text, title="Memory", markup=False)

    def reply_ended(self) -> None:
        """The reply being written ended: show what was held meanwhile (the newest)."""
        held, self._held = self._held, []
        if held and not self._closing:
            self.app.notify(held[-1], title="Memory", markup=False)

    async def refresh_status(self, unavailable: str | None = None) -> MemoryStatus:
        """Read the queue and publish its status to the screens."""
        from threadline.chat.memory import extraction_status

        store = self.app.store
        if store is None:
            return self.status
        if unavailable is None and not self._provider_ready():
            unavailable = self.unavailable()
        try:
            rows = await extraction_status(store)
        except ThreadlineError:
            rows = self.status.rows
        self.status = MemoryStatus(rows, self._extracting > 0, unavailable)
        self.publish()
        return self.status

    def _provider_ready(self) -> bool:
        engine = self._engine or self.app.engine
        return engine is not None and self.app.settings.memory.enabled

    def publish(self) -> None:
        for screen in list(self.app.screen_stack):
            changed = getattr(screen, "memory_status_changed", None)
            if changed is not None:
                changed(self.status)

    # ------------------------------------------------------------------ on demand

    async def extract_now(self, session_id: str) -> ProcessReport:
        """Extract what is new in a session now, its failed extractions included.

        Raises:
            ProviderNotConfigured: no provider. ThreadlineError: the store failed.
        """
        extractor = self.extractor()
        self._extracting += 1
        try:
            await self.refresh_status()
            return await extractor.extract_now(session_id)
        finally:
            self._extracting -= 1
            await self.refresh_status()

    def session_left(self, session_id: str) -> None:
        """The user switched away from a session: queue its new messages (in a worker)."""
        if self._closing:
            return
        self.app.run_worker(
            self._session_closed(session_id), group="memory-close", exit_on_error=False
        )

    async def _session_closed(self, session_id: str) -> None:
        if not self.app.settings.memory.enabled:
            return
        try:
            queued = await self.extractor().session_closed(session_id)
        except ThreadlineError:
            return  # no provider, or the store: the idle scan queues it later
        if queued is not None:
            await self.refresh_status()

    async def shutdown(self, open_session_id: str | None) -> None:
        """Quitting: queue the open session and let a running extraction hand its lease back,
        within CLOSE_WAIT seconds in all (the queue keeps the rest for the next start)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT

        def left() -> float:
            return max(0.05, deadline - loop.time())

        upkeep = self._upkeep
        if upkeep is not None and upkeep.is_running:
            upkeep.cancel()
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(upkeep.wait(), left())
        engine = self._engine or self.app.engine
        if open_session_id is not None and engine is not None:
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(
                    engine.memory_extractor().session_closed(open_session_id), left()
                )
        engine, self._engine = self._engine, None  # only the one made here is closed here
        if engine is not None:
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(engine.aclose(), left())
