"""`threadline memories ...` through the real entry point, and memory upkeep after `chat`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.helpers import Result, no_controls
from fakes.openai_server import FakeOpenAIServer, request_kind
from threadline.models import Memory
from threadline.store import Store

HOSTILE_FACT = "Uses \x1b]0;pwned\x07 tabs \x1b[31m[bold]red[/]"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def provider_env(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("THREADLINE_BASE_URL", server.base_url)
    monkeypatch.setenv("THREADLINE_MODEL", "fake")
    config = tmp_path / "config.toml"
    config.write_text("[provider]\nmax_retries = 0\n")
    monkeypatch.setenv("THREADLINE_CONFIG", str(config))
    return config


@pytest.fixture
def memories(with_db: Callable[..., Any], clock: Any, workdir: str) -> dict[str, Any]:
    """A session with three messages and four memories in `workdir` (one superseded), one
    memory elsewhere."""

    async def fill(store: Store) -> dict[str, Any]:
        before = await store.create_session("/")
        for i in range(5):  # message ids and positions differ
            await store.add_message(before.id, "user", f"earlier {i}")
        session = await store.create_session(workdir)
        await store.add_message(session.id, "user", "hello")
        msg = await store.add_message(session.id, "user", "we use pytest")
        await store.add_message(session.id, "assistant", "ok")
        old = await store.save_memory(workdir, "Uses unittest", "fact", 2, session_id=session.id)
        new = await store.save_memory(
            workdir,
            "Uses pytest",
            "correction",
            4,
            session_id=session.id,
            source_message_id=msg.id,
            supersedes=old.id,
        )
        manual = await store.save_memory(
            workdir, "Deploys on Fridays", "decision", 5, is_manual=True
        )
        hostile = await store.save_memory(workdir, HOSTILE_FACT, "preference", 1)
        await store.save_memory("/", "Elsewhere", "fact", 5)
        short = (await store.short_ids([session.id]))[session.id]
        return {
            "session": session,
            "msg": msg,
            "old": old,
            "new": new,
            "manual": manual,
            "hostile": hostile,
            "short": short,
        }

    return with_db(fill)


def stored(with_db: Callable[..., Any], directory: str, superseded: bool = True) -> list[Memory]:
    async def read(store: Store) -> list[Memory]:
        return await store.get_memories(directory, include_superseded=superseded)

    return with_db(read)


# ---------------------------------------------------------------------- list


def test_list_by_importance_with_source(
    cli: Callable[..., Result], memories: dict[str, Any], workdir: str
) -> None:
    r = cli("memories", "list", "--dir", workdir)
    assert r.status == 0, r.err
    header, *rows = r.lines
    assert header.split() == ["ID", "IMP", "CATEGORY", "SOURCE", "FACT"]
    assert [row.split()[0] for row in rows] == [
        str(memories["manual"].id),
        str(memories["new"].id),
        str(memories["hostile"].id),
    ]
    assert "manual" in rows[0]
    # Its source: the session's short id and the message's position in it (not its id, 2).
    assert memories["msg"].id == 7
    assert f"{memories['short']} msg 2" in rows[1] and "#" not in rows[1]
    assert "Uses unittest" not in r.out and "Elsewhere" not in r.out
    # Text from models is shown inert.
    assert no_controls(r.out) and "^[]0;pwned^G" in r.out


def test_list_all_shows_superseded_and_json_has_provenance(
    cli: Callable[..., Result], memories: dict[str, Any], workdir: str, monkeypatch: Any
) -> None:
    monkeypatch.chdir(workdir)
    r = cli("memories", "list", "--all")
    assert f"[superseded by #{memories['new'].id}] Uses unittest" in r.out
    data = json.loads(cli("memories", "list", "--json").out)
    assert [d["fact"] for d in data] == ["Deploys on Fridays", "Uses pytest", HOSTILE_FACT]
    new = data[1]
    assert new["session_id"] == memories["session"].id
    assert new["source_message_id"] == memories["msg"].id and new["source_position"] == 2
    assert (new["category"], new["importance"], new["is_manual"]) == ("correction", 4, False)
    assert data[0]["is_manual"] is True
    assert list(new) == [
        "id",
        "fact",
        "category",
        "importance",
        "working_dir",
        "session_id",
        "source_message_id",
        "source_position",
        "is_manual",
        "superseded_by",
        "created_at",
    ]


def test_list_of_an_empty_directory(cli: Callable[..., Result], tmp_path: Path) -> None:
    r = cli("memories", "list", "--dir", str(tmp_path))
    assert r.status == 0 and r.out.startswith("no memories for")


# ---------------------------------------------------------------------- add, edit, delete


def test_add_is_manual(cli: Callable[..., Result], with_db: Any, workdir: str) -> None:
    r = cli(
        "memories",
        "add",
        "--dir",
        workdir,
        "Prefers",
        "short",
        "answers",
        "--category",
        "preference",
        "--importance",
        "4",
    )
    assert r.status == 0 and r.out.startswith("remembered #")
    (memory,) = stored(with_db, workdir)
    assert (memory.fact, memory.category, memory.importance) == (
        "Prefers short answers",
        "preference",
        4,
    )
    assert memory.is_manual and memory.session_id is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--importance", "9", "x"], "expected 1 to 5"),
        (["--category", "gossip", "x"], "invalid choice"),
        (["   "], "the fact is empty"),
    ],
)
def test_add_rejects_bad_input_in_one_line(
    cli: Callable[..., Result], with_db: Any, workdir: str, argv: list[str], message: str
) -> None:
    r = cli("memories", "add", "--dir", workdir, *argv)
    assert r.status == 2 and message in r.err
    assert r.err.startswith("threadline: error:") and r.err.count("\n") == 1
    assert stored(with_db, workdir) == []


def test_edit(cli: Callable[..., Result], memories: dict[str, Any], with_db: Any) -> None:
    mid = memories["manual"].id
    r = cli("memories", "edit", str(mid), "--fact", "Deploys on Thursdays", "--importance", "3")
    assert r.status == 0

    async def read(store: Store) -> Memory | None:
        return await store.get_memory(mid)

    memory = with_db(read)
    assert memory.fact == "Deploys on Thursdays" and memory.importance == 3
    assert memory.category == "decision"
    r = cli("memories", "edit", "99999", "--fact", "x")
    assert r.status == 1 and "no memory with id 99999" in r.err
    assert cli("memories", "edit", str(mid)).status == 2


def test_delete_reports_unknown_ids_and_deletes_the_rest(
    cli: Callable[..., Result], memories: dict[str, Any], with_db: Any, workdir: str
) -> None:
    r = cli(
        "memories", "delete", str(memories["manual"].id), "424242", f"#{memories['hostile'].id}"
    )
    assert r.status == 1
    assert "no memory with id 424242" in r.err
    assert r.out.count("forgot #") == 2
    left = {m.id for m in stored(with_db, workdir)}
    assert left == {memories["old"].id, memories["new"].id}
    assert cli("memories", "delete", "abc").status == 2


def test_clear_refuses_off_a_terminal_without_yes(
    cli: Callable[..., Result],
    memories: dict[str, Any],
    with_db: Any,
    workdir: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    r = cli("memories", "clear", "--dir", workdir)
    assert r.status == 1 and "without --yes" in r.err
    assert len(stored(with_db, workdir)) == 4
    r = cli("memories", "clear", "--dir", workdir, "--yes")
    assert r.status == 0 and "forgot 4 memories" in r.out
    assert stored(with_db, workdir) == []
    assert len(stored(with_db, "/")) == 1  # another directory's are untouched


@pytest.mark.parametrize(("answer", "cleared"), [("y\n", True), ("\n", False)])
def test_clear_asks_on_a_terminal(
    cli: Callable[..., Result],
    memories: dict[str, Any],
    with_db: Any,
    workdir: str,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    cleared: bool,
) -> None:
    stdin = io.StringIO(answer)
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    r = cli("memories", "clear", "--dir", workdir)
    assert "Forget all 4 memories" in r.err
    assert (stored(with_db, workdir) == []) is cleared
    assert r.status == (0 if cleared else 1)


# ---------------------------------------------------------------------- the queue


def test_status_shows_pending_and_failed_with_attempts_and_errors(
    cli: Callable[..., Result], with_db: Any, workdir: str, clock: Any
) -> None:
    assert cli("memories", "status").out == "no memory extractions queued\n"

    async def fill(store: Store) -> None:
        for text in ("one", "two"):
            s = await store.create_session(workdir)
            await store.add_message(s.id, "user", text)
            await store.queue_extraction(s.id)
        first = (await store.list_pending_extractions())[0]
        await store.update_pending_extraction(
            first.id, attempt_count=3, error_message="the model's reply is not JSON: 'hmm'"
        )

    with_db(fill)
    r = cli("memories", "status")
    assert r.status == 0
    header, *rows = r.lines[:3]
    assert header.split()[:5] == ["SESSION", "MESSAGES", "STATE", "TRIES", "NEXT"]
    failed = next(row for row in rows if " failed " in row)
    assert " 3 " in failed and "not JSON" in failed
    assert any(" due " in row for row in rows)
    assert "--retry-failed" in r.out
    data = json.loads(cli("memories", "status", "--json").out)
    assert sorted(d["state"] for d in data) == ["due", "failed"]
    # Each row's messages by position in its session (as people see them), ids kept in JSON.
    assert all(" 1–1 " in row for row in rows)
    assert {(d["from_position"], d["to_position"]) for d in data} == {(1, 1)}
    assert sorted(d["to_message_id"] for d in data) == [1, 2]
    assert {d["attempt_count"] for d in data} == {0, 3}


def test_process_extracts_and_reports(
    cli: Callable[..., Result],
    with_db: Any,
    workdir: str,
    server: FakeOpenAIServer,
    provider_env: Path,
) -> None:
    async def fill(store: Store) -> int:
        s = await store.create_session(workdir)
        msg = await store.add_message(s.id, "user", "remember: we ship on Mondays")
        await store.queue_extraction(s.id)
        return msg.id

    msg_id = with_db(fill)
    server.script(
        "extraction",
        json.dumps(
            [
                {
                    "fact": "Ships on Mondays.",
                    "category": "decision",
                    "importance": 4,
                    "source_message_id": msg_id,
                    "supersedes": None,
                }
            ]
        ),
    )
    r = cli("memories", "process")
    assert r.status == 0, r.err
    assert "extracted 1 memory from 1 session" in r.out
    (memory,) = stored(with_db, workdir)
    assert memory.fact == "Ships on Mondays." and memory.source_message_id == msg_id
    assert cli("memories", "status").out == "no memory extractions queued\n"


def test_process_failure_exits_1_and_is_kept_for_retry(
    cli: Callable[..., Result],
    with_db: Any,
    workdir: str,
    server: FakeOpenAIServer,
    provider_env: Path,
) -> None:
    async def fill(store: Store) -> None:
        s = await store.create_session(workdir)
        await store.add_message(s.id, "user", "hi")
        await store.queue_extraction(s.id)

    with_db(fill)
    server.script("extraction", "no JSON here, sorry")
    r = cli("memories", "process")
    assert r.status == 1 and "failed, retrying at " in r.out and "not JSON" in r.out
    assert "Traceback" not in r.err
    data = json.loads(cli("memories", "status", "--json").out)
    assert data[0]["state"] == "retrying" and data[0]["attempt_count"] == 1
    # Not due again yet: --quiet prints nothing.
    r = cli("memories", "process", "--quiet")
    assert (r.status, r.out, r.err) == (0, "", "")

    # Given up on: --retry-failed gives it new attempts now.
    async def give_up(store: Store) -> None:
        (row,) = await store.list_pending_extractions()
        await store.update_pending_extraction(row.id, attempt_count=3)

    with_db(give_up)
    assert cli("memories", "process").out.startswith("extracted 0 memories from 0 sessions")
    r = cli("memories", "process", "--retry-failed")
    assert r.status == 0 and "extracted 0 memories from 1 session" in r.out
    assert cli("memories", "status").out == "no memory extractions queued\n"


def test_process_without_a_provider_says_how_to_configure(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = cli("memories", "process")
    assert r.status == 1 and "no model provider configured" in r.err
    assert r.err.count("\n") == 1


def test_extract_one_session_now(
    cli: Callable[..., Result],
    with_db: Any,
    workdir: str,
    server: FakeOpenAIServer,
    provider_env: Path,
) -> None:
    async def fill(store: Store) -> str:
        s = await store.create_session(workdir)
        await store.add_message(s.id, "user", "imported history")
        return s.id

    session_id = with_db(fill)
    r = cli("memories", "extract", session_id[:13])
    assert r.status == 0, r.err
    assert "extracted 0 memories from 1 session" in r.out
    assert "imported history" in server.requests_of("extraction")[0]["messages"][1]["content"]
    r = cli("memories", "extract", session_id[:13])
    assert r.out == "nothing new to extract from that session\n"
    assert cli("memories", "extract", "ffff").status == 1


def test_memories_commands_never_import_textual(db_path: Path, workdir: str) -> None:
    code = (
        "import sys; from threadline.cli import main;"
        f"main(['memories', 'list', '--dir', {workdir!r}, '--db', {str(db_path)!r}]);"
        f"main(['memories', 'status', '--db', {str(db_path)!r}]);"
        "sys.exit(1 if 'textual' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------- after `threadline chat`


def test_chat_leaves_extraction_of_idle_sessions_to_a_background_process(
    server: FakeOpenAIServer,
    provider_env: Path,
    db_path: Path,
    workdir: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle session chatted in earlier gets its memories from a detached process that
    `threadline chat` starts after the reply; chat itself returns without waiting for it."""
    import asyncio
    from datetime import UTC, datetime

    from threadline.chat.openai_compat import OpenAICompatProvider
    from threadline.chat.turns import TurnEngine, run_turn
    from threadline.config import ProviderSettings

    class Earlier:
        def __call__(self) -> datetime:
            return datetime.now(UTC) - timedelta(hours=2)

    async def earlier_session() -> int:
        store = await Store.open(db_path, clock=Earlier())
        provider = OpenAICompatProvider(
            ProviderSettings(
                name="x",
                base_url=server.base_url,
                model="fake",
                connect_timeout=2,
                read_timeout=10,
                max_retries=0,
            )
        )
        try:
            session = await store.create_session(workdir)
            result = await run_turn(TurnEngine(store, provider), session, "we deploy with fly")
            return result.user_message.id
        finally:
            await provider.aclose()
            await store.close()

    source = asyncio.run(earlier_session())
    server.script(
        "extraction",
        json.dumps(
            [
                {
                    "fact": "Deploys with fly.io.",
                    "category": "fact",
                    "importance": 3,
                    "source_message_id": source,
                    "supersedes": None,
                }
            ]
        ),
    )
    # The extraction request is held in the server until chat has returned: a chat that waited
    # for it would never return.
    held = threading.Event()
    server.on_request = lambda body: held.wait() if request_kind(body) == "extraction" else None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "threadline", "chat", "--new", "--db", str(db_path), "hello"],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=120,
        )
    finally:
        held.set()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "You said: hello\n"

    async def wait_for_memory() -> list[Memory]:
        async with await Store.open(db_path) as store:
            for _ in range(2400):  # the background process writes it: poll the file
                found = await store.get_memories(workdir)
                if found and not await store.list_pending_extractions():
                    return found
                await asyncio.sleep(0.05)
        return []  # (a broken background process: fail rather than hang)

    (memory,) = asyncio.run(wait_for_memory())
    assert memory.fact == "Deploys with fly.io." and memory.source_message_id == source
