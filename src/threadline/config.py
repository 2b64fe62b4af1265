"""Settings: config.toml validated by pydantic, plus the THREADLINE_* environment overrides."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from threadline import paths
from threadline.errors import ConfigError

BASE_URL_ENV = "THREADLINE_BASE_URL"
MODEL_ENV = "THREADLINE_MODEL"
API_KEY_ENV = "THREADLINE_API_KEY"

# Textual's built-in themes (textual.theme.BUILTIN_THEMES; tests/test_config.py keeps the two
# equal), written out so that checking [ui] theme never imports Textual.
THEMES = frozenset(
    {
        "ansi-dark",
        "ansi-light",
        "atom-one-dark",
        "atom-one-light",
        "catppuccin-frappe",
        "catppuccin-latte",
        "catppuccin-macchiato",
        "catppuccin-mocha",
        "dracula",
        "flexoki",
        "gruvbox",
        "monokai",
        "nord",
        "rose-pine",
        "rose-pine-dawn",
        "rose-pine-moon",
        "solarized-dark",
        "solarized-light",
        "textual-dark",
        "textual-light",
        "tokyo-night",
    }
)


def check_env_name(name: str) -> str:
    """`name` if it can name an environment variable (letters, digits, _, not starting with a
    digit); a ValueError saying so otherwise (a key pasted where its variable's name goes)."""
    if not name or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
        raise ValueError(_ENV_NAME_HINT)
    if not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise ValueError(_ENV_NAME_HINT)
    return name


_ENV_NAME_HINT = (
    "must be the name of the environment variable that holds the key (letters, digits and _, "
    "such as OPENAI_API_KEY), never the key itself"
)


def api_key_from_env(name: str | None) -> str | None:
    """The API key held by the environment variable `name` (None: no name, unset or empty)."""
    return (os.environ.get(name) or None) if name else None


class _Section(BaseModel):
    # Schemas are built when settings are first loaded, not at import.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


# Upper bounds: every number read from the config must fit the dates and SQLite integers it
# becomes (a larger one would be an OverflowError traceback at first use, not a clear error).
_DAY = 86400.0
_CENTURY_DAYS = 36525
_MAX_COUNT = 1_000_000_000


class ProviderConfig(_Section):
    """[provider]: an OpenAI-compatible chat completions endpoint."""

    name: str = "openai-compatible"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    connect_timeout: float = Field(default=10.0, gt=0, le=_DAY)
    read_timeout: float = Field(default=120.0, gt=0, le=_DAY)
    max_retries: int = Field(default=3, ge=0, le=10)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)


# An automatic cleanup that would move more than this many sessions asks first (the app), or
# only reports (`threadline cleanup` with no terminal, unless given --yes).
CLEANUP_ASK_ABOVE = 10


class SessionConfig(_Section):
    """[session]: continuity window, retention and the trash."""

    continue_window_hours: float = Field(default=4.0, ge=0, le=_CENTURY_DAYS * 24)
    retention_days: int = Field(default=90, ge=1, le=_CENTURY_DAYS)
    max_sessions: int = Field(default=1000, ge=1, le=_MAX_COUNT)
    auto_cleanup: bool = True
    # Retention applies to sessions imported or captured from other tools too (off: only to
    # the ones threadline wrote itself).
    cleanup_imported: bool = False
    trash_days: int = Field(default=30, ge=0, le=_CENTURY_DAYS)


class ContextConfig(_Section):
    """[context]: how much of a session is sent to the model."""

    max_context_tokens: int = Field(default=16000, ge=256, le=_MAX_COUNT)
    keep_recent_messages: int = Field(default=20, ge=1, le=_MAX_COUNT)
    # Summarise older messages when a request would not fit (off: only trim the oldest).
    # The file's key keeps the spelling it was documented with.
    auto_summarise: bool = Field(default=True, alias="auto_summarize")
    # The model that writes summaries (None: the session's model).
    summary_model: str | None = None


class MemoryConfig(_Section):
    """[memory]: project memories, extracted from sessions and given to new ones."""

    # Master switch: memories in new sessions' context and automatic extraction.
    enabled: bool = True
    # Extract automatically from idle and closed sessions (on demand works either way).
    extraction: bool = True
    # A session counts as idle this long after its last message.
    idle_minutes: float = Field(default=30.0, gt=0, le=_CENTURY_DAYS * 24 * 60)
    # At most this many memories, within this many tokens, open a new session's context.
    max_in_context: int = Field(default=30, ge=0, le=1000)
    context_tokens: int = Field(default=800, ge=0, le=_MAX_COUNT)
    # The model that extracts memories (None: the session's model).
    model: str | None = None
    # After `threadline chat`, process due extractions in a detached background process.
    background: bool = True


