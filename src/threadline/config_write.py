"""Changing config.toml in place: `threadline config init`, the app's setup form and its theme.

Only the keys asked for change: tomlkit keeps every other key, comment and blank line as it was.
The result is checked exactly as threadline reads it (config.load_settings) before anything is
written, so a change that would make the file invalid is refused and the file left alone. The
file is replaced atomically (a temporary file beside it, flushed to disk, then renamed over it)
with mode 0600: a crash leaves the old file or the new one, never half of one. A config.toml
that is a symlink (dotfiles) is written through the link. Writers take turns (an flock on a
`.config.toml.lock` beside the file, where the system has flock), and if anything else (an
editor) changes the file while we edit it, the edit is made again on top of its version.

    set_config_value("ui", "theme", "nord")
    update_config({"provider": {"base_url": url, "model": model, "api_key_env": None}})

Values are TOML scalars (str, int, float, bool); None removes the key.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threadline import paths
from threadline.errors import ConfigError

NEW_FILE_HEADER = (
    "# threadline configuration: see the Configuration section of threadline's README.\n"
    "# `threadline config show` prints the settings in effect and where each comes from.\n"
)
# Rounds of read, change, write when another process keeps changing the file under us.
_ATTEMPTS = 5


def read_config_data(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config file's contents as plain data ({} when there is no file), for showing what
    it sets; the settings in effect are config.load_settings()'s.

    Raises:
        ConfigError: the file cannot be read or is not TOML.
    """
    target = paths.config_path(path)
    text = _read_text(target)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{target}: invalid TOML: {exc}") from None


def set_config_value(
    section: str, key: str, value: Any, path: str | os.PathLike[str] | None = None
) -> Path:
    """Set one key (None: remove it), keeping the rest of the file; returns the file written.

    Raises:
        ConfigError: the file cannot be read or parsed, the new value is not valid (the message
            names the key, as for a hand-written file), or the file cannot be written.
    """
    return update_config({section: {key: value}}, path)


def update_config(
    changes: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str] | None = None
) -> Path:
    """Set (or, with None, remove) keys by section in one atomic write; returns the file.

    Raises:
        ConfigError: as set_config_value.
    """
    shown = paths.config_path(path)
    # Through a symlink: replacing the link itself would cut a dotfiles checkout loose.
    target = Path(os.path.realpath(shown))
    with _writers_take_turns(target):
        return _update(shown, target, changes)


def _update(shown: Path, target: Path, changes: Mapping[str, Mapping[str, Any]]) -> Path:
    for _ in range(_ATTEMPTS):
        before = _read_text(target)
        if before is None and all(v is None for vs in changes.values() for v in vs.values()):
            return shown  # removing keys from a file that does not exist: nothing to do
        after = _apply(before, changes, shown)
        if after == before:
            return shown
        _check(after, shown, target.parent)
        if _write_if_unchanged(target, before, after):
            return shown
    raise ConfigError(f"{shown}: another program keeps changing it; try again")


@contextmanager
def _writers_take_turns(target: Path) -> Iterator[None]:
    """Hold an exclusive flock on `.NAME.lock` beside the file while it is read and replaced,
    so two threadline processes setting different keys never lose one of them."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the check before the rename still applies
        yield
        return
    lock_path = target.parent / f".{target.name}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_text(target: Path) -> str | None:
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{target}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{target}: not UTF-8 text") from None


def _apply(text: str | None, changes: Mapping[str, Mapping[str, Any]], shown: Path) -> str:
    """The file's text with `changes` made, everything else kept as it was."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text) if text is not None else tomlkit.document()
    except TOMLKitError as exc:
        raise ConfigError(f"{shown}: invalid TOML: {exc}; fix it or move it away first") from None
    if text is None or not text.strip():
        for line in NEW_FILE_HEADER.splitlines():
            doc.add(tomlkit.comment(line.removeprefix("# ")))
        doc.add(tomlkit.nl())
    for section, values in changes.items():
        table = doc.get(section)
        if table is None:
            if all(v is None for v in values.values()):
                continue
            table = tomlkit.table()
            doc.add(section, table)
            table = doc[section]
        if not isinstance(table, Mapping):
            raise ConfigError(f"{shown}: [{section}] must be a table")
        for key, value in values.items():
            if value is None:
                if key in table:
                    del table[key]  # type: ignore[attr-defined]
            else:
                table[key] = value  # type: ignore[index]
    return tomlkit.dumps(doc)


def _check(text: str, shown: Path, directory: Path) -> None:
    """Refuse text that threadline would refuse to read (the message names the key)."""
    from threadline.config import load_settings

    probe: Path | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=".config-check-", suffix=".toml", dir=directory)
        probe = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        load_settings(probe)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(str(probe), str(shown))) from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot write: {exc.strerror or exc}") from None
    finally:
        if probe is not None:
            probe.unlink(missing_ok=True)


def _write_if_unchanged(target: Path, before: str | None, text: str) -> bool:
    """Replace the file with `text` (0600) unless it changed since it read as `before`."""
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=".config-", suffix=".toml.tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write: {exc.strerror or exc}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp made it 0600
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if _read_text(target) != before:
            return False  # someone else wrote it meanwhile: start again from theirs
        os.chmod(temp, 0o600)
        os.replace(temp, target)
        _sync_directory(directory)
        return True
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; elsewhere the rename is all there is)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
