"""Settings: config.toml, checked key by key, plus the THREADLINE_* environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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


class _Invalid(ValueError):
    """One or more settings failed their checks: (where, what) pairs, `where` a key path."""

    def __init__(self, errors: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__(errors[0][1])
        self.errors = errors


_MISSING: Any = object()


class Setting:
    """One key of a section: its kind, default, bounds and the spelling the file uses.

    Plain Python rather than pydantic: the app and every command read the settings before
    anything else, and pydantic's import alone cost more than the rest of the app's start-up.
    The checks follow pydantic's lax mode for what TOML can hold (an integral float is an int,
    an int is a float; bools are never numbers) and its words for the errors."""

    def __init__(
        self,
        kind: type,
        default: Any = _MISSING,
        *,
        factory: Callable[[], Any] | None = None,
        optional: bool = False,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
        alias: str | None = None,
        check: Callable[[Any], Any] | None = None,
    ) -> None:
        self.kind = kind
        self.default = default
        self.factory = factory
        self.optional = optional
        self.gt, self.ge, self.le = gt, ge, le
        self.alias = alias
        self.check = check

    def initial(self) -> Any:
        return self.factory() if self.factory is not None else self.default

    def convert(self, value: Any) -> Any:
        """`value` as this setting holds it; a ValueError with pydantic's words if it cannot."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(_TYPE_WORDS[self.kind])
        kind = self.kind
        if isinstance(kind, type) and issubclass(kind, _Section):
            if isinstance(value, kind):
                return value
            if not isinstance(value, dict):
                raise ValueError("must be a table")
            return kind.model_validate(value)
        if kind is bool:
            value = _as_bool(value)
        elif kind is int:
            value = _as_int(value)
        elif kind is float:
            value = _as_float(value)
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError(_TYPE_WORDS[str])
        elif kind is list:
            if not isinstance(value, list):
                raise ValueError(_TYPE_WORDS[list])
            bad: list[tuple[tuple[str, ...], str]] = [
                ((str(i),), _TYPE_WORDS[str]) for i, v in enumerate(value) if not isinstance(v, str)
            ]
            if bad:
                raise _Invalid(bad)
            value = list(value)
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"Input should be greater than {_num(self.gt)}")
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"Input should be greater than or equal to {_num(self.ge)}")
        if self.le is not None and not value <= self.le:
            raise ValueError(f"Input should be less than or equal to {_num(self.le)}")
        return self.check(value) if self.check is not None else value


_TYPE_WORDS: dict[type, str] = {
    bool: "Input should be a valid boolean",
    int: "Input should be a valid integer",
    float: "Input should be a valid number",
    str: "Input should be a valid string",
    list: "Input should be a valid list",
}


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"{_TYPE_WORDS[bool]}, unable to interpret input")
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(f"{_TYPE_WORDS[bool]}, unable to interpret input")
    raise ValueError(_TYPE_WORDS[bool])


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(_TYPE_WORDS[int])
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{_TYPE_WORDS[int]}, got a number with a fractional part")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"{_TYPE_WORDS[int]}, unable to parse string as an integer") from None
    raise ValueError(_TYPE_WORDS[int])


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(_TYPE_WORDS[float])
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"{_TYPE_WORDS[float]}, unable to parse string as a number") from None
    raise ValueError(_TYPE_WORDS[float])


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


