"""`threadline sessions ...`: list, show, delete (trash or purge), trash, restore, rename, pin
(and summarize, compact: cli/summaries.py)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from threadline.cli.common import (
    CommandFailed,
    add_scope_options,
    add_subcommands,
    check_config,
    get_session,
    positive_int,
    report_error,
    resolve_all,
    scope_from_args,
    settings_of,
    with_store,
)

if TYPE_CHECKING:
    from threadline.cli.output import Column
    from threadline.models import (
        Message,
        Session,
        SessionSummary,
        Summary,
        SummarySpan,
        TimelineItem,
    )
    from threadline.store import Store

LIST_LIMIT = 50
SHOW_PAGE = 500

MARKS_HELP = "marks: * pinned, ! crashed (its last turn broke off), ? no reply to the last message"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sessions",
        parents=[common],
        help="list, show and manage sessions",
        description="List, read and manage your sessions. IDs may be shortened to any unique "
        "prefix (the short ids that `sessions list` shows).",
    )
    actions = add_subcommands(parser, "sessions_action")

    p = actions.add_parser(
        "list",
        parents=[common],
        help="sessions of this directory (or --workspace, --all), newest first",
        description="Sessions newest first, pinned ones on top. " + MARKS_HELP + ".",
    )
    add_scope_options(p, default="directory")
    p.add_argument(
        "--limit",
        type=positive_int,
        default=LIST_LIMIT,
        metavar="N",
        help=f"show at most N sessions (default {LIST_LIMIT}; 0 for all)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_list)

    p = actions.add_parser(
        "show",
        parents=[common],
        help="print a session's transcript",
        description="Print a session's messages and summaries in order, with roles and times; "
        "messages are numbered by their position in the session. On a terminal the transcript "
        "goes through a pager ($PAGER, else less with LESS=FRX), as git does.",
    )
    p.add_argument("id", metavar="ID", help="session id or unique prefix")
    p.add_argument("--json", action="store_true", help='print {"session": ..., "items": [...]}')
    p.add_argument(
        "--no-pager", action="store_true", help="print to the terminal directly, without a pager"
    )
    p.add_argument(
        "--thinking",
        action="store_true",
        help="include the model's reasoning in sessions imported from other tools (by default "
        "one line says it is there); their tool calls and results are one line each either way",
    )
    p.set_defaults(handler=cmd_show)

    p = actions.add_parser(
        "delete",
        parents=[common],
        help="move sessions to the trash (or --purge them for good)",
        description="Move sessions to the trash, from which `sessions restore` brings them back "
        "until they are purged. With --purge they are removed for good, after a confirmation "
        "(or --yes; required when stdin is not a terminal).",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="session ids or unique prefixes")
    p.add_argument("--purge", action="store_true", help="remove for good instead of trashing")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_delete)

    p = actions.add_parser("trash", parents=[common], help="list sessions in the trash")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_trash)

    p = actions.add_parser("restore", parents=[common], help="bring sessions back from the trash")
    p.add_argument("ids", nargs="+", metavar="ID", help="session ids or unique prefixes")
    p.set_defaults(handler=cmd_restore)

    p = actions.add_parser(
        "empty-trash",
        parents=[common],
        help="purge every session in the trash for good",
        description="Remove every session in the trash for good, after a confirmation (or "
        "--yes; required when stdin is not a terminal).",
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_empty_trash)

    p = actions.add_parser(
        "rename",
        parents=[common],
        help="set a session's title",
        description='Set a session\'s title; an empty title ("") clears it, so the first '
        "message shows again.",
    )
    p.add_argument("id", metavar="ID", help="session id or unique prefix")
    p.add_argument("title", nargs="+", metavar="TITLE", help="the new title")
    p.set_defaults(handler=cmd_rename)

    for name, pinned in (("pin", True), ("unpin", False)):
        p = actions.add_parser(
            name,
            parents=[common],
            help="keep sessions on top and safe from cleanup" if pinned else "unpin sessions",
        )
        p.add_argument("ids", nargs="+", metavar="ID", help="session ids or unique prefixes")
        p.set_defaults(handler=cmd_pin, pinned=pinned)

    from threadline.cli.summaries import register_actions

    register_actions(actions, common)


# ---------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    check_config(args)
    choice = scope_from_args(args)
    limit = args.limit or None

    async def body(store: Store) -> tuple[list[SessionSummary], dict[str, str], int]:
        rows = await store.list_sessions(choice.scope, choice.directory, limit=limit)
        total = len(rows)
        if limit is not None and len(rows) == limit:
            total = await store.count_sessions(choice.scope, choice.directory)
        shorts = {} if args.json else await store.short_ids([r.id for r in rows])
        return rows, shorts, total

    rows, shorts, total = with_store(args, body)
    if args.json:
        from threadline.cli.common import summary_json
        from threadline.cli.output import print_json

        print_json([summary_json(r) for r in rows])
        return 0
    if not rows:
        print(f"No sessions in {choice.describe()}.", file=sys.stderr)
        if choice.directory is not None:
            print("Try --workspace or --all.", file=sys.stderr)
        return 0
    print_session_table(rows, shorts, show_dir=not choice.single_directory)
    if total > len(rows):
        print(f"({len(rows):,} of {total:,} sessions shown; --limit 0 shows all)", file=sys.stderr)
    return 0


# A narrow terminal gives its width to titles, then directories: a layout is taken when they
# keep at least this much (or all they need); dates go compact first, then columns go.
GOOD_TITLE = 32
GOOD_DIRECTORY = 16


def print_session_table(
    rows: list[SessionSummary], shorts: dict[str, str], *, show_dir: bool
) -> None:
    from threadline.cli.output import fit_widths, render_table, terminal_width, write_lines

    width = terminal_width()
    layouts = (
        [(False, ())]
        if width is None
        else [
            (False, ()),
            (True, ()),
            (True, ("CREATED",)),
            (True, ("CREATED", "MODEL")),
        ]
    )
    for n, (compact, without) in enumerate(layouts):
        columns, table = _session_table(rows, shorts, show_dir, compact, without)
        if n == len(layouts) - 1:
            break
        keep, widths = fit_widths(columns, table, width)
        got = {columns[i].header: w for i, w in zip(keep, widths, strict=True)}
        natural = fit_widths(columns, table, None)[1]
        need = {c.header: w for c, w in zip(columns, natural, strict=True)}
        if len(keep) == len(columns) and all(
            got[name] >= min(need[name], good)
            for name, good in (("TITLE", GOOD_TITLE), ("DIRECTORY", GOOD_DIRECTORY))
            if name in need
        ):
            break
    write_lines(render_table(columns, table, width))
    if any(r.pinned or r.status == "crashed" for r in rows):
        print(MARKS_HELP, file=sys.stderr)


def _session_table(
    rows: list[SessionSummary],
    shorts: dict[str, str],
    show_dir: bool,
    compact: bool,
    without: tuple[str, ...],
) -> tuple[list[Column], list[list[str]]]:
    """The columns and cells of `sessions list`: dates in full or `compact`, some left out."""
    from threadline import paths
    from threadline.cli.common import marks
    from threadline.cli.output import (
        Column,
        compact_age,
        compact_date,
        relative_time,
        short_time,
    )
    from threadline.text import one_line

    with_marks = any(r.pinned or r.status == "crashed" or r.unanswered for r in rows)
    columns = [Column("ID")]
    if with_marks:
        columns.append(Column("", minimum=1))
    columns.append(Column("ACTIVE" if compact else "LAST ACTIVE"))
    if "CREATED" not in without:
        columns.append(Column("CREATED", drop=4))
    columns.append(Column("MSGS", right=True, drop=2))
    if "MODEL" not in without:
        columns.append(Column("MODEL", shrink=3, minimum=8, drop=3))
    if show_dir:
        columns.append(Column("DIRECTORY", shrink=2, minimum=GOOD_DIRECTORY, cut_left=True, drop=1))
    columns.append(Column("TITLE", shrink=1, minimum=12))
    table = []
    for r in rows:
        cells = [shorts.get(r.id, r.id)]
        if with_marks:
            cells.append(marks(r))
        cells.append(compact_age(r.updated_at) if compact else relative_time(r.updated_at))
        if "CREATED" not in without:
            cells.append(compact_date(r.created_at) if compact else short_time(r.created_at))
        cells.append(f"{r.message_count:,}")
        if "MODEL" not in without:
            cells.append(one_line(r.model or "-"))
        if show_dir:
            cells.append(one_line(paths.home_short(r.working_dir)))
        cells.append(one_line(r.display_title))
        table.append(cells)
    return columns, table


# ---------------------------------------------------------------------------- show


def cmd_show(args: argparse.Namespace) -> int:
    check_config(args)
    if args.json:
        return _show_json(args)

    async def body(store: Store) -> None:
        from threadline.cli.common import summary_ranges
        from threadline.cli.output import paged

        session_id = await store.resolve_session_id(args.id)
        session = await get_session(store, session_id)
        shorts = await store.short_ids([session_id])
        with paged(not args.no_pager) as out:
            out.write(_transcript_header(session, shorts[session_id]))
            position: tuple[int, int] = (0, 1)  # before every message and summary
            count = 0  # messages so far: the next one's position in the session
            last: TimelineItem | None = None
            while True:
                items = await store.timeline(session_id, after=position, limit=SHOW_PAGE)
                summaries = [i for i in items if i.kind == "summary"]
                ranges = await summary_ranges(store, session_id, summaries) if summaries else {}
                for item in items:
                    if item.kind == "summary":
                        out.write(_transcript_summary(item, ranges[item.id]))
                    else:
                        count += 1
                        out.write(_transcript_message(item, count, thinking=args.thinking))
                    last = item
                if len(items) < SHOW_PAGE:
                    break
                position = items[-1].position
            if session.message_count == 0:
                out.write("(no messages yet)\n")
            elif last is not None and last.kind == "message" and session.unanswered:
                out.write(_unanswered_note(session))

    with_store(args, body)
    return 0


def _transcript_header(session: Session, short: str) -> str:
    from threadline import paths
    from threadline.cli.output import local_time
    from threadline.text import one_line

    flags = []
    if session.pinned:
        flags.append("pinned")
    if session.status == "crashed":
        flags.append("crashed: the last turn broke off")
    elif session.status == "completed":
        flags.append("completed")
    if session.deleted_at is not None:
        flags.append(f"in the trash since {local_time(session.deleted_at)}")
    lines = [one_line(session.display_title) + (f"  [{'; '.join(flags)}]" if flags else "")]
    lines.append(f"  id         {session.id}  (short: {short})")
    lines.append(f"  directory  {one_line(paths.home_short(session.working_dir))}")
    if session.source:
        source_id = session.metadata.get("source_id")
        of = f" (its id there: {one_line(str(source_id))})" if source_id else ""
        lines.append(f"  imported   from {one_line(session.source)}{of}")
    if session.model or session.provider:
        model = one_line(session.model or "?")
        provider = f" ({one_line(session.provider)})" if session.provider else ""
        lines.append(f"  model      {model}{provider}")
    lines.append(
        f"  created    {local_time(session.created_at)}, last activity "
        f"{local_time(session.updated_at)}"
    )
    tokens = ""
    if session.total_input_tokens or session.total_output_tokens:
        tokens = f", tokens {session.total_input_tokens:,} in / {session.total_output_tokens:,} out"
    lines.append(f"  messages   {session.message_count:,}{tokens}")
    if session.system_prompt:
        lines.append(f"  system     {one_line(session.system_prompt)}")
    return "\n".join(lines) + "\n\n"


def _unanswered_note(session: Session) -> str:
    """Said after a last user message that no reply follows."""
    if session.status == "crashed":
        return (
            "[no reply: the turn broke off before the model answered; `threadline chat "
            "--session ID` continues]\n"
        )
    return "[no reply to this message]\n"


def _transcript_summary(item: Summary, covers: str) -> str:
    """`── summary of messages 1–8 · time ──` and the summary's text, each line behind a bar."""
    from threadline.cli.output import local_time
    from threadline.text import sanitize_terminal

    when = local_time(item.created_at, seconds=True)
    head = f"── summary of {covers} · {when} ──"
    body = "\n".join("│ " + line for line in sanitize_terminal(item.content).splitlines())
    return f"{head}\n{body}\n\n"


