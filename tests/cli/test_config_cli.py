"""`threadline config init|show` through the real entry point, against the fake server."""

from __future__ import annotations

import io
import json
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.helpers import Result
from fakes.openai_server import FakeOpenAIServer
from threadline.chat.connect import PRESETS, Preset
from threadline.config import load_settings

EXISTING = """\
# mine
[session]
retention_days = 45  # a month and a half

[ui]
theme = "nord"
"""


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        s.models = ["llama3.2", "qwen2.5-coder:7b", "qwen2.5:14b"]
        yield s


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "config.toml"


@pytest.fixture
def run(cli: Callable[..., Result], config: Path) -> Callable[..., Result]:
    """threadline with --config pointing at the test's config file."""

    def go(*argv: str) -> Result:
        return cli(*argv, "--config", str(config))

    return go


def at_a_terminal(monkeypatch: pytest.MonkeyPatch, answers: str) -> None:
    """stdin is a terminal, where someone types `answers` (one per line)."""
    monkeypatch.setattr("threadline.cli.output.stdin_is_tty", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- init with flags


def test_init_with_flags_writes_the_provider_and_keeps_the_rest(
    run: Callable[..., Result], config: Path, server: FakeOpenAIServer
) -> None:
    config.parent.mkdir()
    config.write_text(EXISTING)
    r = run("config", "init", "--base-url", server.base_url + "/", "--model", "llama3.2")
    assert r.status == 0, r.err
    assert "connected: the server lists 3 models" in r.err
    assert r.out.startswith(f"wrote {config} (mode 0600):")
    settings = load_settings(config)
    assert settings.provider.base_url == server.base_url
    assert settings.provider.model == "llama3.2" and settings.provider.api_key_env is None
    assert settings.session.retention_days == 45 and settings.ui.theme == "nord"
    assert config.read_text().startswith(EXISTING)  # comments and all
    assert mode(config) == 0o600


def test_the_key_is_read_by_its_variable_and_never_written(
    run: Callable[..., Result],
    config: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.api_key = "sk-test-secret"
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-secret")
    r = run(
        "config", "init", "--base-url", server.base_url, "--api-key-env", "MY_LLM_KEY",
        "--model", "llama3.2",
    )  # fmt: skip
    assert r.status == 0, r.err
    assert "connected" in r.err  # the server wants the key: it was sent
    text = config.read_text()
    assert 'api_key_env = "MY_LLM_KEY"' in text and "sk-test-secret" not in text
    assert "sk-test-secret" not in r.out + r.err
    # A key pasted where the variable's name goes is refused, and not repeated.
    r = run("config", "init", "--base-url", server.base_url, "--api-key-env", "sk-abc-123",
            "--model", "m", "--yes")  # fmt: skip
    assert r.status == 2 and "never the key itself" in r.err and "sk-abc-123" not in r.err
    assert 'api_key_env = "MY_LLM_KEY"' in config.read_text()


def test_a_preset_brings_its_url_and_key_variable(
    run: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    r = run("config", "init", "--preset", "OpenRouter", "--model", "some/model", "--no-test")
    assert r.status == 0, r.err
    assert "OPENROUTER_API_KEY is not set in this environment" in r.err
    settings = load_settings(config)
    assert settings.provider.base_url == "https://openrouter.ai/api/v1"
    assert settings.provider.api_key_env == "OPENROUTER_API_KEY"
    # Switching to a local server without a key removes the key variable.
    r = run("config", "init", "--preset", "ollama", "--model", "llama3.2", "--no-test", "--yes")
    assert r.status == 0, r.err
    assert load_settings(config).provider.api_key_env is None
    assert "api_key_env" not in config.read_text()


def test_replacing_provider_settings_needs_yes_without_a_terminal(
    run: Callable[..., Result], config: Path, server: FakeOpenAIServer
) -> None:
    assert run("config", "init", "--base-url", server.base_url, "--model", "llama3.2").status == 0
    before = config.read_bytes()
    r = run("config", "init", "--base-url", server.base_url, "--model", "qwen2.5:14b")
    assert r.status == 1 and r.err.count("\n") == 1
    assert f"already sets [provider] base_url = {server.base_url}, model = llama3.2" in r.err
    assert "--yes" in r.err and config.read_bytes() == before
    r = run("config", "init", "--base-url", server.base_url, "--model", "qwen2.5:14b", "--yes")
    assert r.status == 0 and load_settings(config).provider.model == "qwen2.5:14b"


def test_a_failed_connection_test_writes_nothing(run: Callable[..., Result], config: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    r = run("config", "init", "--base-url", url, "--model", "m")
    assert r.status == 1 and not config.exists()
    assert "connection refused" in r.err and "nothing was written" in r.err
    r = run("config", "init", "--base-url", url, "--model", "m", "--no-test")
    assert r.status == 0 and load_settings(config).provider.base_url == url


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "stdin is not a terminal"),
        (("--preset", "nope", "--model", "m"), "unknown preset 'nope' (presets: openai, "),
        (("--base-url", "localhost:11434", "--model", "m"), "give the scheme too"),
        (("--base-url", "http://127.0.0.1:1/v1", "--no-test"), "give --model"),
    ],
)
def test_usage_errors_are_one_line_and_write_nothing(
    run: Callable[..., Result], config: Path, argv: tuple[str, ...], message: str
) -> None:
    r = run("config", "init", *argv)
    assert r.status == 2 and message in r.err and r.err.count("\n") == 1
    assert r.err.startswith("threadline: error: ") and not config.exists()


def test_a_broken_config_file_is_not_touched(run: Callable[..., Result], config: Path) -> None:
    config.parent.mkdir()
    config.write_text("[provider\n")
    r = run("config", "init", "--preset", "ollama", "--model", "m", "--no-test", "--yes")
    assert r.status == 1 and "invalid TOML" in r.err and r.err.count("\n") == 1
    assert config.read_text() == "[provider\n"


# ---------------------------------------------------------------------- init at a prompt


def test_init_at_a_prompt(
    run: Callable[..., Result],
    config: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL typed, a key pasted where the variable's name goes (asked again), no key, then a
    model picked by part of its name from the server's list."""
    answers = [server.base_url, "sk-pasted-key!", "-", "coder"]
    at_a_terminal(monkeypatch, "\n".join(answers) + "\n")
    r = run("config", "init")
    assert r.status == 0, r.err
    for label in ("1) OpenAI", "2) Ollama", "LM Studio", "llama.cpp server", "vLLM", "OpenRouter"):
        assert label in r.err
    assert "That must be the name of the environment variable" in r.err
    assert " 1) llama3.2" in r.err and " 2) qwen2.5-coder:7b" in r.err
    settings = load_settings(config)
    assert (settings.provider.base_url, settings.provider.model) == (
        server.base_url,
        "qwen2.5-coder:7b",
    )
    assert settings.provider.api_key_env is None
    assert "sk-pasted-key" not in config.read_text()


def test_at_a_prompt_presets_by_number_and_a_narrowed_model_list(
    run: Callable[..., Result],
    config: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The existing [provider] is replaced only after a yes; the preset's key variable is
    # offered as the default (an empty answer takes it).
    config.parent.mkdir()
    config.write_text(f'[provider]\nbase_url = "{server.base_url}"\nmodel = "old"\n')
    fake = Preset("fake", "The fake", server.base_url, "FAKE_KEY")
    monkeypatch.setattr("threadline.chat.connect.PRESETS", (PRESETS[0], fake))
    at_a_terminal(monkeypatch, "y\n2\n\nqwen\n2\n")
    r = run("config", "init")
    assert r.status == 0, r.err
    assert "already sets [provider] base_url" in r.err
    assert "FAKE_KEY is not set" in r.err
    settings = load_settings(config)
    assert settings.provider.api_key_env == "FAKE_KEY"
    assert settings.provider.model == "qwen2.5:14b"  # the 2nd of the two qwen models


def test_at_a_prompt_a_model_not_listed_and_a_failed_test(
    run: Callable[..., Result],
    config: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at_a_terminal(monkeypatch, f"{server.base_url}\n-\nmistral-large\ny\n")
    assert run("config", "init").status == 0
    assert load_settings(config).provider.model == "mistral-large"
    # Nothing listening: asked whether to save anyway; no means nothing changes.
    before = config.read_bytes()
    url = f"http://127.0.0.1:{closed_port()}/v1"
    at_a_terminal(monkeypatch, f"y\n{url}\n-\nn\n")
    r = run("config", "init")
    assert r.status == 1 and "connection refused" in r.err and "cancelled" in r.err
    assert config.read_bytes() == before
    # ctrl-d at a question cancels too.
    at_a_terminal(monkeypatch, "y\n")
    r = run("config", "init")
    assert r.status == 1 and "cancelled: config.toml was not changed" in r.err
    assert config.read_bytes() == before


# ---------------------------------------------------------------------- show


def test_show_says_where_each_setting_comes_from(
    run: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.parent.mkdir()
    config.write_text(
        '[provider]\nbase_url = "https://me:hunter2@gw.example/v1?api_key=abc"\n'
        'api_key_env = "GW_KEY"\n[context]\nauto_summarize = false\n' + EXISTING.split("\n", 1)[1]
    )
    monkeypatch.setenv("THREADLINE_MODEL", "env-model")
    monkeypatch.setenv("GW_KEY", "sk-very-secret")
    r = run("config", "show")
    assert r.status == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"# config file: {config} (--config)"

    def line(start: str) -> str:
        return next(x for x in lines if x.startswith(start))

    assert line("base_url = ").split("#")[-1].strip() == "file"
    assert '"https://me:***@gw.example/v1?api_key=***"' in line("base_url = ")
    assert line('model = "env-model"').endswith("# environment: THREADLINE_MODEL")
    assert line("retention_days = 45").endswith("# file")
    assert line("max_sessions = 1000").endswith("# default")
    assert line("auto_summarize = false").endswith("# file")
    assert line('theme = "nord"').endswith("# file")
    assert line("# api key: set").endswith("# from GW_KEY")
    assert "hunter2" not in r.out and "sk-very-secret" not in r.out and "abc" not in r.out
    data = json.loads(run("config", "show", "--json").out)
    assert data["config_file"] == str(config) and data["config_file_exists"] is True
    provider = data["settings"]["provider"]
    assert provider["model"] == {
        "value": "env-model",
        "source": "environment",
        "variable": "THREADLINE_MODEL",
    }
    assert provider["api_key"] == {"value": "set", "source": "environment", "variable": "GW_KEY"}
    assert data["settings"]["session"]["retention_days"] == {"value": 45, "source": "file"}


def test_show_without_a_file_and_with_a_bad_one(
    cli: Callable[..., Result], private_env: Path, config: Path
) -> None:
    r = cli("config", "show")
    assert r.status == 0 and "no such file: defaults" in r.out.splitlines()[0]
    assert "# api key: none" in r.out
    config.parent.mkdir()
    config.write_text('[ui]\ntheme = "nope"\n')
    r = cli("config", "show", "--config", str(config))
    assert r.status == 1 and r.err.count("\n") == 1
    assert "[ui] theme: unknown theme 'nope'" in r.err
