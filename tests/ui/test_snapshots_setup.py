"""Pictures of the app's first-run setup and its other newcomer states. Each docstring says
what to look for.

The connection test's answer is scripted here (threadline.chat.connect.check_connection
replaced), so the pictures show a fixed URL instead of the fake server's random port; the pilot
tests (test_setup.py) run the same form against the real fake server.
"""

from __future__ import annotations

import pytest
from apphelpers import make_app, settle, until

from threadline.chat import connect
from threadline.chat.connect import ConnectionCheck

SMALL = (80, 24)
MEDIUM = (100, 30)

MODELS = ["llama3.2", "llama3.2:1b", "qwen2.5-coder:7b", "mistral-small", "phi4", "gemma3:4b"]


@pytest.fixture(autouse=True)
def config_at_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """The form names the config file: the usual place under the fixed home (never written)."""
    monkeypatch.setenv("THREADLINE_CONFIG", "/home/dev/.config/threadline/config.toml")


@pytest.fixture
def scripted_models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The connection test answers with MODELS (whatever the URL)."""

    async def check(base_url: str, api_key: str | None = None, **_: object) -> ConnectionCheck:
        return ConnectionCheck(True, list(MODELS))

    monkeypatch.setattr(connect, "check_connection", check)
    return MODELS


def no_blink(app) -> None:
    for widget in app.screen.query("Input"):
        widget.cursor_blink = False


def form_with(*keys: str, preset: str | None = "ollama"):
    async def run(pilot) -> None:
        from textual.widgets import Select

        from threadline.ui.screens.setup import ProviderSetupScreen

        await settle(pilot)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(pilot.app.screen, ProviderSetupScreen))
        await pilot.pause()
        form = pilot.app.screen
        if preset:
            form.query_one("#setup-preset", Select).value = preset
            await until(pilot, lambda: form.tested is not None, "the scripted test")
        await pilot.press(*keys)
        await pilot.app.workers.wait_for_complete()
        no_blink(pilot.app)
        await pilot.pause()

    return run


def test_setup_form_empty(snap_compare, empty_db):
    """80x24, a new database, `i` pressed: the "Set up a model provider" form over the dimmed
    app, fitting the screen: Server "Choose a server…" (focused), Base URL and Key variable
    empty with placeholders, "no key is sent (local servers need none)", a "Test connection"
    button, the Model field, and "Saves [provider] in ~/.config/threadline/config.toml (mode
    0600)"; the bottom edge says "ctrl+t tests · ctrl+s saves · esc cancels"."""
    assert snap_compare(make_app(empty_db), terminal_size=SMALL, run_before=form_with(preset=None))


def test_setup_form_models_listed(snap_compare, empty_db, scripted_models):
    """100x30 after choosing Ollama: Server "Ollama  http://localhost:11434/v1", the URL
    filled in, no key variable, "✓ connected: 6 models" in green beside the button, and under
    the Model field the list narrowed by "ll" to llama3.2 and llama3.2:1b with
    "6 models on the server · type to narrow, ↓ to pick"."""
    app = make_app(empty_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=form_with("l", "l"))


async def trashed_two_hours_ago(db, *names: str) -> None:
    from datetime import timedelta

    from sample_data import NOW

    from threadline.store import Store

    async with await Store.open(db.path, clock=lambda: NOW - timedelta(hours=2)) as store:
        for name in names:
            await store.delete_session(db.ids[name])


def trash_open(*keys: str):
    async def run(pilot) -> None:
        from threadline.ui.screens.trash import TrashScreen

        await settle(pilot)
        await pilot.press("T")
        await until(pilot, lambda: isinstance(pilot.app.screen, TrashScreen))
        await until(pilot, lambda: pilot.app.screen.trash.total is not None)
        await pilot.press(*keys)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run


def test_trash_screen(snap_compare, plain_db):
    """80x24, T: the header "threadline  trash · 2 sessions · purged after 30 d"; two rows
    from two directories, the first highlighted: title and age on the first line, "trashed
    2 h ago · N msgs · ~/src/…" on the second; the footer offers "esc Back", "r Restore",
    "D Purge" and "⏎ Restore+open"."""
    import asyncio

    asyncio.run(trashed_two_hours_ago(plain_db, "fix", "web"))
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=trash_open())


def test_trash_purge_asks(snap_compare, plain_db):
    """The same after D: a "Purge session" question over the trash naming the session in bold
    and its message count, saying it cannot be brought back; "Purge" and "No" buttons, the
    bottom edge "y yes · n or esc no"."""
    import asyncio

    asyncio.run(trashed_two_hours_ago(plain_db, "fix", "web"))
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=trash_open("D"))


def test_empty_with_other_history(snap_compare, empty_db, tmp_path, monkeypatch):
    """80x24, a new database on a machine with Claude Code and Codex history in their usual
    places: the sidebar says "No sessions in ~/src/api yet, but this machine has history from
    Claude Code, Codex." and, after "Bring it in from a shell:", the two commands
    `threadline import claude-code` and `threadline import codex`, then "or press n for a new
    session here."."""
    for var, sub in (("CLAUDE_CONFIG_DIR", "projects/p"), ("CODEX_HOME", "sessions/2026")):
        (tmp_path / var / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(tmp_path / var))
    for var in ("LLM_USER_PATH", "GEMINI_CLI_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var))
    assert snap_compare(make_app(empty_db), terminal_size=SMALL, run_before=settle)
