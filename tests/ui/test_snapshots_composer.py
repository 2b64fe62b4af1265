"""Pictures of the composer's states (pytest-textual-snapshot). Each docstring says what to see.

The model is a scripted provider (tests/ui/composer_helpers.py) so that the pictures do not
depend on timing or on the fake server's port; the clock is fixed, so the elapsed time and the
spinner are too. The pilot tests (test_composer.py) drive the same states through the real
fake server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from apphelpers import make_app, settle, until
from composer_helpers import (
    ScriptedProvider,
    composer_text,
    pane_text,
    scripted_settings,
    use_provider,
    wait_for,
)
from sample_data import Sample

from threadline.chat.provider import ProviderError
from threadline.ui.widgets.composer_input import ComposerInput

SMALL = (80, 24)
MEDIUM = (100, 30)
LARGE = (120, 36)

PARTIAL = [
    "With ",
    "jitter ",
    "the ",
    "retries ",
    "of ",
    "many ",
    "clients ",
    "spread ",
    "out:\n\n",
    "```python\n",
    "import ",
    "random\n\n",
    "def ",
    "backoff(attempt):\n",
    "    base ",
    "= ",
    "0.1 ",
    "* ",
    "2**attempt\n",
]


def no_blink(app) -> None:
    for area in app.screen.query(ComposerInput):
        area.cursor_blink = False


async def open_fix(pilot, sample: Sample) -> None:
    await settle(pilot)
    pilot.app.main_screen.open_session(sample.ids["fix"])
    await settle(pilot)
    no_blink(pilot.app)


async def send(pilot, text: str) -> None:
    pilot.app.main_screen.runner.send(text)
    await pilot.pause()


def test_composer_idle_with_a_draft(snap_compare, plain_db):
    """100x30, "Fix the flaky retry test" open, the composer focused holding two lines
    ("How does this behave on Windows?" / "And in Docker?"), the cursor after "Docker?". Its
    status line says "enter sends · ctrl+j new line" with the session's model "gpt-4o-mini"
    on the right. The footer shows "⏎ Send" and "^j New line" (no one-letter keys: they type)."""
    app = make_app(plain_db, settings=scripted_settings())

    # Spaces are typed as "space" (pilot key names).
    async def typed(pilot) -> None:
        await open_fix(pilot, plain_db)
        await pilot.press("i")
        for line_number, line in enumerate(("How does this behave on Windows?", "And in Docker?")):
            if line_number:
                await pilot.press("ctrl+j")
            await pilot.press(*["space" if ch == " " else ch for ch in line])
        await settle(pilot)

    assert snap_compare(app, terminal_size=MEDIUM, run_before=typed)


def test_composer_generating(snap_compare, plain_db):
    """120x36, "Fix the flaky retry test": the new "You" message "Add jitter to the
    backoff?" under the earlier reply, then an "Assistant" reply marked "● writing…" that has
    streamed a paragraph ("With jitter the retries of many clients spread out:") and the start
    of a highlighted Python block (import random / def backoff(attempt): / base = 0.1 *
    2**attempt) whose fence is not closed yet. The composer's status line reads
    "⠼ generating… 2.4 s · 19 tokens · esc cancels" with the model "gpt-4o-mini" on the
    right. The sidebar has the session under the pinned one, "now", "3 msgs"."""
    app = make_app(plain_db, settings=scripted_settings())

    async def run(pilot) -> None:
        await open_fix(pilot, plain_db)
        use_provider(pilot.app, ScriptedProvider(PARTIAL, then="hang"))
        await send(pilot, "Add jitter to the backoff?")
        view = pilot.app.main_screen.conversation
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas == len(PARTIAL))
        pilot.app.clock.now += timedelta(seconds=2.4)
        # The paced repaint (its last line drawn) and a status tick.
        app = pilot.app
        await until(pilot, lambda: "2**attempt" in pane_text(app) and "2.4 s" in composer_text(app))
        no_blink(pilot.app)

    assert snap_compare(app, terminal_size=LARGE, run_before=run)


def test_composer_disabled_without_a_provider(snap_compare, plain_db, monkeypatch):
    """80x24 with no provider configured: the text area is gone; in its place, in yellow,
    "✎ No model provider yet: press i to set one up (ctrl+p: Set up a model provider)"
    (two lines at this width). Tab skips the composer; the rest of the app is as
    usual ("Fix the flaky retry test" open)."""
    monkeypatch.setenv("THREADLINE_CONFIG", "/home/dev/.config/threadline/config.toml")
    app = make_app(plain_db)

    async def run(pilot) -> None:
        await open_fix(pilot, plain_db)

    assert snap_compare(app, terminal_size=SMALL, run_before=run)


def test_provider_error_in_the_conversation(snap_compare, plain_db):
    """120x36, "Fix the flaky retry test": the question "And on Windows?" and under it the
    "Assistant" item marked "✖ error" on the right of its header: the text that arrived
    ("On Windows the same fix works, but") and then, in red, "✖ the connection to
    http://localhost:11434/v1 broke off mid-reply (truncated): peer closed connection". The
    composer's status says "ctrl+r answers your last message again"; nothing crashed."""
    app = make_app(plain_db, settings=scripted_settings())
    error = ProviderError(
        "the connection to http://localhost:11434/v1 broke off mid-reply (truncated): "
        "peer closed connection",
        "truncated",
    )

    async def run(pilot) -> None:
        await open_fix(pilot, plain_db)
        deltas = ["On ", "Windows ", "the ", "same ", "fix ", "works, ", "but"]
        use_provider(pilot.app, ScriptedProvider(deltas, then=error))
        await send(pilot, "And on Windows?")
        runner = pilot.app.main_screen.runner
        await wait_for(pilot, lambda: runner.idle.is_set())
        await settle(pilot)
        no_blink(pilot.app)

    assert snap_compare(app, terminal_size=LARGE, run_before=run)


