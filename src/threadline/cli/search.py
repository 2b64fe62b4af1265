"""`threadline search QUERY`: full-text search over messages and summaries.

Scope: every directory by default (a search is for "where did I discuss X?", and each hit says
which directory it is from); --dir DIR or --workspace narrow it. Newest matches first, or
--rank for relevance among the newest matches (search.RANK_CANDIDATES).

Snippets: matched words are shown in bold reverse video on a terminal, and between `**` when
the output is piped (so they survive `grep` and `less`) or NO_COLOR is set.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from threadline.cli.common import (
    add_scope_options,
    check_config,
    scope_from_args,
    with_store,
)

if TYPE_CHECKING:
    from threadline.models import SearchHit
    from threadline.store import Store

DEFAULT_LIMIT = 20
HL_ON, HL_OFF = "\x1b[1;7m", "\x1b[0m"
PLAIN_ON, PLAIN_OFF = "**", "**"

QUERY_HELP = """\
query syntax:
  words            messages containing every word (any order)
  "exact phrase"   the words next to each other
  pre*             words starting with "pre"
  -word            leave out messages containing the word
  a OR b           either word
Anything else (parentheses, NEAR, quotes left open) is searched as plain text. Put `--` before
a query that starts with "-":  threadline search -- -draft notes"""


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"expected 1 to 10000, not {value}")
    return value


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "search",
        parents=[common],
        help="full-text search over messages and summaries",
        description="Search every message and summary, newest matches first (every directory "
        "unless --dir or --workspace narrows it).",
        epilog=QUERY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="+", metavar="QUERY", help="what to find (words are ANDed)")
    add_scope_options(p, default="all")
    p.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N matches (default {DEFAULT_LIMIT})",
    )
    p.add_argument(
        "--rank",
        action="store_true",
        help="order by relevance (among the newest matches) instead of newest first",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of matches")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    check_config(args)
    query = " ".join(args.query)
    choice = scope_from_args(args)

    async def body(store: Store) -> tuple[list[SearchHit], dict[str, str]]:
        from threadline.errors import UsageError
        from threadline.store import SearchQueryError

        try:
            hits = await store.search(
                query, choice.scope, choice.directory, limit=args.limit, rank=args.rank
            )
        except SearchQueryError as exc:
            raise UsageError(str(exc)) from None
        shorts = {} if args.json else await store.short_ids(sorted({h.session_id for h in hits}))
        return hits, shorts

    hits, shorts = with_store(args, body)
    if args.json:
        from threadline.cli.output import print_json

        print_json([hit_json(h) for h in hits])
        return 0
    if not hits:
        print(f"No matches for {query!r} in {choice.describe()}.", file=sys.stderr)
        return 0
    print_hits(hits, shorts, show_dir=not choice.single_directory)
    return 0


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """A match: plain snippet text plus [start, end) offsets of the matched runs in it."""
    from threadline.cli.output import iso

    text = []
    spans = []
    at = 0
    for part, matched in hit.snippet_parts():
        if matched:
            spans.append([at, at + len(part)])
        text.append(part)
        at += len(part)
    return {
        "kind": hit.kind,
        "session_id": hit.session_id,
        "session_title": hit.session_title,
        "working_dir": hit.working_dir,
        "message_id": hit.message_id,
        "summary_id": hit.summary_id,
        "role": hit.role,
        "created_at": iso(hit.created_at),
        "snippet": "".join(text),
        "highlights": spans,
        "rank": hit.rank,
    }


def render_snippet(hit: SearchHit, width: int | None, tty: bool) -> str:
    """The snippet on one line, sanitised, matches highlighted, cut to `width` cells."""
    from threadline.text import ELLIPSIS, display_width, one_line, truncate

    on, off = (HL_ON, HL_OFF) if tty else (PLAIN_ON, PLAIN_OFF)
    out = []
    used = 0
    parts = hit.snippet_parts()
    for i, (raw, matched) in enumerate(parts):
        text = one_line(raw)
        # one_line strips; keep the single spaces that separate runs.
        if raw[:1].isspace() and i > 0:
            text = " " + text
        if raw[-1:].isspace() and i < len(parts) - 1:
            text += " "
        if not text:
            continue
        if matched and not tty and _wrapped_in_stars(parts, i):
            matched = False  # `**retry**` in the text: it shows already, not as `****retry****`
        w = display_width(text)
        if width is not None and used + w > width:
            room = width - used
            if room > 1:
                cut = truncate(text, room)
                out.append(f"{on}{cut}{off}" if matched else cut)
            elif room == 1:
                out.append(ELLIPSIS)
            break
        out.append(f"{on}{text}{off}" if matched else text)
        used += w
    return "".join(out)


def _wrapped_in_stars(parts: list[tuple[str, bool]], i: int) -> bool:
    """The match at `i` already has `**` right before and after it in the text."""
    before = parts[i - 1][0] if i > 0 else ""
    after = parts[i + 1][0] if i + 1 < len(parts) else ""
    return before.endswith(PLAIN_ON) and after.startswith(PLAIN_OFF)


def print_hits(hits: list[SearchHit], shorts: dict[str, str], *, show_dir: bool) -> None:
    """Two lines per match: where it is (id, time, role, directory, title), then the snippet."""
    from threadline import paths
    from threadline.cli.output import local_time, styled, terminal_width
    from threadline.text import one_line, truncate

    width = terminal_width()
    tty = styled()  # highlights on a terminal, unless NO_COLOR (then `**` as when piped)
    out = sys.stdout
    for hit in hits:
        role = hit.role or "summary"
        where = f"  {one_line(paths.home_short(hit.working_dir))}" if show_dir else ""
        head = f"{shorts.get(hit.session_id, hit.session_id)}  {local_time(hit.created_at)}"
        head += f"  {role}{where}  "
        title = one_line(hit.session_title) or "(untitled)"
        line = head + title
        if width is not None:
            line = truncate(line, width)
        snippet = render_snippet(hit, None if width is None else width - 4, tty)
        out.write(f"{line}\n    {snippet}\n")
