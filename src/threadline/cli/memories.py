"""`threadline memories ...`: a directory's project memory, and the extraction queue.

list | add | edit | delete | clear work on the memories of one directory (--dir, default the
current one); status | process | extract work on the extraction queue. Never imports textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from threadline.cli.common import (
    CommandFailed,
    add_subcommands,
    check_config,
    positive_int,
    report_error,
    require_provider,
    settings_of,
    with_store,
)

if TYPE_CHECKING:
    import subprocess

    from threadline.chat.memory import ExtractionOutcome, ExtractionStatus, ProcessReport
    from threadline.models import Memory, PendingExtraction
    from threadline.store import Store

CATEGORY_CHOICES = ("preference", "fact", "decision", "context", "correction")


def importance(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1 to 5, not {text!r}") from None
    if not 1 <= value <= 5:
        raise argparse.ArgumentTypeError(f"expected 1 to 5, not {value}")
    return value


def memory_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a memory id is a number, not {text!r}") from None
    if not 1 <= value < 2**63:  # SQLite's integers end there
        raise argparse.ArgumentTypeError(f"no memory has the id {text!r}")
    return value


def _dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        dest="memory_dir",
        metavar="DIR",
        default=None,
        help="the project directory (default: the current one)",
    )


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "memories",
        parents=[common],
        help="the facts remembered about a project directory",
        description="Project memory: durable facts extracted from your sessions (or added by "
        "hand), given to the model at the start of each new session in the same directory.",
    )
    actions = add_subcommands(parser, "memories_action")

    p = actions.add_parser(
        "list",
        parents=[common],
        help="a directory's memories, most important first",
        description="A directory's memories, most important first, with where each came from "
        "(session and message, or 'manual'). Superseded ones show with --all.",
    )
    _dir_option(p)
    p.add_argument("--all", action="store_true", help="include superseded memories")
    p.add_argument(
        "--limit", type=positive_int, default=0, metavar="N", help="show at most N (0: all)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_list)

    p = actions.add_parser(
        "add",
        parents=[common],
        help="remember a fact by hand",
        description="Add a memory to a directory by hand (marked manual).",
    )
    p.add_argument("fact", nargs="+", metavar="FACT", help="the fact (words are joined)")
    p.add_argument("--category", choices=CATEGORY_CHOICES, default="fact")
    p.add_argument("--importance", type=importance, default=3, metavar="1-5", help="default 3")
    _dir_option(p)
    p.add_argument("--json", action="store_true", help="print the new memory as JSON")
    p.set_defaults(handler=cmd_add)

    p = actions.add_parser("edit", parents=[common], help="change a memory's text or rank")
    p.add_argument("id", type=memory_id, metavar="ID", help="the memory's id")
    p.add_argument("--fact", metavar="TEXT", help="the new text")
    p.add_argument("--category", choices=CATEGORY_CHOICES)
    p.add_argument("--importance", type=importance, metavar="1-5")
    p.set_defaults(handler=cmd_edit)

    p = actions.add_parser("delete", parents=[common], help="forget memories by id")
    p.add_argument("ids", nargs="+", type=memory_id, metavar="ID", help="memory ids")
    p.set_defaults(handler=cmd_delete)

    p = actions.add_parser(
        "clear",
        parents=[common],
        help="forget every memory of a directory",
        description="Delete every memory of a directory, after a confirmation (or --yes; "
        "required when stdin is not a terminal).",
    )
    _dir_option(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_clear)

    p = actions.add_parser(
        "status",
        parents=[common],
        help="extractions queued, retrying or failed",
        description="The memory extraction queue: what is due, running, waiting to be retried "
        "(with its last error) or given up on after 3 attempts (`process --retry-failed`).",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_status)

    p = actions.add_parser(
        "process",
        parents=[common],
        help="extract memories from idle sessions and the queue now",
        description="Queue the sessions idle for [memory] idle_minutes, then run every due "
        "extraction. Exits 1 when one failed (it is retried later; see `status`).",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="first give failed extractions 3 new attempts"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing (for background use)")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(handler=cmd_process)

    p = actions.add_parser(
        "extract",
        parents=[common],
        help="extract memories from one session now",
        description="Extract memories from a session's messages not extracted yet, now "
        "(including any extraction of it that failed before).",
    )
    p.add_argument("id", metavar="ID", help="session id or unique prefix")
    p.set_defaults(handler=cmd_extract)


# ---------------------------------------------------------------------------- helpers


def _directory(args: argparse.Namespace) -> str:
    from threadline import paths
    from threadline.errors import UsageError

    try:
        return paths.resolve_dir(args.memory_dir)
    except FileNotFoundError:
        raise UsageError("the current directory no longer exists; give --dir") from None


def memory_json(
    memory: Memory, short: str | None = None, position: int | None = None
) -> dict[str, Any]:
    """A memory as JSON: `source_message_id` is the database id of the message it came from,
    `source_position` that message's position in its session (null: not known or gone)."""
    from threadline.cli.output import iso

    return {
        "id": memory.id,
        "fact": memory.fact,
        "category": memory.category,
        "importance": memory.importance,
        "working_dir": memory.working_dir,
        "session_id": memory.session_id,
        "source_message_id": memory.source_message_id,
        "source_position": position,
        "is_manual": memory.is_manual,
        "superseded_by": memory.superseded_by,
        "created_at": iso(memory.created_at),
    }