def _transcript_message(item: Message, position: int, *, thinking: bool = False) -> str:
    """`── 3 · user · time · model · tokens ──` (3: its position in the session) and its text.

    A message imported from another tool is shown through its parts (threadline.transcript):
    each tool call and result on one line, its reasoning one marker line unless `thinking`, and
    the role says what it is when it is not what the person typed (`user (command)`)."""
    from threadline.cli.output import local_time
    from threadline.text import sanitize_terminal
    from threadline.transcript import message_kind, transcript_lines

    kind = message_kind(item.payload)
    role: str = item.role
    if kind in ("command", "meta", "info"):
        role = f"{item.role} ({kind})"
    parts = [str(position), role, local_time(item.created_at, seconds=True)]
    if item.model:
        parts.append(sanitize_terminal(item.model))
    if item.input_tokens is not None or item.output_tokens is not None:
        parts.append(f"{item.input_tokens or 0:,} in / {item.output_tokens or 0:,} out")
    if item.response_ms is not None:
        parts.append(f"{item.response_ms / 1000:.1f} s")
    head = f"── {' · '.join(parts)} ──"
    lines = transcript_lines(item.content, item.payload, thinking=thinking)
    body = item.content if lines is None else "\n".join(lines)
    text = sanitize_terminal(body).rstrip("\n")
    tail = ""
    if not item.complete:
        tail = f"\n[incomplete: {sanitize_terminal(item.stop_reason or 'still streaming')}]"
    return f"{head}\n{text}{tail}\n\n"