class UIConfig(_Section):
    """[ui]: the Textual app."""

    theme: str = "textual-dark"

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, value: str) -> str:
        if value not in THEMES:
            raise ValueError(f"unknown theme {value!r} (themes: {', '.join(sorted(THEMES))})")
        return value


class SyncConfig(_Section):
    """[sync]: sync between machines (set up with `threadline sync init`)."""

    # The app syncs at start-up and then every this many minutes (0: only by `threadline sync`).
    interval_minutes: float = Field(default=5.0, ge=0)
    # age public keys (age1... or ssh-ed25519 ...): journal files are encrypted to them.
    recipients: list[str] = Field(default_factory=list)
    # A local age identity file that decrypts other machines' encrypted journal files.
    identity: str | None = None


class SourcesConfig(_Section):
    """[sources]: coding agents' histories followed live (capture; see threadline.capture).

    Each is true (take its sessions in at start-up, while the app runs and on `threadline
    capture`), false (never), or absent: not decided, and the app asks once when the history
    exists. The paths default to where each tool keeps its sessions."""

    claude_code: bool | None = None
    codex: bool | None = None
    claude_code_path: str | None = None
    codex_path: str | None = None


class Settings(_Section):
    """The whole configuration file."""

    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    ui: UIConfig = Field(default_factory=UIConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file these settings were read from (None: built-in defaults)."""
        return self._source

    def effective_provider(self) -> ProviderSettings:
        """The provider settings after the THREADLINE_* environment overrides."""
        return ProviderSettings.from_config(self.provider)


class ProviderSettings(BaseModel):
    """What a provider needs at run time (never stored in the database)."""

    name: str
    base_url: str | None
    model: str | None
    api_key: str | None = Field(default=None, repr=False)
    connect_timeout: float
    read_timeout: float
    max_retries: int

    @property
    def configured(self) -> bool:
        """A provider can be reached (its URL is known); the model may come from a session."""
        return bool(self.base_url)

    @classmethod
    def from_config(cls, cfg: ProviderConfig) -> ProviderSettings:
        env = os.environ
        key = env.get(API_KEY_ENV) or api_key_from_env(cfg.api_key_env)
        return cls(
            name=cfg.name,
            base_url=env.get(BASE_URL_ENV) or cfg.base_url,
            model=env.get(MODEL_ENV) or cfg.model,
            api_key=key or None,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_retries=cfg.max_retries,
        )


def provider_env_sources(cfg: ProviderConfig) -> dict[str, str]:
    """The environment variables supplying [provider] settings now (setting -> variable), by
    the rules of ProviderSettings.from_config: base_url and model when THREADLINE_BASE_URL /
    THREADLINE_MODEL are set, api_key when a key is found (THREADLINE_API_KEY, else the
    variable named by api_key_env). For `config show`; never the values themselves."""
    env = os.environ
    out = {}
    if env.get(BASE_URL_ENV):
        out["base_url"] = BASE_URL_ENV
    if env.get(MODEL_ENV):
        out["model"] = MODEL_ENV
    if env.get(API_KEY_ENV):
        out["api_key"] = API_KEY_ENV
    elif cfg.api_key_env and env.get(cfg.api_key_env):
        out["api_key"] = cfg.api_key_env
    return out


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if len(loc) >= 2:
        where = f"[{loc[0]}] {'.'.join(loc[1:])}"
    elif loc:
        where = loc[0]
    else:
        where = "(top level)"
    msg = first["msg"]
    if first["type"] == "value_error" and first.get("ctx", {}).get("error") is not None:
        msg = str(first["ctx"]["error"])  # our own validators' words, without "Value error, "
    elif first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] in ("model_type", "dict_type") and len(loc) == 1:
        msg = "must be a table"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{where}: {msg}{more}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config file; a missing file means defaults.

    Raises:
        ConfigError: one line naming the file and the offending key.
    """
    cfg_path = paths.config_path(path)
    try:
        raw = cfg_path.read_bytes()
    except FileNotFoundError:
        if path is not None:
            raise ConfigError(f"{cfg_path}: no such config file") from None
        return Settings()
    except IsADirectoryError:
        raise ConfigError(f"{cfg_path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read: {exc.strerror}") from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{cfg_path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: invalid TOML: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{cfg_path}: {_describe(exc)}") from None
    settings._source = cfg_path
    return settings
