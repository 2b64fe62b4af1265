"""A reply that cannot be saved (disk full): said at once, retried, and never reported finished
unless all of it is in the database. And new sessions made with their first message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAIServer
from threadline.chat.openai_compat import OpenAICompatProvider
from threadline.chat.turns import (
    ReplyDelta,
    ReplyFinished,
    ReplyStarted,
    SaveProblem,
    SessionRequest,
    TurnEngine,
    UserMessageSaved,
)
from threadline.config import ProviderSettings
from threadline.errors import ThreadlineError
from threadline.store import Store, StoreError


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def provider_for(server: FakeOpenAIServer) -> OpenAICompatProvider:
    settings = ProviderSettings(
        name="openai-compatible",
        base_url=server.base_url,
        model="fake",
        connect_timeout=2,
        read_timeout=10,
        max_retries=0,
    )
    return OpenAICompatProvider(settings)


class FillingDisk:
    """The store, except that while `full` every checkpoint or final write of a reply fails
    the way SQLite reports a full disk."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.full = False
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def update_message(self, message_id: int, **changes: Any) -> Any:
        if self.full:
            self.refused += 1
            raise StoreError(f"{self._store.path}: database or disk is full")
        return await self._store.update_message(message_id, **changes)


async def test_a_failed_checkpoint_is_told_at_once_and_the_end_saves_everything(
    store: Store, server: FakeOpenAIServer, workdir: str
) -> None:
    disk = FillingDisk(store)
    engine = TurnEngine(disk, provider_for(server), checkpoint_interval=0.02)  # type: ignore[arg-type]
    turn = engine.start(SessionRequest(workdir), "tell me", model="x?tokens=300&delay=0.01")
    events: list[Any] = []
    async with aclosing(aiter(turn)) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, ReplyStarted):
                disk.full = True
            elif isinstance(event, SaveProblem):
                disk.full = False  # space was freed
    await engine.aclose()
    kinds = [type(e) for e in events]
    problem = next(e for e in events if isinstance(e, SaveProblem))
    # Told while the reply still streamed, not at its end.
    assert kinds.index(SaveProblem) < len(kinds) - 1 - kinds[::-1].index(ReplyDelta)
    assert "database or disk is full" in problem.error
    assert problem.saved_chars < problem.total_chars
    assert isinstance(events[-1], ReplyFinished)
    streamed = "".join(e.text for e in events if isinstance(e, ReplyDelta))
    saved = await store.get_message(events[-1].message.id)
    assert saved is not None and saved.complete and saved.content == streamed


async def test_a_reply_that_cannot_be_saved_is_never_reported_finished(
    store: Store, server: FakeOpenAIServer, workdir: str
) -> None:
    disk = FillingDisk(store)
    engine = TurnEngine(  # type: ignore[arg-type]
        disk, provider_for(server), checkpoint_interval=0.02, final_save_seconds=0.2
    )
    turn = engine.start(SessionRequest(workdir), "tell me", model="x?tokens=150&delay=0.005")
    events: list[Any] = []
    with pytest.raises(ThreadlineError, match="the reply could not be saved") as info:
        async with aclosing(aiter(turn)) as stream:
            async for event in stream:
                events.append(event)
                if isinstance(event, ReplyStarted):
                    disk.full = True
    await engine.aclose()
    assert "database or disk is full" in str(info.value)
    assert not any(isinstance(e, ReplyFinished) for e in events)
    assert any(isinstance(e, SaveProblem) for e in events)
    assert turn.result is None
    assert disk.refused >= 2  # the end was tried again
    reply = (await store.get_messages(turn.session.id))[-1]
    assert reply.role == "assistant" and not reply.complete  # what was saved, marked unfinished


async def test_a_requested_session_is_made_with_its_first_message(
    store: Store, server: FakeOpenAIServer, workdir: str
) -> None:
    engine = TurnEngine(store, provider_for(server))
    turn = engine.start(SessionRequest(workdir), "Plan the migration\nin detail", model="fake")
    assert turn.session_id is None  # nothing exists before the turn runs
    events = [e async for e in aiter(turn)]
    await engine.aclose()
    saved = events[0]
    assert isinstance(saved, UserMessageSaved) and saved.created
    assert saved.session.title == "Plan the migration"
    assert turn.session_id == saved.session.id
    assert [m.role for m in await store.get_messages(saved.session.id)] == ["user", "assistant"]
    # Continuing: a recent session of the directory is used, not a new one.
    again = engine.start(SessionRequest(workdir, continue_window_hours=4), "more", model="fake")
    first = [e async for e in aiter(again)][0]
    assert isinstance(first, UserMessageSaved) and not first.created
    assert first.session.id == saved.session.id
    assert await store.count_sessions("all") == 1
