"""Other tools' history on this machine, found cheaply: for the app's empty state ("Claude Code
history found: `threadline import claude-code` brings it in").

Only the tools' usual places (each source's `default_path`, which honours their environment
variables) are looked at, and only whether something is there: a directory with at least one
entry, or a non-empty file. Nothing is read or parsed; the caller runs it on a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FoundHistory:
    """A tool whose history is here: its source name (for `threadline import NAME`), label
    and where the history is."""

    source: str
    label: str
    path: Path

    @property
    def command(self) -> str:
        return f"threadline import {self.source}"


def has_history(path: Path) -> bool:
    """Something is there: a directory with at least one entry, or a non-empty file."""
    try:
        if path.is_dir():
            return next(path.iterdir(), None) is not None
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def histories_found() -> list[FoundHistory]:
    """The tools whose history is in its usual place on this machine (cheap: a few stats)."""
    from threadline import sources

    found = []
    for tool in sources.TOOLS:
        if not tool.local:
            continue
        try:
            path = sources.get(tool.source).default_path()
        except (KeyError, ImportError, OSError):
            continue
        if path is not None and has_history(path):
            found.append(FoundHistory(tool.source, tool.label, path))
    return found
