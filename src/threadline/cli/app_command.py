"""`threadline` with no subcommand: open the Textual app on a directory."""

from __future__ import annotations

import argparse

from threadline.cli.common import settings_of


def run_app_command(args: argparse.Namespace) -> int:
    from threadline import paths

    settings = settings_of(args)
    db_file = paths.db_path(args.db)
    directory = paths.resolve_dir(args.dir)
    from threadline.ui.app import run_app

    return run_app(db_path=db_file, settings=settings, working_dir=directory)
