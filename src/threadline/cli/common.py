"""What the subcommands share: errors, the parser, settings, the store, scopes, ids and labels.

Kept light at import time (argparse only): the store, pydantic and the chat engine load when a
command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from threadline.config import Settings
    from threadline.models import Scope, Session, SessionSummary, Summary
    from threadline.store import Store

T = TypeVar("T")


class CommandFailed(Exception):
    """End the command with `status`; `message` (if any) is printed as a one-line error."""

    def __init__(self, message: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ThreadlineArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (`threadline: error: ...`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        report_error(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def report_error(message: str) -> None:
    """`threadline: error: <message>` on stderr, on one line and sanitised."""
    from threadline.text import one_line

    print(f"threadline: error: {one_line(str(message))}", file=sys.stderr)


# Counts given on the command line stop here: far beyond any history, and well inside what
# SQLite can bind (a larger Python int would raise OverflowError deep in the store).
MAX_COUNT = 1_000_000_000


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {value}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_COUNT:,}, not {text}")
    return value


def add_subcommands(parser: argparse.ArgumentParser, dest: str) -> Any:
    return parser.add_subparsers(
        dest=dest, metavar="ACTION", parser_class=ThreadlineArgumentParser, required=True
    )


def add_scope_options(parser: argparse.ArgumentParser, default: str) -> None:
    """--dir DIR | --workspace | --all, with `default` ("directory" or "all") when none is given."""
    group = parser.add_mutually_exclusive_group()
    here = " (the default)" if default == "directory" else ""
    group.add_argument(
        "--dir",
        dest="scope_dir",
        metavar="DIR",
        default=None,
        help=f"sessions of this directory{here}; the current directory when no scope is given"
        if default == "directory"
        else "only sessions of this directory",
    )
    group.add_argument(
        "--workspace",
        action="store_true",
        help="sessions of the current git repository (its root and every directory below)",
    )
    group.add_argument(
        "--all",
        dest="all_dirs",
        action="store_true",
        help="sessions of every directory" + (" (the default)" if default == "all" else ""),
    )
    parser.set_defaults(scope_default=default)


@dataclass(frozen=True)
class ScopeChoice:
    scope: Scope
    directory: str | None  # the directory the scope is taken from (None: all)

    @property
    def single_directory(self) -> bool:
        return self.scope.value == "directory"

    @property
    def root(self) -> str | None:
        """The directory the scope is anchored at (store.scope_root; None for all)."""
        from threadline.store import scope_root

        return scope_root(self.scope, self.directory)

    def describe(self) -> str:
        from threadline import paths

        root = self.root
        if root is None:
            return "all directories"
        if self.scope.value == "workspace":
            return f"workspace {paths.home_short(root)}"
        return paths.home_short(root)


def scope_from_args(args: argparse.Namespace) -> ScopeChoice:
    from threadline import paths
    from threadline.errors import UsageError
    from threadline.models import Scope

    if getattr(args, "all_dirs", False):
        return ScopeChoice(Scope.ALL, None)
    try:
        if getattr(args, "workspace", False):
            return ScopeChoice(Scope.WORKSPACE, paths.resolve_dir(None))
        if args.scope_dir is not None:
            # A directory that no longer exists can still have sessions: no existence check.
            return ScopeChoice(Scope.DIRECTORY, paths.resolve_dir(args.scope_dir))
        if args.scope_default == "all":
            return ScopeChoice(Scope.ALL, None)
        return ScopeChoice(Scope.DIRECTORY, paths.resolve_dir(None))
    except FileNotFoundError:
        raise UsageError("the current directory no longer exists; give --dir or --all") from None


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings named by --config (or the default file): for commands that use them."""
    from threadline.config import load_settings

    return load_settings(getattr(args, "config", None))


def require_provider(
    settings: Settings, model: str | None = None, *, model_required: bool = False, hint: str = ""
) -> None:
    """Fail before the database is touched when no request to a model could be made.

    A model may come from `model` (a flag), else from the settings; with model_required=False
    (the session may name one) only the provider's URL must be known. `hint` is added to a
    missing-model message (`, or pass --model`).
    """
    from threadline import paths
    from threadline.chat.provider import not_configured_message

    provider = settings.effective_provider()
    config_path = settings.source or paths.config_path()
    problem = not_configured_message(
        provider, config_path, model=model, model_required=model_required
    )
    if problem:
        if provider.configured and hint:
            problem += hint
        raise CommandFailed(problem)


