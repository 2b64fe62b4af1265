"""`threadline sync [init REMOTE-OR-PATH | status]`: the same history on several machines."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from threadline.cli.common import ThreadlineArgumentParser

if TYPE_CHECKING:
    from threadline.store import Store
    from threadline.sync.engine import SyncOptions, SyncReport


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sync",
        parents=[common],
        help="sync this database with your other machines through a git repository",
        description="Without an action: write this machine's new changes to its journal, "
        "commit, pull --rebase, push, and apply the other machines' new records.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=cmd_sync)
    actions = parser.add_subparsers(
        dest="sync_action", metavar="ACTION", parser_class=ThreadlineArgumentParser
    )
    p = actions.add_parser(
        "init",
        parents=[common],
        help="set up sync with a git repository (cloned, or created when PATH is new)",
        description="Clone REMOTE (any URL git understands: SSH, HTTPS, a path) into a private "
        "folder beside the database, or create a bare repository at PATH when nothing is there; "
        "then publish this database's history and apply the other machines'.",
    )
    p.add_argument("remote", metavar="REMOTE-OR-PATH")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_init)
    p = actions.add_parser(
        "status",
        parents=[common],
        help="machines seen, records waiting each way, the last sync",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_status)


def _options(args: argparse.Namespace) -> SyncOptions:
    from threadline.cli.common import settings_of
    from threadline.sync.engine import SyncOptions

    cfg = settings_of(args).sync
    return SyncOptions(recipients=list(cfg.recipients), identity=cfg.identity)


class _Progress:
    """A one-line progress display on stderr when it is a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.tty:
            return
        from threadline.sync.engine import INDEXING

        of = f" of {total:,}" if total else ""
        what = "messages" if phase == INDEXING else "records"
        sys.stderr.write(f"\r{phase}: {done:,}{of} {what}\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _run(args: argparse.Namespace, body: Any) -> Any:
    from threadline.cli.common import with_store

    return with_store(args, body)


def _finish(args: argparse.Namespace, report: SyncReport) -> int:
    from threadline.cli.common import report_error

    if getattr(args, "json", False):
        from threadline.cli.output import print_json

        print_json(
            {
                "written": report.written,
                "applied": report.applied,
                "pushed": report.pushed,
                "machines": report.machines,
                "attached": report.attached,
                "errors": report.errors,
            }
        )
    else:
        others = f" from {report.machines} other machine(s)" if report.machines else ""
        print(f"synced: {report.written:,} record(s) written, {report.applied:,} applied{others}")
    for message in report.errors:
        report_error(message)
    return 1 if report.errors else 0


def cmd_sync(args: argparse.Namespace) -> int:
    from threadline.sync import engine

    options = _options(args)
    progress = _Progress()

    async def body(store: Store) -> SyncReport:
        try:
            return await engine.sync(store, options, progress)
        finally:
            progress.end()

    return _finish(args, _run(args, body))


def cmd_init(args: argparse.Namespace) -> int:
    from threadline.sync import engine

    options = _options(args)
    progress = _Progress()

    async def body(store: Store) -> SyncReport:
        try:
            return await engine.init(store, args.remote, options, progress)
        finally:
            progress.end()

    return _finish(args, _run(args, body))


def cmd_status(args: argparse.Namespace) -> int:
    from threadline.sync import engine
    from threadline.text import one_line

    async def body(store: Store) -> engine.StatusReport:
        return await engine.status(store)

    report = _run(args, body)
    if getattr(args, "json", False):
        from dataclasses import asdict

        from threadline.cli.output import print_json

        print_json(asdict(report))
        return 0
    if report.repo_dir is None:
        print(f"this machine: {report.machine_id} (not set up: threadline sync init REMOTE)")
        return 0
    print(f"this machine: {report.machine_id}")
    print(f"repository:   {one_line(report.remote or '')} (clone: {report.repo_dir})")
    print(f"last sync:    {report.last_sync_at or 'never'}")
    if report.last_error:
        print(f"last error:   {one_line(report.last_error)}")
    waiting = " (history still to publish)" if report.snapshot_pending else ""
    print(f"to send:      {report.outgoing:,} change(s){waiting}")
    if report.parked:
        print(f"waiting:      {report.parked:,} record(s) for a session or memory not yet seen")
    for machine in report.machines:
        if machine.this:
            continue
        name = f" ({one_line(machine.name)})" if machine.name else ""
        line = (
            f"machine {machine.machine}{name}: {machine.records_applied:,} applied,"
            f" {machine.pending:,} to apply, last change {machine.last_record_at or '-'}"
        )
        print(line)
        if machine.error:
            print(f"  error: {one_line(machine.error)}")
    return 0
