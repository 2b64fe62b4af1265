"""`threadline sessions summarize|compact ID`: summarise a session now; drop what a summary covers.

Registered into the `sessions` group by cli/sessions.py. Never imports textual.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from threadline.cli.common import (
    CommandFailed,
    get_session,
    positive_int,
    require_provider,
    settings_of,
    with_store,
)


def at_least_one(text: str) -> int:
    value = positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected 1 or more")
    return value


if TYPE_CHECKING:
    from threadline.models import Session, Summary
    from threadline.store import Store


def register_actions(actions: Any, common: argparse.ArgumentParser) -> None:
    """Add `summarize` and `compact` to the `sessions` subcommands."""
    p = actions.add_parser(
        "summarize",
        parents=[common],
        help="summarise a session's older messages now",
        description="Ask the model to summarise the session's messages that no summary covers "
        "yet, except the newest [context] keep_recent_messages (or --keep N). Later requests "
        "send the summary in their place. The messages themselves stay (see `compact`).",
    )
    p.add_argument("id", metavar="ID", help="session id or unique prefix")
    p.add_argument(
        "--keep",
        type=at_least_one,
        metavar="N",
        default=None,
        help="leave the newest N messages out of the summary (default: keep_recent_messages)",
    )
    p.add_argument("--model", metavar="MODEL", help="the model that writes the summary")
    p.set_defaults(handler=cmd_summarise)

    p = actions.add_parser(
        "compact",
        parents=[common],
        help="remove the messages a session's summary already covers",
        description="Remove, for good, the messages that the session's latest summary stands "
        "for, to get the space back; the summary stays and later requests are unchanged. "
        "Asks first (or --yes; required when stdin is not a terminal).",
    )
    p.add_argument("id", metavar="ID", help="session id or unique prefix")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_compact)


async def _session(store: Store, given: str) -> tuple[Session, str]:
    session = await get_session(store, await store.resolve_session_id(given))
    short = (await store.short_ids([session.id]))[session.id]
    if session.deleted_at is not None:
        raise CommandFailed(
            f"session {short} is in the trash; restore it first (threadline sessions restore ID)"
        )
    return session, short


async def _range(store: Store, summary: Summary) -> str:
    """`messages 1–8`: positions in the session, as the app and `sessions show` number them."""
    from threadline.cli.common import summary_ranges

    return (await summary_ranges(store, summary.session_id, [summary]))[summary.id]


# ---------------------------------------------------------------------------- summarise


def cmd_summarise(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    require_provider(settings)

    async def body(store: Store) -> None:
        from threadline.chat.turns import TurnEngine
        from threadline.cli.output import plural, stderr_is_tty

        session, short = await _session(store, args.id)
        engine = TurnEngine.from_settings(store, settings)
        try:
            keep = args.keep or settings.context.keep_recent_messages
            if stderr_is_tty():
                sys.stderr.write(f"summarising session {short}…\n")
                sys.stderr.flush()
            saved = await engine.summarise(session, model=args.model, keep_recent=keep)
        finally:
            await engine.aclose()
        if not saved:
            latest = await store.latest_summary(session.id)
            covered = f"; its summary covers {await _range(store, latest)}" if latest else ""
            print(
                f"nothing to summarise in {short}: only the newest "
                f"{plural(keep, 'message')} are left uncovered{covered}"
            )
            return
        last = saved[-1]
        rounds = f" (in {len(saved)} requests)" if len(saved) > 1 else ""
        print(f"summarised {await _range(store, last)} of {short}{rounds}")

    with_store(args, body)
    return 0


# ---------------------------------------------------------------------------- compact


def cmd_compact(args: argparse.Namespace) -> int:
    if getattr(args, "config", None):
        settings_of(args)

    async def body(store: Store) -> None:
        from threadline.chat.summarise import compact_plan, compact_session
        from threadline.cli.output import confirm, plural, stdin_is_tty

        session, short = await _session(store, args.id)
        plan = await compact_plan(store, session.id)
        if plan.summary is None:
            raise CommandFailed(
                f"nothing to compact: session {short} has no summary yet "
                "(threadline sessions summarize ID writes one)"
            )
        if plan.removable == 0:
            print(f"nothing to compact in {short}: the messages its summary covers are gone")
            return
        if not args.yes:
            if not stdin_is_tty():
                raise CommandFailed(
                    "refusing to compact without --yes: stdin is not a terminal, so nobody "
                    "can confirm"
                )
            covers = await _range(store, plan.summary)
            question = (
                f"Remove {plural(plan.removable, 'message')} of {short} for good? The summary "
                f"of {covers} stays in their place."
            )
            if not confirm(question):
                raise CommandFailed("cancelled: nothing was removed")
        covers = await _range(store, plan.summary)
        from threadline.cli.output import Progress

        bar = Progress("compacting", total=plan.removable)
        try:
            removed = await compact_session(
                store, session.id, plan.summary, progress=lambda done: bar.update(done)
            )
        finally:
            bar.close()
        print(
            f"removed {plural(removed, 'message')} from {short}; "
            f"the summary of {covers} stands for them"
        )

    with_store(args, body)
    return 0
