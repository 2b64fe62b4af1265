"""Project memory: extraction through the queue, retries, superseding, memories in context."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAIServer
from threadline.chat.memory import (
    BACKOFF,
    LEASE,
    ExtractionFormatError,
    MemoryExtractor,
    memory_section,
    parse_extraction,
)
from threadline.chat.openai_compat import OpenAICompatProvider
from threadline.chat.turns import TurnEngine, run_turn
from threadline.config import MemoryConfig, ProviderSettings
from threadline.models import Memory, Message, Scope, Session
from threadline.store import Store
from threadline.store.memories import WATERMARK_KEY


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


async def _no_sleep(seconds: float) -> None:
    return None


def provider_at(base_url: str, model: str | None = "fake") -> OpenAICompatProvider:
    settings = ProviderSettings(
        name="openai-compatible",
        base_url=base_url,
        model=model,
        connect_timeout=2,
        read_timeout=10,
        max_retries=0,
    )
    return OpenAICompatProvider(settings, sleep=_no_sleep)


@pytest.fixture
async def provider(server: FakeOpenAIServer) -> AsyncIterator[OpenAICompatProvider]:
    p = provider_at(server.base_url)
    yield p
    await p.aclose()


@pytest.fixture
def extractor(store: Store, provider: OpenAICompatProvider) -> MemoryExtractor:
    return MemoryExtractor(store, provider, MemoryConfig())


@pytest.fixture
async def session(store: Store, workdir: str) -> Session:
    return await store.create_session(workdir)


async def talk(store: Store, session: Session, *texts: str) -> list[Message]:
    out = []
    for i, text in enumerate(texts):
        out.append(await store.add_message(session.id, "user" if i % 2 == 0 else "assistant", text))
    return out


def facts(*items: dict[str, Any]) -> str:
    return json.dumps(list(items))


def fact(text: str, source: int | None, **kw: Any) -> dict[str, Any]:
    return {
        "fact": text,
        "category": kw.get("category", "preference"),
        "importance": kw.get("importance", 3),
        "source_message_id": source,
        "supersedes": kw.get("supersedes"),
    }


# ---------------------------------------------------------------------- the reply format


def test_parse_accepts_the_array_in_a_fence_or_an_object() -> None:
    raw = facts(fact("Uses tabs", 3, category="Preference"))
    for text in (raw, f"```json\n{raw}\n```", json.dumps({"memories": json.loads(raw)})):
        (parsed,) = parse_extraction(text)
        assert (parsed.fact, parsed.category, parsed.source_message_id) == (
            "Uses tabs",
            "preference",
            3,
        )
    assert parse_extraction(" [] ") == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Sure! Here are the facts: none", "not JSON"),
        ('{"facts": 3}', "not a JSON array"),
        (facts(fact("ok", 1), fact("bad", 2, category="gossip")), "invalid fact (1.category"),
        (facts(fact("ok", 1, importance=9)), "invalid fact (0.importance"),
        ('[{"fact": "", "category": "fact", "importance": 2}]', "invalid fact (0.fact"),
    ],
)
def test_parse_rejects_everything_else_whole(text: str, why: str) -> None:
    with pytest.raises(ExtractionFormatError, match=why.replace("(", r"\(")):
        parse_extraction(text)


# ---------------------------------------------------------------------- extraction


async def test_extraction_saves_memories_with_provenance(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    msgs = await talk(store, session, "I always use pytest, never unittest", "Noted.")
    pending = await extractor.queue_session(session.id)
    assert pending is not None
    assert (pending.from_message_id, pending.to_message_id) == (msgs[0].id, msgs[1].id)
    server.script(
        "extraction",
        facts(fact("The user tests with pytest, never unittest.", msgs[0].id, importance=4)),
    )
    report = await extractor.process_due()
    assert report.memories_added == 1 and not report.failed and report.stopped is None
    (memory,) = await store.get_memories(session.working_dir)
    assert memory.fact == "The user tests with pytest, never unittest."
    assert (memory.category, memory.importance, memory.is_manual) == ("preference", 4, False)
    assert (memory.session_id, memory.source_message_id) == (session.id, msgs[0].id)
    assert await store.list_pending_extractions() == []
    # The request showed the messages with their ids, and the model the session's.
    (body,) = server.requests_of("extraction")
    prompt = body["messages"][1]["content"]
    assert f"[user #{msgs[0].id}]\nI always use pytest" in prompt
    assert "Existing memories" in prompt and "(none yet)" in prompt
    # The watermark moved: nothing new, nothing queued.
    fresh = await store.get_session(session.id)
    assert fresh is not None and fresh.metadata[WATERMARK_KEY] == msgs[1].id
    assert await extractor.queue_session(session.id) is None


async def test_only_new_messages_are_extracted_next_time(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    first = await talk(store, session, "one", "two")
    await extractor.queue_session(session.id)
    await extractor.process_due()
    later = await store.add_message(session.id, "user", "three")
    pending = await extractor.queue_session(session.id)
    assert pending is not None and pending.from_message_id == later.id
    await extractor.process_due()
    prompt = server.requests_of("extraction")[1]["messages"][1]["content"]
    assert "three" in prompt and f"#{first[0].id}]" not in prompt


async def test_made_up_ids_and_duplicates_are_dropped_not_trusted(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    (msg,) = await talk(store, session, "we deploy with fly.io")
    await store.save_memory(session.working_dir, "Deploys go through fly.io", "fact", 3)
    await extractor.queue_session(session.id)
    server.script(
        "extraction",
        facts(
            fact("deploys go through Fly.io.", msg.id, category="fact"),  # a duplicate
            fact("The staging app is called web-staging.", 999_999, category="fact"),
            fact("The staging app is called web-staging", msg.id, category="fact"),  # again
            fact("Prod runs in ams.", msg.id, category="fact", supersedes=424242),
        ),
    )
    report = await extractor.process_due()
    assert [m.fact for m in report.outcomes[0].memories] == [
        "The staging app is called web-staging.",
        "Prod runs in ams.",
    ]
    made_up, superseding = report.outcomes[0].memories
    assert made_up.source_message_id is None  # the model's id was not one it was shown
    assert superseding.superseded_by is None and report.outcomes[0].superseded == []


async def test_superseding_keeps_the_old_memory(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    old = await store.save_memory(session.working_dir, "Indent with tabs", "preference", 3)
    elsewhere = await store.save_memory("/", "Indent with four spaces", "preference", 3)
    (msg,) = await talk(store, session, "actually, we switched to spaces")
    await extractor.queue_session(session.id)
    server.script(
        "extraction",
        facts(
            fact("Indent with spaces, not tabs.", msg.id, supersedes=old.id, category="correction"),
            fact("Lines stop at 100.", msg.id, supersedes=elsewhere.id),
        ),
    )
    report = await extractor.process_due()
    new, other = report.outcomes[0].memories
    prompt = server.requests_of("extraction")[0]["messages"][1]["content"]
    assert f"#{old.id} [preference, 3] Indent with tabs" in prompt
    assert "four spaces" not in prompt  # another directory's memories are not shown
    current = await store.get_memories(session.working_dir)
    assert {m.fact for m in current} == {"Indent with spaces, not tabs.", "Lines stop at 100."}
    everything = {
        m.id: m
        for m in await store.get_memories(session.working_dir, None, include_superseded=True)
    }
    assert everything[old.id].superseded_by == new.id  # kept, marked
    assert (await store.get_memory(elsewhere.id)) == elsewhere  # untouched
    assert report.outcomes[0].superseded == [old.id]
    assert other.superseded_by is None


async def test_a_session_without_messages_worth_sending_needs_no_request(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    await store.add_message(session.id, "assistant", "Error: boom", stop_reason="error")
    await extractor.queue_session(session.id)
    report = await extractor.process_due()
    assert len(report.outcomes) == 1 and report.outcomes[0].ok
    assert server.requests == [] and await store.list_pending_extractions() == []


async def test_a_long_range_is_split_and_the_rest_requeued(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, session: Session
) -> None:
    extractor = MemoryExtractor(store, provider, MemoryConfig(), max_tokens=1000)
    msgs = await talk(store, session, *[f"m{i} " + "z" * 600 for i in range(12)])
    await extractor.queue_session(session.id)
    server.script("extraction", facts(fact("first part", msgs[0].id)))
    report = await extractor.process_due()
    requests = server.requests_of("extraction")
    assert len(requests) >= 3
    # Every message went to exactly one request, in order.
    seen = [
        int(part.split("]")[0])
        for body in requests
        for part in body["messages"][1]["content"].split("[user #")[1:]
        + body["messages"][1]["content"].split("[assistant #")[1:]
    ]
    assert sorted(seen) == [m.id for m in msgs]
    assert report.memories_added == 1 and await store.list_pending_extractions() == []
    (memory,) = await store.get_memories(session.working_dir)
    assert memory.source_message_id == msgs[0].id


# ---------------------------------------------------------------------- failures and retries


async def test_malformed_output_is_retried_on_schedule_then_given_up_never_half_stored(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session, clock: Any
) -> None:
    (msg,) = await talk(store, session, "remember: the API lives at /v2")
    await extractor.queue_session(session.id)
    half_good = facts(fact("The API lives at /v2.", msg.id), fact("x", msg.id, importance=0))
    server.script("extraction", "here you go!", half_good, '```json\n[{"fact": ')

    report = await extractor.process_due()
    (outcome,) = report.outcomes
    assert "not JSON" in (outcome.error or "") and not outcome.gave_up
    assert outcome.retry_at == clock() + BACKOFF[0]
    (row,) = await store.list_pending_extractions()
    assert (row.attempt_count, row.next_attempt_at) == (1, clock() + timedelta(minutes=1))
    assert "not JSON" in (row.error_message or "")
    # Not due yet.
    assert (await extractor.process_due()).outcomes == []
    clock.advance(minutes=1)

    report = await extractor.process_due()
    assert "invalid fact" in (report.outcomes[0].error or "")
    assert await store.get_memories(session.working_dir) == []  # the good half was not kept
    (row,) = await store.list_pending_extractions()
    assert (row.attempt_count, row.next_attempt_at) == (2, clock() + timedelta(minutes=5))
    clock.advance(minutes=4)
    assert (await extractor.process_due()).outcomes == []
    clock.advance(minutes=1)

    report = await extractor.process_due()
    assert report.outcomes[0].gave_up and report.outcomes[0].retry_at is None
    (row,) = await store.list_pending_extractions()
    assert row.attempt_count == 3 and "not JSON" in (row.error_message or "")
    clock.advance(hours=24)
    assert (await extractor.process_due()).outcomes == []
    assert len(server.requests_of("extraction")) == 3
    (status,) = await extractor.status()
    assert status.state == "failed" and status.working_dir == session.working_dir

    # Asked to, it tries again: the model now answers properly.
    assert await extractor.retry_failed() == 1
    server.script("extraction", facts(fact("The API lives at /v2.", msg.id)))
    report = await extractor.process_due()
    assert report.memories_added == 1 and await store.list_pending_extractions() == []


async def test_provider_errors_are_failed_attempts_and_an_outage_stops_the_run(
    store: Store, workdir: str, clock: Any
) -> None:
    # A port nobody listens on: connection refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = provider_at(f"http://127.0.0.1:{port}/v1")
    extractor = MemoryExtractor(store, provider, MemoryConfig())
    for text in ("a", "b"):
        s = await store.create_session(workdir)
        await store.add_message(s.id, "user", text)
        await extractor.queue_session(s.id)
    report = await extractor.process_due()
    await provider.aclose()
    assert len(report.outcomes) == 1 and report.stopped and "refused" in report.stopped
    # The untouched one is due first now; the tried one waits for its retry.
    second, first = await store.list_pending_extractions()
    assert first.attempt_count == 1 and "connection refused" in (first.error_message or "")
    assert second.attempt_count == 0 and second.error_message is None


async def test_server_errors_count_as_attempts(
    store: Store, server: FakeOpenAIServer, extractor: MemoryExtractor, session: Session
) -> None:
    await talk(store, session, "hello")
    await extractor.queue_session(session.id)
    server.script("extraction", 500)
    report = await extractor.process_due()
    assert "HTTP 500" in (report.outcomes[0].error or "")
    (row,) = await store.list_pending_extractions()
    assert row.attempt_count == 1


async def test_no_model_configured_is_an_error_not_an_attempt(
    store: Store, server: FakeOpenAIServer, session: Session
) -> None:
    provider = provider_at(server.base_url, model=None)
    extractor = MemoryExtractor(store, provider, MemoryConfig())
    await talk(store, session, "hello")
    await extractor.queue_session(session.id)
    with pytest.raises(Exception, match="no model"):
        await extractor.process_due()
    await provider.aclose()
    (row,) = await store.list_pending_extractions()
    assert row.attempt_count == 0 and (await extractor.status())[0].state == "due"


# ---------------------------------------------------------------------- nothing lost


async def test_a_queued_extraction_survives_a_crash_and_a_new_process_finishes_it(
    db_path: Path, server: FakeOpenAIServer, workdir: str, clock: Any
) -> None:
    # The first "process" queues two extractions, starts one, and dies (no cleanup at all).
    first = await Store.open(db_path, clock=clock)
    sessions = []
    for text in ("we use uv", "ruff with line length 100"):
        s = await first.create_session(workdir)
        msg = await first.add_message(s.id, "user", text)
        sessions.append((s, msg))
        await first.queue_extraction(s.id)
    leased = await first.claim_pending_extraction(clock() + LEASE)
    assert leased is not None
    await first.close()

    # A new process with a new store: the untouched one is done at once, the one the dead
    # process held once its lease has run out; attempts are not used up by the crash.
    store = await Store.open(db_path, clock=clock)
    provider = provider_at(server.base_url)
    extractor = MemoryExtractor(store, provider, MemoryConfig())
    states = {s.pending.id: s.state for s in await extractor.status()}
    assert states[leased.id] == "running" and sorted(states.values()) == ["due", "running"]
    server.script("extraction", facts(fact("Uses ruff at 100 columns.", sessions[1][1].id)))
    report = await extractor.process_due()
    assert [o.pending.session_id for o in report.outcomes] == [sessions[1][0].id]
    clock.advance(LEASE)
    server.script("extraction", facts(fact("Uses uv.", sessions[0][1].id)))
    report = await extractor.process_due()
    assert [o.pending.session_id for o in report.outcomes] == [sessions[0][0].id]
    assert report.outcomes[0].pending.attempt_count == 0
    assert {m.fact for m in await store.get_memories(workdir)} == {
        "Uses uv.",
        "Uses ruff at 100 columns.",
    }
    assert await store.list_pending_extractions() == []
    await provider.aclose()
    await store.close()


async def test_cancelling_mid_extraction_hands_it_back_untouched(
    store: Store, provider: OpenAICompatProvider, session: Session, server: FakeOpenAIServer
) -> None:
    extractor = MemoryExtractor(store, provider, MemoryConfig(model="fake?hold_after=0"))
    await talk(store, session, "hello")
    await extractor.queue_session(session.id)
    task = asyncio.create_task(extractor.process_due())
    # The request is with the model (held before its first token) when the task is cancelled.
    await asyncio.to_thread(server.wait_until, lambda: "extraction" in server.kinds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (row,) = await store.list_pending_extractions()
    assert row.attempt_count == 0 and row.next_attempt_at <= store.now()
    assert await store.get_memories(session.working_dir) == []


async def test_two_extractors_never_take_the_same_extraction(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str
) -> None:
    for text in ("a", "b", "c"):
        s = await store.create_session(workdir)
        await store.add_message(s.id, "user", text)
        await store.queue_extraction(s.id)
    one = MemoryExtractor(store, provider, MemoryConfig(model="fake?first_delay=0.2"))
    two = MemoryExtractor(store, provider, MemoryConfig(model="fake?first_delay=0.2"))
    a, b = await asyncio.gather(one.process_due(), two.process_due())
    taken = [o.pending.id for o in a.outcomes + b.outcomes]
    assert len(taken) == 3 == len(set(taken))
    assert len(server.requests_of("extraction")) == 3


# ---------------------------------------------------------------------- queueing


async def test_idle_sessions_chatted_in_are_queued_imports_and_busy_ones_are_not(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str, clock: Any
) -> None:
    engine = TurnEngine(store, provider, memory=MemoryConfig(idle_minutes=30))
    extractor = engine.memory_extractor()
    chatted = await store.create_session(workdir)
    await run_turn(engine, chatted, "hello")
    assert (await store.get_session(chatted.id)).metadata[WATERMARK_KEY] == 0  # type: ignore[union-attr]
    imported = await store.create_session(workdir)
    await store.add_message(imported.id, "user", "old history")
    trashed = await store.create_session(workdir)
    await run_turn(engine, trashed, "bye")
    await store.delete_session(trashed.id)

    clock.advance(minutes=29)
    assert await extractor.queue_idle() == []
    clock.advance(minutes=2)
    (pending,) = await extractor.queue_idle()
    assert pending.session_id == chatted.id
    assert await extractor.queue_idle() == []  # queued once
    # Extraction off in config: nothing is queued automatically.
    off = MemoryExtractor(store, provider, MemoryConfig(extraction=False))
    await run_turn(engine, chatted, "more")
    clock.advance(hours=1)
    assert await off.queue_idle() == []
    # The imported session is extracted on demand only.
    report = await extractor.extract_now(imported.id)
    assert len(report.outcomes) == 1 and report.outcomes[0].ok
    assert "old history" in server.requests_of("extraction")[-1]["messages"][1]["content"]


# ---------------------------------------------------------------------- memories in context


def make_memory(i: int, fact: str, importance: int, category: str = "fact") -> Memory:
    return Memory(
        id=i,
        working_dir="/p",
        session_id=None,
        source_message_id=None,
        fact=fact,
        category=category,  # type: ignore[arg-type]
        importance=importance,
        created_at=__import__("datetime").datetime(2026, 1, 1),
    )


def test_the_memory_section_stops_at_the_budget() -> None:
    memories = [make_memory(i, f"fact number {i} " + "w" * 40, 5) for i in range(10)]
    text = memory_section(memories, 80, "/p")
    assert text is not None and text.startswith("Project memory: what earlier conversations in /p")
    lines = text.splitlines()[1:]
    assert 1 <= len(lines) < 10
    assert lines[0] == "- (fact) fact number 0 " + "w" * 40
    assert memory_section(memories, 5, "/p") is None


async def test_a_new_session_starts_with_the_directorys_best_memories(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str, clock: Any
) -> None:
    low = await store.save_memory(workdir, "Minor: likes emoji", "preference", 1)
    top = await store.save_memory(workdir, "The project targets Python 3.11", "fact", 5)
    mid = await store.save_memory(workdir, "Chose SQLite over Postgres", "decision", 3)
    old = await store.save_memory(workdir, "Uses black", "preference", 4)
    await store.save_memory(workdir, "Uses ruff format", "correction", 4, supersedes=old.id)
    await store.save_memory("/elsewhere", "Another project's fact", "fact", 5)
    engine = TurnEngine(store, provider, memory=MemoryConfig(max_in_context=3))
    session = await store.create_session(workdir)
    clock.advance(minutes=1)
    late = await store.save_memory(workdir, "Added after the session began", "fact", 5)

    await run_turn(engine, session, "hi", system_prompt="be brief")
    body = server.requests[-1]
    assert [m["role"] for m in body["messages"]] == ["system", "system", "user"]
    assert body["messages"][0]["content"] == "be brief"
    section = body["messages"][1]["content"]
    assert section.splitlines()[1:] == [
        "- (fact) The project targets Python 3.11",
        "- (correction) Uses ruff format",
        "- (decision) Chose SQLite over Postgres",
    ]
    for absent in (low.fact, old.fact, "Another project", late.fact):
        assert absent not in section
    assert top and mid
    # The next turn carries the same section; a memory deleted meanwhile leaves it.
    await store.delete_memory(mid.id)
    await run_turn(engine, session, "again")
    again = server.requests[-1]["messages"][1]["content"]
    assert again.splitlines()[1:] == [
        "- (fact) The project targets Python 3.11",
        "- (correction) Uses ruff format",
        "- (preference) Minor: likes emoji",
    ]


async def test_memories_off_sends_none(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str
) -> None:
    await store.save_memory(workdir, "The project targets Python 3.11", "fact", 5)
    engine = TurnEngine(store, provider, memory=MemoryConfig(enabled=False))
    session = await store.create_session(workdir)
    await run_turn(engine, session, "hi")
    assert [m["role"] for m in server.requests[-1]["messages"]] == ["user"]
    assert WATERMARK_KEY not in (await store.get_session(session.id)).metadata  # type: ignore[union-attr]


async def test_save_memories_is_all_or_nothing(store: Store, workdir: str) -> None:
    items = [
        {"fact": "good", "category": "fact", "importance": 3},
        {"fact": "bad", "category": "fact", "importance": 7},
    ]
    with pytest.raises(Exception, match="importance"):
        await store.save_memories(workdir, items)
    assert await store.get_memories(workdir) == []


# ---------------------------------------------------------------------- the app's entry points


async def test_session_closed_queues_only_sessions_chatted_in_and_only_when_on(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str
) -> None:
    engine = TurnEngine(store, provider)
    chatted = await store.create_session(workdir)
    await run_turn(engine, chatted, "we use uv")
    imported = await store.create_session(workdir)
    await store.add_message(imported.id, "user", "old")
    off = MemoryExtractor(store, provider, MemoryConfig(extraction=False))
    assert await off.session_closed(chatted.id) is None
    extractor = engine.memory_extractor()
    assert await extractor.session_closed(imported.id) is None
    pending = await extractor.session_closed(chatted.id)
    assert pending is not None and pending.session_id == chatted.id
    assert await extractor.session_closed(chatted.id) is None  # nothing new since


async def test_upkeep_queues_idle_sessions_and_processes_the_queue(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str, clock: Any
) -> None:
    engine = TurnEngine(store, provider)
    session = await store.create_session(workdir)
    result = await run_turn(engine, session, "the staging host is stg-1")
    extractor = engine.memory_extractor()
    seen: list[Any] = []
    assert (await extractor.upkeep(on_outcome=seen.append)).outcomes == []  # not idle yet
    clock.advance(minutes=31)
    server.script(
        "extraction",
        facts(fact("The staging host is stg-1.", result.user_message.id, category="fact")),
    )
    report = await extractor.upkeep(on_outcome=seen.append)
    assert report.memories_added == 1 and seen == report.outcomes
    disabled = MemoryExtractor(store, provider, MemoryConfig(enabled=False))
    await run_turn(engine, session, "more")
    clock.advance(hours=1)
    assert (await disabled.upkeep()).outcomes == []
    assert await store.list_pending_extractions() == []


async def test_sessions_imported_from_other_tools_are_never_queued_automatically(
    store: Store, server: FakeOpenAIServer, provider: OpenAICompatProvider, workdir: str, clock: Any
) -> None:
    from threadline.records import IncomingMessage, IncomingSession

    engine = TurnEngine(store, provider, memory=MemoryConfig(idle_minutes=30))
    extractor = engine.memory_extractor()
    now = store.now()
    batch = IncomingSession(
        source="codex",
        source_id="abc",
        working_dir=workdir,
        created_at=now,
        messages=[
            IncomingMessage("k1", "user", "old question", now, {}),
            IncomingMessage("k2", "assistant", "old answer", now, {}),
        ],
    )
    await store.load_history([batch])
    (imported,) = await store.list_sessions(Scope.ALL, workdir, 10)
    # Continued in threadline: a turn marks it for extraction like a session started here.
    await run_turn(engine, await store.get_session(imported.id), "a new question")
    assert WATERMARK_KEY in (await store.get_session(imported.id)).metadata  # type: ignore[union-attr]
    assert await extractor.session_closed(imported.id) is None
    clock.advance(hours=1)
    assert await extractor.queue_idle() == []
    # On demand it is extracted, with the queued range as positions in the session.
    pending = await extractor.queue_session(imported.id)
    assert pending is not None
    (status,) = await extractor.status()
    assert (status.first_position, status.last_position) == (1, 4)
    assert status.range_text == "messages 1–4"
