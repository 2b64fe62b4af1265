"""Bringing another tool's history in: find its files, read each from where the last read
stopped, load what is new. No Textual, no argparse: the `threadline import` commands and live
capture (the app, `threadline capture`) share it.

API::

    summary = await import_source(
        store, "claude-code", path=None,          # None: the source's default_path()
        working_dir="/home/me/proj",              # for sources that record none (else cwd)
        dry_run=False,
        progress=lambda p: ...,                   # ImportProgress, on the event loop
        on_file_error=lambda path, message: ...,  # a bad file in a directory (reader thread)
        source=None,                              # a Source kept between runs (capture)
    )
    summary.sessions, summary.updated, summary.messages, summary.skipped, summary.errors

What happens to a file:

- Every file read is noted (a FileMark saved in the same transaction as the last of what was
  read from it). A file whose size and modification time are still those of its mark is not
  opened at all (re-scanning an unchanged tree is a `stat` per file; an unchanged export or
  logs.db the same) and its sessions count as skipped. Live sources (Claude Code, Codex) read a
  grown file from its mark, so only new records are added; the others read a changed file
  whole (a database's `-wal` beside it counts as a change), and sessions and messages already
  present are recognised by their source ids and keys, so nothing is added twice.
- A file is read to its end before any of it is loaded: a file that is not what it claims, or
  holds a corrupt record, is refused whole (none of its sessions go in). A file up to
  BUFFER_BYTES is read once and held; a larger one (a big export) is read once to check it and
  again to load it, so memory stays flat.
- One file named by `path`: a refused file raises SourceFormatError (one line naming the file
  and where) before the database is touched. A directory: each bad file is reported to
  `on_file_error` and listed in `summary.errors`; the other files go in. Each session is
  written atomically with its file mark, in short transactions (`Store.load_history`), so the
  app and other commands keep writing while an import runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadline.errors import ThreadlineError
from threadline.records import FileMark, IncomingSession, SourceFormatError

if TYPE_CHECKING:
    from threadline.sources import Source
    from threadline.store import LoadReport, Store, StoreError

__all__ = [
    "BUFFER_BYTES",
    "ImportPathError",
    "ImportProgress",
    "ImportSummary",
    "import_source",
    "find_files",
]

# A file up to this size is read once and its sessions held in memory until it has been read
# to the end; a larger one is read twice (a check, then the load) to keep memory flat.
BUFFER_BYTES = 8 << 20


class ImportPathError(ThreadlineError):
    """There is nothing to import where the person pointed (no such path, no files)."""


@dataclass
class ImportProgress:
    """How far an import has gone; handed to `progress` on the event loop."""

    phase: str  # "checking" (a large single file read before loading) or "loading"
    files_total: int
    files_done: int  # files read (or skipped as unchanged)
    bytes_total: int
    bytes_done: int
    messages: int  # messages added so far
    sessions: int  # new sessions so far
    read: int = 0  # messages read from the files so far (ahead of `messages`)


@dataclass
class ImportSummary:
    """What an import did (or, with dry_run, would do)."""

    source: str
    path: str
    working_dir: str
    dry_run: bool = False
    files: int = 0  # files found
    unchanged: int = 0  # files not opened: unchanged since they were last read
    sessions: int = 0  # new sessions
    updated: int = 0  # sessions already present that gained or changed messages
    messages: int = 0  # messages added
    skipped: int = 0  # sessions already present and unchanged
    replaced: int = 0  # present messages whose content changed (a reply still streaming)
    summaries: int = 0  # compactions added as summaries
    titled: int = 0  # present sessions given a title
    errors: list[str] = field(default_factory=list)  # one line per refused file or session
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failed"] = self.failed
        return out


ProgressFn = Callable[[ImportProgress], None]
FileErrorFn = Callable[[str, str], None]


def resolve_path(source: Source, path: str | os.PathLike[str] | None) -> Path:
    """The path to import from: `path`, else the source's default; it must exist."""
    if path is None:
        default = source.default_path()
        if default is None:
            raise ImportPathError(f"{source.name}: give the export file to import")
        if not default.exists():
            raise ImportPathError(
                f"{source.name}: nothing at its default location {default} (give a PATH)"
            )
        return default
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.exists():
        raise ImportPathError(f"{os.fspath(path)}: no such file or directory")
    return p


