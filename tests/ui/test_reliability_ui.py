"""The app when the database misbehaves (issue 13): a damaged file stops everything with what to
do, a message that cannot be saved stays in the composer, a turn that broke off before any reply
is marked in its session's row."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import make_app, screen_text, settle, widget_lines
from composer_helpers import chat_settings, composer_text, turn_done, type_and_send, wait_for
from sample_data import API

from fakes.openai_server import FakeOpenAIServer
from store.reliability_helpers import flip_page_type, write_lock_held
from threadline.store import Store
from threadline.ui.screens.damaged import DamagedScreen


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


async def _build(db: Path, *, last_user: bool = False) -> str:
    async with await Store.open(db) as store:
        session, _, _ = await store.begin_turn(None, "hello there", working_dir=API)
        if last_user:
            await store.end_turn(session.id)
        else:
            await store.add_message(session.id, "assistant", "general kenobi")
        return session.id


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


async def test_a_damaged_database_shows_what_to_do_and_nothing_is_written(tmp_path: Path):
    db = tmp_path / "damaged.db"
    await _build(db)
    flip_page_type(db, "messages")
    before = _digest(db)
    app = make_app(db)
    async with app.run_test(size=(130, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DamagedScreen))
        await pilot.pause()
        text = screen_text(app)
        assert "The database is damaged" in text
        assert "threadline db check" in text and "Restore a backup" in text
        assert str(db) in text
        assert app.store is not None and app.store.damaged is not None
        await pilot.press("q")
    assert _digest(db) == before  # no session, no memory extraction queued, nothing
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM pending_memory_extractions").fetchone()[0] == 0
    conn.close()


async def test_a_message_that_cannot_be_saved_stays_in_the_composer(
    tmp_path: Path, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
):
    import threadline.ui.app as app_module

    db = tmp_path / "busy.db"
    session_id = await _build(db)
    monkeypatch.setattr(app_module, "WRITE_PATIENCE", 0.0)  # give up at the first look
    app = make_app(db, settings=chat_settings(fake_server))
    async with app.run_test(size=(110, 36)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(session_id)
        await settle(pilot)
        with write_lock_held(db):  # another process is importing, say
            await type_and_send(pilot, "do not lose me")
            await turn_done(pilot)
        assert "do not lose me" in composer_text(app)
        notes = [n.message for n in app._notifications]
        assert any(
            "Not sent" in n and "still in the composer" in n and "locked" in n for n in notes
        ), notes
        assert fake_server.requests == []
        # Once the lock is free, enter sends it.
        await pilot.press("enter")
        await turn_done(pilot)
        assert "do not lose me" not in composer_text(app)
    async with await Store.open(db) as store:
        contents = [m.content for m in await store.get_messages(session_id)]
    assert contents[-2] == "do not lose me" and contents.count("do not lose me") == 1


async def test_a_turn_that_broke_off_before_any_reply_is_marked_in_its_row(tmp_path: Path):
    db = tmp_path / "unanswered.db"
    await _build(db, last_user=True)
    app = make_app(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        rows = "\n".join(widget_lines(app.main_screen.sessions))
        assert "1 msg · no reply" in rows


def test_damaged_screen_snapshot(snap_compare):
    """100x30: a red-bordered box in the middle titled "threadline", "q quits" at its foot:
    "The database is damaged" in bold red, the database's path, SQLite's words, that nothing
    more will be written, and three numbered steps (db check, restore a backup, export --all)."""
    from textual.app import App

    path = Path("/home/dev/.local/share/threadline/threadline.db")
    problem = (
        f"{path}: the database is damaged (database disk image is malformed); nothing more "
        "will be written to it."
    )

    class Shown(App[None]):
        def on_mount(self) -> None:
            self.push_screen(DamagedScreen(path, problem))

    assert snap_compare(Shown(), terminal_size=(100, 30))
