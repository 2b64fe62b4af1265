"""config.toml: defaults, validation with one-line errors naming file and key, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.config import (
    ContextConfig,
    ProviderConfig,
    SessionConfig,
    Settings,
    UIConfig,
    load_settings,
)
from threadline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_default_file_means_defaults(private_env: Path) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.source is None


def test_section_defaults() -> None:
    s = Settings()
    assert s.provider == ProviderConfig()
    assert (s.provider.base_url, s.provider.model, s.provider.api_key_env) == (None, None, None)
    assert (s.provider.connect_timeout, s.provider.read_timeout, s.provider.max_retries) == (
        10.0,
        120.0,
        3,
    )
    assert s.session == SessionConfig(
        continue_window_hours=4,
        retention_days=90,
        max_sessions=1000,
        auto_cleanup=True,
        trash_days=30,
    )
    assert s.context == ContextConfig(max_context_tokens=16000, keep_recent_messages=20)
    assert s.ui == UIConfig(theme="textual-dark")


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[provider]
base_url = "http://localhost:11434/v1"
model = "llama3"
api_key_env = "MY_KEY"

[session]
retention_days = 30
auto_cleanup = false
""",
    )
    s = load_settings(path)
    assert s.source == path
    assert s.provider.base_url == "http://localhost:11434/v1" and s.provider.model == "llama3"
    assert s.session.retention_days == 30 and s.session.auto_cleanup is False
    assert s.session.max_sessions == 1000 and s.session.continue_window_hours == 4
    assert s.context == ContextConfig() and s.ui == UIConfig()


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).model_dump() == Settings().model_dump()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[session\nretention_days = 3", "invalid TOML"),
        ("retention_days = = 3", "invalid TOML"),
        ('[session]\nretention_days = "ninety"', "[session] retention_days"),
        ("[session]\nmax_sessions = 0", "[session] max_sessions"),
        ("[session]\nauto_cleanup = 3", "[session] auto_cleanup"),
        ("[context]\nmax_context_tokens = 1.5", "[context] max_context_tokens"),
        ("[ui]\ntheme = 7", "[ui] theme"),
        ("[provider]\nbase_url = []", "[provider] base_url"),
        ("[session]\nretension_days = 30", "[session] retension_days: unknown key"),
        ("[provider]\napi_key = 'sk-secret'", "[provider] api_key: unknown key"),
        ("colour = 'blue'", "colour: unknown key"),
        ("[appearance]\ntheme = 'x'", "appearance: unknown key"),
        ("session = 5", "session: must be a table"),
    ],
)
def test_invalid_file_is_one_line_error_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_secret_value_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[provider]\napi_key = 'sk-very-secret'")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "sk-very-secret" not in str(info.value)


def test_not_utf8_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe[ui]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "nope.toml")


def test_config_env_and_default_location(
    private_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = private_env / "xdg_config_home" / "threadline" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("[ui]\ntheme = 'nord'\n")
    assert load_settings().ui.theme == "nord"
    env_file = write(tmp_path, "[ui]\ntheme = 'dracula'\n")
    monkeypatch.setenv("THREADLINE_CONFIG", str(env_file))
    assert load_settings().ui.theme == "dracula"
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text("[ui]\ntheme = 'gruvbox'\n")
    assert load_settings(flag_file).ui.theme == "gruvbox"  # --config beats the env


def test_provider_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "[provider]\nbase_url = 'http://file/v1'\nmodel = 'file-model'\napi_key_env = 'MY_KEY'\n",
    )
    settings = load_settings(path)
    p = settings.effective_provider()
    assert (p.base_url, p.model, p.api_key) == ("http://file/v1", "file-model", None)
    assert p.configured
    monkeypatch.setenv("MY_KEY", "key-from-named-var")
    assert settings.effective_provider().api_key == "key-from-named-var"
    monkeypatch.setenv("THREADLINE_API_KEY", "key-from-threadline-var")
    monkeypatch.setenv("THREADLINE_BASE_URL", "http://env/v1")
    monkeypatch.setenv("THREADLINE_MODEL", "env-model")
    p = settings.effective_provider()
    assert (p.base_url, p.model, p.api_key) == (
        "http://env/v1",
        "env-model",
        "key-from-threadline-var",
    )
    assert "key-from" not in repr(p)  # the key never shows in a repr (logs, tracebacks)


def test_unconfigured_provider() -> None:
    assert not Settings().effective_provider().configured


def test_auto_summarize_is_read_under_its_documented_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[context]\nauto_summarize = false\n")
    assert load_settings(path).context.auto_summarise is False
    assert ContextConfig().auto_summarise is True
    with pytest.raises(ConfigError, match=r"\[context\] auto_summarise: unknown key"):
        load_settings(write(tmp_path, "[context]\nauto_summarise = false\n"))


def test_a_provider_with_a_url_is_configured_whatever_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("THREADLINE_BASE_URL", "http://localhost:11434/v1")
    provider = Settings().effective_provider()
    assert provider.configured and provider.model is None


# ---------------------------------------------------------------------- themes and key names


def test_the_theme_list_is_textuals() -> None:
    """config.THEMES is written out (checking a theme must not import Textual); it must stay
    the list Textual ships."""
    from textual.theme import BUILTIN_THEMES

    from threadline.config import THEMES

    assert set(THEMES) == set(BUILTIN_THEMES)


def test_an_unknown_theme_is_refused_naming_the_key(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, '[ui]\ntheme = "nord"\n')).ui.theme == "nord"
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, '[ui]\ntheme = "nope"\n'))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'config.toml'}: ")
    assert "[ui] theme: unknown theme 'nope' (themes: ansi-dark, " in message
    assert "Value error" not in message


def test_api_key_env_must_be_a_variable_name_not_a_key(tmp_path: Path) -> None:
    ok = load_settings(write(tmp_path, '[provider]\napi_key_env = "MY_KEY_2"\n'))
    assert ok.provider.api_key_env == "MY_KEY_2"
    for bad in ("sk-proj-abc123secret", "2FAST", "MY KEY", ""):
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, f'[provider]\napi_key_env = "{bad}"\n'))
        message = str(info.value)
        assert "[provider] api_key_env: must be the name of the environment variable" in message
        assert not bad or bad not in message  # a pasted key is not echoed


def test_checking_the_config_does_not_import_textual() -> None:
    import subprocess
    import sys

    code = (
        "import sys, threadline.config as c; c.UIConfig(theme='nord'); "
        "print('textual' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