def _source(memory: Memory, shorts: dict[str, str], positions: dict[int, int | None]) -> str:
    """`1a2b3c4d msg 3`: the source session's short id and the message's position in it."""
    if memory.is_manual:
        return "manual"
    if memory.session_id is None:
        return "(session purged)"
    where = shorts.get(memory.session_id, memory.session_id)
    position = positions.get(memory.id)
    if position is not None:
        where += f" msg {position}"
    return where


async def _source_positions(store: Store, memories: list[Memory]) -> dict[int, int | None]:
    """Each memory's source message's position in its session (by memory id)."""
    from threadline.cli.common import message_position

    out: dict[int, int | None] = {}
    for m in memories:
        if m.session_id is not None and m.source_message_id is not None and not m.is_manual:
            out[m.id] = await message_position(store, m.session_id, m.source_message_id)
    return out


# ---------------------------------------------------------------------------- list / add / ...


def cmd_list(args: argparse.Namespace) -> int:
    check_config(args)
    directory = _directory(args)

    async def body(
        store: Store,
    ) -> tuple[list[Memory], dict[str, str], dict[int, int | None]]:
        memories = await store.get_memories(
            directory, args.limit or None, include_superseded=args.all
        )
        ids = sorted({m.session_id for m in memories if m.session_id})
        shorts = {} if args.json or not ids else await store.short_ids(ids)
        return memories, shorts, await _source_positions(store, memories)

    memories, shorts, positions = with_store(args, body)
    if args.json:
        from threadline.cli.output import print_json

        print_json([memory_json(m, position=positions.get(m.id)) for m in memories])
        return 0
    from threadline import paths
    from threadline.cli.output import Column, render_table, terminal_width, write_lines
    from threadline.text import one_line

    where = one_line(paths.home_short(directory))
    if not memories:
        print(f"no memories for {where}")
        return 0
    columns = [
        Column("ID", right=True),
        Column("IMP", right=True),
        Column("CATEGORY"),
        Column("SOURCE", shrink=1, minimum=8, drop=1),
        Column("FACT", shrink=2, minimum=20),
    ]
    rows = []
    for m in memories:
        fact = one_line(m.fact)
        if m.superseded_by is not None:
            fact = f"[superseded by #{m.superseded_by}] {fact}"
        source = _source(m, shorts, positions)
        rows.append([str(m.id), str(m.importance), m.category, source, fact])
    write_lines(render_table(columns, rows, terminal_width()))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    check_config(args)
    directory = _directory(args)
    text = " ".join(args.fact).strip()
    if not text:
        from threadline.errors import UsageError

        raise UsageError("the fact is empty")

    async def body(store: Store) -> Memory:
        return await store.save_memory(
            directory, text, args.category, args.importance, is_manual=True
        )

    memory = with_store(args, body)
    if args.json:
        from threadline.cli.output import print_json

        print_json(memory_json(memory))
    else:
        print(f"remembered #{memory.id} ({memory.category}, importance {memory.importance})")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    check_config(args)
    changes: dict[str, Any] = {}
    if args.fact is not None:
        changes["fact"] = args.fact
    if args.category is not None:
        changes["category"] = args.category
    if args.importance is not None:
        changes["importance"] = args.importance
    if not changes:
        from threadline.errors import UsageError

        raise UsageError("nothing to change: give --fact, --category or --importance")

    async def body(store: Store) -> Memory:
        return await store.update_memory(args.id, **changes)

    memory = with_store(args, body)
    print(f"updated #{memory.id} ({memory.category}, importance {memory.importance})")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(store: Store) -> int:
        failed = 0
        for memory_id_ in dict.fromkeys(args.ids):
            if await store.delete_memory(memory_id_):
                print(f"forgot #{memory_id_}")
            else:
                report_error(f"no memory with id {memory_id_}")
                failed += 1
        return failed

    if with_store(args, body):
        raise CommandFailed(status=1)
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    check_config(args)
    directory = _directory(args)

    async def body(store: Store) -> None:
        from threadline import paths
        from threadline.cli.output import confirm, plural, stdin_is_tty
        from threadline.text import one_line

        where = one_line(paths.home_short(directory))
        count = len(await store.get_memories(directory, include_superseded=True))
        if count == 0:
            print(f"no memories for {where}")
            return
        if not args.yes:
            if not stdin_is_tty():
                raise CommandFailed(
                    "refusing to clear memories without --yes: stdin is not a terminal, so "
                    "nobody can confirm"
                )
            if not confirm(f"Forget all {plural(count, 'memory', 'memories')} of {where}?"):
                raise CommandFailed("cancelled: nothing was forgotten")
        removed = await store.delete_all_memories(directory)
        print(f"forgot {plural(removed, 'memory', 'memories')} of {where}")

    with_store(args, body)
    return 0


