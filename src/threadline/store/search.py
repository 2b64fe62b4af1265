"""Full-text search over messages and summaries (FTS5), newest first or by relevance.

User text is never handed to FTS5 as syntax. It is parsed into terms, each quoted as an FTS5
string, so any input is either searched or rejected with a clear message:

- words are matched anywhere (`foo bar` finds messages containing both);
- `"exact phrase"` matches the words next to each other;
- `word*` matches words starting with `word`;
- `-word` (or `-"phrase"`) excludes messages containing it;
- `OR` between two terms matches either.
Everything else (parentheses, NEAR, AND, column names) is searched as plain text.

A prefix is not handed to FTS5 as a prefix query: without a prefix index (and with one, past
its lengths) FTS5 merges the whole doclist of every term in the range before giving the first
row, which costs ~100 ms on a common prefix at 2M messages. So a prefix whose terms fill few
leaf pages (NATIVE_PAGES) is left to FTS5, exact and cheap; any other is expanded from the
index's own term list (an fts5vocab table, sought term by term) into an OR of at most
EXPAND_MAX exact terms, the short common words first; an OR of exact terms is read lazily from
the newest end, so any prefix costs about the same as a word. Past EXPAND_MAX terms the hits
are those of the terms chosen (the newest of `t*` are the newest with `the`, `to`, `this`...).
"""

from __future__ import annotations

import bisect
import math
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threadline.models import HIGHLIGHT_END, HIGHLIGHT_START, Scope, SearchHit
from threadline.store import scope as scopes
from threadline.store.errors import SearchQueryError

if TYPE_CHECKING:
    from threadline.store.connection import Database

# Relevance order ranks only this many of the newest matches, so a word found in half a
# million messages still answers quickly.
RANK_CANDIDATES = 2000
SNIPPET_TOKENS = 16
# Longer queries are refused rather than handed to FTS5 as thousands of terms.
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32

# A typed prefix stands for at most this many exact terms, found with at most about
# 1.5 * EXPAND_SEEKS lookups in the term list (each ~20-300 us at 2M messages).
EXPAND_MAX = 48
EXPAND_SEEKS = 40
# A lookup just past a very common term reads the rest of that term's doclist (8 ms for "the"
# at 2M messages): the expansion stops after this much CPU time and keeps what it found.
EXPAND_CPU = 0.004
# A prefix whose terms' doclists fill at most this many leaf pages (~4 KB each) is left to
# FTS5's own prefix query: it merges them in a few ms (~25 us a page at 2M), and is exact.
NATIVE_PAGES = 160
# The summaries' index is small, its doclists dense: FTS5 merges its pages at ~60 us each.
SMALL_PAGES = 40
# A prefix whose terms fill more pages than this is only sampled (TermList._expand).
DENSE_PAGES = 4 * NATIVE_PAGES
# Leaf-page keys sampled per segment and depth (see TermList._page_keys).
EXPAND_KEYS = 64
# Expansions cut short (by the budgets or the cap) are samples anyway: kept this long per
# database, so typing through `t`, `th` pays for them once.
EXPAND_CACHE_SECONDS = 300.0
_cache: dict[tuple[str, str, str], tuple[float, list[str]]] = {}
# Directory tokens (store/scope.py) live in the same term list but never in `content`.
_DIR_TOKEN = re.compile(r"^[ea][0-9a-f]{16}$")

Expander = Callable[[str], "list[str] | None"]

