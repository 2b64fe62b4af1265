"""`threadline sessions summarize|compact` through the real entry point."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.helpers import Result
from fakes.openai_server import FakeOpenAIServer
from threadline.models import Message, Summary
from threadline.store import Store


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def provider_env(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("THREADLINE_BASE_URL", server.base_url)
    monkeypatch.setenv("THREADLINE_MODEL", "fake")
    config = tmp_path / "config.toml"
    config.write_text("[provider]\nmax_retries = 0\n[context]\nkeep_recent_messages = 4\n")
    monkeypatch.setenv("THREADLINE_CONFIG", str(config))
    return config


@pytest.fixture
def session_id(with_db: Callable[..., Any], workdir: str) -> str:
    """Ten messages, whose ids (21..30) are not their positions (1..10): people see positions."""

    async def fill(store: Store) -> str:
        other = await store.create_session(workdir)
        for i in range(20):
            await store.add_message(other.id, "user", f"elsewhere {i}")
        s = await store.create_session(workdir)
        for i in range(10):
            await store.add_message(s.id, "user" if i % 2 == 0 else "assistant", f"message {i}")
        return s.id

    return with_db(fill)


def state(with_db: Callable[..., Any], session_id: str) -> tuple[list[Message], list[Summary]]:
    async def read(store: Store) -> tuple[list[Message], list[Summary]]:
        return await store.get_messages(session_id), await store.list_summaries(session_id)

    return with_db(read)


def test_summarize_covers_all_but_the_kept_messages(
    cli: Callable[..., Result],
    with_db: Any,
    session_id: str,
    server: FakeOpenAIServer,
    provider_env: Path,
) -> None:
    messages, _ = state(with_db, session_id)
    r = cli("sessions", "summarize", session_id)
    assert r.status == 0, r.err
    first, last = messages[0].id, messages[5].id
    assert first == 21  # ids and positions differ
    assert "summarised messages 1–6 of " in r.out and "#" not in r.out
    _, summaries = state(with_db, session_id)
    assert [(s.first_message_id, s.last_message_id) for s in summaries] == [(first, last)]
    # The request numbered the messages by position (the fake server echoes the numbers).
    assert summaries[0].content == "Summary of messages #1-#6."
    # Nothing new: no request, a clear line.
    r = cli("sessions", "summarize", session_id)
    assert r.status == 0 and r.out.startswith("nothing to summarise")
    assert len(server.requests) == 1
    # --keep overrides; --model picks the model.
    r = cli("sessions", "summarize", session_id, "--keep", "1", "--model", "other")
    assert r.status == 0 and server.requests[-1]["model"] == "other"
    assert state(with_db, session_id)[1][-1].last_message_id == messages[8].id


def test_summarize_errors_are_one_line(
    cli: Callable[..., Result],
    with_db: Any,
    session_id: str,
    server: FakeOpenAIServer,
    provider_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.script("summary", 500)
    r = cli("sessions", "summarize", session_id)
    assert r.status == 1 and "HTTP 500" in r.err and r.err.count("\n") == 1
    assert state(with_db, session_id)[1] == []
    assert cli("sessions", "summarize", "ffffffff").status == 1
    monkeypatch.delenv("THREADLINE_BASE_URL")
    r = cli("sessions", "summarize", session_id)
    assert r.status == 1 and "no provider URL configured" in r.err


def test_compact_removes_exactly_what_the_summary_covers(
    cli: Callable[..., Result],
    with_db: Any,
    session_id: str,
    provider_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = cli("sessions", "compact", session_id, "--yes")
    assert r.status == 1 and "has no summary yet" in r.err
    messages, _ = state(with_db, session_id)
    cli("sessions", "summarize", session_id)
    # Off a terminal: refused without --yes, nothing removed.
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    r = cli("sessions", "compact", session_id)
    assert r.status == 1 and "without --yes" in r.err
    assert len(state(with_db, session_id)[0]) == 10
    r = cli("sessions", "compact", session_id, "--yes")
    assert r.status == 0, r.err
    assert r.out.startswith("removed 6 messages from ")
    assert r.out.endswith("the summary of messages 1–6 stands for them\n")
    left, summaries = state(with_db, session_id)
    assert [m.id for m in left] == [m.id for m in messages[6:]]
    assert len(summaries) == 1
    r = cli("sessions", "compact", session_id, "--yes")
    assert r.status == 0 and r.out.startswith("nothing to compact")
    # The transcript still shows the summary where the messages were.
    # Its messages are gone, so it no longer has positions; the rest are numbered from 1.
    shown = cli("sessions", "show", session_id).out
    assert "── summary of the earlier messages (since compacted) · " in shown
    assert "── 1 · user · " in shown and "message 6" in shown.split("── 1 · user")[1]
    assert "── #" not in shown


@pytest.mark.parametrize(("answer", "removed"), [("yes\n", True), ("n\n", False)])
def test_compact_asks_on_a_terminal(
    cli: Callable[..., Result],
    with_db: Any,
    session_id: str,
    provider_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    removed: bool,
) -> None:
    cli("sessions", "summarize", session_id)
    stdin = io.StringIO(answer)
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    r = cli("sessions", "compact", session_id)
    assert "Remove 6 messages of" in r.err and "for good?" in r.err
    assert len(state(with_db, session_id)[0]) == (4 if removed else 10)
    assert r.status == (0 if removed else 1)


def test_chat_says_when_it_summarises_and_warns_when_it_cannot(
    cli: Callable[..., Result],
    with_db: Any,
    workdir: str,
    server: FakeOpenAIServer,
    provider_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider_env.write_text(
        "[provider]\nmax_retries = 0\n[context]\nmax_context_tokens = 600\n"
        "keep_recent_messages = 2\n"
    )
    monkeypatch.chdir(workdir)

    async def fill(store: Store) -> str:
        s = await store.create_session(workdir)
        for i in range(8):
            await store.add_message(s.id, "user" if i % 2 == 0 else "assistant", "w " * 200)
        return s.id

    session_id = with_db(fill)
    server.script("summary", 503)
    r = cli("chat", "--session", session_id, "first")
    assert r.status == 0 and r.out == "You said: first\n"
    assert "threadline: warning: could not summarise the earlier messages" in r.err
    assert state(with_db, session_id)[1] == []
    r = cli("chat", "--session", session_id, "second")
    assert r.status == 0 and r.out == "You said: second\n"
    assert "summarising the earlier messages…" in r.err
    assert "summarised messages 1–2: " in r.err and "warning" not in r.err
    assert len(state(with_db, session_id)[1]) >= 1
