"""What the history commands share: running against the store, scopes, ids and labels.

Kept light at import time (argparse only); the store and pydantic load when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from threadline.cli.common import ThreadlineArgumentParser

if TYPE_CHECKING:
    from threadline.config import Settings
    from threadline.models import Scope, Session, SessionSummary
    from threadline.store import Store

T = TypeVar("T")


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
    directory: str | None  # the directory the scope is anchored at (None: all)

    @property
    def single_directory(self) -> bool:
        return self.scope.value == "directory"

    def describe(self) -> str:
        from threadline import paths

        if self.directory is None:
            return "all directories"
        where = paths.home_short(self.directory)
        if self.scope.value == "workspace":
            return f"workspace {paths.home_short(paths.workspace_root(self.directory))}"
        return where


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
    """The settings (a command that uses them: cleanup, trash)."""
    from threadline.config import load_settings

    return load_settings(getattr(args, "config", None))


def check_config(args: argparse.Namespace) -> None:
    """For commands that need no settings: still reject a bad --config given explicitly.

    Without --config nothing is read, which keeps `sessions list` and `search` quick to start.
    """
    if getattr(args, "config", None):
        settings_of(args)


def with_store(args: argparse.Namespace, body: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store named by --db (or the default), run `body`, always close it."""

    async def main() -> T:
        from threadline.store import Store

        store = await Store.open(getattr(args, "db", None), readers=1)
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
    }
