"""Live refresh: writes by another connection (another process) show up on their own."""

from __future__ import annotations

import asyncio

from apphelpers import make_app, screen_text, settle, until, widget_lines
from sample_data import API, Sample

from threadline.store import Store


async def wait_for(pilot, condition) -> None:
    await until(pilot, condition)


async def test_a_session_written_elsewhere_appears_in_the_sidebar(plain_db: Sample):
    app = make_app(plain_db, poll_seconds=1.0)  # the app's default interval
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        other = await Store.open(plain_db.path)
        try:
            s = await other.create_session(API, title="Written by a script")
            await other.add_message(s.id, "user", "hello from elsewhere")
        finally:
            await other.close()
        sidebar = app.main_screen.sessions

        def shown() -> bool:
            return "Written by a script" in "\n".join(widget_lines(sidebar))

        await wait_for(pilot, lambda: shown() and "5 sessions" in screen_text(app))


async def test_the_open_conversation_follows_new_and_streaming_messages(plain_db: Sample):
    app = make_app(plain_db, poll_seconds=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(plain_db.ids["fix"])
        await settle(pilot)
        view = app.main_screen.conversation
        other = await Store.open(plain_db.path)
        try:
            await other.add_message(plain_db.ids["fix"], "user", "And on Windows?")
            reply = await other.add_message(
                plain_db.ids["fix"], "assistant", "On Windows the", complete=False
            )

            def pane() -> str:
                return "\n".join(widget_lines(view))

            await wait_for(pilot, lambda: "On Windows the" in pane())
            assert "And on Windows?" in pane()
            assert "● writing…" in pane()  # still streaming, not "interrupted"
            await other.update_message(
                reply.id, content="On Windows the same fix works.", complete=True
            )
            await wait_for(pilot, lambda: "the same fix works." in pane())
            assert "● writing…" not in pane()
            # The view followed the end of the conversation.
            assert view.scroll_y == view.max_scroll_y
        finally:
            await other.close()


async def test_a_session_trashed_elsewhere_closes_in_the_pane(plain_db: Sample):
    app = make_app(plain_db, poll_seconds=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        other = await Store.open(plain_db.path)
        try:
            await other.delete_session(plain_db.ids["design"])
        finally:
            await other.close()
        await wait_for(pilot, lambda: "moved to the trash" in screen_text(app))
        assert app.main_screen.open_session_id is None


async def test_an_idle_app_does_not_refresh(plain_db: Sample, monkeypatch):
    app = make_app(plain_db, poll_seconds=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        calls = []
        original = app.main_screen.data_changed

        async def counting() -> None:
            calls.append(1)
            await original()

        monkeypatch.setattr(app.main_screen, "data_changed", counting)
        polls: list[int] = []
        polled = asyncio.Event()
        real_poll = app.store.outside_data_version

        async def poll() -> int:
            polls.append(1)
            polled.set()
            return await real_poll()

        monkeypatch.setattr(app.store, "outside_data_version", poll)
        await until(pilot, lambda: len(polls) >= 5, "five polls", wake=polled)
        await settle(pilot)
        assert calls == []
        # ...but it does once something changes.
        other = await Store.open(plain_db.path)
        try:
            await other.update_session(plain_db.ids["fix"], title="Changed")
        finally:
            await other.close()
        await wait_for(pilot, lambda: bool(calls))
