"""`threadline` with no subcommand: open the Textual app on a directory."""

from __future__ import annotations

import argparse
import gc
import os

from threadline.cli.common import settings_of


def run_app_command(args: argparse.Namespace) -> int:
    from threadline import paths
    from threadline.errors import ThreadlineError

    settings = settings_of(args)
    db_file = paths.db_path(args.db)
    # Refused before the app draws anything: a mistyped path is an error, not a new database.
    problem = paths.missing_directory(db_file)
    if problem is not None:
        raise ThreadlineError(problem)
    if args.dir is not None and not os.path.isdir(os.path.expanduser(args.dir)):
        raise ThreadlineError(f"{args.dir}: no such directory (--dir)")
    directory = paths.resolve_dir(args.dir)
    # Start-up makes a few hundred thousand objects that all live as long as the app (modules,
    # classes, the screen): the cyclic collector would walk them again and again, finding
    # nothing (~10% of the CPU to the first paint). It is off until the app collects once and
    # freezes them, after the sidebar's first paint (ui/app.py, _freeze_start_up).
    gc.disable()
    try:
        # The database opens on its own threads while Textual and the app are imported and
        # the first screen is built: the sidebar's rows can be read as soon as it is up.
        from threadline.store import Store

        opening = Store.open_in_background(db_file)
        from threadline.ui.app import run_app

        return run_app(db_path=db_file, settings=settings, working_dir=directory, opening=opening)
    finally:
        gc.enable()