def session_json(session: Session) -> dict[str, Any]:
    from threadline.cli.common import summary_json
    from threadline.cli.output import iso

    data = summary_json(session)
    data.update(
        {
            "system_prompt": session.system_prompt,
            "deleted_at": iso(session.deleted_at),
            "ended_at": iso(session.ended_at),
            "total_input_tokens": session.total_input_tokens,
            "total_output_tokens": session.total_output_tokens,
            "metadata": session.metadata,
        }
    )
    return data


def item_json(
    item: TimelineItem, position: int | None = None, span: SummarySpan | None = None
) -> dict[str, Any]:
    """A `sessions show --json` item. Messages carry their database `id` and their `position`
    in the session (1-based, what people see); summaries the ids of the first and last message
    they stand for and those messages' positions (null once compacted away)."""
    from threadline.cli.output import iso

    if item.kind == "summary":
        shown = span is not None and not span.compacted
        return {
            "kind": "summary",
            "id": item.id,
            "content": item.content,
            "first_message_id": item.first_message_id,
            "last_message_id": item.last_message_id,
            "first_position": span.first_position if shown and span else None,
            "last_position": span.last_position if shown and span else None,
            "token_count": item.token_count,
            "created_at": iso(item.created_at),
        }
    return {
        "kind": "message",
        "id": item.id,
        "position": position,
        "role": item.role,
        "content": item.content,
        "created_at": iso(item.created_at),
        "input_tokens": item.input_tokens,
        "output_tokens": item.output_tokens,
        "model": item.model,
        "stop_reason": item.stop_reason,
        "response_ms": item.response_ms,
        "complete": item.complete,
    }


