"""The app's retention at start-up ([session] auto_cleanup): never a surprise.

A cleanup that would move more than ASK_ABOVE sessions asks first (how many and why; move them,
not now, or turn automatic cleanup off, which is written to config.toml); a smaller one runs
and says what it moved. Everything runs off the UI thread (store calls, the config write).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.content import Content

from threadline.config import CLEANUP_ASK_ABOVE as ASK_ABOVE
from threadline.errors import ThreadlineError
from threadline.ui.notices import notify_error

if TYPE_CHECKING:
    from textual.app import App

    from threadline.config import Settings
    from threadline.models import CleanupResult
    from threadline.store import Store
    from threadline.ui.screens.main import MainScreen


class ThreadlineApp(Protocol):
    """What this module uses of the app (ui/ modules never import the app module)."""

    settings: Settings

    @property
    def main_screen(self) -> MainScreen: ...


def _app(app: ThreadlineApp) -> App[Any]:
    return cast("App[Any]", app)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _reasons(app: ThreadlineApp, result: CleanupResult) -> str:
    cfg = app.settings.session
    return (
        f"{result.by_retention:,} idle for more than {cfg.retention_days} days, "
        f"{result.by_max_limit:,} beyond the {cfg.max_sessions:,} kept"
    )


async def run(app: ThreadlineApp, store: Store) -> None:
    """Retention on start: a dry run first; ask when it would move many, else do it."""
    screen = app.main_screen
    keep = [screen.open_session_id] if screen.open_session_id else []
    screen.set_busy("cleaning up…")
    try:
        planned = await store.cleanup(app.settings.session, dry_run=True, keep=keep)
    except ThreadlineError as exc:
        notify_error(_app(app), exc, "Auto-cleanup failed: ")
        return
    finally:
        screen.set_busy(None)
    if planned.sessions_deleted > ASK_ABOVE:
        ask(app, store, planned)
    elif planned.sessions_deleted or planned.purged:
        await apply(app, store)


def ask(app: ThreadlineApp, store: Store, planned: CleanupResult) -> None:
    from threadline.ui.screens.choice import Choice, ChoiceScreen

    cfg = app.settings.session
    question = Content(
        f"Automatic cleanup would move {_plural(planned.sessions_deleted, 'session')} to the "
        f"trash ({_reasons(app, planned)}). They stay in the trash for {cfg.trash_days} days "
        "and `threadline sessions restore ID` brings one back.\n\n"
        "`threadline cleanup --dry-run` lists them. Turning automatic cleanup off sets "
        "auto_cleanup = false under [session] in the config."
    )
    choices = [
        Choice("move", "Move them", "m", "warning"),
        Choice("later", "Not now", "n"),
        Choice("off", "Turn off", "o"),
    ]

    async def answered(answer: str | None) -> None:
        if answer == "move":
            await apply(app, store)
        elif answer == "off":
            await turn_off(app)

    _app(app).push_screen(
        ChoiceScreen(
            "Cleanup", question, choices, focus="later", cancel="later", screen_id="cleanup-ask"
        ),
        answered,
    )


async def apply(app: ThreadlineApp, store: Store) -> None:
    screen = app.main_screen
    keep = [screen.open_session_id] if screen.open_session_id else []
    screen.set_busy("cleaning up…")
    try:
        result = await store.cleanup(app.settings.session, keep=keep)
    except ThreadlineError as exc:
        notify_error(_app(app), exc, "Auto-cleanup failed: ")
        return
    finally:
        screen.set_busy(None)
    if not (result.sessions_deleted or result.purged):
        return
    cfg = app.settings.session
    parts = []
    if result.sessions_deleted:
        parts.append(
            f"Auto-cleanup moved {_plural(result.sessions_deleted, 'session')} to the trash "
            f"({_reasons(app, result)}). Restore with `threadline sessions restore ID`; "
            f"they stay in the trash for {cfg.trash_days} days."
        )
    if result.purged:
        parts.append(f"Purged {result.purged:,} sessions from the trash for good.")
    parts.append("Turn this off with auto_cleanup = false under [session] in the config.")
    _app(app).notify(" ".join(parts), title="Cleanup", timeout=12, markup=False)
    await screen.data_changed()


async def turn_off(app: ThreadlineApp) -> None:
    from threadline import paths
    from threadline.config_write import set_config_value

    target = app.settings.source or paths.config_path()
    try:
        written = await asyncio.to_thread(
            set_config_value, "session", "auto_cleanup", False, target
        )
    except ThreadlineError as exc:
        notify_error(_app(app), exc, "Could not turn auto-cleanup off: ")
        return
    app.settings.session.auto_cleanup = False
    _app(app).notify(
        f"Automatic cleanup is off (auto_cleanup = false in {written}). "
        "`threadline cleanup` applies retention when you ask.",
        title="Cleanup",
        timeout=10,
        markup=False,
    )
