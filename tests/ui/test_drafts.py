"""Composer drafts: one per session (and one for the next new session), kept across restarts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from apphelpers import make_app, settle, until
from composer_helpers import (
    ScriptedProvider,
    scripted_settings,
    turn_done,
    use_provider,
)
from sample_data import Sample

from threadline.store import Store
from threadline.ui.drafts import NEW, Drafts, drafts_path
from threadline.ui.screens.new_session import NewSessionScreen
from threadline.ui.widgets.composer import Composer
from threadline.ui.widgets.composer_input import ComposerInput

SIZE = (110, 36)


# ---------------------------------------------------------------------- the Textual-free part


def test_drafts_are_kept_per_key_and_blank_is_none(tmp_path: Path):
    drafts = Drafts(drafts_path(tmp_path / "x.db"))
    assert drafts.path == tmp_path / "x.db-drafts.json"
    drafts.set("a", "hello")
    drafts.set("b", "  \n ")
    assert drafts.get("a") == "hello" and drafts.get("b") == "" and drafts.keys() == ["a"]
    drafts.save()
    assert stat.S_IMODE(os.stat(drafts.path).st_mode) == 0o600
    again = Drafts(drafts.path)
    assert again.load() is None and again.get("a") == "hello"
    drafts.set("a", "")
    drafts.save()
    assert not drafts.path.exists()  # nothing left: no file


def test_a_new_session_draft_moves_and_sent_text_is_taken_out(tmp_path: Path):
    drafts = Drafts(None)
    drafts.set(NEW, "first\nmore")
    drafts.move(NEW, "s1")
    assert drafts.get(NEW) == "" and drafts.get("s1") == "first\nmore"
    drafts.remove_prefix("s1", "first")
    assert drafts.get("s1") == "more"
    drafts.remove_prefix("s1", "other")  # not its start: kept
    assert drafts.get("s1") == "more"


def test_saving_merges_with_what_another_app_wrote(tmp_path: Path):
    path = drafts_path(tmp_path / "x.db")
    one, two = Drafts(path), Drafts(path)
    one.set("a", "from one")
    one.save()
    two.load()
    two.set("b", "from two")
    two.save()
    one.set("a", "from one, edited")
    one.save()
    data = json.loads(path.read_text())["drafts"]
    assert data == {"a": "from one, edited", "b": "from two"}


def test_a_damaged_file_is_reported_and_an_unwritable_one_keeps_the_changes(tmp_path: Path):
    path = drafts_path(tmp_path / "x.db")
    path.write_text("{not json")
    drafts = Drafts(path)
    problem = drafts.load()
    assert problem is not None and "drafts not read" in problem
    gone = Drafts(drafts_path(tmp_path / "missing" / "x.db"))
    gone.set("a", "text")
    with pytest.raises(OSError):
        gone.save()
    assert gone.dirty and gone.take_changes() == {"a": "text"}


# ---------------------------------------------------------------------- in the app


def composer(app) -> Composer:
    return app.main_screen.query_one(Composer)


async def open_session(pilot, session_id: str) -> None:
    screen = pilot.app.main_screen
    screen.open_session(session_id)
    await until(
        pilot,
        lambda: (
            screen.conversation.session is not None and screen.conversation.session.id == session_id
        ),
    )
    await settle(pilot)


async def type_text(pilot, text: str) -> None:
    if not isinstance(pilot.app.focused, ComposerInput):
        await pilot.press("i")
    await pilot.press(*["space" if ch == " " else ch for ch in text])


async def test_each_session_keeps_its_own_draft_across_a_restart(plain_db: Sample):
    untitled, fix = plain_db.ids["untitled"], plain_db.ids["fix"]
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_session(pilot, untitled)
        await type_text(pilot, "for untitled")
        await open_session(pilot, fix)
        assert composer(app).text == ""  # not the other session's text
        await type_text(pilot, "for fix")
        await open_session(pilot, untitled)
        assert composer(app).text == "for untitled"
        await open_session(pilot, fix)
        assert composer(app).text == "for fix"
    saved = json.loads(drafts_path(plain_db.path).read_text())["drafts"]
    assert saved == {untitled: "for untitled", fix: "for fix"}
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_session(pilot, untitled)
        assert composer(app).text == "for untitled"


async def test_a_new_session_draft_goes_to_the_session_it_makes(plain_db: Sample):
    fix = plain_db.ids["fix"]
    provider = ScriptedProvider(["ok"])
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        use_provider(app, provider)
        await open_session(pilot, fix)
        await type_text(pilot, "about fix")
        await pilot.press("escape")  # leaves the composer: n is a key again
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.focused, ComposerInput))
        assert composer(app).text == ""  # the new session's draft, not fix's
        await type_text(pilot, "brand new")
        await open_session(pilot, fix)
        assert composer(app).text == "about fix"
        await pilot.press("escape", "n")
        await until(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        await pilot.press("enter")
        await until(pilot, lambda: composer(app).text == "brand new")
        await pilot.press("enter")  # sent: it makes the session
        await turn_done(pilot)
        await settle(pilot)
        made = app.main_screen.open_session_id
        assert made not in (None, fix)
        assert composer(app).text == ""
        assert app.main_screen.drafts.get(NEW) == ""
        await open_session(pilot, fix)
        assert composer(app).text == "about fix"  # untouched by the send
    async with await Store.open(plain_db.path) as store:
        messages = await store.get_messages(made)
    assert [m.content for m in messages] == ["brand new", "ok"]


async def test_text_sent_then_left_is_taken_from_its_own_draft(plain_db: Sample):
    """Sending and switching at once: the saved message leaves the draft it came from, not the
    one the composer shows by then."""
    untitled, fix = plain_db.ids["untitled"], plain_db.ids["fix"]
    provider = ScriptedProvider(["a "], then="hang")
    app = make_app(plain_db, settings=scripted_settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        use_provider(app, provider)
        await open_session(pilot, fix)
        await type_text(pilot, "keep me")
        await open_session(pilot, untitled)
        await type_text(pilot, "send me")
        await pilot.press("enter")
        screen = app.main_screen
        screen.open_session(fix)  # at once, before the message is saved
        runner = screen.runner
        await until(pilot, lambda: runner.running is not None and runner.running.reply)
        # (No settle while the reply streams: its worker never ends until cancelled.)
        await until(
            pilot,
            lambda: (
                screen.conversation.session is not None
                and screen.conversation.session.id == fix
                and composer(app).text == "keep me"
            ),
        )
        assert screen.drafts.get(untitled) == ""  # the sent text left its own draft
        screen.open_session(untitled)
        await until(pilot, lambda: runner.busy_here)
        await pilot.press("escape")
        await turn_done(pilot)