# ---------------------------------------------------------------------------- the queue


async def _pending_span(store: Store, pending: PendingExtraction) -> tuple[int, int] | None:
    """The positions in the session of the first and last message a queued extraction reads
    (None when its messages are gone)."""
    session_id = pending.session_id
    first = pending.from_message_id or 1
    last = pending.to_message_id
    start = await store.count_messages_before(session_id, first) + 1
    end = await store.count_messages_before(session_id, last + 1 if last is not None else 2**62)
    return (start, end) if end >= start else None


def status_json(item: ExtractionStatus, span: tuple[int, int] | None = None) -> dict[str, Any]:
    """A queued extraction as JSON: the ids of its first and last message, and their positions
    in the session (`from_position`, `to_position`; null when not known)."""
    from threadline.cli.output import iso

    p = item.pending
    return {
        "id": p.id,
        "session_id": p.session_id,
        "working_dir": item.working_dir,
        "from_message_id": p.from_message_id,
        "to_message_id": p.to_message_id,
        "from_position": span[0] if span else None,
        "to_position": span[1] if span else None,
        "state": item.state,
        "attempt_count": p.attempt_count,
        "last_attempt_at": iso(p.last_attempt_at),
        "next_attempt_at": iso(p.next_attempt_at),
        "error": p.error_message,
        "created_at": iso(p.created_at),
    }


def cmd_status(args: argparse.Namespace) -> int:
    check_config(args)

    async def body(
        store: Store,
    ) -> tuple[list[ExtractionStatus], dict[str, str], dict[int, tuple[int, int] | None]]:
        from threadline.chat.memory import extraction_status

        rows = await extraction_status(store)
        ids = sorted({r.pending.session_id for r in rows})
        shorts = await store.short_ids(ids) if ids and not args.json else {}
        spans = {r.pending.id: await _pending_span(store, r.pending) for r in rows}
        return rows, shorts, spans

    rows, shorts, spans = with_store(args, body)
    if args.json:
        from threadline.cli.output import print_json

        print_json([status_json(r, spans.get(r.pending.id)) for r in rows])
        return 0
    if not rows:
        print("no memory extractions queued")
        return 0
    from threadline.cli.output import (
        Column,
        local_time,
        plural,
        render_table,
        terminal_width,
        write_lines,
    )
    from threadline.text import one_line

    columns = [
        Column("SESSION"),
        Column("MESSAGES"),
        Column("STATE"),
        Column("TRIES", right=True),
        Column("NEXT", drop=2),
        Column("LAST ERROR", shrink=1, minimum=16),
    ]
    table = []
    for r in rows:
        p = r.pending
        positions = spans.get(p.id)
        span = f"{positions[0]:,}–{positions[1]:,}" if positions else "-"
        nxt = local_time(p.next_attempt_at) if r.state == "retrying" else ""
        table.append(
            [
                shorts.get(p.session_id, p.session_id),
                span,
                r.state,
                str(p.attempt_count),
                nxt,
                one_line(p.error_message or ""),
            ]
        )
    write_lines(render_table(columns, table, terminal_width()))
    failed = sum(1 for r in rows if r.state == "failed")
    if failed:
        print(
            f"{plural(failed, 'extraction')} given up after 3 attempts; "
            "`threadline memories process --retry-failed` tries again"
        )
    return 0


