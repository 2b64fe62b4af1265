"""Messages: add with the session's counters, streaming checkpoints, reading, compacting, text."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.store import NotFoundError, Store, StoreError


async def test_add_message_moves_session_counters(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    when = clock.advance(minutes=2)
    m = await store.add_message(
        s.id,
        "assistant",
        "hi",
        input_tokens=10,
        output_tokens=3,
        model="m",
        stop_reason="stop",
        response_ms=420,
    )
    assert (m.role, m.content, m.created_at, m.model, m.stop_reason, m.response_ms) == (
        "assistant",
        "hi",
        when,
        "m",
        "stop",
        420,
    )
    assert m.complete and m.payload is None
    assert await store.get_message(m.id) == m
    await store.add_message(s.id, "user", "more", input_tokens=5)
    got = await store.get_session(s.id)
    assert got is not None
    assert got.message_count == 2
    assert (got.total_input_tokens, got.total_output_tokens) == (15, 3)
    assert got.updated_at == when


async def test_add_message_explicit_created_at_and_ids_increase(
    store: Store, clock: FakeClock
) -> None:
    s = await store.create_session("/tmp")
    earlier = clock() - timedelta(days=3)
    a = await store.add_message(s.id, "user", "imported", created_at=earlier)
    b = await store.add_message(s.id, "assistant", "reply")
    assert a.created_at == earlier and b.id > a.id


async def test_add_message_refuses_bad_input(store: Store) -> None:
    s = await store.create_session("/tmp")
    with pytest.raises(StoreError, match="invalid role"):
        await store.add_message(s.id, "wizard", "x")
    with pytest.raises(StoreError, match="must be text"):
        await store.add_message(s.id, "user", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.add_message("01234567-89ab-7def-8123-456789abcdef", "user", "x")
    with pytest.raises(StoreError, match="not JSON"):
        await store.add_message(s.id, "user", "x", payload={"n": float("nan")})
    with pytest.raises(StoreError, match="not JSON"):
        await store.add_message(s.id, "user", "x", payload={"b": b"raw"})
    await store.delete_session(s.id)
    with pytest.raises(StoreError, match="trash"):
        await store.add_message(s.id, "user", "x")
    assert await store.count_messages(s.id) == 0


async def test_get_messages_paging(store: Store) -> None:
    s = await store.create_session("/tmp")
    other = await store.create_session("/tmp")
    ids = []
    for i in range(10):
        ids.append((await store.add_message(s.id, "user", f"m{i}")).id)
        await store.add_message(other.id, "user", f"other {i}")
    assert [m.id for m in await store.get_messages(s.id)] == ids
    assert [m.id for m in await store.get_messages(s.id, limit=3)] == ids[-3:]
    assert [m.id for m in await store.get_messages(s.id, before_id=ids[5], limit=3)] == ids[2:5]
    assert [m.id for m in await store.get_messages(s.id, after_id=ids[5], limit=3)] == ids[6:9]
    assert [m.id for m in await store.get_messages(s.id, after_id=ids[7])] == ids[8:]
    assert [m.id for m in await store.get_messages(s.id, after_id=ids[1], before_id=ids[4])] == (
        ids[2:4]
    )
    assert await store.count_messages(s.id) == 10


async def test_get_messages_since(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    await store.add_message(s.id, "user", "old")
    mark = clock.advance(minutes=5)
    new = await store.add_message(s.id, "user", "new")
    assert [m.id for m in await store.get_messages_since(s.id, mark)] == [new.id]


async def test_delete_messages_before(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    ms = [
        await store.add_message(s.id, "user", f"compactme {i}", input_tokens=1, output_tokens=2)
        for i in range(6)
    ]
    mem = await store.save_memory(workdir, "fact", "fact", 3, source_message_id=ms[0].id)
    assert await store.delete_messages_before(s.id, ms[4].id) == 4
    assert [m.id for m in await store.get_messages(s.id)] == [ms[4].id, ms[5].id]
    got = await store.get_session(s.id)
    assert got is not None
    assert (got.message_count, got.total_input_tokens, got.total_output_tokens) == (2, 2, 4)
    assert {h.message_id for h in await store.search("compactme")} == {ms[4].id, ms[5].id}
    kept = await store.get_memory(mem.id)
    assert kept is not None and kept.source_message_id is None and kept.fact == "fact"


async def test_streaming_checkpoints_and_finalise(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "assistant", "", complete=False)
    assert not m.complete
    for i in range(5):
        clock.advance(seconds=1)
        m = await store.update_message(m.id, content="part " * (i + 1))
        assert not m.complete
    # Well within the heartbeat, the session is fine.
    got = await store.get_session(s.id)
    assert got is not None and got.status == "active"
    clock.advance(seconds=1)
    final = await store.update_message(
        m.id,
        content="the whole reply",
        complete=True,
        stop_reason="stop",
        input_tokens=100,
        output_tokens=20,
        response_ms=6000,
        payload={"role": "assistant", "content": "the whole reply"},
        model="m",
    )
    assert final.complete and final.content == "the whole reply" and final.model == "m"
    got = await store.get_session(s.id)
    assert got is not None
    assert (got.total_input_tokens, got.total_output_tokens) == (100, 20)
    assert got.message_count == 1
    # Search sees the final text, not the checkpoints.
    assert [h.message_id for h in await store.search("whole")] == [m.id]
    assert await store.search("part") == []
    # A finished reply leaves no heartbeat: hours later the session is not "crashed".
    clock.advance(hours=2)
    got = await store.get_session(s.id)
    assert got is not None and got.status == "active"
    # Token corrections keep the totals right.
    await store.update_message(m.id, output_tokens=25)
    got = await store.get_session(s.id)
    assert got is not None and got.total_output_tokens == 25
    with pytest.raises(TypeError):
        await store.update_message(m.id, **{"role": "user"})  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.update_message(987654, content="x")


async def test_update_of_finished_message_sets_no_heartbeat(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "assistant", "done")
    await store.update_message(m.id, content="done, edited")
    clock.advance(minutes=5)
    got = await store.get_session(s.id)
    assert got is not None and got.status == "active"


async def test_stale_heartbeat_is_crashed_then_persisted_on_open(
    db_path: Path, clock: FakeClock
) -> None:
    store = await Store.open(db_path, clock=clock)
    s = await store.create_session("/tmp")
    await store.add_message(s.id, "user", "question")
    partial = await store.add_message(s.id, "assistant", "half an ans", complete=False)
    clock.advance(seconds=20)
    got = await store.get_session(s.id)
    assert got is not None and got.status == "active"  # 20 s: still streaming
    clock.advance(seconds=11)
    # 31 s without a checkpoint: the writer is taken to be dead.
    got = await store.get_session(s.id)
    assert got is not None and got.status == "crashed"
    listed = await store.list_sessions("all")
    assert listed[0].status == "crashed"
    await store.close()  # the process "dies"; nothing finalised the message
    async with await Store.open(db_path, clock=clock) as reopened:
        got = await reopened.get_session(s.id)
        assert got is not None and got.status == "crashed"
        msg = await reopened.get_message(partial.id)
        assert msg is not None
        assert msg.content == "half an ans"  # the text streamed so far is kept
        assert not msg.complete and msg.stop_reason == "interrupted"
        # Persisted: even a clock back in time (no stale heartbeat to compute) shows crashed.
        assert await reopened.recover_interrupted() == []
        # A new message revives the session.
        await reopened.add_message(s.id, "user", "try again")
        got = await reopened.get_session(s.id)
        assert got is not None and got.status == "active"


async def test_fresh_heartbeat_is_not_marked_on_open(db_path: Path, clock: FakeClock) -> None:
    a = await Store.open(db_path, clock=clock)
    s = await a.create_session("/tmp")
    m = await a.add_message(s.id, "assistant", "streaming", complete=False)
    clock.advance(seconds=5)
    async with await Store.open(db_path, clock=clock) as b:  # another process opens meanwhile
        got = await b.get_session(s.id)
        assert got is not None and got.status == "active"
        msg = await b.get_message(m.id)
        assert msg is not None and msg.stop_reason is None
    await a.close()


async def test_recover_interrupted(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "assistant", "x", complete=False)
    clock.advance(minutes=1)
    assert await store.recover_interrupted() == [s.id]
    msg = await store.get_message(m.id)
    assert msg is not None and msg.stop_reason == "interrupted"


# ---------------------------------------------------------------------------- payloads


OPENAI_TOOL_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_abc123",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location": "Paris, FR", "unit": "celsius"}',
            },
        },
        {
            "id": "call_def456",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "/etc/ho\\u00e9sts"}'},
        },
    ],
    "refusal": None,
}

PYDANTIC_AI_MESSAGES = [
    {
        "kind": "request",
        "parts": [
            {
                "part_kind": "system-prompt",
                "content": "Be terse.",
                "timestamp": "2026-11-23T09:00:00Z",
                "dynamic_ref": None,
            },
            {
                "part_kind": "user-prompt",
                "content": ["Describe this", {"kind": "image-url", "url": "https://x/y.png"}],
                "timestamp": "2026-11-23T09:00:00.123456Z",
            },
        ],
        "instructions": None,
    },
    {
        "kind": "response",
        "parts": [
            {"part_kind": "text", "content": "It is a cat 🐈."},
            {
                "part_kind": "tool-call",
                "tool_name": "lookup",
                "args": {"q": "cat", "n": 3, "exact": True, "score": 0.25, "none": None},
                "tool_call_id": "tc_1",
            },
        ],
        "usage": {"requests": 1, "input_tokens": 12, "output_tokens": 7, "details": {}},
        "model_name": "gpt-4o",
        "timestamp": "2026-11-23T09:00:01Z",
        "vendor_id": None,
    },
]


@pytest.mark.parametrize(
    "payload",
    [
        OPENAI_TOOL_CALL,
        PYDANTIC_AI_MESSAGES,
        {"big": 2**62, "neg": -1, "float": 1.5e-300, "nested": [[[]], {}], "": ""},
        "just a string",
        0,
        False,
        [None],
    ],
)
async def test_payload_round_trip(store: Store, payload: object) -> None:
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "assistant", "x", payload=payload)
    back = await store.get_message(m.id)
    assert back is not None
    assert back.payload == payload
    assert json.dumps(back.payload, sort_keys=True) == json.dumps(payload, sort_keys=True)
    assert (await store.get_messages(s.id))[0].payload == payload


async def test_payload_updated_and_cleared(store: Store) -> None:
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "assistant", "x", payload={"a": 1})
    assert (await store.update_message(m.id, payload=PYDANTIC_AI_MESSAGES)).payload == (
        PYDANTIC_AI_MESSAGES
    )
    assert (await store.update_message(m.id, payload=None)).payload is None


async def test_payload_with_lone_surrogate_round_trips(store: Store) -> None:
    s = await store.create_session("/tmp")
    payload = {"text": "half a pair: \ud83d end"}
    m = await store.add_message(s.id, "assistant", "x", payload=payload)
    back = await store.get_message(m.id)
    assert back is not None and back.payload == payload


# ---------------------------------------------------------------------------- text


UNICODE_SAMPLES = [
    "emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇫🇷",
    "RTL: שלום עולם مرحبا بالعالم \u202eevil\u202c",
    "NUL inside: a\x00b and at the end\x00",
    "combining: e\u0301 vs é, zero-width\u200bjoiner",
    "CJK 漢字かなカナ 한국어",
    "controls: \x1b[31mred\x1b[0m \x07 bell \r\n\t",
    "astral: 𝕳𝖊𝖑𝖑𝖔 𐍈",
    "",
]


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
async def test_unicode_round_trip(store: Store, text: str) -> None:
    s = await store.create_session("/tmp", title=text or None)
    m = await store.add_message(s.id, "user", text)
    back = await store.get_message(m.id)
    assert back is not None and back.content == text
    assert (await store.get_messages(s.id))[0].content == text
    timeline = await store.timeline(s.id)
    assert timeline[0].content == text


async def test_search_finds_unicode_words(store: Store) -> None:
    s = await store.create_session("/tmp")
    m1 = await store.add_message(s.id, "user", "שלום עולם")
    m2 = await store.add_message(s.id, "user", "Crème brûlée recipe")
    await store.add_message(s.id, "user", "a\x00hidden word after NUL")
    assert [h.message_id for h in await store.search("עולם")] == [m1.id]
    # remove_diacritics: "creme" finds "Crème".
    assert [h.message_id for h in await store.search("creme brulee")] == [m2.id]


async def test_lone_surrogate_content_is_refused_cleanly(store: Store) -> None:
    s = await store.create_session("/tmp")
    await store.add_message(s.id, "user", "before")
    with pytest.raises(StoreError, match="not valid Unicode") as info:
        await store.add_message(s.id, "user", "broken \udc80 text")
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="not valid Unicode"):
        await store.create_session("/tmp", title="bad \ud800")
    m = await store.add_message(s.id, "assistant", "", complete=False)
    with pytest.raises(StoreError, match="not valid Unicode"):
        await store.update_message(m.id, content="x\udfff")
    # Nothing half-written: the session still has exactly its two messages and works on.
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 2
    assert [x.content for x in await store.get_messages(s.id)] == ["before", ""]
    await store.add_message(s.id, "user", "after")
    assert await store.count_messages(s.id) == 3


async def test_one_megabyte_content_round_trip(store: Store) -> None:
    s = await store.create_session("/tmp")
    line = "0123456789abcdef ünïcödé 🎉 lorem ipsum dolor sit amet\n"
    big = (line * (1_048_576 // len(line) + 1))[:1_048_576] + " needleword"
    assert len(big) > 1_000_000
    m = await store.add_message(s.id, "assistant", big)
    back = await store.get_message(m.id)
    assert back is not None and back.content == big
    hits = await store.search("needleword")
    assert [h.message_id for h in hits] == [m.id]
    assert len(hits[0].snippet) < 500  # a snippet, not the whole message
    two = big + big
    assert (await store.update_message(m.id, content=two)).content == two
