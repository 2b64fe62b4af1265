"""Context assembly: system prompt, latest summary, the newest messages that fit the budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from threadline.chat import context as ctx
from threadline.chat.context import (
    MESSAGE_OVERHEAD,
    SUMMARY_PREFIX,
    build_context,
    estimate_tokens,
    load_context,
    message_tokens,
)
from threadline.chat.provider import ChatMessage
from threadline.models import Message, Summary
from threadline.store import Store

WHEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def msg(id: int, role: str, content: str, **kw: Any) -> Message:
    return Message(id=id, session_id="s", role=role, content=content, created_at=WHEN, **kw)


def summary(last: int, content: str = "they talked about cats") -> Summary:
    return Summary(
        id=7,
        session_id="s",
        content=content,
        first_message_id=1,
        last_message_id=last,
        created_at=WHEN,
    )


def test_estimate_is_a_quarter_of_the_characters_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100
    assert message_tokens(msg(1, "user", "x" * 40)) == 10 + MESSAGE_OVERHEAD


def test_finished_replies_count_their_real_tokens() -> None:
    assert message_tokens(msg(1, "assistant", "x" * 400, output_tokens=7)) == 7 + MESSAGE_OVERHEAD
    partial = msg(1, "assistant", "x" * 400, output_tokens=7, complete=False)
    assert message_tokens(partial) == 100 + MESSAGE_OVERHEAD


def test_system_prompt_then_messages_in_order() -> None:
    history = [msg(1, "user", "hi"), msg(2, "assistant", "hello"), msg(3, "user", "again")]
    window = build_context(history, system_prompt="be brief", summary=None, max_tokens=1000)
    assert window.messages == [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "hello"),
        ChatMessage("user", "again"),
    ]
    assert not window.truncated
    assert window.first_message_id == 1
    assert window.estimated_tokens == sum(estimate_tokens(t) + 4 for t in ("be brief", "hi")) + sum(
        estimate_tokens(t) + 4 for t in ("hello", "again")
    )


def test_the_latest_summary_stands_in_for_the_messages_it_covers() -> None:
    history = [msg(i, "user" if i % 2 else "assistant", f"m{i}") for i in range(1, 7)]
    window = build_context(history, system_prompt=None, summary=summary(4), max_tokens=1000)
    assert window.messages == [
        ChatMessage("system", SUMMARY_PREFIX + "they talked about cats"),
        ChatMessage("user", "m5"),
        ChatMessage("assistant", "m6"),
    ]
    assert window.summary_id == 7
    assert window.first_message_id == 5


def test_oldest_messages_are_dropped_first_to_fit() -> None:
    # Each message: 40 chars = 10 tokens + 4 overhead = 14.
    history = [msg(i, "user" if i % 2 else "assistant", chr(96 + i) * 40) for i in range(1, 11)]
    window = build_context(history, system_prompt=None, summary=None, max_tokens=14 * 4 + 13)
    assert [m.content[0] for m in window.messages] == ["g", "h", "i", "j"]
    assert window.truncated
    assert window.first_message_id == 7
    assert window.estimated_tokens == 56


def test_system_summary_and_the_newest_message_are_always_kept() -> None:
    history = [msg(1, "user", "old"), msg(2, "assistant", "reply"), msg(3, "user", "x" * 4000)]
    window = build_context(history, system_prompt="sys", summary=None, max_tokens=256)
    assert window.messages == [ChatMessage("system", "sys"), ChatMessage("user", "x" * 4000)]
    assert window.truncated


def test_errors_empty_tool_and_streaming_messages_are_left_out_partials_kept() -> None:
    history = [
        msg(1, "user", "q1"),
        msg(2, "assistant", "Error: boom", stop_reason="error", complete=False),
        msg(3, "user", "q1 again"),
        msg(4, "assistant", "half an ans", stop_reason="cancelled", complete=False),
        msg(5, "tool", "{}"),
        msg(6, "assistant", "   "),
        msg(7, "assistant", "still streaming", complete=False),
        msg(8, "assistant", "cut by a crash", stop_reason="interrupted", complete=False),
        msg(9, "user", "q2"),
    ]
    window = build_context(history, system_prompt=None, summary=None, max_tokens=1000)
    assert [m.content for m in window.messages] == [
        "q1",
        "q1 again",
        "half an ans",
        "cut by a crash",
        "q2",
    ]


def test_extra_system_text_follows_the_prompt() -> None:
    window = build_context(
        [msg(1, "user", "hi")],
        system_prompt="sys",
        summary=None,
        max_tokens=1000,
        extra_system=["Facts: likes tea"],
    )
    assert [m.content for m in window.messages] == ["sys", "Facts: likes tea", "hi"]


async def _session_with(store: Store, workdir: str, n: int, size: int = 40) -> tuple[Any, int]:
    session = await store.create_session(workdir, system_prompt="sys")
    last = 0
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        m = await store.add_message(session.id, role, f"{i:05d}" + "x" * (size - 5))
        last = m.id
    return await store.get_session(session.id), last


async def test_load_context_matches_the_pure_function_over_the_whole_session(
    store: Store, workdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "PAGE_SIZE", 16)
    session, last = await _session_with(store, workdir, 101)
    await store.save_summary(session.id, "the start", 1, 10)
    every = await store.get_messages(session.id)
    for budget in (300, 700, 100_000):
        loaded = await load_context(store, session, upto_id=last, max_tokens=budget)
        expected = build_context(
            every,
            system_prompt="sys",
            summary=await store.latest_summary(session.id),
            max_tokens=budget,
        )
        assert loaded == expected
    assert loaded.first_message_id == 11
    assert loaded.messages[1].content == SUMMARY_PREFIX + "the start"


async def test_load_context_reads_only_what_fits(
    store: Store, workdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "PAGE_SIZE", 10)
    session, last = await _session_with(store, workdir, 200)
    calls: list[Any] = []
    real = store.get_messages

    async def spy(*args: Any, **kwargs: Any) -> list[Message]:
        calls.append(kwargs)
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "get_messages", spy)
    # 40 chars = 14 tokens each; after the system prompt (5), 300 tokens hold 21 messages:
    # three pages of ten, not the twenty pages of the session.
    window = await load_context(store, session, upto_id=last, max_tokens=300)
    assert len(calls) == 3
    assert len(window.messages) - 1 == 21
    assert window.truncated
    assert window.messages[-1].content.startswith("00199")


async def test_load_context_stops_at_the_message_being_answered(store: Store, workdir: str) -> None:
    session, _ = await _session_with(store, workdir, 4)
    first_three = await store.get_messages(session.id, after_id=0, limit=3)
    window = await load_context(store, session, upto_id=first_three[-1].id, max_tokens=1000)
    assert [m.content[:5] for m in window.messages[1:]] == ["00000", "00001", "00002"]
