"""Full-text search over messages and summaries (FTS5), newest first or by relevance.

User text is never handed to FTS5 as syntax. It is parsed into terms, each quoted as an FTS5
string, so any input is either searched or rejected with a clear message:

- words are matched anywhere (`foo bar` finds messages containing both);
- `"exact phrase"` matches the words next to each other;
- `word*` matches words starting with `word`;
- `-word` (or `-"phrase"`) excludes messages containing it;
- `OR` between two terms matches either.
Everything else (parentheses, NEAR, AND, column names) is searched as plain text.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from threadline.models import HIGHLIGHT_END, HIGHLIGHT_START, Scope, SearchHit
from threadline.store import scope as scopes
from threadline.store.errors import SearchQueryError

# Relevance order ranks only this many of the newest matches, so a word found in half a
# million messages still answers quickly.
RANK_CANDIDATES = 2000
SNIPPET_TOKENS = 16
# Longer queries are refused rather than handed to FTS5 as thousands of terms.
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32

_TOKEN = re.compile(r'(-?)"([^"]*)"?(\*?)|(\S+)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class _Term:
    text: str
    prefix: bool
    negated: bool

    def fts(self) -> str:
        quoted = '"' + self.text.replace('"', '""') + '"'
        return f"content : {quoted}{' *' if self.prefix else ''}"


def parse_query(query: str) -> str:
    """Turn user text into a safe FTS5 expression on the `content` column.

    Raises:
        SearchQueryError: when nothing searchable is left.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise SearchQueryError(
            f"the search is too long ({len(query):,} characters; at most {MAX_QUERY_CHARS:,})"
        )
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise SearchQueryError("the search holds text that is not valid Unicode") from None
    # FTS5 reads its query as a C string: a NUL would cut it short. Control characters are
    # separators to the tokenizer anyway.
    query = _CONTROL.sub(" ", query)
    groups: list[list[_Term]] = []  # AND of OR-groups
    negatives: list[_Term] = []
    pending_or = False
    for match in _TOKEN.finditer(query):
        negated, phrase, star, word = match[1], match[2], match[3], match[4]
        if word is not None:
            if word == "OR" and groups and not pending_or:
                pending_or = True
                continue
            negated = "-" if word.startswith("-") and len(word) > 1 else ""
            text = word[1:] if negated else word
            prefix = text.endswith("*") and len(text.rstrip("*")) > 0
            text = text.rstrip("*") if prefix else text
        else:
            text, prefix = phrase, bool(star)
        if not any(ch.isalnum() for ch in text):  # nothing the tokenizer would index
            pending_or = False
            continue
        term = _Term(text=text, prefix=prefix, negated=bool(negated))
        if term.negated:
            negatives.append(term)
        elif pending_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if sum(len(g) for g in groups) + len(negatives) > MAX_TERMS:
        raise SearchQueryError(f"the search has too many words (at most {MAX_TERMS})")
    if not groups:
        if negatives:
            raise SearchQueryError(
                "a search needs at least one word to find, not only words to exclude"
            )
        raise SearchQueryError(f"nothing to search for in {query!r}: give a word or phrase")
    positive = " AND ".join(
        "(" + " OR ".join(t.fts() for t in group) + ")" if len(group) > 1 else group[0].fts()
        for group in groups
    )
    expression = f"({positive})"
    for term in negatives:
        expression += f" NOT {term.fts()}"
    return expression


def _match(query: str, scope: Scope, root: str | None) -> str:
    expression = parse_query(query)
    scope_filter = scopes.fts_filter(scope, root)
    return f"({expression}) AND {scope_filter}" if scope_filter else expression


def _snippet(table: str) -> str:
    return f"snippet({table}, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', {SNIPPET_TOKENS})"


