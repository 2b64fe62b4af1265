"""Live capture in the app (issue 10): a coding agent's history found and not yet decided on is
asked about once (the answer kept in config.toml); a followed history is taken in at start-up
and again within a pass of any change, and shows up like any other write."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from apphelpers import make_app, quiet_settings, settle, until
from internals import notifications
from sample_data import API, Sample

from agent_history import ClaudeHome
from threadline import paths


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClaudeHome:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    agent = ClaudeHome(home, API)
    agent.prompt("agent-1", "Why does the build fail on CI?")
    agent.reply("agent-1", "The cache key ignores the lock file.")
    return agent


# A change is taken in by the next look; this many looks without it is a failure (counted in
# looks, not seconds: a busy machine makes them slower, not fewer).
LOOKS = 40


async def captured(pilot, condition, what: str) -> None:
    """Wait, look by look, until `condition()` holds; fail after LOOKS looks without it."""
    app = pilot.app
    start = app.capture.passes
    await until(
        pilot,
        lambda: condition() or app.capture.passes > start + LOOKS,
        what,
        wake=app.capture.pass_done,
    )
    assert condition(), f"not after {LOOKS} looks: {what}"


def rows(app) -> dict[str, int]:
    return {r.display_title: r.message_count for r in app.main_screen.sessions.loaded_rows}


def saved_sources() -> dict:
    return tomllib.loads(paths.config_path().read_text()).get("sources", {})


async def test_found_history_is_asked_about_once_and_followed(plain_db: Sample, claude):
    app = make_app(plain_db, settings=quiet_settings(), capture_seconds=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.id == "capture-ask", "the question")
        text = str(app.screen.query_one("#choice-question").render())
        assert "Claude Code: 1 session in ~/.claude/projects" in text
        assert "Codex" not in text  # nothing of it here
        await pilot.press("y")
        await captured(
            pilot, lambda: "Why does the build fail on CI?" in rows(app), "the captured session"
        )
        assert any("Took in 1 new session" in n for n in notifications(app))
        assert saved_sources() == {"claude_code": True}
    # The answer is remembered: the next start does not ask, and follows.
    from threadline.config import load_settings

    settings = load_settings()
    settings.session.auto_cleanup = False
    app = make_app(plain_db, settings=settings, capture_seconds=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: app.capture.passes >= 1, wake=app.capture.pass_done)
        assert app.screen is app.main_screen
        assert app.capture.following == ["claude-code"]


async def test_no_is_remembered_and_nothing_is_taken_in(plain_db: Sample, claude):
    app = make_app(plain_db, settings=quiet_settings(), capture_seconds=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.id == "capture-ask", "the question")
        await pilot.press("n")
        await until(pilot, lambda: any("Not following" in n for n in notifications(app)))
        assert app.capture.following == []
        assert "Why does the build fail on CI?" not in rows(app)
    assert saved_sources() == {"claude_code": False}


async def test_later_asks_again_next_time(plain_db: Sample, claude):
    for _ in range(2):
        app = make_app(plain_db, settings=quiet_settings(), capture_seconds=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: pilot.app.screen.id == "capture-ask", "the question")
            await pilot.press("escape")
            await settle(pilot)
            assert app.capture.following == []
    assert not paths.config_path().exists()


async def test_a_followed_history_is_taken_in_as_it_grows(plain_db: Sample, claude):
    settings = quiet_settings()
    settings.sources.claude_code = True
    app = make_app(plain_db, settings=settings, capture_seconds=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        title = "Why does the build fail on CI?"
        await captured(pilot, lambda: rows(app).get(title) == 2, "the first capture")
        assert app.screen is app.main_screen  # decided in the config: nothing asked
        # The agent goes on writing: a grown file, then a new session.
        claude.prompt("agent-1", "Fix it then.")
        claude.reply("agent-1", "Done: the key now hashes uv.lock.")
        await captured(pilot, lambda: rows(app).get(title) == 4, "the grown session")
        claude.prompt("agent-2", "Now the release notes.")
        await captured(pilot, lambda: rows(app).get("Now the release notes.") == 1, "the new one")
        # Between changes a pass only stats the files: nothing is added twice.
        seen = app.capture.passes
        await until(pilot, lambda: app.capture.passes >= seen + 3, wake=app.capture.pass_done)
        assert rows(app)[title] == 4
        total = await app.store.count_sessions("all")
        assert total == 7  # the five of the sample and the two captured


def test_capture_question_snapshot(snap_compare, plain_db: Sample, claude):
    """The agent-history question over the main screen at 80x24 (the header shows
    /home/dev/src/api in full: HOME is a temporary directory here): "Agent history" box saying
    threadline found "Claude Code: 1 session in ~/.claude/projects", asking to take it in now
    and follow new sessions, that it stays when the agent deletes its files, and where the
    answer is kept; buttons "Yes, follow" (focused), "No", "Ask later"."""

    async def run(pilot) -> None:
        await until(pilot, lambda: pilot.app.screen.id == "capture-ask", "the question")
        await pilot.pause()

    app = make_app(plain_db, settings=quiet_settings(), capture_seconds=0.05)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run)


async def test_following_is_turned_off_and_on_from_the_palette(plain_db: Sample, claude):
    settings = quiet_settings()
    settings.sources.claude_code = True
    app = make_app(plain_db, settings=settings, capture_seconds=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        title = "Why does the build fail on CI?"
        await captured(pilot, lambda: rows(app).get(title) == 2, "the first capture")
        commands = {t: cb for t, _, cb in app.capture.palette_commands()}
        assert "Follow Codex history" in commands
        await commands["Stop following Claude Code history"]()
        assert app.capture.following == []
        assert saved_sources() == {"claude_code": False}
        # Not followed: a change is not taken in (the sample's writes still show).
        claude.prompt("agent-1", "Anyone there?")
        await settle(pilot)
        assert rows(app)[title] == 2
        commands = {t: cb for t, _, cb in app.capture.palette_commands()}
        await commands["Follow Claude Code history"]()
        await captured(pilot, lambda: rows(app).get(title) == 3, "taken in again when followed")
        assert saved_sources() == {"claude_code": True}
