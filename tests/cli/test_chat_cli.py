"""`threadline chat`: every flag through the real entry point, and what a crash leaves behind."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAIServer
from fakes.timers import KEEPER, count_keeper_timer, current_task_name
from threadline.cli import main
from threadline.models import Message, Session
from threadline.store import Store
from threadline.store.connection import Database


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def env(
    server: FakeOpenAIServer, workdir: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A configured provider (by environment), the cwd in a project dir; returns the db."""
    monkeypatch.setenv("THREADLINE_BASE_URL", server.base_url)
    monkeypatch.setenv("THREADLINE_MODEL", "fake")
    monkeypatch.setenv("THREADLINE_DB", str(db_path))
    # One retry keeps the error tests quick; retries themselves are tested with the provider.
    config = db_path.parent.parent / "test-config.toml"
    config.write_text("[provider]\nmax_retries = 1\n")
    monkeypatch.setenv("THREADLINE_CONFIG", str(config))
    monkeypatch.chdir(workdir)
    return db_path


class FixedClock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


def read_db(db: Path, clock: Any = None) -> tuple[list[Session], dict[str, list[Message]]]:
    """Every session (newest first) and its messages, through the store."""

    async def go() -> tuple[list[Session], dict[str, list[Message]]]:
        async with await Store.open(db, clock=clock) as store:
            rows = await store.list_sessions("all", limit=None)
            sessions = [await store.get_session(r.id) for r in rows]
            messages = {r.id: await store.get_messages(r.id) for r in rows}
            return [s for s in sessions if s is not None], messages

    return asyncio.run(go())