def _message_hits(conn: sqlite3.Connection, match: str, limit: int, rank: bool) -> list[SearchHit]:
    base = (
        "SELECT m.id, m.session_id, m.role, m.created_at, coalesce(s.title, s.preview, ''),"
        " s.working_dir, {snippet}, {score}"
        " FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
        " JOIN sessions AS s ON s.id = m.session_id"
        " WHERE messages_fts MATCH ? AND s.deleted_at IS NULL"
    )
    if rank:
        sql = (
            "SELECT * FROM ("
            + base.format(snippet="NULL", score="bm25(messages_fts, 1.0, 0.0)")
            + " ORDER BY messages_fts.rowid DESC LIMIT ?) ORDER BY 8 LIMIT ?"
        )
        rows = conn.execute(sql, (match, RANK_CANDIDATES, limit)).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        snippets = dict(
            conn.execute(
                f"SELECT rowid, {_snippet('messages_fts')} FROM messages_fts"
                f" WHERE messages_fts MATCH ? AND rowid IN ({','.join('?' * len(ids))})",
                (match, *ids),
            ).fetchall()
        )
        rows = [(*r[:6], snippets.get(r[0], ""), r[7]) for r in rows]
    else:
        sql = base.format(snippet=_snippet("messages_fts"), score="NULL")
        sql += " ORDER BY messages_fts.rowid DESC LIMIT ?"
        rows = conn.execute(sql, (match, limit)).fetchall()
    return [
        SearchHit(
            kind="message",
            message_id=r[0],
            session_id=r[1],
            role=r[2],
            created_at=r[3],
            session_title=r[4],
            working_dir=r[5],
            snippet=r[6] or "",
            rank=r[7],
        )
        for r in rows
    ]


def _summary_hits(conn: sqlite3.Connection, match: str, limit: int, rank: bool) -> list[SearchHit]:
    score = "bm25(summaries_fts, 1.0, 0.0)" if rank else "NULL"
    order = "8" if rank else "summaries_fts.rowid DESC"
    rows = conn.execute(
        "SELECT x.id, x.session_id, x.last_message_id, x.created_at,"
        f" coalesce(s.title, s.preview, ''), s.working_dir, {_snippet('summaries_fts')}, {score}"
        " FROM summaries_fts JOIN summaries AS x ON x.id = summaries_fts.rowid"
        " JOIN sessions AS s ON s.id = x.session_id"
        f" WHERE summaries_fts MATCH ? AND s.deleted_at IS NULL ORDER BY {order} LIMIT ?",
        (match, limit),
    ).fetchall()
    return [
        SearchHit(
            kind="summary",
            summary_id=r[0],
            session_id=r[1],
            message_id=r[2],
            role=None,
            created_at=r[3],
            session_title=r[4],
            working_dir=r[5],
            snippet=r[6] or "",
            rank=r[7],
        )
        for r in rows
    ]


def search(
    conn: sqlite3.Connection,
    query: str,
    scope: Scope,
    root: str | None,
    limit: int,
    rank: bool,
) -> list[SearchHit]:
    match = _match(query, scope, root)
    if limit <= 0:
        return []
    try:
        hits = _message_hits(conn, match, limit, rank) + _summary_hits(conn, match, limit, rank)
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if any(word in text for word in ("fts5", "syntax", "unterminated", "match")):
            raise SearchQueryError(f"cannot search for {query!r}: {exc}") from None
        raise
    if rank:
        hits.sort(key=lambda h: h.rank if h.rank is not None else 0.0)
    else:
        hits.sort(key=lambda h: (h.created_at, h.message_id or 0), reverse=True)
    return hits[:limit]


def rebuild_index(conn: sqlite3.Connection) -> None:
    """Rebuild both full-text indexes from the tables (after a bulk load, or to repair)."""
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    conn.execute("INSERT INTO summaries_fts (summaries_fts) VALUES ('rebuild')")


def optimize_index(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    conn.execute("INSERT INTO summaries_fts (summaries_fts) VALUES ('optimize')")
