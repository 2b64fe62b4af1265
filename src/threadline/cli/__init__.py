"""The `threadline` command: the app when run bare, and scriptable subcommands.

Each subcommand lives in its own module with a `register(subparsers, common)` function. Only the
chosen command's module is imported (`threadline sessions list` never loads the chat, sync or
import code); the others stand in the parser as stubs carrying their one-line help, so `--help`
and "invalid choice" still list every command. Modules stay light at import time anyway:
anything heavy (textual, httpx, the store) is imported inside the function that runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from threadline import __version__
from threadline.cli.common import CommandFailed, ThreadlineArgumentParser, report_error
from threadline.errors import ThreadlineError, UsageError

# Subcommands, in the order `threadline --help` lists them: (name, module, one-line help). The
# help must be the one the module registers (tests/cli/test_startup_imports.py checks it).
COMMANDS: list[tuple[str, str, str]] = [
    ("chat", "chat", "send a message and stream the model's reply"),
    ("sessions", "sessions", "list, show and manage sessions"),
    ("memories", "memories", "the facts remembered about a project directory"),
    ("search", "search", "full-text search over messages and summaries"),
    ("export", "export_command", "export sessions as Markdown, JSON or JSONL"),
    ("import", "import_command", "import history from a file"),
    (
        "capture",
        "capture_command",
        "take in new and grown Claude Code / Codex sessions (for cron or a timer)",
    ),
    (
        "cleanup",
        "cleanup",
        "move old sessions to the trash and purge old trash, per the retention settings",
    ),
    ("db", "db", "the database file: path, check, backup, vacuum, index"),
    ("config", "config_command", "set up a provider (init) and show the settings in effect (show)"),
    ("sync", "sync", "sync this database with your other machines through a git repository"),
]
COMMAND_MODULES: list[str] = [module for _, module, _ in COMMANDS]

# The top-level options that take a value (the next word is theirs, not a command's).
_VALUE_OPTIONS = ("--db", "--config", "--dir")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (its first word that is not an option), or None."""
    words = iter(argv)
    for word in words:
        if word == "--":
            word = next(words, "")
            break
        if word.startswith("-"):
            # `--db PATH` (or an unambiguous prefix such as `--conf PATH`) takes the next word.
            if "=" not in word and word.startswith("--") and len(word) > 2:
                if any(option.startswith(word) for option in _VALUE_OPTIONS):
                    next(words, None)
            continue
        break
    else:
        return None
    return word if any(word == name for name, _, _ in COMMANDS) else None


def _common_options(suppress: bool) -> ThreadlineArgumentParser:
    parent = ThreadlineArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    parent.add_argument(
        "--db",
        metavar="PATH",
        default=default,
        help="database file (default: $THREADLINE_DB or the platform data directory)",
    )
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $THREADLINE_CONFIG or the platform config directory)",
    )
    return parent


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given `argv`, only the command it names is registered in full."""
    parser = ThreadlineArgumentParser(
        prog="threadline",
        description="Your conversations with language models, kept locally and scoped to the "
        "directory you work in. Run without a command to open the app.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"threadline {__version__}")
    parser.add_argument(
        "--dir", metavar="DIR", default=None, help="open the app on this directory (default: cwd)"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=ThreadlineArgumentParser
    )
    common = _common_options(suppress=True)
    chosen = None if argv is None else chosen_command(argv)
    for name, module_name, help_text in COMMANDS:
        if argv is None or name == chosen:
            module = importlib.import_module(f"threadline.cli.{module_name}")
            module.register(subparsers, common)
        else:  # a stand-in: never selected (only `chosen` can be), listed by --help
            subparsers.add_parser(name, parents=[common], help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run threadline; returns the exit status (0 ok, 1 error, 2 usage error, 130 interrupted)."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        handler = getattr(args, "handler", None)
        if handler is None:
            from threadline.cli.app_command import run_app_command

            return run_app_command(args)
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("threadline: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        report_error(str(exc))
        return 2
    except CommandFailed as exc:
        if exc.message:
            report_error(exc.message)
        return exc.status
    except ThreadlineError as exc:
        report_error(str(exc))
        return 1
    except BrokenPipeError:
        # `threadline sessions list | head`: the reader went away; that is not an error.
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