def chat(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["chat", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- the ordinary turn


def test_streams_the_reply_to_stdout_and_the_session_to_stderr(
    env: Path, capsys: pytest.CaptureFixture[str], workdir: str
) -> None:
    code, out, err = chat(capsys, "hello", "world")
    assert code == 0
    assert out == "You said: hello world\n"
    sessions, messages = read_db(env)
    (session,) = sessions
    assert err.startswith("session ") and err.endswith(" (new)\n")
    short = err.split()[1]
    # The short id is the start of the id's random last group (see the next test).
    assert len(short) == 8 and session.id.rsplit("-", 1)[1].startswith(short)
    assert session.working_dir == workdir
    assert session.title == "hello world"
    assert session.model == "fake" and session.provider == "openai-compatible"
    user, reply = messages[session.id]
    assert (user.content, reply.content, reply.complete) == (
        "hello world",
        "You said: hello world",
        True,
    )
    assert reply.output_tokens == 4


def test_a_second_message_continues_the_session(
    env: Path, capsys: pytest.CaptureFixture[str], server: FakeOpenAIServer
) -> None:
    chat(capsys, "one")
    code, out, err = chat(capsys, "two")
    assert code == 0 and "(new)" not in err
    sessions, messages = read_db(env)
    assert len(sessions) == 1
    assert [m.content for m in messages[sessions[0].id]] == [
        "one",
        "You said: one",
        "two",
        "You said: two",
    ]
    assert len(server.requests[-1]["messages"]) == 3


def test_message_from_stdin(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("line one\nline two\n"))
    code, out, _ = chat(capsys, "-")
    assert code == 0 and out == "You said: line one\nline two\n"
    sessions, messages = read_db(env)
    assert messages[sessions[0].id][0].content == "line one\nline two"
    assert sessions[0].title == "line one"


def test_an_empty_message_is_a_usage_error(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, out, err = chat(capsys, "-")
    assert code == 2 and out == ""
    assert err == "threadline: error: the message is empty\n"
    assert not env.exists()


# ---------------------------------------------------------------------- choosing the session


def test_new_starts_another_session(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat(capsys, "one")
    code, _, err = chat(capsys, "--new", "two")
    assert code == 0 and err.endswith("(new)\n")
    sessions, _ = read_db(env)
    assert len(sessions) == 2


def test_the_printed_short_id_keeps_working_as_sessions_pile_up(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chat --new` prints `session 1a2b3c4d (new)`; hundreds of sessions made in the same
    second afterwards (their ids share the leading timestamp digits) leave it working."""
    code, _, err = chat(capsys, "--new", "remember me")
    assert code == 0
    printed = err.split()[1]
    (first,) = read_db(env)[0]
    clock = FixedClock(first.created_at)

    async def pile_up() -> None:
        async with await Store.open(env, clock=clock) as store:
            for i in range(300):
                await store.create_session(str(env.parent), title=f"same second {i}")

    asyncio.run(pile_up())
    code = main(["sessions", "show", printed, "--no-pager"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("remember me") and first.id in out
    code, _, err = chat(capsys, "--session", printed, "still here")
    assert code == 0 and err == f"session {printed}\n"


def test_session_prefix_continues_that_session(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat(capsys, "first")
    first = read_db(env)[0][0]
    chat(capsys, "--new", "second")
    code, _, err = chat(capsys, "--session", first.id[:13], "back to the first")
    assert code == 0 and "(new)" not in err
    _, messages = read_db(env)
    assert [m.content for m in messages[first.id]][-2:] == [
        "back to the first",
        "You said: back to the first",
    ]


def test_session_prefix_errors(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat(capsys, "one")
    chat(capsys, "--new", "two")
    code, out, err = chat(capsys, "--session", "0", "hi")
    assert code == 1 and out == ""
    assert err.startswith("threadline: error: session id prefix '0' is ambiguous")
    code, _, err = chat(capsys, "--session", "ffffffffffff0", "hi")
    assert code == 1 and err == "threadline: error: no session matches 'ffffffffffff0'\n"
    code, _, err = chat(capsys, "--session", "xyz!", "hi")
    assert code == 1 and "is not a session id" in err
    assert sum(len(m) for m in read_db(env)[1].values()) == 4


def test_a_trashed_session_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat(capsys, "one")
    session = read_db(env)[0][0]

    async def trash() -> None:
        async with await Store.open(env) as store:
            await store.delete_session(session.id)

    asyncio.run(trash())
    code, _, err = chat(capsys, "--session", session.id[:8], "hi")
    assert code == 1 and "is in the trash" in err


def test_continue_ignores_the_window_and_the_default_respects_it(
    env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[session]\ncontinue_window_hours = 0\n")
    chat(capsys, "--config", str(config), "one")
    chat(capsys, "--config", str(config), "two")
    assert len(read_db(env)[0]) == 2
    code, _, err = chat(capsys, "--config", str(config), "--continue", "three")
    assert code == 0 and "(new)" not in err
    sessions, messages = read_db(env)
    assert len(sessions) == 2
    assert [m.content for m in messages[sessions[0].id]][-2] == "three"


def test_continue_with_no_session_starts_one(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = chat(capsys, "--continue", "hi")
    assert code == 0 and err.endswith("(new)\n")


def test_session_flags_are_exclusive(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = chat(capsys, "--new", "--continue", "hi")
    assert code == 2 and "not allowed with argument" in err


# ---------------------------------------------------------------------- model and system prompt


def test_model_and_system_are_used_and_remembered(
    env: Path, capsys: pytest.CaptureFixture[str], server: FakeOpenAIServer
) -> None:
    chat(capsys, "--new", "--model", "big-model", "--system", "be terse", "hi")
    body = server.requests[-1]
    assert body["model"] == "big-model"
    assert body["messages"][0] == {"role": "system", "content": "be terse"}
    session = read_db(env)[0][0]
    assert (session.model, session.system_prompt) == ("big-model", "be terse")

    # Continuing uses the session's model and prompt, not the configured model ...
    chat(capsys, "again")
    body = server.requests[-1]
    assert body["model"] == "big-model"
    assert body["messages"][0]["content"] == "be terse"

    # ... unless told otherwise, which the session then remembers.
    chat(capsys, "--system", "be kind", "once more")
    assert server.requests[-1]["messages"][0]["content"] == "be kind"
    assert read_db(env)[0][0].system_prompt == "be kind"


def test_a_model_that_fails_is_not_remembered(
    env: Path, capsys: pytest.CaptureFixture[str], server: FakeOpenAIServer
) -> None:
    chat(capsys, "hi")
    code, _, _ = chat(capsys, "--model", "missing", "hi")
    assert code == 1
    assert read_db(env)[0][0].model == "fake"
    chat(capsys, "hi")
    assert server.requests[-1]["model"] == "fake"


def test_db_and_config_flags(
    server: FakeOpenAIServer,
    workdir: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    config = tmp_path / "my.toml"
    config.write_text(f'[provider]\nbase_url = "{server.base_url}"\nmodel = "from-config"\n')
    db = tmp_path / "elsewhere.db"
    code = main(["--db", str(db), "chat", "--config", str(config), "hi"])
    assert code == 0
    assert capsys.readouterr().out == "You said: hi\n"
    assert server.requests[-1]["model"] == "from-config"
    assert read_db(db)[0][0].model == "from-config"


def test_api_key_from_the_environment(
    env: Path, capsys: pytest.CaptureFixture[str], server: FakeOpenAIServer, monkeypatch: Any
) -> None:
    server.api_key = "sk-good"
    monkeypatch.setenv("THREADLINE_API_KEY", "sk-bad-1234")
    code, _, err = chat(capsys, "hi")
    assert code == 1 and "rejected the API key" in err and "sk-bad-1234" not in err
    monkeypatch.setenv("THREADLINE_API_KEY", "sk-good")
    code, out, _ = chat(capsys, "hi")
    assert code == 0 and out == "You said: hi\n"


# ---------------------------------------------------------------------- failures


def test_no_provider_says_how_to_configure_and_writes_nothing(
    workdir: str, db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.chdir(workdir)
    code, out, err = chat(capsys, "--db", str(db_path), "hi")
    assert code == 1 and out == ""
    assert err.startswith("threadline: error: no model provider configured")
    assert "THREADLINE_BASE_URL" in err and "config.toml" in err and err.count("\n") == 1
    assert not db_path.exists()


def test_no_model_suggests_the_flag(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THREADLINE_MODEL")
    code, _, err = chat(capsys, "hi")
    assert code == 1 and "no model configured" in err and "--model" in err
    code, out, _ = chat(capsys, "--model", "chosen", "hi")
    assert code == 0 and out == "You said: hi\n"


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("missing", "unknown model 'missing'"),
        ("unauthorized", "needs an API key"),
        ("servererror", "HTTP 500"),
        ("malformed?after=0", "malformed chunk"),
    ],
)
def test_a_provider_error_exits_1_with_the_message_saved(
    env: Path, capsys: pytest.CaptureFixture[str], model: str, needle: str
) -> None:
    code, out, err = chat(capsys, "--model", model, "keep me")
    assert code == 1 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith("threadline: error: ") and needle in last
    sessions, messages = read_db(env)
    user, reply = messages[sessions[0].id]
    assert user.content == "keep me"
    assert reply.stop_reason == "error" and needle in reply.content


def test_an_error_mid_reply_ends_the_partial_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = chat(capsys, "--model", "disconnect?after=2&tokens=9", "hi")
    assert code == 1
    assert out == "t0 t1 \n"
    assert "broke off mid-reply" in err


def test_connection_refused_names_the_url(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("THREADLINE_BASE_URL", f"http://127.0.0.1:{port}/v1")
    config = tmp_path / "c.toml"
    config.write_text("[provider]\nmax_retries = 0\n")
    code, _, err = chat(capsys, "--config", str(config), "hi")
    assert code == 1
    assert f"connection refused by http://127.0.0.1:{port}/v1" in err


def test_retries_then_success(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for model in ("ratelimit", "flaky"):
        code, out, _ = chat(capsys, "--model", model, "hi")
        assert code == 0 and out == "You said: hi\n"


# ---------------------------------------------------------------------- writes per reply


def test_a_long_reply_is_written_a_few_times_not_per_token(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream writes the reply twice (created, final); anything between is a checkpoint of
    the keeper task, at most one each time its interval timer runs out. Counted by events, not
    by the clock: a busy machine only adds timer expiries, and the limit grows with them."""
    writes: list[tuple[str, str]] = []  # (store call, the task's coroutine that made it)
    real = Database.write

    async def counting(self: Database, fn: Any, *args: Any) -> Any:
        writes.append((fn.__name__, current_task_name()))
        return await real(self, fn, *args)

    monkeypatch.setattr(Database, "write", counting)
    timer = count_keeper_timer(monkeypatch)
    monkeypatch.setenv("THREADLINE_MODEL", "x?tokens=2000")
    code, out, _ = chat(capsys, "go")
    assert code == 0 and out.count("t") == 2000
    names = [n for n, _ in writes]
    # The session with the user message (one transaction: begin_turn); then the reply:
    # created, checkpoints, final.
    assert names[0] == "begin_turn"
    reply = writes[names.index("add_message") :]
    assert reply[0][0] == "add_message" and reply[-1][0] == "update_message"
    by_stream = [n for n, task in reply if task != KEEPER]
    by_keeper = [n for n, task in reply if task == KEEPER]
    assert by_stream == ["add_message", "update_message"], writes
    assert len(by_keeper) <= timer.expiries, (writes, timer.expiries)


# ---------------------------------------------------------------------- real processes


def _spawn(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "threadline", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Children of a process that ignores SIGINT would ignore it too.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kw,
    )


def _wait_for_tokens(server: FakeOpenAIServer, proc: subprocess.Popen[str], n: int) -> None:
    server.wait_until(lambda: len(server.sent) >= n or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()


def _wait_for_reply(db: Path, text: str) -> None:
    """Wait until the database holds a streaming reply whose text is `text` (a checkpoint)."""

    async def go() -> None:
        async with await Store.open(db) as store:
            while True:
                rows = await store.list_sessions("all", limit=None)
                messages = await store.get_messages(rows[0].id) if rows else []
                if messages and messages[-1].role == "assistant":
                    if messages[-1].content == text:
                        return
                await asyncio.sleep(0.02)  # polling the file: a write from another process

    asyncio.run(go())


def test_sigkill_mid_reply_keeps_what_was_checkpointed(env: Path, server: FakeOpenAIServer) -> None:
    """A reply is checkpointed from a timer, not only as tokens arrive: with the stream silent
    after 40 tokens, all 40 reach the database; a SIGKILL then loses none of them, and the
    session reads as crashed at once (its writer is provably gone)."""
    proc = _spawn(["chat", "--model", "x?tokens=600&hold_after=40", "tell me everything"])
    _wait_for_tokens(server, proc, 40)
    _wait_for_reply(env, server.sent_text())
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    sessions, messages = read_db(env)
    (session,) = sessions
    user, reply = messages[session.id]
    assert user.content == "tell me everything"
    assert reply.role == "assistant" and reply.complete is False
    assert reply.content == "".join(f"t{i} " for i in range(40)) == server.sent_text()
    # The writer is provably gone (same machine, its pid no longer runs): crashed at once,
    # without waiting for the 30 s heartbeat, and the reply closed as interrupted on open.
    assert session.status == "crashed"
    assert reply.stop_reason == "interrupted"


def test_ctrl_c_saves_the_partial_reply_as_cancelled(env: Path, server: FakeOpenAIServer) -> None:
    proc = _spawn(["chat", "--model", "x?tokens=600&delay=0.01", "go on"])
    _wait_for_tokens(server, proc, 30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)  # a guard against a hang, not a time limit
    assert proc.returncode == 130, err
    assert "interrupted; the partial reply was saved" in err
    _, messages = read_db(env)
    (conversation,) = messages.values()
    reply = conversation[-1]
    assert (reply.stop_reason, reply.complete) == ("cancelled", False)
    assert out == reply.content + "\n"
    assert len(reply.content) >= len("t0 " * 30)


def test_chat_does_not_import_textual(env: Path) -> None:
    code = (
        "import sys\n"
        "from threadline.cli import main\n"
        "rc = main(['chat', 'hi'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'textual')\n"
        "print(loaded, file=sys.stderr)\n"
        "sys.exit(rc or (3 if loaded else 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "You said: hi\n"


def test_escapes_are_neutralised_on_a_terminal(env: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline",
            "chat",
            "\x1b]0;pwned\x07 \x1b[31mred \u202eevil\u200b",
        ],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    chunks = b""
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        chunks += data
    proc.wait(timeout=120)  # a guard against a hang, not a time limit
    os.close(primary)
    assert proc.returncode == 0
    shown = chunks.decode()
    assert "You said: ^[]0;pwned^G ^[[31mred <U+202E>evil<U+200B>" in shown
    assert not any(c in shown for c in "\x1b\x07\u202e\u200b")
    # Piped (not a terminal), the reply is passed on exactly, for scripts.
    piped = subprocess.run(
        [sys.executable, "-m", "threadline", "chat", "\x1b[31mred"], capture_output=True
    )
    assert piped.stdout == b"You said: \x1b[31mred\n"
