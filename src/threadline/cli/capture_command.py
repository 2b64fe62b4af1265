"""`threadline capture`: take in what coding agents (Claude Code, Codex) wrote since last time.

The same pass the app runs at start-up and while it is open, once, for cron or a systemd timer.
Histories turned off in [sources] (`claude_code = false`) are left alone unless named with
--source. The first capture of a history says what it found. See threadline.capture.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from threadline.cli.common import CommandFailed, report_error, settings_of, with_store

if TYPE_CHECKING:
    from threadline.capture import Followed
    from threadline.importing import ImportProgress
    from threadline.store import Store

_NAMES = ("claude-code", "codex")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "capture",
        parents=[common],
        help="take in new and grown Claude Code / Codex sessions (for cron or a timer)",
        description="Take in the coding-agent histories threadline follows (Claude Code's "
        "~/.claude/projects, Codex's ~/.codex/sessions; paths and on/off under [sources] in "
        "the config): new sessions, and what running ones added since the last capture. "
        "Unchanged files are only stat'ed. What was taken in stays when the tool deletes its "
        "files. A history turned off (claude_code = false) is skipped unless named with "
        "--source. The app does the same while it runs.",
    )
    p.add_argument(
        "--source",
        action="append",
        choices=_NAMES,
        metavar="NAME",
        help="capture only this history (claude-code or codex; may be repeated), even if "
        "turned off in the config",
    )
    p.add_argument("--json", action="store_true", help="print what was taken in as JSON")
    p.add_argument(
        "--dry-run", action="store_true", help="count what would be taken in; write nothing"
    )
    p.set_defaults(handler=cmd_capture)


def cmd_capture(args: argparse.Namespace) -> int:
    from threadline import capture
    from threadline.cli.import_history import _Bar
    from threadline.cli.output import plural, print_json
    from threadline.paths import home_short

    settings = settings_of(args)
    histories = capture.followed(settings, args.source)
    if args.source is None:
        off = [f for f in histories if f.enabled is False]
        histories = [f for f in histories if f.enabled is not False]
    else:
        off = []
    bars: dict[str, _Bar] = {}
    lines: list[str] = []
    entries: list[dict[str, Any]] = []

    def progress(f: Followed, p: ImportProgress) -> None:
        bar = bars.get(f.name)
        if bar is None:
            bar = bars[f.name] = _Bar(f.name, args.dry_run)
        bar(p)

    async def body(store: Store) -> None:
        for f in histories:
            where = home_short(str(f.path))
            first = not await store.source_file_marks(f.name)
            found = capture.look(f) if first else None
            if not f.path.is_dir():
                lines.append(f"{f.label}: nothing at {where}.")
                entries.append(
                    {
                        "present": False,
                        "first": first,
                        "source": f.name,
                        "path": str(f.path),
                        **dict.fromkeys(("sessions", "updated", "messages", "skipped"), 0),
                        "errors": [],
                    }
                )
                continue
            if first and found is not None and not args.json:
                # The first capture says what it found before the (longer) work starts.
                them = "it" if found.sessions == 1 else "them"
                doing = "counting" if args.dry_run else f"taking {them} in"
                print(
                    f"Found {f.label} history: {plural(found.sessions, 'session')} in {where}; "
                    f"{doing}…",
                    flush=True,
                )
            try:
                result = await capture.Capture([f]).run(
                    store, dry_run=args.dry_run, progress=progress
                )
            finally:
                bar = bars.pop(f.name, None)
                if bar is not None:
                    bar.close()
            (summary,) = result.summaries
            entry = {"present": True, "first": first, **summary.as_dict()}
            entries.append(entry)
            verb = "would take in" if args.dry_run else "took in"
            parts = [plural(summary.sessions, "new session")]
            if summary.updated:
                parts.append(f"{summary.updated:,} grown")
            line = f"{f.label}: {verb} {plural(summary.messages, 'message')} (" + ", ".join(parts)
            line += ")"
            if summary.skipped:
                line += f"; {plural(summary.skipped, 'session')} up to date"
            lines.append(line + ".")

    with_store(args, body)
    errors = [e for entry in entries for e in entry.get("errors", ())]
    if args.json:

        def total(key: str) -> int:
            return sum(int(e.get(key, 0)) for e in entries)

        print_json(
            {
                "dry_run": args.dry_run,
                "sources": entries,
                "off": [f.name for f in off],
                "sessions": total("sessions"),
                "updated": total("updated"),
                "messages": total("messages"),
                "skipped": total("skipped"),
                "failed": len(errors),
            }
        )
    else:
        for line in lines:
            print(line)
        for f in off:
            print(f"{f.label}: turned off ({f.key} = false under [sources]).")
        if not histories:
            print("Nothing to capture: every history is turned off under [sources].")
    for error in errors:
        report_error(error)
    if errors:
        raise CommandFailed(
            f"{plural(len(errors), 'file')} could not be taken in (named above); the others were"
        )
    return 0
