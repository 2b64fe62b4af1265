"""`threadline chat MESSAGE`: send one turn from the command line and stream the reply to stdout.

The reply goes to stdout as it arrives; the session id (short form) goes to stderr. A provider
error exits 1 with the user's message saved; Ctrl-C saves the partial reply (stop_reason
'cancelled') and exits 130. Never imports textual: its start-up is a CLI's.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from threadline.cli.common import CommandFailed, require_provider, settings_of, with_store
from threadline.errors import UsageError

if TYPE_CHECKING:
    from threadline.chat.turns import TurnEngine
    from threadline.config import Settings
    from threadline.models import Session
    from threadline.store import Store

EXIT_PROVIDER_ERROR = 1
EXIT_INTERRUPTED = 130
# Lifetimes are never this long: `--continue` continues whatever the age.
_FOREVER_HOURS = 24 * 365 * 1000


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "chat",
        parents=[common],
        help="send a message and stream the model's reply",
        description="Send one message in this directory's session and stream the reply to "
        "stdout. Continues the newest session of the directory when its last message is "
        "younger than [session] continue_window_hours, else starts a new one.",
    )
    parser.add_argument(
        "message",
        nargs="+",
        metavar="MESSAGE",
        help="the message (several words are joined by spaces); `-` reads it from stdin",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--new", action="store_true", help="start a new session")
    which.add_argument(
        "--session",
        metavar="ID",
        help="continue this session (a unique prefix of its id is enough)",
    )
    which.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the newest session of this directory, however old",
    )
    parser.add_argument(
        "--model", metavar="MODEL", help="use this model (and remember it on the session)"
    )
    parser.add_argument(
        "--system",
        metavar="TEXT",
        help="the session's system prompt (set on a new session, replaces an existing one's)",
    )
    parser.set_defaults(handler=chat_command)


def _read_message(args: argparse.Namespace) -> str:
    if args.message == ["-"]:
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError:
            raise UsageError("stdin is not UTF-8 text") from None
        text = text.rstrip("\r\n")
    else:
        text = " ".join(args.message)
    if not text.strip():
        raise UsageError("the message is empty")
    return text


def chat_command(args: argparse.Namespace) -> int:
    text = _read_message(args)
    settings = settings_of(args)
    # Fail before touching the database when nothing can be sent. A model may still come from
    # the session named by --session; any other way, it must be known now.
    require_provider(
        settings, args.model, model_required=args.session is None, hint=", or pass --model"
    )
    return with_store(args, lambda store: _chat(store, args, settings, text), readers=2)


async def _chat(store: Store, args: argparse.Namespace, settings: Settings, text: str) -> int:
    import asyncio
    from contextlib import aclosing

    from threadline.chat.turns import (
        ContextNotice,
        ReplyDelta,
        ReplyFinished,
        SummarySaved,
        SummaryStarted,
        TurnCancelled,
        TurnEngine,
        TurnFailed,
    )

    session, created = await _find_session(store, args, settings)
    engine = TurnEngine.from_settings(store, settings)
    try:
        turn = engine.start(session, text, model=args.model, system_prompt=args.system)
        short = (await store.short_ids([session.id]))[session.id]
        print(f"session {short}{' (new)' if created else ''}", file=sys.stderr, flush=True)
        out = _Output(sys.stdout)
        events = aiter(turn)
        try:
            # aclosing: if writing to stdout fails, the engine still saves what arrived.
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, ReplyDelta):
                        out.write(event.text)
                    elif isinstance(event, ReplyFinished):
                        out.end()
                    elif isinstance(event, SummaryStarted):
                        _note("summarising the earlier messages…")
                    elif isinstance(event, SummarySaved):
                        summary = event.summary
                        _note(
                            f"summarised messages #{summary.first_message_id}–"
                            f"#{summary.last_message_id}: requests send the summary "
                            "in their place"
                        )
                    elif isinstance(event, ContextNotice):
                        _note(f"threadline: warning: {event.text}")
                    elif isinstance(event, TurnFailed):
                        out.end()
                        raise CommandFailed(event.error, EXIT_PROVIDER_ERROR)
                    elif isinstance(event, TurnCancelled):
                        out.end()
                        raise CommandFailed("cancelled; the partial reply was saved", 130)
        except asyncio.CancelledError:
            # Ctrl-C: the engine has saved the partial reply as cancelled.
            out.end()
            raise CommandFailed(
                "interrupted; the partial reply was saved", EXIT_INTERRUPTED
            ) from None
        await _after_turn(args, settings, engine)
    finally:
        await engine.aclose()
    return 0


def _note(text: str) -> None:
    """A line about the turn on stderr (the reply alone goes to stdout)."""
    from threadline.text import one_line

    print(one_line(text), file=sys.stderr, flush=True)


async def _after_turn(args: argparse.Namespace, settings: Settings, engine: TurnEngine) -> None:
    """Queue the sessions gone idle for memory extraction, and leave the extracting to a
    background process, so the command ends as soon as the reply has (see README)."""
    memory = settings.memory
    if not (memory.enabled and memory.extraction):
        return
    from threadline.errors import ThreadlineError

    try:
        await engine.memory_extractor().queue_idle()
        due = await engine.store.get_pending_extractions(limit=1)
    except ThreadlineError:
        return  # never fail a chat over memory upkeep; the next run tries again
    if due and memory.background:
        from threadline.cli.memories import spawn_background_processing

        spawn_background_processing(args)


async def _find_session(
    store: Store, args: argparse.Namespace, settings: Settings
) -> tuple[Session, bool]:
    """The session this turn goes to, and whether it was created for it."""
    from threadline import paths
    from threadline.store import NotFoundError

    provider = settings.effective_provider()
    # The session remembers --model once that model has answered (the turn engine does it),
    # so a mistyped model does not stick to a new session.
    model, system_prompt = provider.model, args.system or None
    directory = paths.resolve_dir()
    if args.session is not None:
        session_id = await store.resolve_session_id(args.session)
        session = await store.get_session(session_id)
        if session is None:  # removed between the two reads
            raise NotFoundError(f"no session matches {args.session!r}")
        if session.deleted_at is not None:
            raise CommandFailed(
                f"session {args.session} is in the trash; restore it first "
                "(threadline sessions restore ID)",
                1,
            )
        return session, False
    if args.new:
        session = await store.create_session(
            directory, provider=provider.name, model=model, system_prompt=system_prompt
        )
        return session, True
    hours = _FOREVER_HOURS if args.continue_ else settings.session.continue_window_hours
    return await store.get_or_create_session_ex(
        directory, hours, provider=provider.name, model=model, system_prompt=system_prompt
    )


class _Output:
    """The reply on stdout, flushed per delta. On a terminal it is sanitised (escape sequences,
    bidi overrides and zero-width characters drawn as placeholders, as everywhere else); piped,
    it is passed on exactly, for scripts."""

    def __init__(self, stream: TextIO) -> None:
        from threadline.text import StreamSanitizer

        self.stream = stream
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.sanitizer = StreamSanitizer() if tty else None
        self.written = False
        self.last = ""

    def write(self, text: str) -> None:
        self._emit(self.sanitizer.feed(text) if self.sanitizer is not None else text)

    def _emit(self, text: str) -> None:
        if not text:
            return
        self.stream.write(text)
        self.stream.flush()
        self.written = True
        self.last = text[-1]

    def end(self) -> None:
        """Finish the reply's line, so the prompt (or an error) starts on a new one."""
        if self.sanitizer is not None:
            self._emit(self.sanitizer.end())
        if self.written and self.last != "\n":
            self.stream.write("\n")
            self.last = "\n"
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass
