"""Memory extraction from the app, against the fake OpenAI-compatible server: the upkeep at
start-up and on a timer, `x` and `r` on the memories screen, failures kept in the queue with
their error, and sessions queued when the user leaves them or quits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from apphelpers import (
    HANG_GUARD,
    make_app,
    quiet_settings,
    screen_text,
    settle,
    until,
    widget_lines,
)
from memory_data import add_failed_extraction, record_notifications, said
from sample_data import API, NOW, Sample, _Clock

from fakes.openai_server import FakeOpenAIServer
from threadline.config import Settings
from threadline.store import Store
from threadline.store.memories import WATERMARK_KEY
from threadline.ui.screens.memories import MemoriesScreen


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def with_provider(server: FakeOpenAIServer) -> Settings:
    settings = quiet_settings()
    settings.provider.base_url = server.base_url
    settings.provider.model = "fake"
    settings.provider.max_retries = 0
    settings.provider.read_timeout = 10
    return settings


def facts(*items: tuple[str, int | None]) -> str:
    return json.dumps(
        [
            {
                "fact": text,
                "category": "fact",
                "importance": 3,
                "source_message_id": source,
                "supersedes": None,
            }
            for text, source in items
        ]
    )


async def in_store(sample: Sample, fn) -> Any:  # noqa: ANN001
    """Run fn(store) on the sample's database, at the app's time (NOW)."""
    async with await Store.open(sample.path, clock=_Clock()) as store:
        return await fn(store)


@pytest.fixture(autouse=True)
def _notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here reads the notifications through `said`."""
    record_notifications(monkeypatch)


async def notes(pilot) -> str:
    return await said(pilot)


async def test_upkeep_at_start_up_finishes_what_the_queue_holds(
    plain_db: Sample, server: FakeOpenAIServer
):
    """An extraction queued by an earlier run (or one that quit mid-way) is done at start."""
    fix = plain_db.ids["fix"]

    async def queue(store: Store):
        await store.queue_extraction(fix)
        return await store.get_messages(fix)

    messages = await in_store(plain_db, queue)
    server.script(
        "extraction", facts(("CI runners are slow; tests must not race.", messages[0].id))
    )
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        memories = await in_store(plain_db, lambda s: s.get_memories(API))
        assert [m.fact for m in memories] == ["CI runners are slow; tests must not race."]
        assert memories[0].source_message_id == messages[0].id
        assert await in_store(plain_db, lambda s: s.list_pending_extractions()) == []
        assert "Remembered 1 new fact from your sessions." in await notes(pilot)
        assert server.kinds == ["extraction"]
        assert "memory:" not in screen_text(app).split("\n")[0]  # nothing queued any more


async def test_upkeep_runs_again_on_a_timer(plain_db: Sample, server: FakeOpenAIServer):
    app = make_app(plain_db, settings=with_provider(server))
    app.memory_tasks.upkeep_seconds = 0.2
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert server.kinds == []  # nothing was queued at start
        fix = plain_db.ids["fix"]
        messages = await in_store(plain_db, lambda s: s.get_messages(fix))
        server.script("extraction", facts(("Found on the second run.", messages[1].id)))
        asked = asyncio.Event()
        loop = asyncio.get_running_loop()
        server.on_request = lambda body: loop.call_soon_threadsafe(asked.set)
        await in_store(plain_db, lambda s: s.queue_extraction(fix))
        await until(pilot, lambda: bool(server.kinds), "the next upkeep run", wake=asked)
        await settle(pilot)
        assert server.kinds == ["extraction"]
        memories = await in_store(plain_db, lambda s: s.get_memories(API))
        assert [m.fact for m in memories] == ["Found on the second run."]


async def test_x_extracts_from_the_open_session_now(plain_db: Sample, server: FakeOpenAIServer):
    fix = plain_db.ids["fix"]
    messages = await in_store(plain_db, lambda s: s.get_messages(fix))
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(fix)
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MemoriesScreen)
        assert "No memories for ~/src/api yet." in screen_text(app)
        server.script(
            "extraction",
            facts(
                ("Flaky tests get exponential backoff.", messages[1].id),
                ("The suite runs on CI.", messages[0].id),
            ),
        )
        await pilot.press("x")
        await settle(pilot)
        assert "Remembered 2 new facts from “Fix the flaky retry test”." in await notes(pilot)
        shown = "\n".join(widget_lines(screen.memory_list))
        assert "Flaky tests get exponential backoff." in shown
        assert "from “Fix the flaky retry test”" in shown
        (body,) = server.requests_of("extraction")
        assert f"[assistant #{messages[1].id}]" in body["messages"][1]["content"]
        # Nothing new since: no request, and it says so.
        await pilot.press("x")
        await settle(pilot)
        assert "Nothing new to remember in “Fix the flaky retry test”." in await notes(pilot)
        assert len(server.requests_of("extraction")) == 1


