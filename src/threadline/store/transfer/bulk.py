"""Many rows in one short write transaction, with the per-row triggers' work done in bulk.

Inserting a session, a message or a summary fires AFTER INSERT triggers: one keeps a
session's counters, others keep the full-text indexes. Row by row, an index trigger costs
several times the bulk statement (FTS5 writes its pending terms to disk at every statement
boundary, so each row becomes its own little segment to merge), so a bulk transaction suspends
the triggers it knows, by name, and does their work once for all the rows it inserted:

- full-text triggers (INSERT_TRIGGERS): their own text, read from sqlite_master inside the
  transaction, is rewritten from `INSERT INTO t (...) VALUES (<exprs of new.*>)` [WHEN w] into
  `INSERT INTO t (...) SELECT <the same exprs> FROM <the new rows> AS new [WHERE w] ORDER BY
  rowid`; so a trigger whose columns, expressions or condition change is followed as written.
  A trigger of another shape is not suspended: it fires per row (slower, still correct).
- an index trigger that skips the rows of a pending index build (BUILT_LATER): when every new
  row is in the build's range (a first import leaving its rows to a side index, a sync
  catch-up's deferred index), its bulk statement, which would write nothing, is skipped.
- the counters trigger (messages_count_ai): replaced by one UPDATE per transaction, only while
  its text is the one that UPDATE was written for (COUNTERS_SHA256); otherwise it fires per row.

- sync's capture of new messages (IDLE_TRIGGERS): it does nothing while sync is not capturing
  (sync_state.capture off, read inside the transaction), yet costs about as much as the row's
  own insert to fire; so while it would do nothing, and only while its text is the one known
  (its sha256), it is suspended with no work to do, and the transaction is aborted should
  capture be on by the time the work is done (then the rows would have been journalled).

Triggers not named here (another feature's: sync's other captures, the session counts) are
never touched, and fire for every row as usual. Suspended triggers are dropped and re-created from
their exact text inside the transaction: DDL is transactional, so no other connection ever sees
the schema without them, and a crash or an error before COMMIT leaves them as they were. The
trigger list is compared before COMMIT; any difference aborts the transaction.

A row whose insert work is still pending must not be updated or deleted before it is done (an
update trigger would remove from the index what is not in it yet): `touches()` says when a
change would, and `flush()` does the pending work first.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from threadline.store.errors import StoreError

# A transaction holds the write lock about this long (the budget adapts to the measured rate).
LOCK_TARGET = 0.3
# Once the lock has been held this long in all since the last long pause, a loader leaves it
# free for PAUSE, so another process waiting for it gets it (SQLite's busy handler polls every
# 100 ms once it has waited a while); between other transactions it leaves it SHORT_PAUSE.
PAUSE_EVERY = 0.5
PAUSE = 0.12
SHORT_PAUSE = 0.002
# A transaction's first budget (bytes of text), before a rate has been measured, and bounds.
FIRST_BUDGET = 1 << 20
MIN_BUDGET, MAX_BUDGET = 64 << 10, 64 << 20
# What a row costs beyond its text, in budget bytes (indexes, statements, key rows).
ROW_COST = 400
# FTS5 keeps new terms in memory and writes a segment each time this many bytes are pending
# (default 1 MiB). A bulk transaction lets a whole transaction's terms go out as one segment
# (less merging: measured about 15% faster indexing); put back before COMMIT.
FTS_HASHSIZE = 16 << 20

# The tables whose inserts are done in bulk, in the order their pending work is done: a
# session's index entry goes in before the counters update can change it (its update trigger
# replaces the entry).
TABLES = ("sessions", "messages", "summaries")
# AFTER INSERT triggers, by table, whose work is done by rewriting their own text. The first
# name of each table is the version-2 schema's; the second, the search index being redesigned.
INSERT_TRIGGERS = {
    "sessions": ("search_sessions_ai",),
    "messages": ("messages_fts_ai", "search_messages_ai"),
    "summaries": ("summaries_fts_ai", "search_summaries_ai"),
}
COUNTERS_TRIGGER = "messages_count_ai"
# sha256 of the whitespace-normalised text of messages_count_ai (0001_initial.sql) that
# _COUNTERS does the work of. When a migration changes that trigger, this no longer matches
# and the trigger fires per row until _COUNTERS is brought in line (tests/store flag it).
COUNTERS_SHA256 = "2656dfcde4957b9066d7f923a85ecba20ac01ffb80eb9093a51ed1a9954da209"
# Index triggers that skip the rows a search_build range covers (0007_search_index.sql: the
# rows an index build will do): name -> (the build's name, sha256 of the whitespace-normalised
# text). When every new row of a bulk transaction is in such a range, their work is skipped.
BUILT_LATER = {
    "search_messages_ai": (
        "messages",
        "971b62ea2aecd9be0d21c7fe1c2362ce43433e5aeaccbbcd6018cccdaca0fa1f",
    ),
}
# Setting an index's hashsize costs a few ms; worth it from about this many rows.
HASHSIZE_ROWS = 1000
# AFTER INSERT triggers, by table, that do nothing while a condition holds: name -> (sha256 of
# the whitespace-normalised text whose WHEN the condition stands for, the condition as a query
# giving true while the trigger would do nothing). 0005_sync.sql's capture of new messages.
IDLE_TRIGGERS = {
    "messages": {
        "sync_messages_ai": (
            "30678aaea950b37330e52e8164cedea40b0828adccd8a285bc64bd5d3ae7206b",
            "SELECT NOT coalesce((SELECT capture FROM main.sync_state), 0)",
        )
    },
}


class Pacer:
    """How much a loader puts in one transaction, and how long it then leaves the lock free.

    `budget` (bytes of text) is sized from the last transactions' rate to hold the lock about
    LOCK_TARGET; `cutoff` is how long a transaction may go on taking rows before it stops and
    does the bulk work, which takes `ratio` times as long as the rows (measured: the index is
    most of it, and a loaded machine stretches both).
    """

    def __init__(self) -> None:
        self.budget = FIRST_BUDGET
        self.ratio = 1.0  # bulk work time / the rest of a transaction's time
        self.since_pause = 0.0

    @property
    def cutoff(self) -> float:
        return max(LOCK_TARGET / (1.0 + self.ratio), LOCK_TARGET / 20)

    def done(self, cost: int, held: float, bulk: float = 0.0) -> float:
        """A transaction of `cost` held the lock `held` seconds (`bulk` of them doing the
        suspended triggers' work): returns the pause to make now."""
        if held > 0:
            rate = cost / held
            self.budget = int(min(max(rate * LOCK_TARGET, MIN_BUDGET), MAX_BUDGET))
            if held > bulk > 0:
                self.ratio = 0.5 * self.ratio + 0.5 * bulk / (held - bulk)
        self.since_pause += held
        if self.since_pause >= PAUSE_EVERY:
            self.since_pause = 0.0
            return PAUSE
        return SHORT_PAUSE


class Checkpointer:
    """Copies the WAL into the database on a thread of its own while a loader writes.

    Each commit of the writer would otherwise do it (SQLite's auto-checkpoint) while the
    loader waits; here it runs beside the next transaction, on the other core. PASSIVE: it
    never takes the write lock nor waits for readers. The writer's auto-checkpoint is off
    for the load (`pause_writer`) and put back after.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.wake = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="threadline-checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not self.stopping:
                self.wake.wait()
                self.wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy (another checkpoint), or the file went away
                    pass
        finally:
            conn.close()

    def poke(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        self.thread.join()


def pause_autocheckpoint(conn: sqlite3.Connection, pages: int | None) -> int:
    """Set the connection's wal_autocheckpoint (0: off); returns the value it had."""
    previous = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages or 0)}")
    return previous


