"""The app's provider setup without Textual: checking the answers, the key sent by the test,
narrowing the model list, and the write into config.toml."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from threadline.chat.provider_setup import (
    ProviderAnswers,
    SetupProblem,
    check_answers,
    key_for,
    key_note,
    matching_models,
    save_provider,
)


def test_answers_are_tidied_and_checked_in_order():
    answers = check_answers(" http://localhost:11434/v1/chat/completions ", " ", " llama3.2 ")
    assert answers == ProviderAnswers("http://localhost:11434/v1", None, "llama3.2")
    for url, key, model, field, words in [
        ("localhost:11434", "", "m", "base_url", "not a URL"),
        ("ftp://host/v1", "", "m", "base_url", "http"),
        ("http://h/v1", "sk-abc-123", "m", "api_key_env", "never the key itself"),
        ("http://h/v1", "1KEY", "m", "api_key_env", "environment variable"),
        ("http://h/v1", "KEY", "  ", "model", "Choose a model"),
        ("http://h/v1", "KEY", "a\tb", "model", "tab"),
    ]:
        with pytest.raises(SetupProblem) as caught:
            check_answers(url, key, model)
        assert caught.value.field == field
        assert words in str(caught.value)


def test_the_key_sent_follows_threadlines_own_rules(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("THREADLINE_API_KEY", raising=False)
    monkeypatch.setenv("MY_KEY", "k1")
    assert key_for("MY_KEY") == "k1"
    assert key_for(None) is None
    assert "MY_KEY is set here" in key_note("MY_KEY")
    assert "not set here" in key_note("OTHER_KEY")
    assert "no key is sent" in key_note(None)
    monkeypatch.setenv("THREADLINE_API_KEY", "k0")  # wins, as for chat requests
    assert key_for("MY_KEY") == "k0"
    assert "THREADLINE_API_KEY is set here" in key_note("MY_KEY")


def test_models_narrow_with_prefix_matches_first():
    models = ["gpt-4o", "gpt-4o-mini", "o1-mini", "mini-llama", "llama3.2"]
    assert matching_models(models, "") == models
    assert matching_models(models, "MINI") == ["mini-llama", "gpt-4o-mini", "o1-mini"]
    assert matching_models(models, "llama", limit=1) == ["llama3.2"]
    assert matching_models(models, "zzz") == []


def test_save_writes_provider_0600_and_keeps_the_rest(tmp_path: Path):
    path = tmp_path / "cfg" / "config.toml"
    path.parent.mkdir()
    path.write_text('# mine\n[provider]\napi_key_env = "OLD"\nmax_retries = 2\n')
    save_provider(ProviderAnswers("http://h:1/v1", None, "m1"), path)
    text = path.read_text()
    assert text.startswith("# mine\n")
    data = tomllib.loads(text)["provider"]
    assert data == {"max_retries": 2, "base_url": "http://h:1/v1", "model": "m1"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