def find_files(source: Source, path: Path) -> list[tuple[Path, os.stat_result]]:
    """The files the source reads under `path`, with their stat, in a stable order."""
    out = []
    for found in source.discover(path):
        try:
            out.append((found, found.stat()))
        except FileNotFoundError:  # gone since it was listed (Claude Code's clean-up)
            continue
        except OSError as exc:
            raise ImportPathError(f"{found}: cannot read it ({exc.strerror or exc})") from None
    return out


def _content_size(path: Path, size: int) -> int:
    """About how many bytes the file holds (more than `size` for a .gz file)."""
    from threadline.sources._common import content_size

    return content_size(path, size)


WHOLE = "whole"  # a mark's fingerprint prefix: a file read whole (an export, a database)


def _whole_fingerprint(path: Path) -> str:
    """What says a file read whole is unchanged, beyond its own size and time: a SQLite
    database's write-ahead log beside it (llm's logs.db may be in WAL mode)."""
    try:
        wal = os.stat(f"{path}-wal")
    except OSError:
        return WHOLE
    return f"{WHOLE}:{wal.st_size}:{wal.st_mtime_ns}"


def _unchanged(
    source: Source, path: Path, mark: FileMark | None, st: os.stat_result | None = None
) -> bool:
    """A file read before and not touched since: reading it again would add nothing."""
    if mark is None:
        return False
    if st is None:
        try:
            st = path.stat()
        except OSError:
            return False
    if st.st_size != mark.size or st.st_mtime_ns != mark.mtime_ns:
        return False
    if not source.live:
        return mark.fingerprint == _whole_fingerprint(path)
    # Claude Code keeps a session's subagent transcripts beside it; one that grew may still
    # change the call that started it.
    from threadline.sources._common import plain_path

    sub = plain_path(path).with_suffix("") / "subagents"
    if sub.is_dir():
        try:
            for f in sub.iterdir():
                if f.stat().st_mtime_ns > mark.mtime_ns:
                    return False
        except OSError:
            return False
    return True


def _with_whole_mark(
    batches: Iterator[IncomingSession], mark: FileMark
) -> Iterator[IncomingSession]:
    """The batches, the last one (not a title) carrying `mark`: a file read whole is noted
    in the same transaction as its last session, so an unchanged file is not read again."""
    held: IncomingSession | None = None
    for batch in batches:
        if batch.title_only or batch.mark is not None:
            yield batch
            continue
        if held is not None:
            yield held
        held = batch
    if held is not None:
        held.mark = mark
        yield held