def test_new_session_form(snap_compare, plain_db):
    """`n` at 100x30: a "New session" dialog over the dimmed app: "In ~/src/api", a Model
    field whose placeholder is the configured default ("llama3.2 (the default)") with the
    server's four models listed under it and "4 models on the server · type to narrow, ↓ to
    pick", a System prompt field ("(none) ctrl+j: new line") and the note that nothing is
    saved until the first message is sent; the bottom edge says "enter starts it · tab next
    field · esc cancels"."""
    app = make_app(plain_db, settings=scripted_settings())
    models = ["gemma3:4b", "llama3.2", "llama3.2:1b", "qwen2.5-coder:7b"]

    async def run(pilot) -> None:
        await settle(pilot)
        use_provider(pilot.app, ScriptedProvider([], models=models))
        await pilot.press("n")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        for widget in pilot.app.screen.query("Input, ComposerInput"):
            widget.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=MEDIUM, run_before=run)


@pytest.mark.parametrize("size", [SMALL])
def test_a_new_session_after_its_first_reply(snap_compare, plain_db, size):
    """80x24 after `n`, enter (defaults) and "Plan the release" sent: the sidebar has the new
    session under the pinned one, selected (▌), titled "Plan the release", "2 msgs", "now";
    the title line says "Plan the release"; the pane shows the question and the reply
    "Ship on Thursday." complete (no "● writing…")."""
    app = make_app(plain_db, settings=scripted_settings())

    async def run(pilot) -> None:
        await settle(pilot)
        use_provider(pilot.app, ScriptedProvider(["Ship ", "on ", "Thursday."]))
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await send(pilot, "Plan the release")
        runner = pilot.app.main_screen.runner
        await wait_for(pilot, lambda: runner.idle.is_set())
        await settle(pilot)
        no_blink(pilot.app)

    assert snap_compare(app, terminal_size=size, run_before=run)


def test_a_reply_streaming_in_another_session(snap_compare, plain_db):
    """120x36: a reply is being written in "Fix the flaky retry test" while "How do I page
    through…" is open. The sidebar's "Fix the flaky retry test" row says "3 msgs · ● writing…"
    (yellow); the open session's pane has no "● writing…" and its composer's status says
    "● replying in another session" (no spinner, no "esc cancels"). The list has the focus:
    its right border is lit."""
    app = make_app(plain_db, settings=scripted_settings())

    async def run(pilot) -> None:
        await open_fix(pilot, plain_db)
        use_provider(pilot.app, ScriptedProvider(PARTIAL, then="hang"))
        await send(pilot, "Add jitter to the backoff?")
        screen = pilot.app.main_screen
        view = screen.conversation
        await wait_for(pilot, lambda: view.live is not None and view.live.deltas == len(PARTIAL))
        screen.open_session(plain_db.ids["untitled"])
        app = pilot.app
        await until(
            pilot,
            lambda: (
                view.session is not None
                and view.session.id == plain_db.ids["untitled"]
                and "another session" in composer_text(app)
            ),
        )
        screen.sessions.focus()
        await pilot.pause()
        no_blink(pilot.app)

    assert snap_compare(app, terminal_size=LARGE, run_before=run)


def test_a_reply_that_failed_is_marked_in_the_list(snap_compare, plain_db):
    """80x24, the composer focused (its top border lit, titled "✎ writing · keys type here ·
    esc leaves") after a reply that failed part-way in "Fix the flaky retry test": its row in
    the sidebar says "4 msgs · ⚠ reply failed" in red."""
    app = make_app(plain_db, settings=scripted_settings())
    error = ProviderError("the server answered 500", "server")

    async def run(pilot) -> None:
        await open_fix(pilot, plain_db)
        use_provider(pilot.app, ScriptedProvider(["Half ", "an ", "answer"], then=error))
        await pilot.press("i")
        await send(pilot, "And on Windows?")
        runner = pilot.app.main_screen.runner
        await wait_for(pilot, lambda: runner.idle.is_set())
        await settle(pilot)
        no_blink(pilot.app)

    assert snap_compare(app, terminal_size=SMALL, run_before=run)
