"""Summaries and the sliding context window, against the fake server: what each request carries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fakes.openai_server import Cut, FakeOpenAIServer
from threadline.chat.context import MESSAGE_OVERHEAD, SUMMARY_PREFIX, estimate_tokens
from threadline.chat.openai_compat import OpenAICompatProvider
from threadline.chat.provider import ProviderError
from threadline.chat.summarise import (
    compact_plan,
    compact_session,
    next_range,
    summary_request,
)
from threadline.chat.turns import (
    ContextNotice,
    ReplyFinished,
    SummarySaved,
    SummaryStarted,
    TurnCancelled,
    TurnEngine,
    TurnEvent,
    UserMessageSaved,
)
from threadline.config import ProviderSettings
from threadline.errors import ThreadlineError
from threadline.models import Message, Session
from threadline.store import Store

BODY = "x" * 396  # with "mNN " in front: 400 characters, 100 tokens (+4 per message)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


async def _no_sleep(seconds: float) -> None:
    return None


def provider_for(server: FakeOpenAIServer, retries: int = 0) -> OpenAICompatProvider:
    settings = ProviderSettings(
        name="openai-compatible",
        base_url=server.base_url,
        model="fake",
        connect_timeout=2,
        read_timeout=10,
        max_retries=retries,
    )
    return OpenAICompatProvider(settings, sleep=_no_sleep)


@pytest.fixture
async def session(store: Store, workdir: str) -> Session:
    """A session whose message ids are not their positions: another session wrote first."""
    other = await store.create_session(workdir)
    for i in range(7):
        await store.add_message(other.id, "user", f"elsewhere {i}")
    return await store.create_session(workdir)


async def fill(store: Store, session: Session, count: int) -> list[Message]:
    """`count` messages of 104 tokens each, user and assistant in turn."""
    out = []
    for i in range(count):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(await store.add_message(session.id, role, f"m{i:02d} " + BODY))
    return out


def make_engine(store: Store, server: FakeOpenAIServer, **kw: Any) -> TurnEngine:
    kw.setdefault("keep_recent_messages", 4)
    return TurnEngine(store, provider_for(server, kw.pop("retries", 0)), owns_provider=True, **kw)


async def run(engine: TurnEngine, session: Session, text: str, **kw: Any) -> list[TurnEvent]:
    events = []
    async for event in engine.start(session, text, **kw):
        events.append(event)
    return events


def contents(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"]]


def request_tokens(body: dict[str, Any]) -> int:
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in body["messages"])


# ---------------------------------------------------------------------- during a turn


async def test_the_request_carries_the_summary_and_only_the_messages_after_it(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    history = await fill(store, session, 30)
    engine = make_engine(store, server, max_context_tokens=3000, keep_recent_messages=20)
    events = await run(engine, session, "and now?")
    await engine.aclose()

    kinds = [type(e) for e in events]
    assert kinds[:3] == [UserMessageSaved, SummaryStarted, SummarySaved]
    assert kinds[-1] is ReplyFinished
    assert server.kinds == ["summary", "chat"]
    # 31 messages, the newest 20 kept: #1..#11 summarised in one round.
    summary = (await store.list_summaries(session.id))[-1]
    assert (summary.first_message_id, summary.last_message_id) == (history[0].id, history[10].id)
    assert summary.model == "fake" and summary.token_count and summary.token_count > 0
    # The summary request carried exactly the messages it stands for, numbered by their
    # positions in the session (what people see), never by database ids, so no "#18" can
    # leak into the summary's text.
    prompt = contents(server.requests_of("summary")[0])[1]
    assert "[message 1, user]" in prompt and "[message 11, user]" in prompt
    assert "[message 12," not in prompt and "#" not in prompt
    assert history[0].id == 8  # (the ids are 8..18)
    assert summary.content == "Summary of messages #1-#11."
    # The turn's request: the summary, then the 19 older messages after it and the new one.
    sent = contents(server.requests_of("chat")[0])
    assert sent[0] == SUMMARY_PREFIX + summary.content
    assert sent[1:-1] == [m.content for m in history[11:]]
    assert sent[-1] == "and now?"
    assert request_tokens(server.requests_of("chat")[0]) <= 3000


async def test_summaries_build_on_the_previous_one_and_cover_everything_before_them(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    history = await fill(store, session, 40)
    # Each summary request fits about a dozen messages: three rounds before the turn.
    engine = make_engine(store, server, max_context_tokens=2000, keep_recent_messages=4)
    server.script("summary", "first part", "first and second parts")
    events = await run(engine, session, "go on")
    saved = [e.summary for e in events if isinstance(e, SummarySaved)]
    assert len(saved) == 3
    # Every summary's range starts at the first message; each ends further on.
    assert {s.first_message_id for s in saved} == {history[0].id}
    ends = [s.last_message_id for s in saved]
    assert ends == [history[11].id, history[23].id, history[35].id]
    # Each request after the first carried the previous summary and only newer messages.
    requests = server.requests_of("summary")
    second = contents(requests[1])[1]
    assert "<summary>\nfirst part\n</summary>" in second
    assert "[message 12," not in second and "[message 13, user]" in second
    assert "first and second parts" in contents(requests[2])[1]
    # No summary request exceeds the context budget.
    assert all(request_tokens(r) <= 2000 for r in requests)
    # A turn runs at most three rounds: message #37 is not covered yet, the request is
    # trimmed to fit, and the next turn carries on from the latest summary.
    chat = server.requests_of("chat")[0]
    assert contents(chat)[0] == SUMMARY_PREFIX + saved[-1].content
    assert contents(chat)[-1] == "go on" and request_tokens(chat) <= 2000
    # The next turn fits again: the same summary, and the messages after it.
    events = await run(engine, session, "more")
    await engine.aclose()
    assert not any(isinstance(e, SummaryStarted) for e in events)
    chat = contents(server.requests_of("chat")[1])
    assert chat[0] == SUMMARY_PREFIX + saved[-1].content
    assert chat[1:] == [m.content for m in history[36:]] + ["go on", "You said: go on", "more"]


@pytest.mark.parametrize(("slack", "summarised"), [(0, False), (-1, True)])
async def test_budget_boundary_just_fits_or_just_does_not(
    store: Store, server: FakeOpenAIServer, session: Session, slack: int, summarised: bool
) -> None:
    await fill(store, session, 10)
    new = "the new message"
    total = 10 * (100 + MESSAGE_OVERHEAD) + estimate_tokens(new) + MESSAGE_OVERHEAD
    engine = make_engine(store, server, max_context_tokens=total + slack)
    await run(engine, session, new)
    await engine.aclose()
    assert ("summary" in server.kinds) is summarised
    chat = server.requests_of("chat")[0]
    if summarised:
        assert contents(chat)[0].startswith(SUMMARY_PREFIX)
        assert len(chat["messages"]) == 1 + 4
    else:
        assert len(chat["messages"]) == 11 and await store.latest_summary(session.id) is None


async def test_nothing_older_than_the_kept_messages_means_trimming_only(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await fill(store, session, 6)
    engine = make_engine(store, server, max_context_tokens=400, keep_recent_messages=10)
    events = await run(engine, session, "hi")
    await engine.aclose()
    assert server.kinds == ["chat"]
    assert not any(isinstance(e, SummaryStarted) for e in events)
    assert request_tokens(server.requests_of("chat")[0]) <= 400


async def test_auto_summarise_off_only_trims(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await fill(store, session, 30)
    engine = make_engine(store, server, max_context_tokens=1000, auto_summarise=False)
    await run(engine, session, "hi")
    await engine.aclose()
    assert server.kinds == ["chat"]
    assert request_tokens(server.requests_of("chat")[0]) <= 1000


async def test_a_failed_summary_trims_the_request_tells_the_user_and_is_retried_next_turn(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    history = await fill(store, session, 30)
    engine = make_engine(store, server, max_context_tokens=1500, retries=1)
    server.script("summary", 500, 500)  # the first try and its one retry
    events = await run(engine, session, "first")
    notices = [e for e in events if isinstance(e, ContextNotice)]
    assert len(notices) == 1 and notices[0].kind == "summary_failed"
    assert "HTTP 500" in notices[0].text and "next turn" in notices[0].text
    assert isinstance(events[-1], ReplyFinished)
    assert await store.latest_summary(session.id) is None
    trimmed = server.requests_of("chat")[0]
    assert request_tokens(trimmed) <= 1500
    assert not contents(trimmed)[0].startswith(SUMMARY_PREFIX)
    assert contents(trimmed)[-1] == "first" and history[0].content not in contents(trimmed)

    events = await run(engine, session, "second")
    await engine.aclose()
    assert any(isinstance(e, SummarySaved) for e in events)
    assert not any(isinstance(e, ContextNotice) for e in events)
    assert contents(server.requests_of("chat")[1])[0].startswith(SUMMARY_PREFIX)


async def test_a_summary_cut_off_mid_stream_is_never_saved(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await fill(store, session, 30)
    engine = make_engine(store, server, max_context_tokens=1500)
    server.script("summary", Cut("half a summ"))
    events = await run(engine, session, "hi")
    await engine.aclose()
    assert any(isinstance(e, ContextNotice) for e in events)
    assert await store.list_summaries(session.id) == []


async def test_cancelling_while_summarising_saves_no_summary(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await fill(store, session, 30)
    engine = make_engine(store, server, max_context_tokens=1500)
    turn = engine.start(session, "hi", model="fake?first_delay=5")
    events = []
    async for event in turn:
        events.append(event)
        if isinstance(event, SummaryStarted):
            # Once the summary request is in flight.
            asyncio.get_running_loop().call_later(0.3, turn.cancel)
    await engine.aclose()
    assert isinstance(events[-1], TurnCancelled)
    assert await store.list_summaries(session.id) == []
    assert server.kinds == ["summary"]


async def test_errors_and_tool_messages_are_left_out_of_the_summary_request(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await store.add_message(session.id, "user", "keep me")
    bad = await store.add_message(session.id, "assistant", "Error: boom", stop_reason="error")
    await fill(store, session, 10)
    stretch = await next_range(store, session.id, keep_recent=2, max_tokens=16000)
    assert stretch is not None
    assert bad.id not in [m.id for m in stretch.messages]
    assert stretch.first_message_id == bad.id - 1  # the range still starts at the first one
    assert stretch.positions == [1, *range(3, 11)]  # the error (position 2) is left out
    prompt = summary_request(None, stretch.messages, max_tokens=16000, positions=stretch.positions)[
        1
    ].content
    assert "keep me" in prompt and "boom" not in prompt
    assert "[message 1, user]" in prompt and "[message 3, user]" in prompt
    assert "[message 2," not in prompt


async def test_a_huge_message_is_cut_to_fit_the_summary_request(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    await store.add_message(session.id, "user", "y" * 40_000)
    await fill(store, session, 4)
    engine = make_engine(store, server, max_context_tokens=1000, keep_recent_messages=2)
    await engine.summarise(session)
    await engine.aclose()
    requests = server.requests_of("summary")
    assert all(request_tokens(r) <= 1000 for r in requests)
    assert "too long to summarise whole" in contents(requests[0])[1]


# ---------------------------------------------------------------------- on demand


@pytest.fixture
async def engine(store: Store, server: FakeOpenAIServer) -> AsyncIterator[TurnEngine]:
    e = make_engine(store, server, max_context_tokens=16000, keep_recent_messages=4)
    yield e
    await e.aclose()


async def test_summarise_now_covers_all_but_the_newest_messages(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    history = await fill(store, session, 12)
    saved = await engine.summarise(session)
    assert len(saved) == 1
    assert (saved[0].first_message_id, saved[0].last_message_id) == (history[0].id, history[7].id)
    # Nothing new since: nothing to do, no request.
    assert await engine.summarise(session) == []
    assert server.kinds == ["summary"]
    # keep_recent can be overridden.
    saved = await engine.summarise(session, keep_recent=1)
    assert saved[0].last_message_id == history[10].id
    assert saved[0].first_message_id == history[0].id


async def test_summarise_now_with_too_few_messages_does_nothing(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    await fill(store, session, 4)
    assert await engine.summarise(session) == []
    assert server.requests == []


async def test_summarise_now_reports_provider_errors(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    await fill(store, session, 12)
    server.script("summary", 401)
    with pytest.raises(ProviderError, match="API key"):
        await engine.summarise(session)
    assert await store.list_summaries(session.id) == []


# ---------------------------------------------------------------------- compacting


async def test_compact_removes_exactly_the_covered_messages(
    store: Store, engine: TurnEngine, session: Session
) -> None:
    history = await fill(store, session, 12)
    (summary,) = await engine.summarise(session)
    plan = await compact_plan(store, session.id)
    assert plan.summary == summary and plan.removable == 8
    assert await compact_session(store, session.id) == 8
    left = await store.get_messages(session.id)
    assert [m.id for m in left] == [m.id for m in history[8:]]
    assert await store.latest_summary(session.id) == summary
    timeline = await store.timeline(session.id)
    assert timeline[0] == summary
    # Again: nothing more is covered.
    assert await compact_session(store, session.id) == 0
    assert (await store.get_session(session.id)).message_count == 4  # type: ignore[union-attr]


async def test_compact_without_a_summary_is_refused(store: Store, session: Session) -> None:
    await fill(store, session, 3)
    assert (await compact_plan(store, session.id)).summary is None
    with pytest.raises(ThreadlineError, match="no summary"):
        await compact_session(store, session.id)
    assert len(await store.get_messages(session.id)) == 3


async def test_after_compacting_the_next_turn_still_sends_summary_and_recent_messages(
    store: Store, engine: TurnEngine, session: Session, server: FakeOpenAIServer
) -> None:
    history = await fill(store, session, 12)
    (summary,) = await engine.summarise(session)
    await compact_session(store, session.id)
    await run(engine, session, "still there?")
    sent = contents(server.requests_of("chat")[0])
    assert sent == [SUMMARY_PREFIX + summary.content] + [m.content for m in history[8:]] + [
        "still there?"
    ]
