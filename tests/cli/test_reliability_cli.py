"""Issue 13 (and issue 11's mistyped paths) through the command line: read-only commands while
another process writes, `chat` waiting for the lock, damaged, foreign and read-only files,
numbers too large, credentials in the provider URL, and paths that do not exist."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.helpers import Result
from fakes.openai_server import FakeOpenAIServer
from store.reliability_helpers import files_of, flip_page_type, read_only_file, write_lock_held
from threadline.store import Store

Cli = Callable[..., Result]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def _fill(db: Path, workdir: str) -> str:
    async def go() -> str:
        async with await Store.open(db) as store:
            session, _, _ = await store.begin_turn(None, "how do locks work?", working_dir=workdir)
            await store.add_message(session.id, "assistant", "one writer at a time")
            await store.save_memory(workdir, "likes sqlite", "preference", 4)
            return session.id

    return asyncio.run(go())


def _counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return (
            conn.execute("SELECT count(*) FROM sessions").fetchone()[0],
            conn.execute("SELECT count(*) FROM messages").fetchone()[0],
        )
    finally:
        conn.close()


# ---------------------------------------------------------------------- the write lock


def test_read_only_commands_never_wait_for_the_write_lock(
    cli: Cli, db_path: Path, workdir: str, tmp_path: Path
) -> None:
    session_id = _fill(db_path, workdir)
    with write_lock_held(db_path):
        # Each would fail with "database is locked" after a minute if it took the lock.
        for argv in (
            ["sessions", "list", "--all"],
            ["sessions", "list", "--all", "--json"],
            ["sessions", "show", session_id[:8]],
            ["search", "locks"],
            ["export", "--all", "--output", str(tmp_path / "out.jsonl")],
            ["memories", "list", "--dir", workdir],
            ["db", "check"],
        ):
            result = cli(*argv)
            assert result.status == 0, (argv, result.err)
    assert "how do locks work?" in (tmp_path / "out.jsonl").read_text()


def test_chat_waits_for_the_lock_saying_why_and_loses_nothing(
    server: FakeOpenAIServer, db_path: Path, workdir: str, tmp_path: Path
) -> None:
    _fill(db_path, workdir)
    env = {
        **os.environ,
        "THREADLINE_DB": str(db_path),
        "THREADLINE_BASE_URL": server.base_url,
        "THREADLINE_MODEL": "fake",
        "THREADLINE_CONFIG": str(tmp_path / "none.toml"),
    }
    with write_lock_held(db_path):
        proc = subprocess.Popen(
            [sys.executable, "-m", "threadline", "chat", "--new", "typed while an import ran"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until chat says why it waits
        assert line.startswith("threadline: waiting for the database"), line
        assert "another process is writing" in line
        assert server.requests == []  # nothing sent before the message is saved
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == "You said: typed while an import ran"  # the fake server echoes it
    assert _counts(db_path) == (2, 4)


# ---------------------------------------------------------------------- damaged files


def test_chat_on_a_damaged_database_writes_nothing(
    server: FakeOpenAIServer,
    db_path: Path,
    workdir: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from threadline.cli import main

    _fill(db_path, workdir)
    flip_page_type(db_path, "messages")
    before = files_of(db_path)[""]
    monkeypatch.setenv("THREADLINE_BASE_URL", server.base_url)
    monkeypatch.chdir(workdir)
    status = main(["--db", str(db_path), "chat", "--new", "--model", "fake", "hello?"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "damaged" in err and "threadline db check" in err
    assert server.requests == []
    assert files_of(db_path)[""] == before  # not even an empty session


def test_db_check_on_a_read_only_database_says_so(cli: Cli, db_path: Path, workdir: str) -> None:
    _fill(db_path, workdir)
    with read_only_file(db_path):
        result = cli("db", "check")
        assert result.status == 0, result.err
        assert "(read-only)" in result.out and "integrity       ok" in result.out
        assert "needs write access" in result.out and "problem" not in result.out
        data = json.loads(cli("db", "check", "--json").out)
        assert data["ok"] and data["read_only"] and data["problems"] == []
        listed = cli("sessions", "list", "--all")
        assert listed.status == 0 and "how do locks work?" in listed.out


def test_another_programs_database_is_refused(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = files_of(db)
    result = cli("sessions", "list", "--all", db=db)
    assert result.status == 1
    assert result.err.startswith("threadline: error: ") and result.err.count("\n") == 1
    assert "not threadline's" in result.err
    assert files_of(db) == before


# ---------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "list", "--all", "--limit", "9223372036854775808"],
        ["memories", "list", "--limit", "9223372036854775808"],
        ["memories", "edit", "99999999999999999999", "--fact", "x"],
        ["cleanup", "--dry-run", "--older-than", "99999999999999999999d"],
        ["cleanup", "--dry-run", "--older-than", "999999999d"],
    ],
)
def test_numbers_too_large_are_one_line_errors(cli: Cli, db_path: Path, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.status == 2
    assert result.err.startswith("threadline: error: ") and result.err.count("\n") == 1
    assert "Traceback" not in result.err and not db_path.exists()


def test_config_numbers_too_large_are_one_line_errors(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[session]\nretention_days = 99999999999999999999\n")
    result = cli("--config", str(config), "cleanup", "--dry-run")
    assert result.status == 1 and result.err.count("\n") == 1
    assert "retention_days" in result.err


# ---------------------------------------------------------------------- secrets


def test_credentials_in_the_provider_url_are_never_stored_or_shown(
    server: FakeOpenAIServer,
    db_path: Path,
    workdir: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from threadline.cli import main

    secret = "S3cretPassw0rd"
    # A port nothing listens on: the request fails, and the error is saved as the reply.
    with socket_closed_port() as port:
        monkeypatch.setenv("THREADLINE_BASE_URL", f"http://alice:{secret}@127.0.0.1:{port}/v1")
        config = tmp_path / "c.toml"
        config.write_text("[provider]\nmax_retries = 0\n")
        monkeypatch.chdir(workdir)
        status = main(["--db", str(db_path), "--config", str(config), "chat", "--model", "m", "hi"])
    err = capsys.readouterr().err
    assert status == 1 and "connection refused" in err
    assert "alice" not in err and secret not in err
    assert f"http://127.0.0.1:{port}/v1" in err  # the URL shown without its userinfo
    main(["--db", str(db_path), "export", "--all", "--output", str(tmp_path / "x.jsonl")])
    main(["--db", str(db_path), "db", "backup", str(tmp_path / "b.db")])
    capsys.readouterr()
    for path in (db_path, Path(f"{db_path}-wal"), tmp_path / "x.jsonl", tmp_path / "b.db"):
        if path.exists():
            assert secret.encode() not in path.read_bytes(), path
    # With a server there, the credentials still work: they travel in a header.
    monkeypatch.setenv("THREADLINE_BASE_URL", server.base_url.replace("//", f"//bob:{secret}@"))
    status = main(["--db", str(db_path), "--config", str(config), "chat", "--model", "m", "hey"])
    assert status == 0
    assert secret not in capsys.readouterr().err


class socket_closed_port:  # noqa: N801 - used as a context manager
    """A local TCP port that refuses connections (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        return int(port)

    def __exit__(self, *exc: object) -> None:
        pass


# ---------------------------------------------------------------------- paths (issue 11)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sessions", "list"],
        ["search", "x"],
        ["memories", "list"],
        ["export", "--all"],
        ["cleanup", "--dry-run"],
        ["chat", "--model", "m", "hello"],
    ],
)
def test_a_database_in_a_missing_directory_is_an_error_for_every_command(
    cli: Cli, tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_BASE_URL", "http://127.0.0.1:9/v1")
    result = cli(*argv, db=tmp_path / "nodir" / "sub" / "x.db")
    assert result.status == 1, result.err
    assert (
        result.err == f"threadline: error: {tmp_path / 'nodir' / 'sub'}: no such directory "
        "(create it first, or fix the path)\n"
    )
    assert not (tmp_path / "nodir").exists()


def test_the_app_on_a_directory_that_does_not_exist_is_an_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("--dir", str(tmp_path / "nowhere"))
    assert result.status == 1
    assert result.err == f"threadline: error: {tmp_path / 'nowhere'}: no such directory (--dir)\n"


def test_only_the_default_location_is_made_and_private_under_umask_000(
    private_env: Path, workdir: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "THREADLINE_DB"}
    code = (
        "import os, sys; os.umask(0); from threadline.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "sessions", "list"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data_home = private_env / "xdg_data_home"
    for directory in (data_home, data_home / "threadline"):
        assert oct(directory.stat().st_mode & 0o777) == oct(0o700), directory


# ---------------------------------------------------------------------- the edge of a turn


def test_chat_killed_before_the_reply_leaves_its_message_shown_unanswered(
    server: FakeOpenAIServer, db_path: Path, workdir: str, tmp_path: Path, cli: Cli
) -> None:
    env = {
        **os.environ,
        "THREADLINE_DB": str(db_path),
        "THREADLINE_BASE_URL": server.base_url,
        "THREADLINE_CONFIG": str(tmp_path / "none.toml"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "threadline", "chat", "--model", "x?first_delay=60", "still there?"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("session ")  # the message (and session) are saved
    proc.kill()
    proc.communicate()
    assert _counts(db_path) == (1, 1)  # the session and its message, nothing half-made
    listed = cli("sessions", "list", "--all")
    assert listed.status == 0
    (row,) = [line for line in listed.lines if "still there?" in line]
    assert " !? " in row  # crashed, and its last message has no reply
    assert "? no reply to the last message" in listed.err
    session_id = row.split()[0]
    shown = cli("sessions", "show", session_id)
    assert "crashed: the last turn broke off" in shown.out
    assert shown.out.rstrip().endswith(
        "[no reply: the turn broke off before the model answered; "
        "`threadline chat --session ID` continues]"
    )


def test_a_message_never_answered_is_marked_in_list_and_show(
    cli: Cli, db_path: Path, workdir: str
) -> None:
    async def go() -> str:
        async with await Store.open(db_path) as store:
            session = await store.create_session(workdir)
            await store.add_message(session.id, "user", "a script asked this")
            return session.id

    session_id = asyncio.run(go())
    listed = cli("sessions", "list", "--all")
    (row,) = [line for line in listed.lines if "a script asked this" in line]
    assert " ? " in row and "!" not in row
    assert cli("sessions", "show", session_id).out.rstrip().endswith("[no reply to this message]")
