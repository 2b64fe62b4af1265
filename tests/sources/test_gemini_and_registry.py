"""Gemini CLI recordings, and the registry every source is reached through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from threadline import sources
from threadline.records import SOURCES, SourceFormatError

from .helpers import HOSTILE, SAMPLES, read_all, sample


@pytest.fixture
def gemini():
    return sources.get("gemini-cli")


def test_gemini_json_session(gemini):
    path = SAMPLES / "gemini-cli/codemie-code/session-2026-01-16T11-01-file-ops-37b7abef.json"
    [s] = read_all(gemini, path, working_dir="/w")
    assert s.source_id == "37b7abef-713d-4522-85f0-8ff15a4e6d17"
    assert s.model == "gemini-3-pro"
    prompts = [m.content for m in s.messages if m.payload["kind"] == "prompt"]
    assert prompts == [
        "show tools",
        "expore repository and figure out issues. focus on adaptability and security",
        "create hello.md file",
        "add 5 lines of random text",
        "remove 2 and 3 line",
    ]
    big = next(
        m
        for m in s.messages
        if len([p for p in m.payload["parts"] if p["type"] == "tool_call"]) == 9
    )
    assert (big.input_tokens, big.output_tokens) == (5054, 269)
    [agent] = [p for p in big.payload["parts"] if p["type"] == "subagent"]
    assert agent["agent"] == "codebase_investigator"
    results = [m for m in s.messages if m.key.startswith(big.key + "#t")]
    assert len(results) == 9
    assert results[1].content.startswith("Subagent 'codebase_investigator' finished.")
    assert all(m.role == "tool" for m in results)


def test_gemini_jsonl_replacements_commands_and_info(tmp_path, gemini):
    [s] = read_all(gemini, sample("gemini-cli/vibecodingtracker/gemini.jsonl.gz", tmp_path))
    kinds = [m.payload["kind"] for m in s.messages]
    assert kinds[:3] == ["info", "command", "reply"]
    assert s.messages[1].payload["parts"][0]["name"] == "/init"
    assert s.messages[-1].content == "Request cancelled."
    replies = [m for m in s.messages if m.payload["kind"] == "reply"]
    assert len({m.key for m in replies}) == len(replies) == 6  # 5 written twice: kept once
    assert replies[0].payload["parts"][1]["type"] == "tool_call"  # the later copy, with calls
    assert [m.payload["kind"] for m in s.messages if m.content == "System: Please continue."] == [
        "meta"
    ]
    assert {m.model for m in replies} == {"gemini-3-flash-preview", "gemini-3.1-pro-preview"}


def test_gemini_rewind_title_and_hostile_text(tmp_path, gemini):
    lines = [
        {
            "sessionId": "g-1",
            "projectHash": "abc",
            "startTime": "2026-04-01T10:00:00Z",
            "lastUpdated": "2026-04-01T10:00:00Z",
            "kind": "main",
        },
        {"id": "u1", "timestamp": "2026-04-01T10:00:01Z", "type": "user", "content": HOSTILE},
        {
            "id": "g1",
            "timestamp": "2026-04-01T10:00:02Z",
            "type": "gemini",
            "content": HOSTILE,
            "model": "gemini-x",
            "tokens": {"input": 3, "output": 4},
        },
        {"id": "u2", "timestamp": "2026-04-01T10:00:03Z", "type": "user", "content": "oops"},
        {"id": "g2", "timestamp": "2026-04-01T10:00:04Z", "type": "gemini", "content": "no"},
        {"$rewindTo": "u2"},
        {"$set": {"summary": "A rewound chat"}},
    ]
    path = tmp_path / "session-2026-04-01T10-00-g1.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"id": "u3", "ty')
    [s] = read_all(gemini, path, working_dir="/w")
    assert s.title == "A rewound chat"
    assert [m.key for m in s.messages] == ["u1", "g1"]  # u2 and what followed were rewound
    assert [m.content for m in s.messages] == [HOSTILE, HOSTILE]
    assert (s.messages[1].input_tokens, s.messages[1].output_tokens) == (3, 4)


def test_gemini_bad_input(tmp_path, gemini):
    path = tmp_path / "session-bad.json"
    path.write_text('{"sessionId": "x"}')
    with pytest.raises(SourceFormatError, match="session-bad.json: not a Gemini CLI session"):
        list(gemini.read(path))
    path.write_text("{nope")
    with pytest.raises(SourceFormatError, match="not valid JSON"):
        list(gemini.read(path))
    jl = tmp_path / "session-bad.jsonl"
    jl.write_text('{"sessionId": "x"}\n{bad\n{"id": "a", "type": "info", "content": "c"}\n')
    with pytest.raises(SourceFormatError, match="session-bad.jsonl, line 2"):
        list(gemini.read(jl))


def test_every_source_is_registered_with_the_same_interface(tmp_path):
    assert sources.names() == SOURCES
    for name in SOURCES:
        source = sources.get(name)
        assert isinstance(source, sources.Source)
        assert source.name == name
        assert source.live == (name in ("claude-code", "codex"))
        default = source.default_path()
        assert default is None or isinstance(default, Path)
        tool = sources.BY_SOURCE[name]  # the one table agrees with the reader
        assert (tool.follow_key is not None) == source.live
        assert tool.local == (default is not None)
        export = tmp_path / f"{name}-export.json"
        export.write_text("[]")
        assert list(source.discover(export)) == [export]  # a file is itself
    assert sources.get("chatgpt").default_path() is None
    with pytest.raises(KeyError, match="unknown source 'cursor'"):
        sources.get("cursor")


def test_importing_the_registry_is_cheap():
    """Start-up matters: the parsers load only when a source is asked for."""
    code = (
        "import sys, threadline.sources as s; "
        "heavy = {'orjson', 'ijson', 'sqlite3', 'zipfile', 'threadline.sources.claude_code'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
