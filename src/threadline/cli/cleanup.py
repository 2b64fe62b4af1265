"""`threadline cleanup`: apply the retention settings now, and say exactly what was done.

Sessions older than [session] retention_days (or --older-than), then the oldest beyond
max_sessions, move to the trash; sessions in the trash longer than trash_days are purged.
Pinned sessions are never touched, nor sessions imported or captured from other tools unless
[session] cleanup_imported (or --include-imported) says so; see store/cleanup.py for how their
age counts. A dry run reports the same without changing anything. Run with no terminal (cron),
a cleanup that would move more than a handful of sessions only reports unless given --yes.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from threadline.cli.common import settings_of, with_store

if TYPE_CHECKING:
    from threadline.models import CleanupResult, SessionSummary
    from threadline.store import Store

_DURATION = re.compile(r"^\s*(\d{1,15})\s*([a-z]*)\s*$")
_UNITS = {
    "": "days",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "m": "minutes",
    "min": "minutes",
    "minutes": "minutes",
}


_MAX_AGE = timedelta(days=36525)  # older than any history; dates before year 1 overflow


def parse_age(text: str) -> timedelta:
    """`30d`, `2w`, `12h`, `90m` or a bare number of days."""
    match = _DURATION.match(text.lower())
    if not match or match[2] not in _UNITS:
        raise argparse.ArgumentTypeError(f"expected an age such as 30d, 2w or 12h, not {text!r}")
    value = int(match[1])
    if value <= 0:
        raise argparse.ArgumentTypeError("the age must be more than zero")
    try:
        age = timedelta(**{_UNITS[match[2]]: value})
    except OverflowError:
        age = _MAX_AGE + _MAX_AGE
    if age > _MAX_AGE:
        raise argparse.ArgumentTypeError(f"expected an age of at most 100 years, not {text!r}")
    return age


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "cleanup",
        parents=[common],
        help="move old sessions to the trash and purge old trash, per the retention settings",
        description="Apply retention now: sessions idle longer than retention_days (or "
        "--older-than), then the oldest beyond max_sessions, move to the trash (pinned ones "
        "never do); sessions in the trash longer than trash_days are purged. Settings come "
        "from the [session] section of the config file.",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be done, change nothing"
    )
    p.add_argument(
        "--older-than",
        type=parse_age,
        metavar="AGE",
        default=None,
        help="trash sessions idle longer than AGE (30d, 2w, 12h) instead of retention_days",
    )
    p.add_argument(
        "--include-imported",
        action="store_true",
        default=None,
        help="also clean up sessions imported or captured from other tools "
        "(default: [session] cleanup_imported)",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="with no terminal (cron, scripts), move even more than ten sessions "
        "(without it, such a run only reports)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_cleanup)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from threadline.cli.output import Progress
    from threadline.config import CLEANUP_ASK_ABOVE as ASK_ABOVE

    settings = settings_of(args).session

    async def body(
        store: Store,
    ) -> tuple[CleanupResult, dict[str, SessionSummary], dict[str, str]]:
        import asyncio

        from threadline.models import Scope

        # Titles of what is purged are gone afterwards: note the trash (and, after a real
        # run, what was just moved there) by id.
        before = await store.list_sessions(Scope.ALL, None, limit=None, trashed=True)
        bar = Progress("cleaning up")

        async def run(dry_run: bool) -> CleanupResult:
            task = asyncio.ensure_future(
                store.cleanup(
                    settings,
                    dry_run=dry_run,
                    older_than=args.older_than,
                    include_imported=args.include_imported,
                )
            )
            while not task.done():
                bar.update(0)
                await asyncio.wait([task], timeout=0.1)
            return task.result()

        try:
            # With no terminal, look first: more than a handful to move is only reported.
            check = not args.dry_run and not (args.yes or _interactive())
            result = await run(args.dry_run or check)
            if check:
                if result.sessions_deleted > ASK_ABOVE:
                    held[0] = True  # nothing was changed
                else:
                    result = await run(False)
        finally:
            bar.close()
        known = {s.id: s for s in before}
        if result.dry_run:
            for session_id in result.trashed_ids:
                session = await store.get_session(session_id)
                if session is not None:
                    known[session_id] = session
        else:
            after = await store.list_sessions(Scope.ALL, None, limit=None, trashed=True)
            known.update({s.id: s for s in after})
        shorts = {} if args.json else await store.short_ids(result.trashed_ids + result.purged_ids)
        return result, known, shorts

    held = [False]
    result, known, shorts = with_store(args, body)
    retention = args.older_than or timedelta(days=settings.retention_days)
    if args.json:
        from threadline.cli.output import print_json

        def entry(session_id: str, reason: str | None = None) -> dict[str, Any]:
            session = known.get(session_id)
            data: dict[str, Any] = {"id": session_id, "title": _title(session)}
            if reason:
                data["reason"] = reason
            return data

        n = result.by_retention
        print_json(
            {
                "dry_run": result.dry_run,
                "held_back": held[0],
                "retention_days": retention.total_seconds() / 86400,
                "max_sessions": settings.max_sessions,
                "trash_days": settings.trash_days,
                "moved_to_trash": {
                    "total": result.sessions_deleted,
                    "by_retention": result.by_retention,
                    "by_max_limit": result.by_max_limit,
                    "sessions": [
                        entry(sid, "retention" if i < n else "max_sessions")
                        for i, sid in enumerate(result.trashed_ids)
                    ],
                },
                "purged": {
                    "total": result.purged,
                    "sessions": [entry(sid) for sid in result.purged_ids],
                },
            }
        )
        return 0
    if held[0]:
        print(
            f"Not moving {result.sessions_deleted:,} sessions with no terminal to confirm: "
            "run `threadline cleanup` in a terminal, or add --yes. Nothing was changed."
        )
    print_report(result, known, shorts, retention, settings.max_sessions, settings.trash_days)
    return 0


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _title(session: SessionSummary | None) -> str | None:
    return None if session is None else session.display_title


def _age(delta: timedelta) -> str:
    if delta.total_seconds() % 86400 == 0:
        days = int(delta.total_seconds() // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour{'s' if seconds != 3600 else ''}"
    return f"{seconds // 60} minute{'s' if seconds != 60 else ''}"


def print_report(
    result: CleanupResult,
    known: dict[str, SessionSummary],
    shorts: dict[str, str],
    retention: timedelta,
    max_sessions: int,
    trash_days: int,
) -> None:
    from threadline.cli.output import plural
    from threadline.text import one_line, truncate

    would = result.dry_run

    def line(session_id: str) -> str:
        session = known.get(session_id)
        title = one_line(session.display_title) if session else "(unknown)"
        return f"  {shorts.get(session_id, session_id)}  {truncate(title, 60)}"

    prefix = "Dry run: nothing was changed.\n" if would else ""
    sys.stdout.write(prefix)
    verb = "Would move" if would else "Moved"
    if result.sessions_deleted:
        print(f"{verb} {plural(result.sessions_deleted, 'session')} to the trash:")
        if result.by_retention:
            print(f" {result.by_retention:,} idle for more than {_age(retention)}:")
            for session_id in result.trashed_ids[: result.by_retention]:
                print(line(session_id))
        if result.by_max_limit:
            print(f" {result.by_max_limit:,} oldest beyond the limit of {max_sessions:,} sessions:")
            for session_id in result.trashed_ids[result.by_retention :]:
                print(line(session_id))
    else:
        print(f"{'Would move' if would else 'Moved'} no sessions to the trash.")
    purge_verb = "Would purge" if would else "Purged"
    if result.purged:
        print(
            f"{purge_verb} {plural(result.purged, 'session')} in the trash for more than "
            f"{trash_days} days:"
        )
        for session_id in result.purged_ids:
            print(line(session_id))
    else:
        print(f"{purge_verb} nothing from the trash.")
    if result.sessions_deleted and not would:
        print("`threadline sessions trash` lists them; `sessions restore ID` brings one back.")