def check_config(args: argparse.Namespace) -> None:
    """For commands that need no settings: still reject a bad --config given explicitly.

    Without --config nothing is read, which keeps `sessions list` and `search` quick to start.
    """
    if getattr(args, "config", None):
        settings_of(args)


def with_store(
    args: argparse.Namespace, body: Callable[[Store], Awaitable[T]], *, readers: int = 1
) -> T:
    """Open the store named by --db (or the default), run `body` on a fresh event loop, always
    close it."""

    async def main() -> T:
        from threadline.store import Store

        store = await Store.open(getattr(args, "db", None), readers=readers)
        try:
            return await body(store)
        finally:
            await store.close()

    import asyncio  # loaded by the commands that run, not by the parser

    return asyncio.run(main())


@dataclass
class Resolved:
    """A session id given on the command line, resolved (or the reason it was not)."""

    given: str
    session_id: str | None = None
    error: str | None = None


async def get_session(store: Store, session_id: str) -> Session:
    """The session, or a clear error if it vanished since its id was resolved."""
    from threadline.store import NotFoundError

    session = await store.get_session(session_id)
    if session is None:
        raise NotFoundError(f"session {session_id} no longer exists")
    return session


async def resolve_all(store: Store, given: list[str]) -> list[Resolved]:
    """Resolve each prefix; failures are kept with their message instead of raising."""
    from threadline.store import StoreError

    out = []
    for prefix in given:
        try:
            out.append(Resolved(prefix, await store.resolve_session_id(prefix)))
        except StoreError as exc:
            out.append(Resolved(prefix, error=str(exc)))
    return out


def label(short: str, session: SessionSummary, width: int = 60) -> str:
    """`0190abcd  "Title"` for reports: sanitised, one line, cut to `width`."""
    from threadline.text import one_line, truncate

    return f"{short}  {truncate(one_line(session.display_title), width)}"


def marks(session: SessionSummary) -> str:
    """`*` pinned, `!` crashed, `?` its last message has no reply (legend under the table)."""
    return (
        ("*" if session.pinned else "")
        + ("!" if session.status == "crashed" else "")
        + ("?" if session.unanswered else "")
    )


def summary_json(session: SessionSummary) -> dict[str, Any]:
    """The stable `sessions list --json` object (keys in the documented order)."""
    from threadline.cli.output import iso

    return {
        "id": session.id,
        "title": session.title,
        "preview": session.preview,
        "working_dir": session.working_dir,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "message_count": session.message_count,
        "provider": session.provider,
        "model": session.model,
        "pinned": session.pinned,
        "status": session.status,
        "source": session.source,
    }


# ---------------------------------------------------------------------------- message numbers
# People see a message's position in its session (1, 2, 3 ...), as the app does, never its
# database id: "summary of messages 1–8", not "#15–#22".


async def summary_ranges(store: Store, session_id: str, summaries: list[Summary]) -> dict[int, str]:
    """`messages 1–8` for each summary (by summary id): the positions of the messages it stands
    for, or `the earlier messages (since compacted)` when they were removed."""
    spans = await store.summary_spans(session_id, summaries)
    out = {}
    for summary in summaries:
        span = spans.get(summary.id)
        if span is None or span.compacted:
            out[summary.id] = "the earlier messages (since compacted)"
        elif span.covered == 1:
            out[summary.id] = f"message {span.first_position:,}"
        else:
            out[summary.id] = f"messages {span.first_position:,}–{span.last_position:,}"
    return out


async def message_position(store: Store, session_id: str, message_id: int) -> int | None:
    """The message's 1-based position among its session's messages (None: it is gone)."""
    message = await store.get_message(message_id)
    if message is None or message.session_id != session_id:
        return None
    return await store.count_messages_before(session_id, message_id) + 1