def new_rows(table: str) -> str:
    """The temp table listing the rows of `table` this transaction inserted.

    Temp tables are private to the connection and take no lock on the database file.
    """
    return f"temp.threadline_new_{table}"


# messages_count_ai for every new row at once: counts and token totals added, last activity
# moved to the newest message, the preview set from the first non-blank user message when the
# session has none (the trigger's expression; a message an outside tool injected or a slash
# command (payload kind other than `prompt`) is not what the person typed, so it is passed over;
# a session of slash commands alone is previewed by its first command, until a typed prompt
# comes: then by that prompt, whichever transaction brings it, so a preview does not depend on
# how a load was cut into transactions; a preview given with the session (`import threadline`)
# is kept).
def _first_user(kind_test: str) -> str:
    """The id of the session's first new non-blank user message whose payload kind passes
    `kind_test` (read in id order from the session's index: it stops at the first; `+m.id`
    keeps SQLite from probing the index once per new row of the transaction instead)."""
    return f"""(SELECT m.id FROM main.messages AS m INDEXED BY messages_session
              WHERE m.session_id = s.id AND +m.id IN (SELECT id FROM {new_rows("messages")})
                AND m.role = 'user' AND trim(m.content) <> ''
                AND {kind_test}
              ORDER BY m.id LIMIT 1)"""


