"""The turn engine: what is written when, on success, on errors and when cancelled."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAIServer
from fakes.timers import KEEPER, count_keeper_timer, current_task_name
from threadline.chat.openai_compat import OpenAICompatProvider
from threadline.chat.provider import ProviderNotConfigured
from threadline.chat.turns import (
    ReplyDelta,
    ReplyFinished,
    ReplyStarted,
    Turn,
    TurnCancelled,
    TurnEngine,
    TurnFailed,
    UserMessageSaved,
    derive_title,
    run_turn,
)
from threadline.config import ProviderSettings, Settings
from threadline.errors import ThreadlineError
from threadline.models import Session
from threadline.store import Store


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


async def _no_sleep(seconds: float) -> None:
    return None


def provider_for(server: FakeOpenAIServer, model: str | None = "fake") -> OpenAICompatProvider:
    settings = ProviderSettings(
        name="openai-compatible",
        base_url=server.base_url,
        model=model,
        connect_timeout=2,
        read_timeout=10,
        max_retries=2,
    )
    return OpenAICompatProvider(settings, sleep=_no_sleep)


@pytest.fixture
async def engine(store: Store, server: FakeOpenAIServer) -> AsyncIterator[TurnEngine]:
    e = TurnEngine(store, provider_for(server), owns_provider=True)
    yield e
    await e.aclose()


@pytest.fixture
async def session(store: Store, workdir: str) -> Session:
    return await store.create_session(workdir)


class WriteSpy:
    """Counts the store's write transactions by the function they run; `wait(n)` waits until
    n of them have been done (since the last reset)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []  # (function, the coroutine of the task writing)
        self.done = 0
        self._changed = asyncio.Condition()
        real = store._db.write

        async def write(fn: Any, *args: Any) -> Any:
            self.calls.append((getattr(fn, "__name__", repr(fn)), current_task_name()))
            try:
                return await real(fn, *args)
            finally:
                async with self._changed:
                    self.done += 1
                    self._changed.notify_all()

        monkeypatch.setattr(store._db, "write", write)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def reset(self) -> None:
        self.calls.clear()
        self.done = 0

    async def wait(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.done >= count)


async def events_of(turn: Turn) -> list[Any]:
    return [event async for event in turn]


# ---------------------------------------------------------------------- a normal turn