def _describe(outcome: ExtractionOutcome, shorts: dict[str, str]) -> str:
    from threadline.cli.output import local_time, plural

    who = shorts.get(outcome.pending.session_id, outcome.pending.session_id)
    if outcome.ok:
        return f"{who}: {plural(len(outcome.memories), 'memory', 'memories')}"
    if outcome.gave_up:
        return f"{who}: failed, given up after 3 attempts: {outcome.error}"
    when = f"at {local_time(outcome.retry_at)}" if outcome.retry_at else "later"
    return f"{who}: failed, retrying {when}: {outcome.error}"


def _report(args: argparse.Namespace, report: ProcessReport, shorts: dict[str, str]) -> int:
    from threadline.cli.output import plural

    if getattr(args, "json", False):
        from threadline.cli.output import print_json

        print_json(
            {
                "processed": len(report.outcomes),
                "memories_added": report.memories_added,
                "failed": len(report.failed),
                "stopped": report.stopped,
                "outcomes": [
                    {
                        "pending_id": o.pending.id,
                        "session_id": o.pending.session_id,
                        "memories": [memory_json(m) for m in o.memories],
                        "superseded": o.superseded,
                        "error": o.error,
                        "gave_up": o.gave_up,
                    }
                    for o in report.outcomes
                ],
            }
        )
    elif not args.quiet:
        for outcome in report.outcomes:
            print(_describe(outcome, shorts))
        sessions = len({o.pending.session_id for o in report.outcomes if o.ok})
        print(
            f"extracted {plural(report.memories_added, 'memory', 'memories')} from "
            f"{plural(sessions, 'session')}"
            + (f"; {len(report.failed)} failed" if report.failed else "")
        )
        if report.stopped:
            report_error(f"stopped early: {report.stopped}")
    return 1 if report.failed else 0


def cmd_process(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    require_provider(settings)

    async def body(store: Store) -> tuple[ProcessReport, dict[str, str]]:
        from threadline.chat.turns import TurnEngine

        engine = TurnEngine.from_settings(store, settings)
        try:
            extractor = engine.memory_extractor()
            if args.retry_failed:
                await extractor.retry_failed()
            await extractor.queue_idle()
            report = await extractor.process_due()
        finally:
            await engine.aclose()
        ids = sorted({o.pending.session_id for o in report.outcomes})
        return report, (await store.short_ids(ids) if ids else {})

    report, shorts = with_store(args, body)
    return _report(args, report, shorts)


def cmd_extract(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    require_provider(settings)

    async def body(store: Store) -> tuple[ProcessReport, dict[str, str]]:
        from threadline.chat.turns import TurnEngine

        session_id = await store.resolve_session_id(args.id)
        engine = TurnEngine.from_settings(store, settings)
        try:
            report = await engine.memory_extractor().extract_now(session_id)
        finally:
            await engine.aclose()
        return report, await store.short_ids([session_id])

    report, shorts = with_store(args, body)
    if not report.outcomes:
        print("nothing new to extract from that session")
        return 0
    args.quiet = False
    return _report(args, report, shorts)


# ---------------------------------------------------------------------------- after a chat


def spawn_background_processing(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """Start `threadline memories process --quiet` detached, so `threadline chat` exits at once.

    It gets no terminal and holds none of our pipes (a `$(threadline chat ...)` returns without
    waiting for it); it writes nothing but the queue, where `memories status` shows failures.
    """
    import subprocess

    command = [sys.executable, "-m", "threadline", "memories", "process", "--quiet"]
    for option in ("db", "config"):
        value = getattr(args, option, None)
        if value:
            command += [f"--{option}", os.fspath(value)]
    options: dict[str, Any] = {}
    if os.name == "posix":
        options["start_new_session"] = True
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            **options,
        )
    except OSError:
        return None