class _Feed:
    """The batches of every file, read on the loader's reading thread, a file at a time."""

    def __init__(
        self,
        source: Source,
        files: list[tuple[Path, os.stat_result]],
        marks: dict[str, FileMark],
        working_dir: str,
        on_file_error: Callable[[str, str], None],
    ) -> None:
        self.source = source
        self.files = files
        self.marks = marks
        self.working_dir = working_dir
        self.on_file_error = on_file_error
        self.files_done = 0
        self.bytes_done = 0
        self.unchanged_sessions: set[str] = set()  # of unchanged live files
        self.unchanged_counted = 0  # sessions of unchanged files read whole
        self.unchanged_files = 0
        self.todo: list[tuple[Path, os.stat_result]] = list(files)
        self.paths: dict[int, str] = {}  # id(batch) -> its file, for the loader's refusals
        self.read_messages = 0
        # For each batch with a mark, in order: the bytes of the import up to where it ends.
        # The loader counts the marks it has saved, so this says how far the writing has got
        # (reading runs ahead of it by up to the loader's pipe).
        self.marked: list[int] = []

    def mark_of(self, path: Path) -> FileMark | None:
        """The saved mark of a file (marks are by resolved path; the import's root is
        resolved, so a path found under it usually is too: resolving each costs a stat of
        every directory above it)."""
        if not self.marks:
            return None
        return self.marks.get(str(path)) or self.marks.get(str(path.resolve()))

    def read(self, path: Path, mark: FileMark | None) -> Iterator[IncomingSession]:
        for batch in self.source.read(path, mark=mark, working_dir=self.working_dir):
            self.read_messages += len(batch.messages)
            yield batch

    def held(self, path: Path, size: int) -> int:
        """What a file of `size` bytes holds as its marks count it: for a live source's `.gz`
        file, its contents (marks are offsets in them); else `size`."""
        return _content_size(path, size) if self.source.live else size

    def checked(self, path: Path, size: int) -> Iterator[IncomingSession]:
        """The file's batches, once it has been read to the end without a fault (`size`: what
        it holds, `held`).

        Raises SourceFormatError for a bad file, FileNotFoundError for one that went away.
        """
        if not self.source.live:
            return self._checked_whole(path)
        mark = self.mark_of(path)
        # A grown live file is read from its mark: only what was added counts.
        new = size - mark.offset if mark is not None and 0 <= mark.offset <= size else size
        if new <= BUFFER_BYTES:
            return iter(list(self.read(path, mark)))
        seen = self.read_messages
        for _ in self.read(path, mark):  # check it whole, holding nothing
            pass
        self.read_messages = seen
        return self.read(path, mark)

    def _checked_whole(self, path: Path) -> Iterator[IncomingSession]:
        st = path.stat()  # before reading: a change while it is read shows next time
        ids: set[str] = set()

        def mark() -> FileMark:
            return FileMark(
                path=str(path.resolve()),
                source=self.source.name,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                offset=st.st_size,
                fingerprint=_whole_fingerprint(path),
                state={"sessions": len(ids)},
            )

        if _content_size(path, st.st_size) <= BUFFER_BYTES:
            batches = list(self.read(path, None))
            ids.update(b.source_id for b in batches if not b.title_only)
            return _with_whole_mark(iter(batches), mark())
        seen = self.read_messages
        for batch in self.read(path, None):  # check it whole, holding nothing
            if not batch.title_only:
                ids.add(batch.source_id)
        self.read_messages = seen
        return _with_whole_mark(self.read(path, None), mark())

    def sort_out(self) -> None:
        """Set aside the files unchanged since their marks (a stat each): what is left to read
        goes in `todo`. Run before iterating."""
        self.todo = []
        for path, st in self.files:
            mark = self.mark_of(path)
            if mark is None or not _unchanged(self.source, path, mark, st):
                self.todo.append((path, st))
                continue
            self.unchanged_files += 1
            self.files_done += 1
            self.bytes_done += st.st_size
            state = mark.state if isinstance(mark.state, dict) else {}
            if not self.source.live:
                self.unchanged_counted += int(state.get("sessions") or 0)
            else:
                ctx = state.get("ctx")
                sid = ctx.get("sid") if isinstance(ctx, dict) else None
                self.unchanged_sessions.add(str(sid) if sid else str(path))

    def __iter__(self) -> Iterator[IncomingSession]:
        # A Claude Code `summary` line titles the session its leaf belongs to, often another
        # file's; the loader ignores a title for a session not loaded yet, so titles go last.
        titles: list[IncomingSession] = []
        for path, st in self.todo:
            size = st.st_size
            held = self.held(path, size)
            try:
                for batch in self.checked(path, held):
                    if batch.title_only:  # names a session that may come in a later file
                        titles.append(batch)
                        continue
                    self.paths[id(batch)] = str(path)
                    if batch.mark is not None:
                        done = min(batch.mark.offset * size // max(held, 1), size)
                        self.marked.append(self.bytes_done + done)
                    yield batch
            except SourceFormatError as exc:
                self.on_file_error(str(path), str(exc))
            except FileNotFoundError:
                pass  # deleted while the import ran: what was taken in before stays
            except OSError as exc:
                self.on_file_error(str(path), f"{path}: cannot read it ({exc.strerror})")
            self.files_done += 1
            self.bytes_done += size
        yield from titles


async def import_source(
    store: Store,
    source_name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    working_dir: str | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    on_file_error: FileErrorFn | None = None,
    source: Source | None = None,
) -> ImportSummary:
    """Import `source_name`'s history from `path` (a file or a directory; None: its default).

    Args:
        store: the open store to load into.
        source_name: a name from `threadline.sources.names()`.
        path: a file or directory; None for the source's default location.
        working_dir: the directory given to sessions of sources that record none (ChatGPT,
            Claude.ai, llm, Gemini CLI); the current directory when None. Must exist.
        dry_run: count what would be added, write nothing.
        progress: called on the event loop as the import goes on.
        on_file_error: called (from the reading thread) with (path, one-line message) for each
            file of a directory that is refused; the others still go in.
        source: a reader instance to reuse (live capture keeps one between runs).

    Returns:
        The counts (sessions, updated, messages, skipped ...) and the refused files' errors.

    Raises:
        ImportPathError: no such path, no default location, the working_dir is missing.
        SourceFormatError: `path` is one file and it is refused (nothing was written).
        StoreError: the database failed (locked, read-only, damaged).
    """
    from threadline import paths, sources

    started = time.perf_counter()
    if source is None:
        try:
            source = sources.get(source_name)
        except KeyError as exc:
            raise ImportPathError(str(exc.args[0])) from None
    if working_dir is not None and not Path(working_dir).expanduser().is_dir():
        raise ImportPathError(f"{working_dir}: no such directory (for --dir)")
    try:
        wd = paths.resolve_dir(working_dir)
    except FileNotFoundError:
        raise ImportPathError("the current directory no longer exists; give --dir") from None
    root = resolve_path(source, path)
    single = not root.is_dir()
    files = await asyncio.to_thread(find_files, source, root.resolve())
    summary = ImportSummary(
        source=source.name, path=str(root), working_dir=wd, dry_run=dry_run, files=len(files)
    )
    if not files:
        if single:
            raise ImportPathError(f"{root}: not a {source.name} file")
        summary.seconds = time.perf_counter() - started
        return summary
    marks = await store.source_file_marks(source.name)

    def file_error(where: str, message: str) -> None:
        summary.errors.append(message)
        if on_file_error is not None:
            on_file_error(where, message)

    feed = _Feed(source, files, marks, wd, file_error)
    bytes_total = sum(st.st_size for _, st in files)

    def written(report: LoadReport | None) -> int:
        """Bytes of the files whose sessions are in: by the marks saved (live sources), else
        by the files read."""
        if not feed.marked:
            return feed.bytes_done
        saved = min(report.marks if report else 0, len(feed.marked))
        return feed.marked[saved - 1] if saved else 0

    def report_progress(phase: str, report: LoadReport | None) -> None:
        if progress is None:
            return
        progress(
            ImportProgress(
                phase=phase,
                files_total=len(files),
                files_done=feed.files_done,
                bytes_total=bytes_total,
                bytes_done=written(report),
                messages=report.messages if report else 0,
                sessions=report.sessions if report else 0,
                read=feed.read_messages,
            )
        )

    latest: list[LoadReport | None] = [None]
    phase = ["checking" if single else "loading"]

    async def tick() -> None:  # keeps a spinner moving while a large file is checked
        while True:
            await asyncio.sleep(0.25)
            report_progress(phase[0], latest[0])

    def on_error(batch: IncomingSession, error: StoreError) -> None:
        where = feed.paths.get(id(batch)) or f"{batch.source} session {batch.source_id}"
        message = str(error)
        if where not in message:
            message = f"{where}: {message}"
        file_error(where, message)

    def loaded(r: LoadReport) -> None:
        latest[0] = r
        report_progress("loading", r)

    async def run() -> LoadReport:
        from threadline.store import LoadReport

        await asyncio.to_thread(feed.sort_out)
        if not feed.todo:
            return LoadReport(dry_run=dry_run)  # nothing changed: the loader is not started
        batches: Any = feed
        if single:
            # Read (and check) the one file before anything is written: a bad file leaves
            # the database as it was.
            one, st = feed.todo[0]
            size = st.st_size
            report_progress("checking", None)
            try:
                batches = await asyncio.to_thread(
                    lambda: feed.checked(one, feed.held(one, size))  # (a .gz file's trailer read)
                )
            except FileNotFoundError:
                raise ImportPathError(f"{one}: no such file") from None
            except OSError as exc:
                raise ImportPathError(f"{one}: cannot read it ({exc.strerror})") from None
            feed.files_done, feed.bytes_done = 1, size
        phase[0] = "loading"
        return await store.load_history(
            batches, dry_run=dry_run, progress=loaded, on_error=on_error
        )

    ticker = asyncio.create_task(tick()) if progress is not None else None
    try:
        report = await run()
    finally:
        if ticker is not None:
            ticker.cancel()
    report_progress("loading", report)
    summary.unchanged = feed.unchanged_files
    summary.sessions = report.sessions
    summary.updated = report.updated
    summary.messages = report.messages
    summary.skipped = report.skipped + len(feed.unchanged_sessions) + feed.unchanged_counted
    summary.replaced = report.replaced
    summary.summaries = report.summaries
    summary.titled = report.titled
    summary.seconds = time.perf_counter() - started
    return summary