async def test_a_turn_saves_the_user_message_and_the_finished_reply(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    events = await events_of(engine.start(session, "hello there"))
    kinds = [type(e) for e in events]
    assert kinds[0] is UserMessageSaved and kinds[1] is ReplyStarted
    assert kinds[2:-1] == [ReplyDelta] * 4
    assert kinds[-1] is ReplyFinished
    assert "".join(e.text for e in events if isinstance(e, ReplyDelta)) == "You said: hello there"

    user, reply = await store.get_messages(session.id)
    assert (user.role, user.content, user.complete) == ("user", "hello there", True)
    assert reply.role == "assistant"
    assert reply.content == "You said: hello there"
    assert reply.complete is True
    assert (reply.input_tokens, reply.output_tokens) == (6, 4)
    assert reply.model == "fake" and reply.stop_reason == "stop"
    assert reply.response_ms is not None and reply.response_ms >= 0
    assert events[-1].message == reply

    after = await store.get_session(session.id)
    assert after is not None
    assert (after.total_input_tokens, after.total_output_tokens) == (6, 4)
    assert after.message_count == 2
    assert after.status == "active"
    assert (after.model, after.provider) == ("fake", "openai-compatible")


async def test_session_totals_add_up_over_turns(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    first = await run_turn(engine, session, "one")
    second = await run_turn(engine, session, "two two")
    after = await store.get_session(session.id)
    assert after is not None
    assert after.total_input_tokens == first.reply.input_tokens + second.reply.input_tokens
    assert after.total_output_tokens == first.reply.output_tokens + second.reply.output_tokens
    # The second request carried the whole conversation.
    assert [m["content"] for m in server.requests[1]["messages"]] == [
        "one",
        "You said: one",
        "two two",
    ]


async def test_the_user_message_is_committed_before_the_request(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer, db_path: Path
) -> None:
    seen: list[list[tuple[str, str]]] = []

    def look(body: dict[str, Any]) -> None:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            seen.append(conn.execute("SELECT role, content FROM messages ORDER BY id").fetchall())
        finally:
            conn.close()

    server.on_request = look
    await run_turn(engine, session, "is it saved?")
    assert seen == [[("user", "is it saved?")]]


async def test_an_empty_reply_is_still_recorded(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    result = await run_turn(engine, session, "say nothing", model="x?tokens=0")
    assert result.outcome == "complete"
    assert result.reply.content == "" and result.reply.complete
    assert len(await store.get_messages(session.id)) == 2


async def test_empty_text_is_refused(engine: TurnEngine, session: Session) -> None:
    with pytest.raises(ThreadlineError, match="empty"):
        engine.start(session, "  \n ")


# ---------------------------------------------------------------------- checkpoints


async def test_reply_row_appears_at_the_first_token_and_is_checkpointed_on_a_timer(
    store: Store, server: FakeOpenAIServer, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply row is written at the first token, then from a timer: while the model is
    silent (the server holds the stream after 10 and after 20 tokens) what arrived is saved."""
    engine = TurnEngine(store, provider_for(server), checkpoint_interval=0.05)
    spy = WriteSpy(store, monkeypatch)
    seen_at_start = None
    reply_id = 0
    saved: list[str] = []
    turn = engine.start(session, "hi", model="x?tokens=30&hold_after=10,20")
    async for event in turn:
        if isinstance(event, ReplyStarted):
            reply_id = event.message.id
            seen_at_start = await store.get_message(reply_id)
            spy.reset()
        elif isinstance(event, ReplyDelta) and turn.text_so_far.count(" ") in (10, 20):
            # The stream is held: a timer checkpoint saves all that arrived (waited for write
            # by write; a few writes at most, so a missing checkpoint fails, not hangs).
            for _ in range(20):
                row = await store.get_message(reply_id)
                assert row is not None
                if row.content == turn.text_so_far:
                    break
                await spy.wait(spy.done + 1)
            saved.append(row.content)
            server.release()
    await engine.aclose()
    assert seen_at_start is not None
    assert (seen_at_start.content, seen_at_start.complete) == ("t0 ", False)
    assert saved == ["".join(f"t{i} " for i in range(n)) for n in (10, 20)]
    final = (await store.get_messages(session.id))[-1]
    assert final.content == "".join(f"t{i} " for i in range(30)) and final.complete
    assert [n for n in spy.names() if n.endswith("_message")][-1] == "update_message"  # final


async def test_a_fast_long_reply_costs_two_writes_plus_one_per_checkpoint(
    store: Store, engine: TurnEngine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes by the stream (the reply created, then final) and at most one checkpoint each
    time the keeper's interval runs out: counted by events, so a busy machine cannot fail it."""
    spy = WriteSpy(store, monkeypatch)
    timer = count_keeper_timer(monkeypatch)
    turn = engine.start(session, "go", model="x?tokens=2000")
    async for event in turn:
        if isinstance(event, UserMessageSaved):
            spy.reset()
    reply = [(n, task) for n, task in spy.calls if n in ("add_message", "update_message")]
    assert [n for n, task in reply if task != KEEPER] == ["add_message", "update_message"], reply
    assert len([n for n, task in reply if task == KEEPER]) <= timer.expiries, reply
    assert turn.result is not None and turn.result.reply.output_tokens == 2000
    assert len(turn.result.reply.content) == len("".join(f"t{i} " for i in range(2000)))


async def test_heartbeat_keeps_a_silent_stream_from_looking_crashed(
    store: Store,
    server: FakeOpenAIServer,
    session: Session,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = TurnEngine(
        store, provider_for(server), checkpoint_interval=0.05, heartbeat_interval=0.1
    )
    spy = WriteSpy(store, monkeypatch)
    turn = engine.start(session, "think hard", model="x?tokens=3&hold_after=1")
    statuses: list[str] = []
    async with aclosing(aiter(turn)) as events:
        async for event in events:
            if isinstance(event, ReplyStarted):
                # The writer "stops" for 31 s as far as the store can tell ...
                clock.advance(seconds=31)
                s = await store.get_session(session.id)
                statuses.append(s.status)
                # ... then heartbeats arrive while no token does (the server holds the stream).
                while turn.heartbeat_writes < 2:
                    await spy.wait(spy.done + 1)
                s = await store.get_session(session.id)
                statuses.append(s.status)
                server.release()
    await engine.aclose()
    assert statuses == ["crashed", "active"]
    assert turn.heartbeat_writes >= 2
    assert turn.result is not None and turn.result.outcome == "complete"
    # A finished reply leaves no heartbeat behind: much later, still not crashed.
    clock.advance(minutes=10)
    s = await store.get_session(session.id)
    assert s is not None and s.status == "active"


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("model", "kind", "needle"),
    [
        ("missing", "not_found", "unknown model 'missing'"),
        ("unauthorized", "auth", "needs an API key"),
        ("servererror", "server", "HTTP 500"),
        ("malformed?after=0", "malformed", "malformed chunk"),
    ],
)
async def test_a_provider_error_keeps_the_user_message_and_records_the_error(
    store: Store,
    engine: TurnEngine,
    session: Session,
    clock: Any,
    model: str,
    kind: str,
    needle: str,
) -> None:
    events = await events_of(engine.start(session, "hello", model=model))
    assert isinstance(events[-1], TurnFailed)
    assert events[-1].kind == kind and needle in events[-1].error
    user, reply = await store.get_messages(session.id)
    assert user.content == "hello"
    assert reply.role == "assistant" and reply.stop_reason == "error"
    assert reply.complete is False
    assert reply.content == f"Error: {events[-1].error}"
    assert reply.payload["error"] == events[-1].error
    assert reply.payload["error_kind"] == kind
    clock.advance(minutes=5)
    s = await store.get_session(session.id)
    assert s is not None and s.status == "active"
    # A model that failed is not remembered on the session.
    assert s.model is None


async def test_an_error_mid_reply_keeps_the_partial_text(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    result = await run_turn(engine, session, "hi", model="disconnect?after=3&tokens=10")
    assert result.outcome == "error"
    reply = await store.get_message(result.reply.id)
    assert reply is not None
    assert reply.content.startswith("t0 t1 t2 \n\nError: the connection to ")
    assert reply.payload["partial_chars"] == len("t0 t1 t2 ")
    assert reply.stop_reason == "error"
    assert len(await store.get_messages(session.id)) == 2


async def test_after_an_error_the_session_is_usable_and_retry_answers_again(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    failed = await run_turn(engine, session, "what is 2+2?", model="servererror")
    assert failed.outcome == "error"
    retried = await engine.retry(session).run()
    assert retried.outcome == "complete"
    assert retried.user_message.id == failed.user_message.id
    assert retried.reply.content == "You said: what is 2+2?"
    # The failed reply's text was not sent to the model.
    assert server.requests[-1]["messages"] == [{"role": "user", "content": "what is 2+2?"}]
    again = await run_turn(engine, session, "thanks")
    assert again.outcome == "complete"
    roles = [(m.role, m.stop_reason) for m in await store.get_messages(session.id)]
    assert roles == [
        ("user", None),
        ("assistant", "error"),
        ("assistant", "stop"),
        ("user", None),
        ("assistant", "stop"),
    ]


async def test_retry_needs_a_user_message(engine: TurnEngine, session: Session) -> None:
    with pytest.raises(ThreadlineError, match="nothing to retry"):
        await engine.retry(session).run()


async def test_429_and_500_then_success_give_one_complete_reply(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    for model in ("ratelimit", "flaky"):
        result = await run_turn(engine, session, f"try {model}", model=model)
        assert result.outcome == "complete"
        assert result.reply.content == f"You said: try {model}"
    assert len(server.requests) == 4
    assert len(await store.get_messages(session.id)) == 4


# ---------------------------------------------------------------------- cancelling


async def test_turn_cancel_keeps_the_partial_reply(
    store: Store, engine: TurnEngine, session: Session, clock: Any
) -> None:
    turn = engine.start(session, "long story", model="x?tokens=200&delay=0.02")
    events = []
    async for event in turn:
        events.append(event)
        if isinstance(event, ReplyDelta) and len(turn.text_so_far) >= 12:
            turn.cancel()
    assert isinstance(events[-1], TurnCancelled)
    shown = "".join(e.text for e in events if isinstance(e, ReplyDelta))
    reply = await store.get_message(events[-1].message.id)
    assert reply is not None
    assert reply.content == shown
    assert (reply.stop_reason, reply.complete) == ("cancelled", False)
    clock.advance(minutes=5)
    s = await store.get_session(session.id)
    assert s is not None and s.status == "active"


async def test_turn_cancel_while_waiting_for_the_model(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    # The model goes silent after two tokens until released: only the cancel can end the turn.
    turn = engine.start(session, "hi", model="x?tokens=5&hold_after=2")
    events = []
    async for event in turn:
        events.append(event)
        if isinstance(event, ReplyDelta) and turn.text_so_far == "t0 t1 ":
            turn.cancel()
    assert isinstance(events[-1], TurnCancelled)
    assert events[-1].message.content == "t0 t1 "
    assert events[-1].message.stop_reason == "cancelled"


async def test_turn_cancel_before_the_request_is_sent(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    turn = engine.start(session, "hi", model="x?hold_after=0")
    events = []
    async for event in turn:
        events.append(event)
        if isinstance(event, UserMessageSaved):
            turn.cancel()
    assert [type(e) for e in events] == [UserMessageSaved, TurnCancelled]
    assert (events[-1].message.content, events[-1].message.stop_reason) == ("", "cancelled")
    assert server.requests == []


async def test_cancelling_the_task_saves_the_partial_reply_and_propagates(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    turn = engine.start(session, "hi", model="x?tokens=200&hold_after=5")
    got: list[str] = []
    five = asyncio.Event()

    async def consume() -> None:
        async for event in turn:
            if isinstance(event, ReplyDelta):
                got.append(event.text)
                if len(got) == 5:
                    five.set()

    task = asyncio.create_task(consume())
    await five.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turn.result is not None and turn.result.outcome == "cancelled"
    reply = (await store.get_messages(session.id))[-1]
    assert reply.content == "".join(got)
    assert (reply.stop_reason, reply.complete) == ("cancelled", False)


async def test_cancelling_before_the_first_token_records_an_empty_cancelled_reply(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    turn = engine.start(session, "hi", model="x?hold_after=0")

    async def consume() -> list[Any]:
        return [event async for event in turn]

    task = asyncio.create_task(consume())
    await asyncio.to_thread(server.wait_until, lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    user, reply = await store.get_messages(session.id)
    assert user.content == "hi"
    assert (reply.content, reply.stop_reason) == ("", "cancelled")


async def test_a_listener_that_stops_listening_leaves_a_cancelled_partial(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    turn = engine.start(session, "hi", model="x?tokens=100&delay=0.01")
    async with aclosing(aiter(turn)) as events:
        async for event in events:
            if isinstance(event, ReplyDelta) and len(turn.text_so_far) > 9:
                break
    reply = (await store.get_messages(session.id))[-1]
    assert reply.stop_reason == "cancelled"
    assert reply.content == turn.text_so_far


# ---------------------------------------------------------------------- session settings


def test_titles_are_one_line_and_short() -> None:
    assert derive_title("  Fix the   build\nand more") == "Fix the build"
    assert derive_title("\n\n  second line first\n") == "second line first"
    assert derive_title("   \n ") is None
    long = "word " * 30
    title = derive_title(long)
    assert title is not None and len(title) <= 60 and title.endswith("…")
    assert derive_title("x" * 100) == "x" * 59 + "…"


async def test_the_first_message_names_the_session_unless_the_user_did(
    store: Store, engine: TurnEngine, workdir: str
) -> None:
    fresh = await store.create_session(workdir)
    await run_turn(engine, fresh, "How do I rebase\nonto main?")
    named = await store.get_session(fresh.id)
    assert named is not None and named.title == "How do I rebase"
    await run_turn(engine, named, "second question")
    assert (await store.get_session(fresh.id)).title == "How do I rebase"

    mine = await store.create_session(workdir, title="My title")
    await run_turn(engine, mine, "something else")
    assert (await store.get_session(mine.id)).title == "My title"


async def test_model_and_system_prompt_follow_the_session(
    store: Store, engine: TurnEngine, workdir: str, server: FakeOpenAIServer
) -> None:
    s = await store.create_session(workdir, model="session-model", system_prompt="be terse")
    await run_turn(engine, s, "one")
    body = server.requests[-1]
    assert body["model"] == "session-model"
    assert body["messages"][0] == {"role": "system", "content": "be terse"}

    s = await store.get_session(s.id)
    await run_turn(engine, s, "two", model="other-model", system_prompt="be kind")
    body = server.requests[-1]
    assert body["model"] == "other-model"
    assert body["messages"][0] == {"role": "system", "content": "be kind"}
    s = await store.get_session(s.id)
    assert (s.model, s.system_prompt) == ("other-model", "be kind")

    await run_turn(engine, s, "three", system_prompt="")
    assert server.requests[-1]["messages"][0]["role"] == "user"
    assert (await store.get_session(s.id)).system_prompt is None


async def test_summary_and_budget_shape_the_request(
    store: Store, server: FakeOpenAIServer, workdir: str
) -> None:
    engine = TurnEngine(store, provider_for(server), max_context_tokens=256)
    s = await store.create_session(workdir)
    for i in range(6):
        await store.add_message(s.id, "user" if i % 2 == 0 else "assistant", f"m{i} " * 100)
    await store.save_summary(s.id, "earlier stuff", 1, 2)
    await run_turn(engine, await store.get_session(s.id), "now")
    sent = server.requests[-1]["messages"]
    assert sent[0] == {
        "role": "system",
        "content": "Summary of the earlier conversation:\nearlier stuff",
    }
    assert sent[-1] == {"role": "user", "content": "now"}
    # 300-character messages cost 79 tokens: beside the summary (16) and `now` (5), two fit.
    assert [m["content"][:3] for m in sent[1:-1]] == ["m4 ", "m5 "]
    await engine.aclose()


async def test_no_model_anywhere_is_a_clear_error(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    engine = TurnEngine(store, provider_for(server, model=None), config_path="/x/config.toml")
    with pytest.raises(ProviderNotConfigured, match="no model configured.*/x/config.toml"):
        engine.start(session, "hi")
    assert await store.get_messages(session.id) == []
    await engine.aclose()


def test_from_settings_without_a_provider_says_how(store: Store) -> None:
    with pytest.raises(ProviderNotConfigured, match="THREADLINE_BASE_URL"):
        TurnEngine.from_settings(store, Settings())


def test_chat_never_imports_textual_or_httpx_on_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, threadline.chat.turns, threadline.chat.context, threadline.chat.provider;"
        "bad = [m for m in ('textual', 'httpx', 'httpx_sse') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
