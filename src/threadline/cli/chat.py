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
    from threadline.chat.turns import SessionRequest, TurnEngine
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


# What the first request imports (httpx loads httpcore and its anyio backend on first use).
_HTTP_MODULES = ("httpx", "httpcore", "httpcore._backends.anyio", "httpx_sse")


def _preload_http() -> None:
    """Import the HTTP client on a thread of its own while the turn's database work runs
    (finding the session, saving the message, reading the context): the first request would
    otherwise wait for these imports (~100 ms) after all of it. Started once this command's
    own imports are done, so the two threads never import the same modules at once; the
    request's own `import httpx` waits for this one to finish, or reports its error."""
    import importlib
    import threading

    def run() -> None:
        for name in _HTTP_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the request imports it again and says why
                return

    threading.Thread(target=run, name="threadline-http-import", daemon=True).start()


async def _chat(store: Store, args: argparse.Namespace, settings: Settings, text: str) -> int:
    import asyncio
    from contextlib import aclosing

    from threadline.chat.turns import (
        ContextNotice,
        ReplyDelta,
        ReplyFinished,
        SaveProblem,
        SummarySaved,
        SummaryStarted,
        TurnCancelled,
        TurnEngine,
        TurnFailed,
        UserMessageSaved,
    )

    _preload_http()
    # Another process writing (an import, a vacuum) never loses what was typed: the message
    # waits for the lock as long as it takes, saying why, until it is saved or ctrl-c.
    store.wait_for_lock(None, _LockNotice())
    target = await _find_session(store, args, settings)
    engine = TurnEngine.from_settings(store, settings)
    try:
        turn = engine.start(target, text, model=args.model, system_prompt=args.system)
        out = _Output(sys.stdout)
        events = aiter(turn)
        saved = False
        try:
            # aclosing: if writing to stdout fails, the engine still saves what arrived.
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, ReplyDelta):
                        out.write(event.text)
                    elif isinstance(event, UserMessageSaved):
                        saved = True
                        session = event.session
                        short = (await store.short_ids([session.id]))[session.id]
                        new = " (new)" if event.created else ""
                        print(f"session {short}{new}", file=sys.stderr, flush=True)
                    elif isinstance(event, SaveProblem):
                        _note(
                            f"threadline: warning: the reply is not being saved "
                            f"({event.error}); {event.saved_chars:,} of "
                            f"{event.total_chars:,} characters are in the database so "
                            "far; still trying"
                        )
                    elif isinstance(event, ReplyFinished):
                        out.end()
                    elif isinstance(event, SummaryStarted):
                        _note("summarising the earlier messages…")
                    elif isinstance(event, SummarySaved):
                        from threadline.cli.common import summary_ranges

                        summary = event.summary
                        ranges = await summary_ranges(store, session.id, [summary])
                        _note(
                            f"summarised {ranges[summary.id]}: requests send the summary "
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
            if not saved:
                raise CommandFailed(
                    "interrupted before the message was saved; nothing was written",
                    EXIT_INTERRUPTED,
                ) from None
            raise CommandFailed(
                "interrupted; the partial reply was saved", EXIT_INTERRUPTED
            ) from None
        await _after_turn(args, settings, engine)
    finally:
        await engine.aclose()
    return 0


class _LockNotice:
    """Says on stderr why nothing happens while another process holds the write lock."""

    EVERY = 30.0

    def __init__(self) -> None:
        self.told: float | None = None

    def __call__(self, seconds: float) -> None:
        if self.told is not None and seconds - self.told < self.EVERY and seconds >= self.told:
            return
        self.told = seconds
        _note(
            f"threadline: waiting for the database: another process is writing to it "
            f"({seconds:.0f} s so far); your message will be saved as soon as it is free "
            "(ctrl-c gives up)"
        )


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
) -> Session | SessionRequest:
    """The session this turn goes to, or where to make (or continue) one with its message."""
    from threadline import paths
    from threadline.chat.turns import SessionRequest
    from threadline.store import NotFoundError

    provider = settings.effective_provider()
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
        return session
    hours = _FOREVER_HOURS if args.continue_ else settings.session.continue_window_hours
    # Made (or continued) in the transaction that saves the message: a crash before it leaves
    # no empty session. The session remembers --model once that model has answered (the turn
    # engine does it), so a mistyped model does not stick to a new session.
    return SessionRequest(
        directory,
        continue_window_hours=None if args.new else hours,
        provider=provider.name,
        model=provider.model,
        system_prompt=args.system or None,
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
