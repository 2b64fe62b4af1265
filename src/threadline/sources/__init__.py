"""Readers of other tools' histories: each turns one tool's files into `IncomingSession` batches.

Every source has the same small interface (`Source`): a name, whether its files grow while the
tool runs (`live`), where the tool keeps them (`default_path`), which files under a path it
reads (`discover`; a `.gz` copy of such a file too, read as what it holds) and the reader
itself (`read`). Sources never write SQL: the store's loader (`Store.load_history`) takes what
they yield (see `threadline.records` for the contract).

This package is cheap to import: each source module, and the parsers it needs (orjson, ijson,
zipfile, sqlite3), is imported only when `get(name)` is called.

What a loader can count on, beyond records.py:

- One `read` yields a session's batches in order; a long live file comes in several batches
  of the same `source_id`, each with a mark that is a safe place to stop (a read interrupted
  after any batch and started again from its mark loses nothing and adds nothing twice).
- A live file re-read from its mark re-sends its last, possibly incomplete, message group under
  the same keys (a reply still streaming, a Task call whose subagent is still running, a
  command awaiting its output); everything before the mark's resume point is final.
- A batch with no messages carries only a newer mark (bookkeeping lines were appended).
- `title=None` means "no title known", not "clear the title"; `title_only` batches carry no
  mark and name a session that may be loaded from another file.
- A summary is sent once per file: the keys already sent travel in the mark, so only a read
  whose mark was not saved (a crash) can send one again, with the same first/last keys.
- Sources that record no working directory use `working_dir`, else the current directory.
- A `Source` instance may be kept between reads (live capture); the Claude Code reader keeps
  an index of each folder's session ends there to resolve `summary` titles.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from threadline.records import FileMark, IncomingSession, SourceFormatError
from threadline.source_table import BY_SOURCE, TOOLS, Tool

__all__ = ["BY_SOURCE", "TOOLS", "Source", "SourceFormatError", "Tool", "get", "names"]


_MODULES: dict[str, str] = {tool.source: tool.module for tool in TOOLS}


@runtime_checkable
class Source(Protocol):
    """One outside history's reader."""

    name: str
    live: bool  # its files grow while the tool runs (read them again with the saved FileMark)

    def default_path(self) -> Path | None:
        """Where the tool keeps its history on this machine (None for exports)."""
        ...

    def discover(self, path: Path) -> Iterator[Path]:
        """The files to read under `path` (a file is itself), in a stable order."""
        ...

    def read(
        self,
        path: Path,
        *,
        mark: FileMark | None = None,
        working_dir: str | None = None,
    ) -> Iterator[IncomingSession]:
        """Yield the sessions in `path` (or, with `mark`, what was added since).

        `working_dir` is used for sources that record none. Raises SourceFormatError (one line
        naming the file and where) for a file that is not what it claims or a corrupt record.
        """
        ...


def names() -> tuple[str, ...]:
    """The source names `get` accepts."""
    return tuple(_MODULES)


def get(name: str) -> Source:
    """A fresh reader for the source called `name` ("claude-code", "codex", ...)."""
    try:
        module = _MODULES[name]
    except KeyError:
        known = ", ".join(_MODULES)
        raise KeyError(f"unknown source {name!r} (known: {known})") from None
    mod = importlib.import_module(f"threadline.sources.{module}")
    source: Source = mod.make_source()
    return source
