"""Where threadline keeps its files: platformdirs locations, overridable by flags and env."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "threadline"
DB_ENV = "THREADLINE_DB"
CONFIG_ENV = "THREADLINE_CONFIG"


def data_dir() -> Path:
    """The per-user data directory (holds the database)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The per-user configuration directory (holds config.toml)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def db_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The database: `--db PATH`, else `THREADLINE_DB`, else data_dir()/threadline.db."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    return data_dir() / "threadline.db"


def config_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The config file: `--config PATH`, else `THREADLINE_CONFIG`, else config_dir()/config.toml."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return config_dir() / "config.toml"


def resolve_dir(path: str | os.PathLike[str] | None = None) -> str:
    """An absolute, resolved directory path as stored in sessions.working_dir (default: cwd)."""
    return str(Path(path if path is not None else os.getcwd()).expanduser().resolve())


def workspace_root(directory: str | os.PathLike[str]) -> str:
    """The git repository root that contains `directory`, or the directory itself outside git."""
    start = Path(resolve_dir(directory))
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return str(candidate)
    return str(start)


def home_short(path: str) -> str:
    """`path` with the home directory shortened to `~` (for display only)."""
    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path