_KIND = "CASE WHEN json_valid(m.payload) THEN m.payload ->> '$.kind' END"
_PROMPT = f"coalesce({_KIND}, 'prompt') = 'prompt'"
_COMMAND = f"{_KIND} = 'command'"
_PREVIEW_OF = """SELECT substr(trim(replace(replace(replace(m.content, char(13), ' '),
                                                   char(10), ' '), char(9), ' ')), 1, 200)
              FROM main.messages AS m"""


def _first_old(kind_test: str) -> str:
    """The id of the session's first non-blank user message stored before this transaction
    whose payload kind passes `kind_test`. Read in id order from the session's index: it
    stops at the first (for a prompt, normally the session's first message)."""
    return f"""(SELECT m.id FROM main.messages AS m INDEXED BY messages_session
              WHERE m.session_id = s.id AND +m.id NOT IN (SELECT id FROM {new_rows("messages")})
                AND m.role = 'user' AND trim(m.content) <> '' AND {kind_test}
              ORDER BY m.id LIMIT 1)"""


# The preview's search (a payload's JSON read) is made for the sessions without one; one with
# a preview pays a look at its first stored user message (a prompt: kept), and only a session
# whose stored messages hold no typed prompt more.
_COUNTERS = f"""
UPDATE main.sessions AS s SET
    message_count = s.message_count + x.n,
    total_input_tokens = s.total_input_tokens + x.tin,
    total_output_tokens = s.total_output_tokens + x.tout,
    updated_at = max(s.updated_at, x.last),
    preview = CASE
        WHEN s.preview IS NULL
        THEN ({_PREVIEW_OF} WHERE m.id = coalesce({_first_user(_PROMPT)},
                                                  {_first_user(_COMMAND)}))
        WHEN {_first_old(_PROMPT)} IS NOT NULL
            OR s.preview IS NOT ({_PREVIEW_OF} WHERE m.id = {_first_old(_COMMAND)})
        THEN s.preview
        ELSE coalesce(({_PREVIEW_OF} WHERE m.id = {_first_user(_PROMPT)}), s.preview) END
FROM (
    SELECT m.session_id AS sid, count(*) AS n,
           sum(coalesce(m.input_tokens, 0)) AS tin, sum(coalesce(m.output_tokens, 0)) AS tout,
           max(m.created_at) AS last
    FROM {new_rows("messages")} AS t CROSS JOIN main.messages AS m ON m.id = t.id
    GROUP BY m.session_id
) AS x
WHERE s.id = x.sid
"""

_HEAD = re.compile(
    r"^\s*CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:main\.)?\"?(?P<name>\w+)\"?\s+"
    r"AFTER\s+INSERT\s+ON\s+(?:main\.)?\"?(?P<table>\w+)\"?\s+(?:FOR\s+EACH\s+ROW\s+)?"
    r"(?:WHEN\s+(?P<when>.*?)\s+)?BEGIN\b(?P<body>.*)\bEND\s*;?\s*$",
    re.S | re.I,
)
_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<target>[\w.\"]+)\s*\((?P<cols>[^()]*)\)\s*VALUES\s*(?P<rest>\(.*)$",
    re.S | re.I,
)


def _normalise(sql: str) -> str:
    return " ".join(sql.split())


