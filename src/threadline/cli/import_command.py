"""`threadline import SOURCE [PATH]`: bring history in. Sources register here.

`threadline` reads threadline's own JSON/JSONL export back; the others read another tool's
history through threadline.importing (claude-code, codex, chatgpt, claude-ai, llm, gemini-cli).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from threadline.cli.common import add_subcommands, check_config, with_store

if TYPE_CHECKING:
    from threadline.store import ImportResult, Store


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "import",
        parents=[common],
        help="import history from a file",
        description="Bring history in: from Claude Code, Codex, ChatGPT, Claude.ai, llm, "
        "Gemini CLI, or a threadline export. Sessions already in the database are recognised, "
        "so importing the same thing again adds only what is new; a file that is not what it "
        "claims, or holds a corrupt record, imports nothing. Imports write in short steps, so "
        "the app and other commands keep working.",
    )
    sources = add_subcommands(parser, "import_source")
    from threadline.cli import import_history

    import_history.register_sources(sources, common)
    register_source(sources, common)


def register_source(sources: Any, common: argparse.ArgumentParser) -> None:
    p = sources.add_parser(
        "threadline",
        parents=[common],
        help="a threadline export (export --format json or jsonl)",
        description="Read a file written by `threadline export` (JSON or JSONL) back in. The "
        "whole file is checked first (an invalid line imports nothing); then it is loaded in "
        "short transactions. If that is interrupted, run the same command again to finish it. "
        "Message ids are kept when they are free and renumbered when not.",
    )
    p.add_argument("file", metavar="FILE", help="the export file ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    p.set_defaults(handler=cmd_import_threadline)


def _open(name: str) -> tuple[IO[bytes], int | None]:
    from threadline.errors import ThreadlineError

    if name == "-":
        return sys.stdin.buffer, None
    path = os.path.expanduser(name)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise ThreadlineError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ThreadlineError(f"{name}: is a directory, not an export file") from None
    except OSError as exc:
        raise ThreadlineError(f"{name}: cannot read ({exc.strerror})") from None
    info = os.fstat(fh.fileno())
    if stat.S_ISDIR(info.st_mode):
        fh.close()
        raise ThreadlineError(f"{name}: is a directory, not an export file")
    return fh, info.st_size if stat.S_ISREG(info.st_mode) else None


def cmd_import_threadline(args: argparse.Namespace) -> int:
    from threadline.cli.output import Progress

    check_config(args)
    source, _size = _open(args.file)
    bar = Progress("importing")
    # Reading and checking the file takes no lock; loading is many short transactions.
    labels = {
        "reading": "importing: reading",
        "loading": "importing: loading",
        "indexing": "importing: indexing",  # rows a first import left to the index's build
    }
    units = {"loading": "messages", "indexing": "messages"}

    def progress(phase: str, done: int, total: int | None) -> None:
        label = labels.get(phase, phase)
        changed = label != bar.label
        if changed:
            bar.label, bar.total = label, total
            bar.count_unit = units.get(phase, "")
            bar.started = time.monotonic()
        bar.update(done, done, force=changed)

    async def body(store: Store) -> ImportResult:
        try:
            return await store.import_export(source, args.file, progress=progress)
        finally:
            bar.close()

    try:
        result = with_store(args, body)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if bar.enabled:
        print(timings_line(result), file=sys.stderr)
    if args.json:
        from threadline.cli.output import print_json

        print_json(result.model_dump())
        return 0
    report(result, args.file)
    return 0


def timings_line(result: ImportResult) -> str:
    """Where the time went: the load and the full-text indexing are reported apart."""
    t = result.timings
    n = result.messages

    def rate(seconds: float) -> str:
        return f"{n / seconds:,.0f} messages/s" if seconds > 0 and n else "-"

    return (
        f"importing: read and checked in {t.read_seconds:.1f} s; "
        f"loaded {n:,} messages in {t.load_seconds:.1f} s ({rate(t.load_seconds)}); "
        f"indexed in {t.index_seconds:.1f} s ({rate(t.index_seconds)}); "
        f"{t.total_seconds:.1f} s in all ({rate(t.total_seconds)})"
    )


def report(result: ImportResult, name: str) -> None:
    from threadline.cli.output import plural

    if result.resumed:
        print(f"Finished the import of {name} that was interrupted before.")
    print(
        f"Imported {plural(result.sessions, 'session')} from {name}: "
        f"{plural(result.messages, 'message')}, {plural(result.summaries, 'summary', 'summaries')}"
        f", {plural(result.memories, 'memory', 'memories')}."
    )
    if result.skipped_sessions:
        print(
            f"Skipped {plural(len(result.skipped_sessions), 'session')} already in the database"
            " (sessions are matched by id):"
        )
        for session_id in result.skipped_sessions[:20]:
            print(f"  {session_id}")
        if len(result.skipped_sessions) > 20:
            print(f"  ... and {len(result.skipped_sessions) - 20:,} more")
    if result.skipped_memories:
        print(f"Skipped {plural(result.skipped_memories, 'memory', 'memories')} already present.")
    if result.renumbered_sessions:
        print(
            f"Gave new message ids to {plural(len(result.renumbered_sessions), 'session')} "
            "whose ids were taken."
        )
