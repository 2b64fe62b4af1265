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


def default_db_path() -> Path:
    """The database when neither `--db` nor `THREADLINE_DB` names one."""
    return data_dir() / "threadline.db"


def db_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The database: `--db PATH`, else `THREADLINE_DB`, else data_dir()/threadline.db."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    return default_db_path()


def may_create_parent(db_file: Path) -> bool:
    """Only the default location has its directory made on demand: a mistyped `--db` or
    `THREADLINE_DB` whose directory does not exist is an error, not a new database."""
    try:
        return db_file.absolute() == default_db_path().absolute()
    except OSError:
        return False


def missing_directory(db_file: Path) -> str | None:
    """Why `db_file` cannot be opened or created where it is (None: its directory is there, or
    it is the default location, whose directory is made on demand)."""
    parent = db_file.parent
    if parent.is_dir() or may_create_parent(db_file):
        return None
    if parent.exists():
        return f"{parent}: not a directory"
    return f"{parent}: no such directory (create it first, or fix the path)"


def make_private_dirs(directory: str | os.PathLike[str]) -> None:
    """Create `directory` and any missing parents, each private to the user (0700), whatever
    the umask (Path.mkdir(parents=True) would leave the parents to the umask)."""
    target = Path(directory).absolute()
    missing = []
    for level in (target, *target.parents):
        if level.exists():
            break
        missing.append(level)
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            if not level.is_dir():
                raise
            continue  # made meanwhile by another process: leave its mode alone
        os.chmod(level, 0o700)  # mkdir's mode is masked by the umask


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
