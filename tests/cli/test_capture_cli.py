"""`threadline capture`: the coding agents' histories taken in once, for cron or a timer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_history import ClaudeHome
from threadline.store import Store


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workdir: str) -> ClaudeHome:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    agent = ClaudeHome(home, workdir)
    agent.prompt("s-1", "how do I list files?")
    agent.reply("s-1", "Use `ls`.")
    return agent


def sessions(with_db) -> list:
    async def get(store: Store) -> list:
        return await store.list_sessions("all")

    return with_db(get)


def test_first_capture_says_what_it_found_then_takes_in_only_what_grew(cli, claude, with_db):
    r = cli("capture")
    assert r.status == 0, r.err
    assert r.lines[0] == "Found Claude Code history: 1 session in ~/.claude/projects; taking it in…"
    assert "Claude Code: took in 2 messages (1 new session)." in r.lines
    assert "Codex: nothing at ~/.codex/sessions." in r.lines
    (session,) = sessions(with_db)
    assert session.message_count == 2
    # Again: nothing new, and no "Found" line (it is not the first capture any more).
    r = cli("capture", "--json")
    data = json.loads(r.out)
    assert (data["sessions"], data["updated"], data["messages"], data["skipped"]) == (0, 0, 0, 1)
    assert data["sources"][0]["first"] is False
    codex = data["sources"][1]
    assert (codex["source"], codex["present"], codex["sessions"]) == ("codex", False, 0)
    # The agent goes on; a half-written line waits for the next capture.
    claude.prompt("s-1", "and hidden ones?")
    with claude.path("s-1").open("a") as fh:
        fh.write('{"type": "assistant", "sessio')
    r = cli("capture")
    assert "Claude Code: took in 1 message (0 new sessions, 1 grown)." in r.lines
    assert r.status == 0 and r.err == ""
    claude.prompt("s-2", "a second session")
    r = cli("capture", "--json")
    assert (json.loads(r.out)["sessions"], json.loads(r.out)["messages"]) == (1, 1)
    assert sorted(s.message_count for s in sessions(with_db)) == [1, 3]


def test_what_was_taken_in_stays_when_the_agent_deletes_it(cli, claude, with_db):
    assert cli("capture").status == 0
    claude.path("s-1").unlink()  # Claude Code's 30-day clean-up
    r = cli("capture", "--json")
    assert r.status == 0 and json.loads(r.out)["messages"] == 0
    (session,) = sessions(with_db)
    assert session.message_count == 2


def test_a_history_turned_off_is_left_alone_unless_named(cli, claude, with_db, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[sources]\nclaude_code = false\n")
    r = cli("--config", str(config), "capture")
    assert r.status == 0
    assert "Claude Code: turned off (claude_code = false under [sources])." in r.lines
    assert sessions(with_db) == []
    r = cli("--config", str(config), "capture", "--source", "claude-code", "--dry-run", "--json")
    assert json.loads(r.out)["messages"] == 2 and sessions(with_db) == []
    r = cli("--config", str(config), "capture", "--source", "claude-code")
    assert r.status == 0 and len(sessions(with_db)) == 1


def test_paths_come_from_the_config(cli, claude, with_db, tmp_path):
    elsewhere = tmp_path / "moved"
    claude.projects.rename(elsewhere)
    config = tmp_path / "config.toml"
    config.write_text(f'[sources]\nclaude_code_path = "{elsewhere}"\n')
    r = cli("--config", str(config), "capture", "--json")
    data = json.loads(r.out)
    assert data["sources"][0]["path"] == str(elsewhere) and data["sessions"] == 1


def test_a_bad_file_is_named_and_the_others_go_in(cli, claude, with_db):
    (claude.folder / "broken.jsonl").write_text('{"type": "user", "uuid": \n')
    r = cli("capture")
    assert r.status == 1
    assert "broken.jsonl" in r.err and r.err.startswith("threadline: error: ")
    assert len(sessions(with_db)) == 1


def test_gzipped_sessions_are_taken_in_once_and_noticed(cli, claude, with_db):
    """An agent history kept compressed: a session gzipped after it was taken in is the same
    session; a new .gz one is taken in whole, once; the app's watch notices .gz files."""
    import gzip

    from threadline.capture import Watch

    assert cli("capture").status == 0
    watch = Watch([claude.projects])
    assert watch.changed() is True and watch.changed() is False
    claude.prompt("s-2", "kept compressed")
    claude.reply("s-2", "fine")
    for name in ("s-1", "s-2"):
        path = claude.path(name)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    assert watch.changed() is True
    r = cli("capture", "--json")
    data = json.loads(r.out)
    assert r.status == 0 and (data["sessions"], data["messages"], data["skipped"]) == (1, 2, 1)
    r = cli("capture", "--json")
    data = json.loads(r.out)
    assert (data["sessions"], data["updated"], data["messages"]) == (0, 0, 0)
    assert data["sources"][0]["unchanged"] == 2 and watch.changed() is False
    assert sorted(s.message_count for s in sessions(with_db)) == [2, 2]
    claude.prompt("s-3", "dropped in compressed")
    data = claude.path("s-3").read_bytes()
    claude.path("s-3").unlink()
    assert watch.changed() is False
    claude.folder.joinpath("s-3.jsonl.gz").write_bytes(gzip.compress(data))
    assert watch.changed() is True  # a .gz session appearing is noticed