class _Section:
    """A table of the config file: its keys (`model_fields`) are checked on construction and on
    assignment; unknown keys are refused."""

    model_fields: ClassVar[dict[str, Setting]] = {}

    def __init__(self, **values: Any) -> None:
        errors: list[tuple[tuple[str, ...], str]] = []
        by_key = {spec.alias or name: name for name, spec in self.model_fields.items()}
        given: dict[str, Any] = {}
        for key, value in values.items():
            name = by_key.get(key)  # a key with an alias is known by its alias only
            if name is None:
                errors.append(((key,), "unknown key"))
            else:
                given[name] = value
        for name, spec in self.model_fields.items():
            if name in given:
                try:
                    value = spec.convert(given[name])
                except _Invalid as exc:
                    errors.extend(
                        ((spec.alias or name, *where), what) for where, what in exc.errors
                    )
                    continue
                except ValueError as exc:
                    errors.append(((spec.alias or name,), str(exc)))
                    continue
            else:
                value = spec.initial()
            object.__setattr__(self, name, value)
        if errors:
            raise _Invalid(errors)

    @classmethod
    def model_validate(cls: type[_S], data: dict[str, Any]) -> _S:
        return cls(**data)

    @classmethod
    def model_construct(cls: type[_S], **values: Any) -> _S:
        """Made without any check (tests build impossible settings this way)."""
        made = cls.__new__(cls)
        for name, spec in cls.model_fields.items():
            object.__setattr__(made, name, values[name] if name in values else spec.initial())
        return made

    def model_dump(self) -> dict[str, Any]:
        """The settings as plain data (sections as dicts)."""
        out = {}
        for name in self.model_fields:
            value = getattr(self, name)
            out[name] = value.model_dump() if isinstance(value, _Section) else value
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        spec = self.model_fields.get(name)
        if spec is None:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        try:
            object.__setattr__(self, name, spec.convert(value))
        except _Invalid as exc:
            raise ValueError(f"{spec.alias or name}: {exc.errors[0][1]}") from None
        except ValueError as exc:
            raise ValueError(f"{spec.alias or name}: {exc}") from None

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.model_fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.model_fields)
        return f"{type(self).__name__}({values})"


_S = TypeVar("_S", bound=_Section)


# Upper bounds: every number read from the config must fit the dates and SQLite integers it
# becomes (a larger one would be an OverflowError traceback at first use, not a clear error).
_DAY = 86400.0
_CENTURY_DAYS = 36525
_MAX_COUNT = 1_000_000_000


def _env_name(value: str) -> str:
    return check_env_name(value)


def _known_theme(value: str) -> str:
    if value not in THEMES:
        raise ValueError(f"unknown theme {value!r} (themes: {', '.join(sorted(THEMES))})")
    return value


class ProviderConfig(_Section):
    """[provider]: an OpenAI-compatible chat completions endpoint."""

    name: str
    base_url: str | None
    model: str | None
    api_key_env: str | None
    connect_timeout: float
    read_timeout: float
    max_retries: int
    model_fields = {
        "name": Setting(str, "openai-compatible"),
        "base_url": Setting(str, None, optional=True),
        "model": Setting(str, None, optional=True),
        "api_key_env": Setting(str, None, optional=True, check=_env_name),
        "connect_timeout": Setting(float, 10.0, gt=0, le=_DAY),
        "read_timeout": Setting(float, 120.0, gt=0, le=_DAY),
        "max_retries": Setting(int, 3, ge=0, le=10),
    }


# An automatic cleanup that would move more than this many sessions asks first (the app), or
# only reports (`threadline cleanup` with no terminal, unless given --yes).
CLEANUP_ASK_ABOVE = 10


class SessionConfig(_Section):
    """[session]: continuity window, retention and the trash."""

    continue_window_hours: float
    retention_days: int
    max_sessions: int
    auto_cleanup: bool
    cleanup_imported: bool
    trash_days: int
    model_fields = {
        "continue_window_hours": Setting(float, 4.0, ge=0, le=_CENTURY_DAYS * 24),
        "retention_days": Setting(int, 90, ge=1, le=_CENTURY_DAYS),
        "max_sessions": Setting(int, 1000, ge=1, le=_MAX_COUNT),
        "auto_cleanup": Setting(bool, True),
        # Retention applies to sessions imported or captured from other tools too (off: only to
        # the ones threadline wrote itself).
        "cleanup_imported": Setting(bool, False),
        "trash_days": Setting(int, 30, ge=0, le=_CENTURY_DAYS),
    }


class ContextConfig(_Section):
    """[context]: how much of a session is sent to the model."""

    max_context_tokens: int
    keep_recent_messages: int
    auto_summarise: bool
    summary_model: str | None
    model_fields = {
        "max_context_tokens": Setting(int, 16000, ge=256, le=_MAX_COUNT),
        "keep_recent_messages": Setting(int, 20, ge=1, le=_MAX_COUNT),
        # Summarise older messages when a request would not fit (off: only trim the oldest).
        # The file's key keeps the spelling it was documented with.
        "auto_summarise": Setting(bool, True, alias="auto_summarize"),
        # The model that writes summaries (None: the session's model).
        "summary_model": Setting(str, None, optional=True),
    }