async def test_a_failed_extraction_is_kept_with_its_error_and_r_retries_it(
    plain_db: Sample, server: FakeOpenAIServer
):
    fix = plain_db.ids["fix"]
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(fix)
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        screen = app.screen
        server.script("extraction", "I'd rather chat about the weather [/]")
        await pilot.press("x")
        await settle(pilot)
        said = await notes(pilot)
        assert "Extraction failed:" in said and "retried later" in said
        (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
        assert pending.attempt_count == 1 and "not JSON" in (pending.error_message or "")
        status = "\n".join(widget_lines(screen.query_one("#memory-status")))
        assert "● retrying" in status and "1 attempt of 3" in status and "not JSON" in status
        # Two more failures: given up on, shown as failed.
        server.script("extraction", 500, 500)
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
        assert pending.attempt_count == 3
        status = "\n".join(widget_lines(screen.query_one("#memory-status")))
        assert "✖ failed" in status and "3 attempts of 3" in status
        assert "given up after 3 attempts" in await notes(pilot)
        # r gives it new attempts and runs it.
        messages = await in_store(plain_db, lambda s: s.get_messages(fix))
        server.script("extraction", facts(("Third time lucky.", messages[0].id)))
        await pilot.press("r")
        await settle(pilot)
        assert "Retrying 1 failed extraction." in await notes(pilot)
        assert await in_store(plain_db, lambda s: s.list_pending_extractions()) == []
        memories = await in_store(plain_db, lambda s: s.get_memories(API))
        assert [m.fact for m in memories] == ["Third time lucky."]
        assert "Third time lucky." in "\n".join(widget_lines(screen.memory_list))
        await pilot.press("escape")
        await settle(pilot)
        assert "memory:" not in screen_text(app).split("\n")[0]


async def test_the_header_says_when_extractions_failed(plain_db: Sample, server: FakeOpenAIServer):
    await add_failed_extraction(plain_db, "boom")
    app = make_app(plain_db, settings=with_provider(server))
    app.memory_tasks.upkeep_seconds = 3600
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        header = screen_text(app).split("\n")[0]
        # The retrying one is not due yet (3 min), the failed one is given up on: the upkeep
        # at start sends nothing.
        assert server.kinds == []
        assert "memory: 1 queued · 1 failed" in header
        assert "no extraction here" not in header


async def _chatted_session(sample: Sample, minutes_ago: float = 5) -> str:
    """A session chatted in here (marked for extraction), active a few minutes ago."""
    clock = _Clock()
    clock.now = NOW - timedelta(minutes=minutes_ago)
    store = await Store.open(sample.path, clock=clock)
    try:
        s = await store.create_session(API, title="Chatted here")
        await store.patch_session_metadata(s.id, {WATERMARK_KEY: 0})
        await store.add_message(s.id, "user", "We release on Fridays.")
        await store.add_message(s.id, "assistant", "Noted: releases on Fridays.")
        return s.id
    finally:
        await store.close()


async def test_leaving_a_session_queues_its_new_messages(
    plain_db: Sample, server: FakeOpenAIServer
):
    chatted = await _chatted_session(plain_db)
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(chatted)
        await settle(pilot)
        assert await in_store(plain_db, lambda s: s.list_pending_extractions()) == []
        app.main_screen.open_session(plain_db.ids["fix"])
        await settle(pilot)
        (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
        assert pending.session_id == chatted
        header = screen_text(app).split("\n")[0]
        assert "memory: 1 queued" in header
        # Sessions not chatted in here (imports, the sample's) are left alone.
        app.main_screen.open_session(plain_db.ids["design"])
        await settle(pilot)
        assert len(await in_store(plain_db, lambda s: s.list_pending_extractions())) == 1


async def test_quitting_queues_the_open_session(plain_db: Sample, server: FakeOpenAIServer):
    chatted = await _chatted_session(plain_db)
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(chatted)
        await settle(pilot)
        await pilot.press("q")
    (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
    assert pending.session_id == chatted
    # The next start picks it up.
    server.script("extraction", facts(("Releases happen on Fridays.", None)))
    app = make_app(plain_db, settings=with_provider(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
    memories = await in_store(plain_db, lambda s: s.get_memories(API))
    assert [m.fact for m in memories] == ["Releases happen on Fridays."]


async def test_memory_off_runs_nothing(plain_db: Sample, server: FakeOpenAIServer):
    chatted = await _chatted_session(plain_db, minutes_ago=120)  # idle: would be queued
    settings = with_provider(server)
    settings.memory.enabled = False
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(chatted)
        await settle(pilot)
        app.main_screen.open_session(plain_db.ids["fix"])
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        status = "\n".join(widget_lines(app.screen.query_one("#memory-status")))
        assert "unavailable here: project memory is off" in status
    assert server.requests == []
    assert await in_store(plain_db, lambda s: s.list_pending_extractions()) == []


async def test_quitting_mid_extraction_is_quick_and_hands_it_back(
    plain_db: Sample, server: FakeOpenAIServer
):
    """An extraction still waiting for the model when the user quits goes back to the queue
    as it was (due, no attempt counted), and quitting does not wait for the model."""
    import threading

    fix = plain_db.ids["fix"]
    await in_store(plain_db, lambda s: s.queue_extraction(fix))
    settings = with_provider(server)
    settings.memory.model = "fake"
    # The model says nothing until the test lets it (after the app has quit); HANG_GUARD
    # only keeps a broken app (one that waits for the model) from hanging the test.
    answer = threading.Event()
    asked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_request(body) -> None:  # noqa: ANN001 - on the server's thread
        loop.call_soon_threadsafe(asked.set)
        answer.wait(HANG_GUARD)

    server.on_request = on_request
    app = make_app(plain_db, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bool(server.kinds), "the extraction request", wake=asked)
        assert server.kinds == ["extraction"]
        (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
        assert pending.next_attempt_at > NOW  # leased by the app
        await until(pilot, lambda: "extracting…" in screen_text(app).split("\n")[0])
        await pilot.press("q")
    # The app has closed and the model has not said a word: quitting did not wait for it.
    assert server.sent == []
    answer.set()
    (pending,) = await in_store(plain_db, lambda s: s.list_pending_extractions())
    assert pending.attempt_count == 0 and pending.error_message is None
    assert pending.next_attempt_at <= NOW  # due again: the next start takes it
