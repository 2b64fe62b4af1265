"""`threadline db path|check|backup|vacuum|index`: the database file itself."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadline.cli.common import add_subcommands, check_config, with_store

if TYPE_CHECKING:
    from threadline.models import DatabaseInfo, IntegrityReport
    from threadline.store import Store


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "db",
        parents=[common],
        help="the database file: path, check, backup, vacuum, index",
        description="Where the database is, whether it is healthy, and safe copies of it.",
    )
    actions = add_subcommands(parser, "db_action")
    p = actions.add_parser(
        "path",
        parents=[common],
        help="print where the database is (without opening or creating it)",
    )
    p.set_defaults(handler=cmd_path)
    p = actions.add_parser(
        "check",
        parents=[common],
        help="integrity check, schema version and counts (exit 1 on a problem)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_check)
    p = actions.add_parser(
        "backup",
        parents=[common],
        help="copy the database to FILE (safe while threadline is running)",
        description="Copy the database with SQLite's online backup API: a consistent copy, "
        "even while the app or a script is writing. FILE must not exist yet.",
    )
    p.add_argument("file", metavar="FILE", help="where to write the copy (a new file)")
    p.set_defaults(handler=cmd_backup)
    p = actions.add_parser(
        "vacuum",
        parents=[common],
        help="give the space of deleted rows back to the file system",
        description="Frees the file's empty pages in short steps, each leaving the database "
        "free for other writers a moment; interrupted, what was freed stays freed. --full "
        "rebuilds the whole file instead, in one transaction that makes other writers wait "
        "until it ends; a database made before stepped vacuuming needs that once.",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="rebuild the whole file (holds the write lock throughout; converts an old database)",
    )
    p.set_defaults(handler=cmd_vacuum)
    p = actions.add_parser(
        "index",
        parents=[common],
        help="finish building the search index (after an upgrade or a sync), or --rebuild it",
        description="After an upgrade, or a new machine's first sync, the search index is "
        "built in short steps, each leaving the database free for other writers a moment; "
        "the app does it in the background, this does it now. Interrupted, it resumes where "
        "it stopped. Search works meanwhile, on the previous index (after a sync: without "
        "the messages not yet indexed).",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the whole index from the messages (one long transaction: a repair)",
    )
    p.set_defaults(handler=cmd_index)


def _db_file(args: argparse.Namespace) -> Path:
    from threadline import paths

    return paths.db_path(getattr(args, "db", None))


def _require_existing(args: argparse.Namespace) -> Path:
    from threadline.errors import ThreadlineError

    path = _db_file(args)
    if not path.exists():
        raise ThreadlineError(f"{path}: no database there yet (nothing to do)")
    return path


def cmd_path(args: argparse.Namespace) -> int:
    print(_db_file(args))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from threadline.cli.common import CommandFailed

    check_config(args)
    _require_existing(args)

    async def body(store: Store) -> tuple[IntegrityReport, DatabaseInfo]:
        report = await store.integrity_report()
        return report, await store.info()

    report, info = with_store(args, body)
    problems = report.problems
    if args.json:
        from threadline.cli.output import print_json

        data = info.model_dump()
        data["ok"] = not problems
        data["problems"] = problems
        data["skipped"] = report.skipped
        print_json(data)
    else:
        from threadline.cli.output import human_size
        from threadline.text import one_line

        print(f"database        {info.path}" + ("  (read-only)" if info.read_only else ""))
        print(f"size            {human_size(info.size_bytes)}")
        print(f"schema version  {info.schema_version}")
        print(f"sessions        {info.sessions:,} (+ {info.trashed_sessions:,} in the trash)")
        print(f"messages        {info.messages:,}")
        print(f"summaries       {info.summaries:,}")
        print(f"memories        {info.memories:,}")
        print(f"pending         {info.pending_extractions:,} memory extractions")
        if problems:
            print(f"integrity       {len(problems)} problem(s):")
            for problem in problems[:50]:
                print(f"  {one_line(problem)}")
        else:
            print("integrity       ok")
        for note in report.skipped:
            print(f"not checked     {one_line(note)}")
    if problems:
        raise CommandFailed(
            f"{info.path}: the integrity check found {len(problems)} problem(s); "
            "restore a backup or copy what can be read with `threadline export --all`"
        )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from threadline.cli.output import human_size

    check_config(args)
    _require_existing(args)
    target = Path(args.file).expanduser()

    async def body(store: Store) -> Path:
        return await store.backup(target)

    written = with_store(args, body)
    print(f"Backed up to {written} ({human_size(written.stat().st_size)}).")
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    import sys

    from threadline.cli.output import Progress, human_size

    check_config(args)
    _require_existing(args)

    async def body(store: Store) -> tuple[int, int]:
        before = (await store.info()).size_bytes
        if args.full or not await store.vacuum_in_steps_possible():
            why = (
                ""
                if args.full
                else "this database was made before stepped vacuuming, so it is rebuilt "
                "whole once (later vacuums go in short steps); "
            )
            print(
                f"threadline: {why}rebuilding the file in one transaction: other writers "
                "wait until it ends",
                file=sys.stderr,
                flush=True,
            )
            await store.vacuum(full=True)
        else:
            bar = Progress("vacuuming", unit="pages")
            bar.count_unit = "pages"

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done, done)

            try:
                await store.vacuum(progress=progress)
            finally:
                bar.close()
        return before, (await store.info()).size_bytes

    before, after = with_store(args, body)
    print(f"Vacuumed: {human_size(before)} -> {human_size(after)}.")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    import sys

    check_config(args)
    _require_existing(args)
    tty = sys.stderr.isatty()
    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != shown[0]:
            shown[0] = percent
            end = "\r" if tty and done < total else "\n"
            if tty or percent % 10 == 0:
                print(
                    f"indexing for search: {percent}% ({done:,} of {total:,} rows)",
                    end=end,
                    file=sys.stderr,
                    flush=True,
                )

    async def body(store: Store) -> int:
        if args.rebuild:
            await store.rebuild_search_index()
        state = await store.search_build_state()
        if not state.finished:
            await store.build_search_index(progress)
        return state.total

    total = with_store(args, body)
    print(
        f"Search index complete ({total:,} rows indexed now)."
        if total
        else "Search index complete."
    )
    return 0