def _strip_comments(sql: str) -> str:
    """`sql` without -- and /* */ comments (text inside quotes is left alone)."""
    out, i, quote = [], 0, ""
    while i < len(sql):
        ch = sql[i]
        if quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"`[":
            quote = "]" if ch == "[" else ch
            out.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end < 0 else end + 2
            out.append(" ")
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _statements(body: str) -> list[str]:
    """A trigger body split into whole statements (a `;` inside a string stays put)."""
    out, buffer = [], ""
    for piece in body.split(";"):
        buffer = f"{buffer};{piece}" if buffer else piece
        if sqlite3.complete_statement(buffer + ";"):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out


def _one_tuple(rest: str) -> str | None:
    """The inside of `(...)` when `rest` is exactly one parenthesised tuple, else None."""
    depth, quote = 0, ""
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return rest[1:i] if not rest[i + 1 :].strip().rstrip(";").strip() else None
    return None


def rewrite_insert_trigger(sql: str, table: str) -> tuple[list[str], list[str]] | None:
    """Set-based statements doing what an AFTER INSERT trigger does for each row of new_rows().

    Returns (statements, the tables they insert into), or None when the trigger is not of the
    shape this understands (then it must keep firing).
    """
    head = _HEAD.match(_strip_comments(sql))
    if head is None or head["table"].lower() != table:
        return None
    where = f" WHERE ({head['when']})" if head["when"] else ""
    out, targets = [], []
    for statement in _statements(head["body"]):
        insert = _INSERT.match(statement)
        if insert is None:
            return None
        values = _one_tuple(insert["rest"].strip())
        if values is None:
            return None
        out.append(
            f"INSERT INTO {insert['target']} ({insert['cols'].strip()}) SELECT {values}"
            f" FROM {new_rows(table)} AS threadline_new CROSS JOIN main.{table} AS new"
            f" ON new.rowid = threadline_new.id{where} ORDER BY threadline_new.id"
        )
        targets.append(insert["target"].replace('"', "").removeprefix("main."))
    return (out, targets) if out else None


@dataclass
class TriggerPlan:
    """What a bulk transaction takes over from the triggers, as found in this transaction."""

    suspended: dict[str, str] = field(default_factory=dict)  # name -> its exact CREATE text
    work: dict[str, list[str]] = field(default_factory=dict)  # table -> bulk statements
    fts: list[str] = field(default_factory=list)  # FTS5 tables the work writes
    writes: dict[str, list[str]] = field(default_factory=dict)  # statement -> its FTS5 tables
    # statement -> the search_build name whose pending range makes it do nothing (BUILT_LATER)
    deferrable: dict[str, str] = field(default_factory=dict)
    per_row: list[str] = field(default_factory=list)  # known triggers left firing per row
    idle: list[str] = field(default_factory=list)  # conditions suspended idle triggers need


def plan_triggers(conn: sqlite3.Connection) -> TriggerPlan:
    """Read the known triggers from sqlite_master (inside the transaction) and plan their work."""
    names = [n for t in TABLES for n in INSERT_TRIGGERS[t]] + [COUNTERS_TRIGGER]
    names += [n for t in IDLE_TRIGGERS for n in IDLE_TRIGGERS[t]]
    found = {
        name: (table, sql)
        for name, table, sql in conn.execute(
            "SELECT name, tbl_name, sql FROM main.sqlite_master WHERE type = 'trigger'"
            f" AND name IN ({','.join('?' * len(names))})",
            names,
        )
    }
    plan = TriggerPlan(work={t: [] for t in TABLES})
    for table in TABLES:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {new_rows(table)} (id INTEGER PRIMARY KEY)")
        for name in INSERT_TRIGGERS[table]:
            if name not in found or found[name][0] != table:
                continue
            rewritten = rewrite_insert_trigger(found[name][1], table)
            if rewritten is None or not _prepares(conn, rewritten[0]):
                plan.per_row.append(name)
                continue
            plan.suspended[name] = found[name][1]
            plan.work[table].extend(rewritten[0])
            fts = [t for t in rewritten[1] if _is_fts5(conn, t)]
            plan.fts += [t for t in fts if t not in plan.fts]
            later = BUILT_LATER.get(name)
            digest = hashlib.sha256(_normalise(found[name][1]).encode()).hexdigest()
            for statement in rewritten[0]:
                plan.writes[statement] = fts
                if later is not None and digest == later[1]:
                    plan.deferrable[statement] = later[0]
        if table == "sessions" and COUNTERS_TRIGGER in found:
            # After the sessions' own index entries, before the messages': see TABLES.
            digest = hashlib.sha256(_normalise(found[COUNTERS_TRIGGER][1]).encode()).hexdigest()
            if digest == COUNTERS_SHA256 and found[COUNTERS_TRIGGER][0] == "messages":
                plan.suspended[COUNTERS_TRIGGER] = found[COUNTERS_TRIGGER][1]
                plan.work["messages"].append(_COUNTERS)
            else:
                plan.per_row.append(COUNTERS_TRIGGER)
        for name, (digest, idle) in IDLE_TRIGGERS.get(table, {}).items():
            if name not in found or found[name][0] != table:
                continue
            known = hashlib.sha256(_normalise(found[name][1]).encode()).hexdigest() == digest
            if known and conn.execute(idle).fetchone()[0]:
                plan.suspended[name] = found[name][1]
                plan.idle.append(idle)
            else:
                plan.per_row.append(name)
    return plan