_TOKEN = re.compile(r'(-?)"([^"]*)"?(\*?)|(\S+)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class _Term:
    text: str
    prefix: bool
    negated: bool

    def fts(self, expand: Expander | None = None) -> str:
        if self.prefix and expand is not None:
            expanded = self._expanded(expand)
            if expanded is not None:
                return expanded
        return f"content : {_quote(self.text)}{' *' if self.prefix else ''}"

    def _expanded(self, expand: Expander) -> str | None:
        """`content : ("a b1" OR "a b2" ...)` for the terms the last token can complete to."""
        tokens = fts_tokens(self.text)
        if not tokens:
            return None
        terms = expand(tokens[-1])
        if terms is None:  # the term list could not be read: let FTS5 do it
            return None
        if not terms:
            # Nothing in the index starts with it: an exact phrase that matches nothing.
            return f"content : {_quote(self.text)}"
        head = " ".join(tokens[:-1])
        phrases = [_quote(f"{head} {t}" if head else t) for t in terms]
        if len(phrases) == 1:
            return f"content : {phrases[0]}"
        return "content : (" + " OR ".join(phrases) + ")"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _token_char(ch: str) -> bool:
    # unicode61: letters, numbers and private-use characters make tokens.
    return unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co"


def fts_tokens(text: str) -> list[str]:
    """`text` cut into tokens the way the index's tokenizer does it (unicode61, diacritics
    removed, case folded); close enough to find the terms a prefix stands for."""
    tokens: list[str] = []
    current: list[str] = []
    for ch in text:
        if _token_char(ch):
            current.append(ch)
        elif unicodedata.category(ch) == "Mn" and current:
            continue  # a combining mark: part of the token, removed with the diacritics
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    out = []
    for token in tokens:
        folded = unicodedata.normalize("NFD", token.lower())
        folded = "".join(c for c in folded if unicodedata.category(c) != "Mn")
        out.append(unicodedata.normalize("NFC", folded))
    return [t for t in out if t]


def _after(term: str) -> str:
    """The smallest string greater than every term that starts with `term`."""
    last = term[-1]
    if ord(last) >= 0x10FFFF:
        return _after(term[:-1]) if len(term) > 1 else "\U0010ffff" * 2
    bump = ord(last) + 1
    if 0xD800 <= bump <= 0xDFFF:  # no surrogates in UTF-8
        bump = 0xE000
    return term[:-1] + chr(bump)


class TermList:
    """Expands prefixes from an fts5vocab `instance` table (term order, one row per use).

    A lookup `term >= x LIMIT 1` costs one seek in each segment, whatever the term's
    frequency (the `row` type would read the term's whole doclist to count it), except that
    one landing just after a very common term reads the rest of its doclist. So the lookups
    go first where the index's leaf pages start (see _page_keys), then step through the
    terms in order until the range ends (the expansion is then complete) or the budgets
    (EXPAND_SEEKS lookups, EXPAND_CPU) run out; a cut-short expansion keeps the shortest
    EXPAND_MAX terms found, the common short words.
    """

    def __init__(self, conn: sqlite3.Connection, vocab: str, db: str | None = None) -> None:
        self.conn = conn
        self.vocab = vocab
        self.db = db  # a key for the cache of cut-short expansions (None: no cache)
        self.sql = f"SELECT term FROM {vocab} WHERE term >= ? AND term < ? LIMIT 1"
        self.seeks = 0
        self.complete = False  # whether the last expansion holds every term of the prefix
        self.range_pages = 0  # the leaf pages of the prefix's range, when known (pages())

    def _spent(self) -> bool:
        return self.seeks >= EXPAND_SEEKS or time.thread_time() - self.started > EXPAND_CPU

    def _seek(self, low: str, high: str) -> str | None:
        self.seeks += 1
        row = self.conn.execute(self.sql, (low, high)).fetchone()
        return None if row is None else str(row[0])

    def expand(self, prefix: str) -> list[str]:
        if not prefix:
            return []
        key = (self.db or "", self.vocab, prefix)
        cached = _cache.get(key) if self.db else None
        if cached is not None and time.monotonic() - cached[0] < EXPAND_CACHE_SECONDS:
            self.complete = False
            return list(cached[1])
        terms = self._expand(prefix)
        if self.db and not self.complete:
            if len(_cache) > 512:
                _cache.clear()
            _cache[key] = (time.monotonic(), list(terms))
        return terms

    def pages(self, prefix: str) -> int:
        """About how many leaf pages the terms starting with `prefix` fill, all segments."""
        table = self.vocab.removesuffix("_terms") + "_idx"
        low, high = ("0" + prefix).encode(), ("0" + _after(prefix)).encode()
        total, segid = 0, -1
        while True:
            row = self.conn.execute(
                f"SELECT segid FROM {table} WHERE segid > ? ORDER BY segid LIMIT 1", (segid,)
            ).fetchone()
            if row is None:
                return total
            segid = int(row[0])
            first = self.conn.execute(
                f"SELECT pgno FROM {table} WHERE segid = ? AND term < ? ORDER BY term DESC LIMIT 1",
                (segid, low),
            ).fetchone()
            last = self.conn.execute(
                f"SELECT pgno FROM {table} WHERE segid = ? AND term >= ? ORDER BY term LIMIT 1",
                (segid, high),
            ).fetchone()
            if last is None:  # the segment's last page (pages follow the terms' order)
                last = self.conn.execute(
                    f"SELECT pgno + 1 FROM {table} WHERE segid = ? ORDER BY term DESC LIMIT 1",
                    (segid,),
                ).fetchone()
            start = int(first[0]) if first is not None else 0
            total += max(int(last[0] or 0) - start, 1)

    def _page_keys(self, prefix: str, end: str) -> list[str]:
        """The leaf-page keys of the index in [prefix, end), shortest first.

        FTS5 keys each leaf page of a segment by (a prefix of) the first term starting on it.
        A term that follows a long doclist always starts a page, so a lookup at a key lands
        right on it, where a lookup just after the common term before it would read that
        term's whole doclist. Short keys come first: they are where the terms change most.
        """
        table = self.vocab.removesuffix("_terms") + "_idx"
        sql = f"SELECT term FROM {table} WHERE segid = ? AND term >= ? AND term < ? LIMIT 1"
        high = ("0" + end).encode()
        keys: set[str] = set()
        segid = -1
        while True:  # each segment's keys are a range of the primary key (segid, term)
            row = self.conn.execute(
                f"SELECT segid FROM {table} WHERE segid > ? ORDER BY segid LIMIT 1", (segid,)
            ).fetchone()
            if row is None:
                break
            segid = int(row[0])
            # One key under each next character, then under each next two (a spread of the
            # range however many pages it has), each a lookup in an ordinary b-tree.
            for depth in (1, 2):
                low, taken = prefix, 0
                while taken < EXPAND_KEYS:
                    found = self.conn.execute(sql, (segid, ("0" + low).encode(), high)).fetchone()
                    if found is None:
                        break
                    key = bytes(found[0])[1:].decode("utf-8", "replace")
                    keys.add(key)
                    taken += 1
                    cut = len(prefix) + depth
                    low = _after(key[:cut]) if len(key) >= cut else key + "\x01"
        return sorted(keys, key=lambda k: (len(k), k))

    def _expand(self, prefix: str) -> list[str]:
        self.seeks = 0
        end = _after(prefix)
        found: dict[str, None] = {}
        try:
            keys = self._page_keys(prefix, end)
        except sqlite3.OperationalError:  # not an FTS5 index with the usual shadow tables
            keys = []
        self.started = time.thread_time()
        # Where the pages start: a spread of the range, each lookup cheap.
        at_keys: set[str] = set()
        for key in keys[: EXPAND_SEEKS // 2]:
            if self._spent():
                break
            term = self._seek(key, end)
            if term is not None:
                found.setdefault(term)
                at_keys.add(term)
        # Then step through in order from the start: exact and complete when the range lies
        # within a page or two. Stepping stops at a term a page starts with: the lookup after
        # it may have to read a long doclist, and what follows was sampled from the keys.
        low = prefix
        complete = False
        first, limit = self.seeks, self.seeks + EXPAND_SEEKS // 2 + 4
        if self.range_pages > DENSE_PAGES:
            # Too many pages to step through anyway, and each step past a common word (the
            # bare prefix first: `a`, `the`) reads the rest of its doclist (6 ms for `a`).
            limit = first
        while self.seeks < limit and (self.seeks == first or not self._spent()):
            term = self._seek(low, end)
            if term is None:
                complete = True
                break
            if term in at_keys and low != prefix:
                break
            found.setdefault(term)
            low = term + "\x01"  # no token holds a control character
        if not complete:
            # The smallest term under each next character: usually the bare short word.
            dense = self.range_pages > DENSE_PAGES
            low, limit = prefix, self.seeks + EXPAND_SEEKS // 2
            while self.seeks < limit and time.thread_time() - self.started < EXPAND_CPU:
                term = self._seek(low, end)
                if term is None:
                    break
                found.setdefault(term)
                cut = len(prefix) + 1
                if len(term) >= cut:
                    low = _after(term[:cut])
                elif dense:
                    # The bare prefix, a common word: on from the next page key (where the
                    # term after a long doclist starts) rather than read the rest of its
                    # doclist (26 ms past `the`).
                    low = next((k for k in sorted(keys) if k > term), "")
                    if not low:
                        break
                else:
                    low = term + "\x01"
        terms = [t for t in found if not _DIR_TOKEN.match(t)]
        self.complete = complete and len(terms) <= EXPAND_MAX
        if self.complete:
            return sorted(terms)
        return _shortest(terms)


def _shortest(terms: list[str]) -> list[str]:
    return sorted(sorted(terms, key=len)[:EXPAND_MAX])


def _parse(query: str) -> tuple[list[list[_Term]], list[_Term]]:
    """User text as an AND of OR-groups of terms, and the terms to exclude.

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
    return groups, negatives


def parse_query(query: str, expand: Expander | None = None) -> str:
    """Turn user text into a safe FTS5 expression on the `content` column.

    `expand` gives the exact terms a prefix stands for (None: leave it to FTS5).

    Raises:
        SearchQueryError: when nothing searchable is left.
    """
    groups, negatives = _parse(query)
    positive = " AND ".join(
        "(" + " OR ".join(t.fts(expand) for t in group) + ")"
        if len(group) > 1
        else group[0].fts(expand)
        for group in groups
    )
    expression = f"({positive})"
    for term in negatives:
        expression += f" NOT {term.fts(expand)}"
    return expression


@dataclass(frozen=True)
class Index:
    """One full-text index: its FTS5 table and its term list."""

    table: str
    terms: str


# The indexes of schema version 7 and the version-2 ones they replace (search_build says
# which are complete).
MESSAGES = Index("search_messages", "search_messages_terms")
SUMMARIES = Index("search_summaries", "search_summaries_terms")
OLD = {
    "messages": Index("messages_fts", "messages_fts_terms"),
    "summaries": Index("summaries_fts", "summaries_fts_terms"),
}


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def current_indexes(conn: sqlite3.Connection) -> tuple[Index, Index]:
    """The message and summary indexes to search: the new ones once complete, or when there
    is no version-2 one (a catch-up of sync leaves its rows to a build: they are found once
    it is done)."""
    pending = {r[0] for r in conn.execute("SELECT name FROM search_build")}
    messages, summaries = MESSAGES, SUMMARIES
    if "messages" in pending and _has_table(conn, OLD["messages"].table):
        messages = OLD["messages"]
    if "summaries" in pending and _has_table(conn, OLD["summaries"].table):
        summaries = OLD["summaries"]
    return messages, summaries


def partial_indexes(conn: sqlite3.Connection) -> set[str]:
    """The indexes that serve searches while their build is still under way."""
    pending = {r[0] for r in conn.execute("SELECT name FROM search_build")}
    messages, summaries = current_indexes(conn)
    return {
        index.table
        for name, index in (("messages", messages), ("summaries", summaries))
        if name in pending and index.table != OLD[name].table
    }


def _db_key(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file)
    return ""


def _expander(conn: sqlite3.Connection, index: Index) -> Expander:
    terms = TermList(conn, index.terms, _db_key(conn) or None)
    native = NATIVE_PAGES if index.table in ("search_messages", "messages_fts") else SMALL_PAGES
    cache: dict[str, list[str]] = {}

    def expand(prefix: str) -> list[str] | None:
        if prefix not in cache:
            try:
                terms.range_pages = terms.pages(prefix)
                if terms.range_pages <= native:
                    return None  # few pages: FTS5's own prefix query, exact and cheap
                cache[prefix] = terms.expand(prefix)
            except sqlite3.OperationalError:
                return None
        return cache[prefix]

    return expand


def _match(query: str, scope: Scope, root: str | None, expand: Expander | None = None) -> str:
    expression = parse_query(query, expand)
    scope_filter = scopes.fts_filter(scope, root)
    return f"({expression}) AND {scope_filter}" if scope_filter else expression


def _snippet(table: str) -> str:
    return f"snippet({table}, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', {SNIPPET_TOKENS})"


# A hit before it becomes a SearchHit: (kind, id, session_id, message_id, role, created_at,
# title, working_dir, snippet, rank). Messages and summaries are merged as rows, and only
# the rows kept are made into records (and given snippets, for summaries and ranked hits).
_Row = tuple


def _message_rows(
    conn: sqlite3.Connection, match: str, limit: int, fts: str, snippets: bool
) -> list[_Row]:
    snippet = _snippet(fts) if snippets else "NULL"
    rows = conn.execute(
        f"SELECT m.id, m.session_id, m.role, m.created_at, coalesce(s.title, s.preview, ''),"
        f" s.working_dir, {snippet}"
        f" FROM {fts} JOIN messages AS m ON m.id = {fts}.rowid"
        " JOIN sessions AS s ON s.id = m.session_id"
        f" WHERE {fts} MATCH ? AND s.deleted_at IS NULL ORDER BY {fts}.rowid DESC LIMIT ?",
        (match, limit),
    ).fetchall()
    return [("message", r[0], r[1], r[0], r[2], r[3], r[4], r[5], r[6], None) for r in rows]


def _summary_rows(conn: sqlite3.Connection, match: str, limit: int, fts: str) -> list[_Row]:
    rows = conn.execute(
        "SELECT x.id, x.session_id, x.last_message_id, x.created_at,"
        " coalesce(s.title, s.preview, ''), s.working_dir"
        f" FROM {fts} JOIN summaries AS x ON x.id = {fts}.rowid"
        " JOIN sessions AS s ON s.id = x.session_id"
        f" WHERE {fts} MATCH ? AND s.deleted_at IS NULL ORDER BY {fts}.rowid DESC LIMIT ?",
        (match, limit),
    ).fetchall()
    return [("summary", r[0], r[1], r[2], None, r[3], r[4], r[5], None, None) for r in rows]


def _add_snippets(conn: sqlite3.Connection, rows: list[_Row], kind: str, match: str, fts: str):
    """`rows` with the snippets of those of `kind` that have none yet.

    One pass over the matches between the lowest and highest of those rows, newest first (a
    lookup by rowid would set up the whole query again for each row: 0.7 ms with a prefix
    expanded into 20 words), making a snippet only for the rows wanted.
    """
    ids = [r[1] for r in rows if r[0] == kind and r[8] is None]
    if not ids:
        return rows
    wanted = ",".join(str(int(i)) for i in ids)
    found = {
        rid: text
        for rid, text in conn.execute(
            f"SELECT rowid, CASE WHEN rowid IN ({wanted}) THEN {_snippet(fts)} END FROM {fts}"
            f" WHERE {fts} MATCH ? AND rowid >= ? AND rowid <= ? ORDER BY rowid DESC",
            (match, min(ids), max(ids)),
        )
        if text is not None
    }
    return [
        (*r[:8], found.get(r[1], ""), r[9]) if r[0] == kind and r[8] is None else r for r in rows
    ]


def _summaries_since(conn: sqlite3.Connection, stamp: str) -> bool:
    """Whether any summary was made at or after `stamp` (one lookup in summaries_created)."""
    row = conn.execute("SELECT 1 FROM summaries WHERE created_at >= ? LIMIT 1", (stamp,))
    return row.fetchone() is not None


class _Lazy:
    """A value made on first use (the summaries' query: often not needed at all)."""

    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make
        self.value: str | None = None

    def __call__(self) -> str:
        if self.value is None:
            self.value = self.make()
        return self.value


def _hit(r: _Row) -> SearchHit:
    if r[0] == "message":
        return SearchHit(
            kind="message",
            message_id=r[1],
            session_id=r[2],
            role=r[4],
            created_at=r[5],
            session_title=r[6],
            working_dir=r[7],
            snippet=r[8] or "",
            rank=r[9],
        )
    return SearchHit(
        kind="summary",
        summary_id=r[1],
        session_id=r[2],
        message_id=r[3],
        role=None,
        created_at=r[5],
        session_title=r[6],
        working_dir=r[7],
        snippet=r[8] or "",
        rank=r[9],
    )


# ------------------------------------------------------------------------------ relevance
#
# FTS5's bm25() first counts, for each phrase of the query, every row of the whole index that
# holds it (its IDF): 30 ms for a common word at 2M messages, 160 ms for a phrase of two
# common words, 200 ms for a prefix expanded into 20 words. So relevance is scored here
# instead, over the RANK_CANDIDATES newest matches only, with bm25's formula (k1 1.2, b 0.75,
# FTS5's token counts and average): each term of the query (a word, a phrase, a prefix as one
# term, as FTS5 counts a prefix) is counted in the candidates' text, and its IDF is estimated
# from how many of the candidates hold it, scaled from the newest rows they span to the whole
# index. Scores are negative, lower first, as bm25()'s are.

BM25_K1 = 1.2
BM25_B = 0.75
_NOT_TOKEN = r"[\W_]"  # a character that is not part of a token (letters and digits are)
_TOKEN_CHAR = r"[^\W_]"


def _varint(data: bytes, at: int = 0) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, where the next one starts)."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _fold(text: str) -> str:
    """Text folded the way the index's tokenizer folds it (case, diacritics)."""
    text = text.lower()
    if text.isascii():
        return text
    folded = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in folded if not unicodedata.combining(c)))


