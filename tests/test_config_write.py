"""config_write: keys set in config.toml in place, everything else kept, atomic and 0600."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from threadline.config import load_settings
from threadline.config_write import read_config_data, set_config_value, update_config
from threadline.errors import ConfigError

HAND_WRITTEN = """\
# My threadline settings.
[provider]
base_url = "http://old.example/v1"  # the old server
max_retries = 2

[session]
# Keep things a month.
retention_days = 30
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    path.chmod(0o644)
    return path


def test_setting_a_key_keeps_everything_else(config: Path) -> None:
    assert set_config_value("ui", "theme", "nord", config) == config
    text = config.read_text()
    assert text.startswith(HAND_WRITTEN)  # comments, order and other keys as they were
    assert text.endswith('\n[ui]\ntheme = "nord"\n')
    assert load_settings(config).ui.theme == "nord"
    assert mode(config) == 0o600
    # Changing and removing keys of an existing table, in one write.
    update_config(
        {"provider": {"base_url": "http://localhost:11434/v1", "model": "llama3.2"}}, config
    )
    update_config({"provider": {"max_retries": None}}, config)
    settings = load_settings(config)
    assert settings.provider.base_url == "http://localhost:11434/v1"
    assert settings.provider.model == "llama3.2" and settings.provider.max_retries == 3
    text = config.read_text()
    assert "# Keep things a month." in text and "retention_days = 30" in text
    assert "max_retries" not in text and text.count("[provider]") == 1


def test_a_new_file_and_its_directories(private_env: Path) -> None:
    written = set_config_value("ui", "theme", "dracula")  # the default location
    assert written == private_env / "xdg_config_home" / "threadline" / "config.toml"
    assert mode(written) == 0o600 and mode(written.parent) == 0o700
    assert written.read_text().startswith("# threadline configuration")
    assert load_settings().ui.theme == "dracula"
    assert read_config_data() == {"ui": {"theme": "dracula"}}
    # Nothing to remove from a file that does not exist: no file is made.
    other = private_env / "elsewhere" / "config.toml"
    update_config({"provider": {"model": None}}, other)
    assert not other.exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("ui", "theme", "nope", "[ui] theme: unknown theme 'nope'"),
        ("provider", "api_key_env", "sk-secret-123", "[provider] api_key_env: must be the name"),
        ("session", "retention_days", 0, "[session] retention_days:"),
        ("provider", "no_such_key", "x", "[provider] no_such_key: unknown key"),
    ],
)
def test_a_value_threadline_would_refuse_is_refused_and_nothing_changes(
    config: Path, section: str, key: str, value: object, expected: str
) -> None:
    before = config.read_bytes()
    with pytest.raises(ConfigError) as info:
        set_config_value(section, key, value, config)
    message = str(info.value)
    assert message.startswith(f"{config}: ") and expected in message and "\n" not in message
    assert "sk-secret-123" not in message
    assert config.read_bytes() == before and mode(config) == 0o644
    assert sorted(p.name for p in config.parent.iterdir()) == [".config.toml.lock", "config.toml"]


def test_a_file_that_is_not_toml_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[provider\nbase_url = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML.*fix it or move it away"):
        set_config_value("ui", "theme", "nord", path)
    assert path.read_text() == "[provider\nbase_url = 1\n"
    with pytest.raises(ConfigError, match="invalid TOML"):
        read_config_data(path)


def test_a_symlinked_config_is_written_through_the_link(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "threadline.toml"
    real.write_text(HAND_WRITTEN)
    link = tmp_path / "config" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    set_config_value("ui", "theme", "nord", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_settings(real).ui.theme == "nord"
    assert real.read_text().startswith(HAND_WRITTEN)


def test_writers_setting_different_keys_lose_none(config: Path) -> None:
    """Two writers at once (the app remembering a theme while `config init` runs): each key is
    set once, by one of them; every one of them is in the file at the end."""
    keys = {
        "first": [
            ("session", "continue_window_hours", 2.0),
            ("session", "max_sessions", 500),
            ("session", "trash_days", 7),
            ("context", "max_context_tokens", 8000),
            ("context", "keep_recent_messages", 10),
            ("ui", "theme", "nord"),
        ],
        "second": [
            ("memory", "idle_minutes", 10.0),
            ("memory", "max_in_context", 5),
            ("memory", "context_tokens", 400),
            ("memory", "background", False),
            ("provider", "model", "llama3.2"),
            ("provider", "read_timeout", 60.0),
        ],
    }
    errors: list[BaseException] = []

    def write(items: list[tuple[str, str, object]]) -> None:
        try:
            for section, key, value in items:
                set_config_value(section, key, value, config)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(items,)) for items in keys.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = read_config_data(config)
    for section, key, value in keys["first"] + keys["second"]:
        assert data[section][key] == value, (section, key)
    assert data["session"]["retention_days"] == 30  # what was there before, too
    assert [p.name for p in config.parent.iterdir() if p.name.endswith(".tmp")] == []
