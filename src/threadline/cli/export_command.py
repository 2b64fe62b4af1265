"""`threadline export`: a session as Markdown or JSON, or everything as JSONL (a full backup).

Files are written to a temporary name beside the target and renamed when complete, so a failed
or interrupted export never leaves half a file; they are created private (0600), since they
hold conversations. Markdown goes out verbatim to files and pipes; on a terminal, control
characters are shown as ^[ and the like instead of being interpreted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from threadline.cli.common import check_config, get_session, with_store

if TYPE_CHECKING:
    from threadline.models import Session, TimelineItem
    from threadline.store import Store

PAGE = 1000


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "export",
        parents=[common],
        help="export sessions as Markdown, JSON or JSONL",
        description="Export sessions. `export ID` writes Markdown for people (default) or "
        "lossless JSON (--format json); `export --all --format jsonl -o FILE` writes every "
        "session, in the trash too, with its messages, summaries and memories: a full backup "
        "that `threadline import threadline FILE` reads back.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="session ids or unique prefixes")
    p.add_argument("--all", action="store_true", help="every session (JSONL only)")
    p.add_argument(
        "--format",
        choices=("markdown", "json", "jsonl"),
        default=None,
        help="markdown (default for IDs), json (one session, lossless) or jsonl (default "
        "with --all)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="write to FILE (default: stdout)"
    )
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from threadline.errors import UsageError

    check_config(args)
    if args.all and args.ids:
        raise UsageError("give session IDs or --all, not both")
    if not args.all and not args.ids:
        raise UsageError("give a session ID to export, or --all for everything")
    fmt = args.format or ("jsonl" if args.all else "markdown")
    if args.all and fmt != "jsonl":
        raise UsageError("--all exports JSONL only: use --format jsonl")
    if fmt == "json" and len(args.ids) > 1:
        raise UsageError("--format json holds one session; use --format jsonl for several")
    target = None if args.output in (None, "-") else Path(args.output).expanduser()
    if target is not None:
        _check_target(target)

    # Markdown is verbatim in files and pipes; on a terminal nothing in it may act as an escape.
    from threadline.cli.output import stdout_is_tty

    to_terminal = target is None and stdout_is_tty()

    async def body(store: Store) -> str:
        ids = None
        if not args.all:
            ids = []
            for prefix in args.ids:
                session_id = await store.resolve_session_id(prefix)
                if session_id not in ids:
                    ids.append(session_id)
        with _output(target) as out:
            if fmt == "jsonl":
                return await _export_jsonl(store, out, ids, target)
            assert ids is not None
            if fmt == "json":
                out.write(await store.export_json(ids[0]))
                return "1 session"
            for n, session_id in enumerate(ids):
                if n:
                    out.write("\n---\n\n")
                await write_markdown(store, session_id, out, sanitise=to_terminal)
            return f"{len(ids)} session{'s' if len(ids) != 1 else ''}"

    what = with_store(args, body)
    if target is not None:
        print(f"Exported {what} to {target}.", file=sys.stderr)
    return 0


def _check_target(target: Path) -> None:
    from threadline.errors import ThreadlineError

    if target.is_dir():
        raise ThreadlineError(f"{target}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise ThreadlineError(f"{target.parent}: no such directory")
    if not os.access(target.parent, os.W_OK):
        raise ThreadlineError(f"cannot write {target}: permission denied")


@contextmanager
def _output(target: Path | None) -> Iterator[IO[str]]:
    """stdout, or a private temporary file renamed to `target` only when all went well."""
    from threadline.errors import ThreadlineError

    if target is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise ThreadlineError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise ThreadlineError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


async def _export_jsonl(
    store: Store, out: IO[str], ids: list[str] | None, target: Path | None
) -> str:
    from threadline.cli.output import Progress, plural

    bar = Progress("exporting", unit="messages")
    bar.count_unit = "messages"

    def progress(done: int, total: int) -> None:
        bar.total = total or None
        bar.update(done, done)

    try:
        stats = await store.export_jsonl(out, ids, progress=progress)
    finally:
        bar.close()
    return (
        f"{plural(stats.sessions, 'session')}, {plural(stats.messages, 'message')}, "
        f"{plural(stats.summaries, 'summary', 'summaries')} and "
        f"{plural(stats.memories, 'memory', 'memories')}"
    )


# ---------------------------------------------------------------------------- markdown


async def write_markdown(store: Store, session_id: str, out: IO[str], *, sanitise: bool) -> None:
    """A session for people: title, directory, model, then each turn; summaries quoted."""
    from threadline.text import sanitize_terminal

    clean = sanitize_terminal if sanitise else (lambda text: text)
    session = await get_session(store, session_id)
    out.write(clean(_markdown_header(session)))
    position: tuple[int, int] = (0, 1)
    while True:
        items = await store.timeline(session_id, after=position, limit=PAGE)
        for item in items:
            out.write(clean(_markdown_item(item)))
        if len(items) < PAGE:
            break
        position = items[-1].position


def _utc(when: Any) -> str:
    from threadline.cli.output import to_utc

    return to_utc(when).strftime("%Y-%m-%d %H:%M UTC")


def _markdown_header(session: Session) -> str:
    from threadline import paths

    title = " ".join(session.display_title.split())
    lines = [f"# {title}", ""]
    lines.append(f"- Directory: `{paths.home_short(session.working_dir)}`")
    if session.model or session.provider:
        provider = f" ({session.provider})" if session.provider else ""
        lines.append(f"- Model: {session.model or 'unknown'}{provider}")
    lines.append(f"- Started: {_utc(session.created_at)}; last activity {_utc(session.updated_at)}")
    lines.append(f"- Messages: {session.message_count:,}")
    lines.append(f"- Session: `{session.id}`")
    if session.system_prompt:
        lines += ["", "System prompt:", ""]
        lines += ["> " + line if line else ">" for line in session.system_prompt.splitlines()]
    return "\n".join(lines) + "\n\n"


def _markdown_item(item: TimelineItem) -> str:
    if item.kind == "summary":
        head = (
            f"> **Summary** of messages {item.first_message_id}–{item.last_message_id}"
            f" ({_utc(item.created_at)})"
        )
        body = "\n".join("> " + line if line else ">" for line in item.content.splitlines())
        return f"{head}\n>\n{body}\n\n"
    details = [_utc(item.created_at)]
    if item.model:
        details.append(item.model)
    head = f"## {item.role.capitalize()} · {' · '.join(details)}"
    tail = "" if item.complete else f"\n\n*(incomplete: {item.stop_reason or 'still streaming'})*"
    return f"{head}\n\n{item.content.rstrip()}{tail}\n\n"
