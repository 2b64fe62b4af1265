"""llm logs.db: databases written by real llm releases (tests/sources/make_llm_dbs.py made
them; see data/llm/), from 0.12 to the current one, and one upgraded across the schema change."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import pytest

from threadline.records import SourceFormatError
from threadline.sources import get

from .helpers import DATA, read_all

LLM_DIR = DATA / "llm"
HOSTILE_LLM = "[bold red]not markup[/] \x1b[2J\x1b]0;pwned\x07 [@click=app.quit]x[/]"
VERSIONS = ["0.12", "0.17", "0.23", "0.26", "0.31", "0.32", "0.36"]


def _v(version):
    return tuple(int(x) for x in version.split("."))


@pytest.fixture
def source():
    return get("llm")


@pytest.fixture
def db_copy(tmp_path):
    def make(name):
        dst = tmp_path / "user" / "logs.db"
        dst.parent.mkdir()
        shutil.copyfile(LLM_DIR / name, dst)
        return dst

    return make


@pytest.mark.parametrize("version", VERSIONS)
def test_every_schema_reads_the_same_conversations(source, db_copy, version):
    path = db_copy(f"llm-{version}.db")
    sessions = read_all(source, path, working_dir="/home/me/notes")
    assert all(s.working_dir == "/home/me/notes" for s in sessions)
    first, hostile = sessions[0], sessions[1]
    # A conversation is a session; each response a prompt and a reply.
    assert [(m.role, m.payload["kind"]) for m in first.messages] == [
        ("user", "prompt"),
        ("assistant", "reply"),
    ] * 2
    prompts = [m.content for m in first.messages[::2]]
    replies = [m.content for m in first.messages[1::2]]
    assert prompts == ["What is a thread?", "And a needle?"]
    if _v(version) >= (0, 36):  # llm-echo answers with what it was sent, as JSON
        assert [json.loads(r)["prompt"] for r in replies] == prompts
        assert json.loads(replies[0])["system"] == "You answer in one line."
    else:  # the offline echo model of make_llm_dbs.py
        assert replies == ["echo: What is a thread?", "echo: And a needle?"]
    assert first.system_prompt == "You answer in one line."
    assert first.title == "What is a thread?"
    assert first.model == "echo"
    keys = [m.key for m in first.messages]
    assert keys[0].endswith(":prompt") and keys[1] == keys[0].replace(":prompt", ":response")
    assert first.messages[1].model == "echo"
    assert all(m.created_at.tzinfo is not None for m in first.messages)
    assert first.messages[0].created_at < first.messages[2].created_at
    # Hostile text comes through as data, exactly.
    assert hostile.messages[0].content == HOSTILE_LLM
    if _v(version) < (0, 36):
        assert hostile.messages[1].content == "echo: " + HOSTILE_LLM
    if (0, 19) <= _v(version) < (0, 36):
        assert (first.messages[1].input_tokens, first.messages[1].output_tokens) == (4, 5)
    if _v(version) >= (0, 36):
        assert (first.messages[1].input_tokens, first.messages[1].output_tokens) == (9, 19)
    if _v(version) >= (0, 17):
        attached = sessions[2].messages[0]
        [part] = [p for p in attached.payload["parts"] if p["type"] == "attachment"]
        assert part["name"].endswith("dot.png") and part["kind"] == "image"
        assert "[image: " in attached.content and attached.content.startswith("Describe")
    if _v(version) >= (0, 26):
        tool = sessions[3]
        kinds = [m.payload["kind"] for m in tool.messages]
        assert kinds == ["prompt", "reply", "tool_result", "reply"]
        call = tool.messages[1].payload["parts"][-1]
        result = tool.messages[2].payload["parts"][0]
        assert call["type"] == "tool_call" and call["name"] == "llm_version"
        assert result["name"] == "llm_version" and result["call_id"] == call["id"]
        assert tool.messages[2].content == version  # the tool's output: llm's version
    if _v(version) >= (0, 36):
        thinking = sessions[4].messages[1]
        assert thinking.payload["parts"][0]["type"] == "thinking"
        assert thinking.payload["parts"][0]["text"].startswith("First I consider the prompt")
    # Records are the rows, as JSON.
    record_tables = {r["table"] for s in sessions for m in s.messages for r in m.payload["records"]}
    assert record_tables & {"responses", "messages"}


@pytest.mark.parametrize("version", ["0.12", "0.31", "0.36"])
def test_database_left_byte_identical(source, db_copy, version):
    path = db_copy(f"llm-{version}.db")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    listing = sorted(p.name for p in path.parent.iterdir())
    stat = path.stat()
    assert read_all(source, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == listing  # no -journal, -wal, -shm
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def test_upgraded_database_counts_nothing_twice(source, db_copy):
    """0.31 wrote a conversation; 0.36 migrated the file and continued it with `llm -c`, so its
    thread replays the legacy history before the new turn."""
    path = db_copy("llm-upgraded.db")
    db = sqlite3.connect(path)
    legacy = db.execute("select count(*) from responses").fetchone()[0]
    turns = db.execute("select count(*) from turns").fetchone()[0]
    db.close()
    assert (legacy, turns) == (2, 2)
    sessions = read_all(source, path)
    assert len(sessions) == 2
    continued, fresh = sessions
    assert [m.content for m in continued.messages] == [
        "What is a thread?",
        "echo: What is a thread?",
        "And a needle?",
        "echo: And a needle?",
        "continued after the upgrade",
        continued.messages[5].content,
    ]
    assert continued.messages[5].content.startswith("{")  # llm-echo replies with JSON
    assert continued.system_prompt == "You answer in one line."
    assert [m.content for m in fresh.messages][0] == "a new thread"
    all_keys = [m.key for s in sessions for m in s.messages]
    assert len(all_keys) == len(set(all_keys))


def test_not_an_llm_database(source, tmp_path):
    text = tmp_path / "logs.db"
    text.write_text("hello, not sqlite at all" * 100)
    with pytest.raises(SourceFormatError, match="not an llm logs database"):
        list(source.read(text))
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("create table notes (x)")
    db.commit()
    db.close()
    with pytest.raises(SourceFormatError, match=r"other.db: not an llm logs database"):
        list(source.read(other))
    with pytest.raises(SourceFormatError, match="no such file"):
        list(source.read(tmp_path / "missing.db"))


def test_default_path_as_llm_resolves_it(source, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "custom"))
    assert source.default_path() == tmp_path / "custom" / "logs.db"
    monkeypatch.delenv("LLM_USER_PATH")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert source.default_path() == tmp_path / "cfg" / "io.datasette.llm" / "logs.db"
    (tmp_path / "cfg" / "io.datasette.llm").mkdir(parents=True)
    assert list(source.discover(tmp_path / "cfg" / "io.datasette.llm")) == []