def _prepares(conn: sqlite3.Connection, statements: Sequence[str]) -> bool:
    try:
        for statement in statements:
            conn.execute(f"EXPLAIN {statement}").fetchall()
    except sqlite3.Error:
        return False
    return True


def _is_fts5(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None and re.search(r"\bUSING\s+fts5\b", row[0] or "", re.I) is not None


def _triggers(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' ORDER BY name"
    ).fetchall()


def _set_hashsize(conn: sqlite3.Connection, fts: str, size: int) -> int | None:
    """Set an FTS5 table's hashsize for this transaction; returns the stored one (None: unset)."""
    row = conn.execute(f'SELECT v FROM main."{fts}_config" WHERE k = ?', ("hashsize",)).fetchone()
    try:
        conn.execute(f'INSERT INTO main."{fts}" ("{fts}", rank) VALUES (?, ?)', ("hashsize", size))
    except sqlite3.OperationalError:  # an SQLite without this option: go without
        return -1
    return None if row is None else int(row[0])


def _restore_hashsize(conn: sqlite3.Connection, fts: str, previous: int | None) -> None:
    if previous == -1:
        return
    if previous is None:
        conn.execute(f'DELETE FROM main."{fts}_config" WHERE k = ?', ("hashsize",))
        # The in-memory value follows the table on its next use of the config (a new
        # transaction reloads it); set it back explicitly for the rest of this one.
        conn.execute(
            f'INSERT INTO main."{fts}" ("{fts}", rank) VALUES (?, ?)', ("hashsize", 1 << 20)
        )
        conn.execute(f'DELETE FROM main."{fts}_config" WHERE k = ?', ("hashsize",))
    else:
        conn.execute(
            f'INSERT INTO main."{fts}" ("{fts}", rank) VALUES (?, ?)', ("hashsize", previous)
        )


def messages_index_step(conn: sqlite3.Connection, max_bytes: int) -> tuple[int, bool]:
    """One step of the search index's build of the messages left to it (by a sync catch-up or
    an import's side index given up), in the caller's write transaction: (rows indexed, True
    once no messages are left to it). The step's terms go out as one segment (FTS5's default
    writes one per MiB: more to merge later)."""
    from threadline.store import search as search_ops

    first = conn.execute("SELECT name FROM search_build ORDER BY name LIMIT 1").fetchone()
    if first is None or first[0] != "messages":
        return 0, True
    table = search_ops.MESSAGES.table
    previous = _set_hashsize(conn, table, max(FTS_HASHSIZE, max_bytes * 2))
    try:
        return search_ops.build_step(conn, max_bytes)
    finally:
        _restore_hashsize(conn, table, previous)


class Bulk:
    """Inside one write transaction: suspend the planned triggers, then do their work at once.

    Use: `bulk = Bulk(conn)`; insert rows, telling it which (`added` for a run of ids,
    `added_rowid` for one); before updating or deleting a row, `touches(table, rowid)` says
    whether its pending work must be done first (`flush()`); `finish()` before COMMIT.
    Statements that write a full-text index row by row should come before `finish()`: FTS5
    writes its pending terms at each statement boundary, and the bulk insert is fastest in one
    piece, in rowid order.
    """

    def __init__(self, conn: sqlite3.Connection, plan: TriggerPlan | None = None) -> None:
        self.conn = conn
        self.plan = plan or plan_triggers(conn)
        self.before = _triggers(conn)
        for table in TABLES:
            conn.execute(f"DELETE FROM {new_rows(table)}")
        for name in self.plan.suspended:
            conn.execute(f'DROP TRIGGER main."{name}"')
        self.hashsizes: dict[str, int | None] = {}  # set for the work (when large): to restore
        self.rows = dict.fromkeys(TABLES, 0)
        self.lowest = dict.fromkeys(TABLES, 0)  # the smallest new rowid (0: none)
        self.highest = dict.fromkeys(TABLES, 0)  # at least the largest new rowid
        self.seconds = 0.0  # time spent doing the suspended triggers' work
        self.open = True

    def added(self, table: str, first: int, last: int, session_id: str | None = None) -> None:
        """Rows first..last of `table` were inserted (only `session_id`'s, when given)."""
        sql = f"INSERT INTO {new_rows(table)} (id) SELECT rowid FROM main.{table}"
        if session_id is None:
            cur = self.conn.execute(f"{sql} WHERE rowid BETWEEN ? AND ?", (first, last))
        else:
            cur = self.conn.execute(
                f"{sql} WHERE session_id = ? AND rowid BETWEEN ? AND ?", (session_id, first, last)
            )
        self._note(table, first, cur.rowcount, last)

    def added_rowid(self, table: str, rowid: int) -> None:
        self.conn.execute(f"INSERT INTO {new_rows(table)} (id) VALUES (?)", (rowid,))
        self._note(table, rowid, 1)

    def _note(self, table: str, first: int, count: int, last: int | None = None) -> None:
        if count:
            self.rows[table] += count
            low = self.lowest[table]
            self.lowest[table] = first if not low else min(low, first)
            self.highest[table] = max(self.highest[table], first if last is None else last)

    def _built_later(self, table: str, build: str) -> bool:
        """Whether every new row of `table` is in `build`'s pending range (left to it)."""
        row = self.conn.execute(
            "SELECT 1 FROM main.search_build WHERE name = ? AND done < ? AND upto >= ?",
            (build, self.lowest[table], self.highest[table]),
        ).fetchone()
        return row is not None

    def touches(self, table: str, rowid: int) -> bool:
        """Whether changing this row now would meet insert work still pending for it."""
        if not self.rows[table] or rowid < self.lowest[table]:
            return False
        return (
            self.conn.execute(f"SELECT 1 FROM {new_rows(table)} WHERE id = ?", (rowid,)).fetchone()
            is not None
        )

    def flush(self) -> None:
        """Do the pending work and put the triggers back (a new Bulk suspends them again)."""
        if not self.open:
            return
        conn = self.conn
        started = time.perf_counter()
        for idle in self.plan.idle:
            if not conn.execute(idle).fetchone()[0]:
                raise StoreError(
                    "sync began capturing during an import; nothing of the import was written"
                )
        for table in TABLES:
            if self.rows[table]:
                for statement in self.plan.work[table]:
                    build = self.plan.deferrable.get(statement)
                    if build is not None and self._built_later(table, build):
                        continue  # its condition is false for every new row
                    if FTS_HASHSIZE and self.rows[table] >= HASHSIZE_ROWS:
                        for fts in self.plan.writes.get(statement, []):
                            if fts not in self.hashsizes:
                                self.hashsizes[fts] = _set_hashsize(conn, fts, FTS_HASHSIZE)
                    conn.execute(statement)
            conn.execute(f"DELETE FROM {new_rows(table)}")
        for fts, previous in self.hashsizes.items():
            _restore_hashsize(conn, fts, previous)
        for sql in self.plan.suspended.values():
            conn.execute(sql)
        self.seconds += time.perf_counter() - started
        self.open = False
        if _triggers(conn) != self.before:
            raise StoreError("the schema changed during an import; nothing of it was written")

    def finish(self) -> None:
        self.flush()
