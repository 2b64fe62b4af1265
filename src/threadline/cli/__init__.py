"""The `threadline` command: the app when run bare, and scriptable subcommands.

Each subcommand lives in its own module with a `register(subparsers, common)` function. Modules
are imported when the parser is built, so they must stay light at import time: anything heavy
(textual, httpx, the store) is imported inside the function that runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from threadline import __version__
from threadline.cli.common import CommandFailed, ThreadlineArgumentParser, report_error
from threadline.errors import ThreadlineError, UsageError

# Subcommand modules, in the order `threadline --help` lists them.
COMMAND_MODULES: list[str] = [
    "chat",
    "sessions",
    "memories",
    "search",
    "export_command",
    "import_command",
    "capture_command",
    "cleanup",
    "db",
    "config_command",
    "sync",
]


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
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


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"threadline.cli.{name}")
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run threadline; returns the exit status (0 ok, 1 error, 2 usage error, 130 interrupted)."""
    parser = build_parser()
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