class MemoryConfig(_Section):
    """[memory]: project memories, extracted from sessions and given to new ones."""

    enabled: bool
    extraction: bool
    idle_minutes: float
    max_in_context: int
    context_tokens: int
    model: str | None
    background: bool
    model_fields = {
        # Master switch: memories in new sessions' context and automatic extraction.
        "enabled": Setting(bool, True),
        # Extract automatically from idle and closed sessions (on demand works either way).
        "extraction": Setting(bool, True),
        # A session counts as idle this long after its last message.
        "idle_minutes": Setting(float, 30.0, gt=0, le=_CENTURY_DAYS * 24 * 60),
        # At most this many memories, within this many tokens, open a new session's context.
        "max_in_context": Setting(int, 30, ge=0, le=1000),
        "context_tokens": Setting(int, 800, ge=0, le=_MAX_COUNT),
        # The model that extracts memories (None: the session's model).
        "model": Setting(str, None, optional=True),
        # After `threadline chat`, process due extractions in a detached background process.
        "background": Setting(bool, True),
    }


class UIConfig(_Section):
    """[ui]: the Textual app."""

    theme: str
    model_fields = {"theme": Setting(str, "textual-dark", check=_known_theme)}


class SyncConfig(_Section):
    """[sync]: sync between machines (set up with `threadline sync init`)."""

    interval_minutes: float
    recipients: list[str]
    identity: str | None
    model_fields = {
        # The app syncs at start-up and then every this many minutes (0: only by `sync`).
        "interval_minutes": Setting(float, 5.0, ge=0),
        # age public keys (age1... or ssh-ed25519 ...): journal files are encrypted to them.
        "recipients": Setting(list, factory=list),
        # A local age identity file that decrypts other machines' encrypted journal files.
        "identity": Setting(str, None, optional=True),
    }


class SourcesConfig(_Section):
    """[sources]: coding agents' histories followed live (capture; see threadline.capture).

    Each is true (take its sessions in at start-up, while the app runs and on `threadline
    capture`), false (never), or absent: not decided, and the app asks once when the history
    exists. The paths default to where each tool keeps its sessions."""

    claude_code: bool | None
    codex: bool | None
    claude_code_path: str | None
    codex_path: str | None
    model_fields = {
        "claude_code": Setting(bool, None, optional=True),
        "codex": Setting(bool, None, optional=True),
        "claude_code_path": Setting(str, None, optional=True),
        "codex_path": Setting(str, None, optional=True),
    }


class Settings(_Section):
    """The whole configuration file."""

    provider: ProviderConfig
    session: SessionConfig
    context: ContextConfig
    memory: MemoryConfig
    ui: UIConfig
    sync: SyncConfig
    sources: SourcesConfig
    model_fields = {
        "provider": Setting(ProviderConfig, factory=ProviderConfig),
        "session": Setting(SessionConfig, factory=SessionConfig),
        "context": Setting(ContextConfig, factory=ContextConfig),
        "memory": Setting(MemoryConfig, factory=MemoryConfig),
        "ui": Setting(UIConfig, factory=UIConfig),
        "sync": Setting(SyncConfig, factory=SyncConfig),
        "sources": Setting(SourcesConfig, factory=SourcesConfig),
    }

    _source: Path | None = None

    @property
    def source(self) -> Path | None:
        """The file these settings were read from (None: built-in defaults)."""
        return self._source

    def effective_provider(self) -> ProviderSettings:
        """The provider settings after the THREADLINE_* environment overrides."""
        return ProviderSettings.from_config(self.provider)


@dataclass(kw_only=True)
class ProviderSettings:
    """What a provider needs at run time (never stored in the database)."""

    name: str
    base_url: str | None
    model: str | None
    api_key: str | None = field(default=None, repr=False)
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


def _describe(err: _Invalid) -> str:
    loc, msg = err.errors[0]
    if len(loc) >= 2:
        where = f"[{loc[0]}] {'.'.join(loc[1:])}"
    elif loc:
        where = loc[0]
    else:
        where = "(top level)"
    more = f" (and {len(err.errors) - 1} more)" if len(err.errors) > 1 else ""
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
    except _Invalid as exc:
        raise ConfigError(f"{cfg_path}: {_describe(exc)}") from None
    object.__setattr__(settings, "_source", cfg_path)
    return settings
