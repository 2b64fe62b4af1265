"""Other tools' history found in its usual place (for the app's empty state): cheap checks of
existence, honouring each tool's environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.sources.found import has_history, histories_found


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "LLM_USER_PATH", "GEMINI_CLI_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var))
    return tmp_path


def test_nothing_found_where_nothing_is(places: Path):
    assert histories_found() == []
    (places / "CODEX_HOME" / "sessions").mkdir(parents=True)  # an empty directory
    (places / "LLM_USER_PATH").mkdir()
    (places / "LLM_USER_PATH" / "logs.db").write_bytes(b"")  # an empty file
    assert histories_found() == []


def test_each_tool_found_in_its_place(places: Path):
    (places / "CODEX_HOME" / "sessions" / "2026").mkdir(parents=True)
    (places / "LLM_USER_PATH").mkdir()
    (places / "LLM_USER_PATH" / "logs.db").write_bytes(b"SQLite format 3\0")
    (places / "CLAUDE_CONFIG_DIR" / "projects" / "x").mkdir(parents=True)
    found = histories_found()
    assert [f.source for f in found] == ["claude-code", "codex", "llm"]
    assert found[0].command == "threadline import claude-code"
    assert found[1].path == places / "CODEX_HOME" / "sessions"


def test_has_history_on_odd_paths(tmp_path: Path):
    assert not has_history(tmp_path / "missing")
    (tmp_path / "f").write_text("x")
    assert has_history(tmp_path / "f")
    assert not has_history(tmp_path / "f" / "under-a-file")
