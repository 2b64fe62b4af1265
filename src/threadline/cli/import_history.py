"""`threadline import claude-code|codex|chatgpt|claude-ai|llm|gemini-cli [PATH]`.

Each reads another tool's history through threadline.importing. Kept light at import time:
the sources and the store load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadline.cli.common import CommandFailed, check_config, report_error, with_store

if TYPE_CHECKING:
    from threadline.importing import ImportProgress, ImportSummary
    from threadline.store import Store


@dataclass(frozen=True)
class SourceCommand:
    name: str
    help: str
    path_help: str
    path_required: bool
    records_cwd: bool  # the source records each session's working directory (and its files grow)


COMMANDS = (
    SourceCommand(
        "claude-code",
        "Claude Code sessions (~/.claude/projects)",
        "a session .jsonl (or .jsonl.gz), or a directory searched recursively "
        "(default: ~/.claude/projects, or $CLAUDE_CONFIG_DIR/projects)",
        False,
        True,
    ),
    SourceCommand(
        "codex",
        "OpenAI Codex CLI rollouts (~/.codex/sessions)",
        "a rollout-*.jsonl (or .jsonl.gz), or a directory searched recursively "
        "(default: ~/.codex/sessions, or $CODEX_HOME/sessions)",
        False,
        True,
    ),
    SourceCommand(
        "chatgpt",
        "a ChatGPT data export",
        "the export's conversations.json, its split conversations-NNN.json files (each may "
        "be gzipped; or the directory holding them), or the export .zip",
        True,
        False,
    ),
    SourceCommand(
        "claude-ai",
        "a Claude.ai data export",
        "the export's conversations.json (or .json.gz) or the export .zip",
        True,
        False,
    ),
    SourceCommand(
        "llm",
        "simonw's llm logs database",
        "llm's logs.db, opened read-only (default: $LLM_USER_PATH/logs.db, else "
        "$XDG_CONFIG_HOME/io.datasette.llm/logs.db, as llm finds it)",
        False,
        False,
    ),
    SourceCommand(
        "gemini-cli",
        "Gemini CLI chat recordings (~/.gemini/tmp)",
        "a session-*.json / .jsonl (or their .gz), or a directory searched recursively "
        "(default: ~/.gemini/tmp, or $GEMINI_CLI_HOME/.gemini/tmp)",
        False,
        False,
    ),
)

# A progress bar appears once an import has run this long (a quick one prints only its summary).
BAR_AFTER = 1.0


def register_sources(sources: Any, common: argparse.ArgumentParser) -> None:
    for command in COMMANDS:
        where = (
            "Each session keeps the working directory it recorded; --dir is used only for "
            "sessions that record none."
            if command.records_cwd
            else "This source records no working directory: its sessions go to --dir (default: "
            "the current directory)."
        )
        p = sources.add_parser(
            command.name,
            parents=[common],
            help=f"{command.help}",
            description=f"Import {command.help}. {where} Importing again adds only new "
            "sessions and messages ("
            + (
                "a grown session file is read from where the last import stopped"
                if command.records_cwd
                else "a file unchanged since the last import is not read again"
            )
            + "); what was imported stays when the tool deletes its files. A file that is "
            "not what it claims imports nothing; in a directory, a bad file is named and the "
            "others go in (exit status 1).",
        )
        p.add_argument(
            "path",
            metavar="PATH",
            nargs=None if command.path_required else "?",
            default=None,
            help=command.path_help,
        )
        p.add_argument(
            "--dir",
            dest="import_dir",
            metavar="DIR",
            default=None,
            help="working directory for sessions that record none (default: the current one)",
        )
        p.add_argument("--json", action="store_true", help="print what was imported as JSON")
        p.add_argument(
            "--dry-run",
            action="store_true",
            help="count what would be imported; write nothing",
        )
        p.set_defaults(handler=cmd_import_history, import_name=command.name)


class _Bar:
    """Drives cli.output.Progress from ImportProgress, showing nothing for a quick import."""

    def __init__(self, name: str, dry_run: bool) -> None:
        from threadline.cli.output import Progress

        self.verb = "counting" if dry_run else "importing"
        self.name = name
        self.bar = Progress(f"{self.verb} {name}", total=None)
        self.bar.count_unit = "messages"
        self.started = time.monotonic()

    def __call__(self, p: ImportProgress) -> None:
        if not self.bar.enabled or time.monotonic() - self.started < BAR_AFTER:
            return
        bar = self.bar
        if p.phase == "checking":
            label, total, done, count = f"{self.verb} {self.name}: reading", None, 0, p.read
        elif p.files_total > 1 and p.bytes_total:
            label, total, done, count = (
                f"{self.verb} {self.name}",
                p.bytes_total,
                p.bytes_done,
                p.messages,
            )
        else:
            label, total, done, count = f"{self.verb} {self.name}", None, 0, p.messages
        changed = label != bar.label or (total is None) != (bar.total is None)
        if changed:
            if label != bar.label:
                bar.started = time.monotonic()  # the rate shown is this phase's own
            bar.label, bar.total = label, total
            bar.count_unit = "messages read" if p.phase == "checking" else "messages"
        bar.update(done, count, force=changed)

    def close(self) -> None:
        self.bar.close()


def cmd_import_history(args: argparse.Namespace) -> int:
    from threadline.importing import import_source

    check_config(args)
    bar = _Bar(args.import_name, args.dry_run)

    async def body(store: Store) -> ImportSummary:
        try:
            return await import_source(
                store,
                args.import_name,
                args.path,
                working_dir=args.import_dir,
                dry_run=args.dry_run,
                progress=bar,
            )
        finally:
            bar.close()

    summary = with_store(args, body)
    if args.json:
        from threadline.cli.output import print_json

        print_json(summary.as_dict())
    else:
        report(summary)
    for error in summary.errors:
        report_error(error)
    if summary.errors:
        from threadline.cli.output import plural

        raise CommandFailed(
            f"{plural(summary.failed, 'file')} could not be imported (named above); "
            "the others were",
        )
    return 0


def report(summary: ImportSummary) -> None:
    """The plain summary line(s) on stdout."""
    from threadline import paths
    from threadline.cli.output import plural
    from threadline.text import one_line

    where = one_line(paths.home_short(summary.path))
    verb = "Would import" if summary.dry_run else "Imported"
    parts = [plural(summary.sessions, "new session")]
    if summary.updated:
        parts.append(f"{summary.updated:,} updated")
    line = f"{verb} {plural(summary.messages, 'message')} from {where}: " + ", ".join(parts)
    if summary.skipped:
        line += f"; {plural(summary.skipped, 'session')} already up to date"
    print(line + ".")
    if summary.files == 0:
        print(f"No {summary.source} files found there.", file=sys.stdout)