def _term_pattern(term: _Term) -> re.Pattern[str] | None:
    """A pattern finding `term` in folded text; it starts with the term's literal text (so
    the search for it is fast), and a match counts only where a token starts (_occurrences)."""
    tokens = fts_tokens(term.text)
    if not tokens:
        return None
    body = (_NOT_TOKEN + "+").join(re.escape(t) for t in tokens)
    end = "" if term.prefix else f"(?!{_TOKEN_CHAR})"
    return re.compile(body + end)


def _occurrences(pattern: re.Pattern[str], text: str, starts: list[int]) -> list[int]:
    """How many times `pattern` starts a token in each document of `text` (the documents
    joined by NULs; `starts` are their offsets)."""
    counts = [0] * len(starts)
    for m in pattern.finditer(text):
        at = m.start()
        if at and text[at - 1].isalnum():
            continue  # inside a token
        counts[bisect.bisect_right(starts, at) - 1] += 1
    return counts


def _rank_terms(query: str) -> list[re.Pattern[str]]:
    groups, _negatives = _parse(query)
    return [p for group in groups for t in group if (p := _term_pattern(t)) is not None]


def _index_stats(conn: sqlite3.Connection, fts: str) -> tuple[int, float]:
    """(rows in the index, their average token count in `content`), from FTS5's own record."""
    row = conn.execute(f"SELECT block FROM {fts}_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 1.0
    rows, at = _varint(bytes(row[0]))
    tokens, _ = _varint(bytes(row[0]), at)
    return rows, (tokens / rows if rows else 1.0)


def _score(
    conn: sqlite3.Connection,
    fts: str,
    patterns: list[re.Pattern[str]],
    candidates: list[tuple[int, str, bytes | None]],
    newest: int,
) -> list[float]:
    """bm25-like scores (negative, lower is better) of the candidates (id, text, FTS5 size
    record), newest first; `newest` is the index's highest rowid."""
    if not candidates:
        return []
    total, avgdl = _index_stats(conn, fts)
    joined = _fold("\x00".join(text or "" for _, text, _ in candidates))
    texts = joined.split("\x00")
    if len(texts) != len(candidates):  # a NUL in the text itself: fold one by one
        texts = [_fold(text or "") for _, text, _ in candidates]
        joined = "\x00".join(texts)
    starts, at = [], 0
    for text in texts:
        starts.append(at)
        at += len(text) + 1
    counts = [_occurrences(p, joined, starts) for p in patterns]
    # The candidates are the newest matches: they span the rows from the oldest of them to
    # the newest, and a term's share of that span stands for its share of the whole index.
    span = max(newest - min(c[0] for c in candidates) + 1, len(candidates))
    scale = max(total, span) / span
    idfs = []
    for per_doc in counts:
        n = sum(1 for c in per_doc if c) * scale
        idf = math.log((max(total, n) - n + 0.5) / (n + 0.5))
        idfs.append(idf if idf > 0 else 1e-6)
    scores = []
    for i, (_rid, text, size) in enumerate(candidates):
        dl = _varint(size)[0] if size else max(len(text or "") // 6, 1)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / (avgdl or 1.0))
        score = 0.0
        for idf, per_doc in zip(idfs, counts, strict=True):
            tf = per_doc[i]
            if tf:
                score += idf * tf * (BM25_K1 + 1) / (tf + norm)
        scores.append(-score)
    return scores


def _ranked_rows(
    conn: sqlite3.Connection, match: str, patterns: list[re.Pattern[str]], fts: str, kind: str
) -> list[_Row]:
    """The RANK_CANDIDATES newest matches of `kind`, scored (not yet sorted, no snippets)."""
    # The row's token counts, as FTS5 keeps them (content first).
    SIZE = f"(SELECT sz FROM {fts}_docsize WHERE id = {fts}.rowid)"
    if kind == "message":
        sql = (
            "SELECT m.id, m.session_id, m.id, m.role, m.created_at,"
            f" coalesce(s.title, s.preview, ''), s.working_dir, m.content, {SIZE}"
            f" FROM {fts} JOIN messages AS m ON m.id = {fts}.rowid"
            " JOIN sessions AS s ON s.id = m.session_id"
        )
        newest_sql = "SELECT max(id) FROM messages"
    else:
        sql = (
            "SELECT x.id, x.session_id, x.last_message_id, NULL, x.created_at,"
            f" coalesce(s.title, s.preview, ''), s.working_dir, x.content, {SIZE}"
            f" FROM {fts} JOIN summaries AS x ON x.id = {fts}.rowid"
            " JOIN sessions AS s ON s.id = x.session_id"
        )
        newest_sql = "SELECT max(id) FROM summaries"
    sql += f" WHERE {fts} MATCH ? AND s.deleted_at IS NULL ORDER BY {fts}.rowid DESC LIMIT ?"
    rows = conn.execute(sql, (match, RANK_CANDIDATES)).fetchall()
    if not rows:
        return []
    newest = int(conn.execute(newest_sql).fetchone()[0] or 0)
    scores = _score(conn, fts, patterns, [(r[0], r[7], r[8]) for r in rows], newest)
    return [
        (kind, r[0], r[1], r[2], r[3], r[4], r[5], r[6], None, score)
        for r, score in zip(rows, scores, strict=True)
    ]


def search(
    conn: sqlite3.Connection,
    query: str,
    scope: Scope,
    root: str | None,
    limit: int,
    rank: bool,
) -> list[SearchHit]:
    _match(query, scope, root)  # refuse what cannot be searched before anything else
    if limit <= 0:
        return []
    messages, summaries = current_indexes(conn)
    try:
        message_match = _match(query, scope, root, _expander(conn, messages))
        summary_match = _Lazy(lambda: _match(query, scope, root, _expander(conn, summaries)))
        if rank:
            patterns = _rank_terms(query)
            rows = _ranked_rows(conn, message_match, patterns, messages.table, "message")
            rows += _ranked_rows(conn, summary_match(), patterns, summaries.table, "summary")
            rows.sort(key=lambda r: (r[9], -r[1]))
        else:
            rows = _message_rows(conn, message_match, limit, messages.table, snippets=True)
            if len(rows) < limit or _summaries_since(conn, min(r[5] for r in rows)):
                rows += _summary_rows(conn, summary_match(), limit, summaries.table)
            # Timestamps are stored so that they sort as text (util.fmt_ts).
            rows.sort(key=lambda r: (r[5], r[3] or 0), reverse=True)
        rows = rows[:limit]
        rows = _add_snippets(conn, rows, "message", message_match, messages.table)
        if any(r[0] == "summary" for r in rows):
            rows = _add_snippets(conn, rows, "summary", summary_match(), summaries.table)
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if any(word in text for word in ("fts5", "syntax", "unterminated", "match")):
            raise SearchQueryError(f"cannot search for {query!r}: {exc}") from None
        raise
    return [_hit(r) for r in rows]


def filter_match(conn: sqlite3.Connection, text: str) -> str | None:
    """An FTS5 expression for search_sessions: `text` as a phrase whose last word is a prefix
    (expanded like the search's), or None when it holds no word to look up."""
    tokens = fts_tokens(text[:MAX_QUERY_CHARS])[:MAX_TERMS]
    if not tokens:
        return None
    term_list = TermList(conn, "search_sessions_terms")
    terms = term_list.expand(tokens[-1])
    if not terms:
        return _quote(" ".join(tokens))  # matches nothing, cheaply
    if not term_list.complete:
        # Too many words start with it to list: the index is small enough for FTS5's own
        # prefix query, and the filter must not drop sessions.
        return _quote(" ".join(tokens)) + " *"
    head = " ".join(tokens[:-1])
    return " OR ".join(_quote(f"{head} {t}" if head else t) for t in terms)


# ---------------------------------------------------------------------- building the index

# One build step indexes about this many bytes of text (adapted to hold the lock ~BUILD_TARGET).
BUILD_FIRST_BYTES = 2 << 20
BUILD_TARGET = 0.2
# And never more than this (a busy machine stretches a step; the rate it measures lags).
BUILD_MAX_BYTES = 8 << 20
# Between steps the lock is left free a moment, and longer once steps have held it PAUSE_EVERY
# seconds: another process's busy handler polls every 100 ms once it has waited a while.
BUILD_PAUSE_EVERY = 0.5
BUILD_PAUSE = 0.12
BUILD_SHORT_PAUSE = 0.002


async def build_in_steps(
    db: Database,
    step: Callable[[sqlite3.Connection, int], tuple[int, bool]],
    total: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    first_bytes: int | None = None,
    target: float | None = None,
    max_bytes: int | None = None,
) -> float:
    """Run `step(conn, max_bytes)` (rows indexed, finished) in write transactions until it
    says finished, each sized from the last one's rate to hold the lock about `target`
    seconds, pausing between them so other writers are never kept waiting; a crash loses at
    most one step. `progress(rows done, total)` after each step that indexed rows. Returns the
    longest a transaction held the lock. The sizes default to BUILD_FIRST_BYTES, BUILD_TARGET
    and BUILD_MAX_BYTES as they are when called."""
    import asyncio

    target = BUILD_TARGET if target is None else target
    max_bytes = BUILD_MAX_BYTES if max_bytes is None else max_bytes
    budget = BUILD_FIRST_BYTES if first_bytes is None else first_bytes
    since_pause, done, longest = 0.0, 0, 0.0
    while True:
        started = time.perf_counter()
        rows, finished = await db.write(step, budget)
        held = time.perf_counter() - started
        longest = max(longest, held)
        if rows:
            done += rows
            budget = int(min(max(budget / max(held, 1e-3) * target, 64 << 10), max_bytes))
            if progress is not None:
                progress(min(done, total), total)
        if finished:
            return longest
        since_pause += held
        if since_pause >= BUILD_PAUSE_EVERY:
            since_pause = 0.0
            await asyncio.sleep(BUILD_PAUSE)
        else:
            await asyncio.sleep(BUILD_SHORT_PAUSE)


# The version-2 index's rows are deleted this many at a time before its table is dropped.
RETIRE_ROWS = 2000


@dataclass(frozen=True)
class BuildState:
    """How far the search indexes' build is: rows indexed of rows to index."""

    done: int
    total: int
    finished: bool


def _count_range(conn: sqlite3.Connection, table: str, low: int, high: int) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM {table} WHERE rowid > ? AND rowid <= ?", (low, high)
    ).fetchone()
    return int(row[0])


def build_state(conn: sqlite3.Connection) -> BuildState:
    """Rows left to index (counted by id range), and whether anything is left to do."""
    left = 0
    for name, done, upto in conn.execute("SELECT name, done, upto FROM search_build"):
        left += _count_range(conn, name, done, upto)
    old = any(_has_table(conn, index.table) for index in OLD.values())
    total = left
    return BuildState(done=0, total=total, finished=left == 0 and not old)


def build_step(conn: sqlite3.Connection, max_bytes: int = BUILD_FIRST_BYTES) -> tuple[int, bool]:
    """One short step of the build (in the caller's write transaction).

    Indexes the next rows of a pending index, up to about `max_bytes` of text, and moves its
    marker; once nothing is pending, retires the version-2 indexes a slice at a time. Returns
    (rows indexed, whether everything is done).
    """
    row = conn.execute("SELECT name, done, upto FROM search_build ORDER BY name LIMIT 1").fetchone()
    if row is not None and row[0] == "sessions":
        return _sessions_step(conn, int(row[1]), int(row[2])), False
    if row is not None:
        name, done, upto = str(row[0]), int(row[1]), int(row[2])
        index = MESSAGES if name == "messages" else SUMMARIES
        # The ids of the next rows, until their text reaches max_bytes.
        last, rows, size = done, 0, 0
        for rid, length in conn.execute(
            f"SELECT id, length(content) FROM {name} WHERE id > ? AND id <= ? ORDER BY id",
            (done, upto),
        ):
            last, rows, size = int(rid), rows + 1, size + int(length or 0) + 64
            if size >= max_bytes:
                break
        if rows:
            conn.execute(
                f"INSERT INTO {index.table} (rowid, content, dirs)"
                f" SELECT id, content, dirs FROM {index.table}_source"
                " WHERE id > ? AND id <= ? ORDER BY id",
                (done, last),
            )
        if rows == 0 or last >= upto:
            conn.execute("DELETE FROM search_build WHERE name = ?", (name,))
        else:
            conn.execute("UPDATE search_build SET done = ? WHERE name = ?", (last, name))
        return rows, False
    return 0, _retire_step(conn)


SESSIONS_STEP = 5000


def _sessions_step(conn: sqlite3.Connection, done: int, upto: int) -> int:
    """Index the next sessions (by rowid) in the title/preview index; the last step also
    takes any session still without a key (rowids may have moved, on VACUUM)."""
    row = conn.execute(
        "SELECT max(rowid), count(*) FROM (SELECT rowid FROM sessions"
        " WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?)",
        (done, upto, SESSIONS_STEP),
    ).fetchone()
    last, rows = (int(row[0]), int(row[1])) if row[0] is not None else (upto, 0)
    before = conn.execute("SELECT coalesce(max(rid), 0) FROM search_session_keys").fetchone()[0]
    if rows:
        conn.execute(
            "INSERT OR IGNORE INTO search_session_keys (session_id)"
            " SELECT id FROM sessions WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (done, last),
        )
    finished = rows == 0 or last >= upto
    if finished:
        conn.execute(
            "INSERT INTO search_session_keys (session_id) SELECT id FROM sessions"
            " WHERE id NOT IN (SELECT session_id FROM search_session_keys) ORDER BY rowid"
        )
    conn.execute(
        "INSERT INTO search_sessions (rowid, title, preview) SELECT k.rid, s.title, s.preview"
        " FROM search_session_keys AS k JOIN sessions AS s ON s.id = k.session_id"
        " WHERE k.rid > ? ORDER BY k.rid",
        (before,),
    )
    if finished:
        conn.execute("DELETE FROM search_build WHERE name = 'sessions'")
    else:
        conn.execute("UPDATE search_build SET done = ? WHERE name = 'sessions'", (last,))
    return rows


def filter_ready(conn: sqlite3.Connection) -> bool:
    """Whether the title/preview index holds every session (not while its build is pending)."""
    return conn.execute("SELECT 1 FROM search_build WHERE name = 'sessions'").fetchone() is None


def _retire_step(conn: sqlite3.Connection) -> bool:
    """Drop the version-2 indexes: their triggers, then their rows in slices, then the tables."""
    for name, index in OLD.items():
        if not _has_table(conn, index.table):
            continue
        for op in ("ai", "ad", "au"):
            conn.execute(f"DROP TRIGGER IF EXISTS {name}_fts_{op}")
        conn.execute(f"DROP TABLE IF EXISTS {index.terms}")
        # Rowids 1 and 10 of _data are FTS5's structure and averages records: kept so the
        # table stays consistent until it goes.
        for shadow, keep in (("data", 10), ("docsize", 0)):
            table = f"{index.table}_{shadow}"
            cur = conn.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table}"
                " WHERE rowid > ? LIMIT ?)",
                (keep, RETIRE_ROWS if shadow == "data" else RETIRE_ROWS * 10),
            )
            if cur.rowcount > 0:
                return False
        conn.execute(f"DROP TABLE {index.table}")
        conn.execute(f"DROP VIEW IF EXISTS {name}_fts_source")
        return False
    return True


def finish_small_build(conn: sqlite3.Connection) -> None:
    """Right after the upgrade of a database with nothing to index (a new one): drop the empty
    version-2 indexes now, in one short transaction, rather than leave it to a build."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM search_build").fetchone() is None:
            for _ in range(8):
                if _retire_step(conn):
                    break
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def rebuild_index(conn: sqlite3.Connection) -> None:
    """Rebuild the full-text indexes from the tables (to repair; one transaction)."""
    conn.execute("INSERT INTO search_messages (search_messages) VALUES ('rebuild')")
    conn.execute("INSERT INTO search_summaries (search_summaries) VALUES ('rebuild')")
    conn.execute("DELETE FROM search_build")
    conn.execute("DELETE FROM search_sessions")
    conn.execute("INSERT OR IGNORE INTO search_session_keys (session_id) SELECT id FROM sessions")
    conn.execute(
        "INSERT INTO search_sessions (rowid, title, preview)"
        " SELECT k.rid, s.title, s.preview"
        " FROM search_session_keys AS k JOIN sessions AS s ON s.id = k.session_id"
    )


def optimize_index(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO search_messages (search_messages) VALUES ('optimize')")
    conn.execute("INSERT INTO search_summaries (search_summaries) VALUES ('optimize')")