def _show_json(args: argparse.Namespace) -> int:
    from threadline.cli.output import print_json

    async def body(store: Store) -> dict[str, Any]:
        session_id = await store.resolve_session_id(args.id)
        session = await get_session(store, session_id)
        items = await store.timeline(session_id)
        spans = await store.summary_spans(session_id, [i for i in items if i.kind == "summary"])
        out, count = [], 0
        for item in items:
            if item.kind == "summary":
                out.append(item_json(item, span=spans.get(item.id)))
            else:
                count += 1
                out.append(item_json(item, count))
        return {"session": session_json(session), "items": out}

    print_json(with_store(args, body))
    return 0


# ---------------------------------------------------------------------------- delete & trash


def _refuse_or_confirm(question: str, yes: bool, what: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    from threadline.cli.output import confirm, stdin_is_tty

    if yes:
        return
    if not stdin_is_tty():
        raise CommandFailed(
            f"refusing to {what} without --yes: stdin is not a terminal, so nobody can confirm"
        )
    if not confirm(question):
        raise CommandFailed(f"cancelled: nothing was {what.split()[0]}d")


def cmd_delete(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(store: Store) -> int:
        from threadline.cli.common import label

        resolved = await resolve_all(store, args.ids)
        failed = 0
        targets: dict[str, SessionSummary] = {}
        for r in resolved:
            if r.error:
                report_error(r.error)
                failed += 1
            elif r.session_id is not None and r.session_id not in targets:
                session = await store.get_session(r.session_id)
                if session is None:
                    report_error(f"no session matches {r.given!r}")
                    failed += 1
                    continue
                targets[r.session_id] = session
        shorts = await store.short_ids(list(targets)) if targets else {}
        if targets and args.purge:
            listing = "\n".join("  " + label(shorts[s], v) for s, v in targets.items())
            sys.stderr.write(f"About to purge for good:\n{listing}\n")
            count = len(targets)
            noun = "session" if count == 1 else "sessions"
            _refuse_or_confirm(
                f"Purge {count} {noun} for good? This cannot be undone.",
                args.yes,
                "purge sessions",
            )
        for session_id, target in targets.items():
            name = label(shorts[session_id], target)
            if args.purge:
                if await store.purge_session(session_id):
                    print(f"purged for good: {name}")
                else:  # removed by someone else in the meantime
                    report_error(f"{shorts[session_id]}: no longer exists")
                    failed += 1
            elif await store.delete_session(session_id):
                print(f"moved to the trash: {name}")
            else:
                print(f"already in the trash: {name}")
        return failed

    failed = with_store(args, body)
    if failed:
        raise CommandFailed(status=1)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(store: Store) -> int:
        from threadline.cli.common import label

        failed = 0
        for r in await resolve_all(store, args.ids):
            if r.error or r.session_id is None:
                report_error(r.error or f"no session matches {r.given!r}")
                failed += 1
                continue
            session = await get_session(store, r.session_id)
            name = label((await store.short_ids([r.session_id]))[r.session_id], session)
            if await store.restore_session(r.session_id):
                print(f"restored: {name}")
            else:
                print(f"not in the trash: {name}")
        return failed

    if with_store(args, body):
        raise CommandFailed(status=1)
    return 0


def cmd_trash(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    keep_days = settings.session.trash_days

    async def body(store: Store) -> tuple[list[SessionSummary], dict[str, str]]:
        from threadline.models import Scope

        rows = await store.list_sessions(Scope.ALL, None, limit=None, trashed=True)
        rows.sort(key=lambda r: (r.deleted_at or r.updated_at, r.id), reverse=True)
        shorts = {} if args.json else await store.short_ids([r.id for r in rows])
        return rows, shorts

    rows, shorts = with_store(args, body)
    from threadline.cli.output import iso

    if args.json:
        from threadline.cli.common import summary_json
        from threadline.cli.output import print_json

        out = []
        for r in rows:
            data = summary_json(r)
            data["deleted_at"] = iso(r.deleted_at)
            purge_after = r.deleted_at + timedelta(days=keep_days) if r.deleted_at else None
            data["purge_after"] = iso(purge_after)
            out.append(data)
        print_json(out)
        return 0
    if not rows:
        print("The trash is empty.", file=sys.stderr)
        return 0
    from threadline import paths
    from threadline.cli.output import (
        Column,
        relative_time,
        render_table,
        short_time,
        terminal_width,
        write_lines,
    )
    from threadline.text import one_line

    columns = [
        Column("ID"),
        Column("DELETED"),
        Column("PURGED AFTER", drop=2),
        Column("MSGS", right=True, drop=1),
        Column("DIRECTORY", shrink=2, minimum=12, cut_left=True, drop=3),
        Column("TITLE", shrink=1, minimum=12),
    ]
    table = [
        [
            shorts[r.id],
            relative_time(r.deleted_at) if r.deleted_at else "-",
            short_time(r.deleted_at + timedelta(days=keep_days)) if r.deleted_at else "-",
            f"{r.message_count:,}",
            one_line(paths.home_short(r.working_dir)),
            one_line(r.display_title),
        ]
        for r in rows
    ]
    write_lines(render_table(columns, table, terminal_width()))
    print(
        f"{len(rows):,} in the trash; `threadline sessions restore ID` brings one back, "
        f"cleanup purges them after {keep_days} days.",
        file=sys.stderr,
    )
    return 0


def cmd_empty_trash(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(store: Store) -> None:
        from threadline.cli.common import label
        from threadline.models import Scope

        rows = await store.list_sessions(Scope.ALL, None, limit=None, trashed=True)
        if not rows:
            print("The trash is empty: nothing to purge.")
            return
        _refuse_or_confirm(
            f"Purge all {len(rows):,} sessions in the trash for good? This cannot be undone.",
            args.yes,
            "purge the trash",
        )
        known = {r.id: r for r in rows}
        shorts = await store.short_ids(list(known))
        purged = await store.purge_trash(everything=True)
        print(f"Purged {len(purged):,} session{'s' if len(purged) != 1 else ''} for good:")
        for session_id in purged:
            if session_id in known:
                print("  " + label(shorts[session_id], known[session_id]))
            else:  # trashed by another process after we listed the trash
                print(f"  {session_id}")

    with_store(args, body)
    return 0


# ---------------------------------------------------------------------------- rename & pin


def cmd_rename(args: argparse.Namespace) -> int:
    check_config(args)
    title = " ".join(" ".join(args.title).split()) or None

    async def body(store: Store) -> None:
        from threadline.cli.common import label

        session_id = await store.resolve_session_id(args.id)
        session = await store.update_session(session_id, title=title)
        short = (await store.short_ids([session_id]))[session_id]
        verb = "renamed" if title else "title cleared"
        print(f"{verb}: {label(short, session)}")

    with_store(args, body)
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(store: Store) -> int:
        from threadline.cli.common import label

        failed = 0
        for r in await resolve_all(store, args.ids):
            if r.error or r.session_id is None:
                report_error(r.error or f"no session matches {r.given!r}")
                failed += 1
                continue
            session = await store.update_session(r.session_id, pinned=args.pinned)
            short = (await store.short_ids([r.session_id]))[r.session_id]
            print(f"{'pinned' if args.pinned else 'unpinned'}: {label(short, session)}")
        return failed

    if with_store(args, body):
        raise CommandFailed(status=1)
    return 0
