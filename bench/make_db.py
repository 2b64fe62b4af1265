"""Build a large synthetic threadline database through the real schema, for the benchmarks.

The file is created and migrated by `Store.open`, so its schema is exactly the shipped one. The
rows are then bulk-loaded with sqlite3 `executemany` in big transactions; the triggers that fire
per inserted row (session counters, search indexes) are dropped for the load (the counters and
previews are computed here instead, the same way the trigger computes them) and re-created
afterwards from their exact CREATE statements in the migration files.

Three processes share the work: one makes the text, one inserts the rows, and one builds the
message search index from the same rows in a file of its own (an FTS5 table with the shipped
definition; an external-content index never reads its content table while rows go in). Its
shadow tables are then copied into the database as they are: FTS5 keeps everything it needs
there, so the copy is the index the shipped table would have built.

    python bench/make_db.py                       # 100,000 sessions, 2,000,000 messages
    python bench/make_db.py --out /tmp/small.db --sessions 2000 --messages 40000 --dirs 50

A JSON sidecar (`<out>.json`) says where the notable rows are (the largest directory, the long
sessions, a common and a rare word, a phrase, a prefix) so the benchmarks can find them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from threadline.store import Store
from threadline.store import scope as scopes
from threadline.store.migrate import load_migrations, split_statements
from threadline.store.util import fmt_ts, uuid7

DEFAULT_OUT = "/work/benchdata/big.db"
# Triggers that fire once per inserted row; dropped during the load, re-created after it.
BULK_TRIGGERS = (
    "messages_count_ai",
    "search_messages_ai",
    "search_summaries_ai",
    "search_sessions_ai",
)
FTS_SHADOWS = ("data", "idx", "docsize", "config")

COMMON_WORDS = """
the of and to a in is it you that for this with on be as are not have can use your if or
function file error value code data list type return test run need should will from by when
what how there which one would function but all new make like just more also some time first
any then only used each need change call class method name string number object build check
config path directory session message model database query index table request response user
server client import module package version update line output input result problem example
case work because default option setting command script variable loop array map key set get
""".split()
ADJECTIVES = "quick slow large small async local remote empty broken stale private simple".split()
SYLLABLES = (
    "ka ri to mo ne sa lu vi pe da zo qui ran tel bor mik sen fal gor pra ven dul nox ter ash"
    " bel cor dri eth fin gal hem iro jun kel lim mun nor osp pal rux sol tam ulm vex wyr yol zen"
).split()
RARE_SYLLABLES = "qx zv kj vq xr jq wz fq gx pz yx vk hq zj xw".split()
LANGS = ("python", "javascript", "rust", "sh", "sql", "go", "")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama3.1:70b", "qwen2.5-coder:32b")
CATEGORIES = ("preference", "fact", "decision", "context", "correction")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help=f"database to create (default {DEFAULT_OUT})")
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=2_000_000)
    p.add_argument("--dirs", type=int, default=1_000, help="number of working directories")
    p.add_argument(
        "--largest-dir-sessions",
        type=int,
        default=10_000,
        help="sessions in the largest directory (the sidebar target)",
    )
    p.add_argument("--long-sessions", type=int, default=3, help="sessions of --long-size+ messages")
    p.add_argument("--long-size", type=int, default=5_000)
    p.add_argument("--pinned", type=int, default=200)
    p.add_argument("--memories", type=int, default=5_000)
    p.add_argument("--years", type=float, default=3.0, help="how far back the history goes")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--optimize", action="store_true", help="merge the FTS index into one segment")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- text


class TextMaker:
    """Markdown-like message text from a Zipf vocabulary, fast enough for millions of rows."""

    def __init__(self, rng: random.Random, sentences: int = 40_000) -> None:
        self.rng = rng
        words = list(dict.fromkeys(COMMON_WORDS))
        seen = set(words)
        # Mid and tail vocabulary: pronounceable made-up words (so frequencies are controlled).
        while len(words) < 40_000:
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 4))))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(words))]
        self.cum = list(itertools.accumulate(weights))
        # Rare identifiers appended to some messages: each occurs only a handful of times.
        rare: list[str] = []
        rare_seen: set[str] = set()
        while len(rare) < 150_000:
            w = rng.choice(SYLLABLES) + rng.choice(RARE_SYLLABLES) + rng.choice(SYLLABLES)
            w += str(rng.randrange(10, 100))
            if w not in rare_seen:
                rare_seen.add(w)
                rare.append(w)
        self.rare = rare
        self.rare_counts: Counter[str] = Counter()
        self.sentences = [self._sentence() for _ in range(sentences)]
        self.questions = [s[:-1] + "?" for s in self.sentences[: sentences // 4]]
        self.code = [self._code_block() for _ in range(3_000)]
        self.headings = ["## " + self._phrase(2, 5).capitalize() for _ in range(2_000)]

    def _phrase(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum, k=n))

    def _sentence(self) -> str:
        text = self._phrase(5, 18)
        if self.rng.random() < 0.15:
            text += ", " + self._phrase(3, 8)
        if self.rng.random() < 0.1:
            text += " `" + self.rng.choice(self.words) + "()`"
        return text[0].upper() + text[1:] + "."

    def _ident(self) -> str:
        parts = self.rng.choices(self.words[:3000], k=self.rng.randint(1, 3))
        return "_".join(parts)

    def _code_block(self) -> str:
        lang = self.rng.choice(LANGS)
        lines = []
        for _ in range(self.rng.randint(3, 24)):
            indent = "    " * self.rng.randint(0, 2)
            kind = self.rng.random()
            a, b, c = self._ident(), self._ident(), self._ident()
            if kind < 0.25:
                lines.append(f"{indent}def {a}({b}, {c}=None):")
            elif kind < 0.5:
                lines.append(f"{indent}{a} = {b}.{c}({self.rng.randint(0, 999)})")
            elif kind < 0.65:
                lines.append(f"{indent}for {a} in {b}:")
            elif kind < 0.8:
                lines.append(f"{indent}return {a}({b}) if {c} else None")
            else:
                lines.append(f"{indent}# {self._phrase(3, 9)}")
        return f"```{lang}\n" + "\n".join(lines) + "\n```"

    def _paragraph(self, lo: int, hi: int) -> str:
        return " ".join(self.rng.choices(self.sentences, k=self.rng.randint(lo, hi)))

    def _list(self) -> str:
        items = self.rng.choices(self.sentences, k=self.rng.randint(3, 7))
        if self.rng.random() < 0.5:
            return "\n".join(f"- {s}" for s in items)
        return "\n".join(f"{i}. {s}" for i, s in enumerate(items, 1))

    def _rare_tail(self) -> str:
        word = self.rng.choice(self.rare)
        self.rare_counts[word] += 1
        return f" See `{word}` for the details."

    def user(self) -> str:
        text = self._user_body()
        if self.rng.random() < 0.3:
            text += self._rare_tail()
        return text

    def _user_body(self) -> str:
        r = self.rng.random()
        text = self._paragraph(0, 2) + " " + self.rng.choice(self.questions)
        if r < 0.12:
            text += "\n\n" + self.rng.choice(self.code)
        elif r < 0.16:
            text += "\n\n" + self._paragraph(8, 30)  # a pasted log or document
        return text.strip()

    def assistant(self) -> str:
        text = self._assistant_body()
        if self.rng.random() < 0.3:
            text += self._rare_tail()
        return text

    def make_pools(self, size: int) -> None:
        """Whole message texts made once and drawn from for every message (the rare tails
        are still drawn per message): making each message's text afresh was a third of the
        generator's CPU time. `size` of each kind keeps every word's share as it was."""
        self.user_pool = [self._user_body() for _ in range(size)]
        self.assistant_pool = [self._assistant_body() for _ in range(size)]
        self.tool_pool = [self.tool() for _ in range(max(size // 8, 1))]

    def _assistant_body(self) -> str:
        blocks = []
        for _ in range(self.rng.randint(1, 4)):
            r = self.rng.random()
            if r < 0.45:
                blocks.append(self._paragraph(1, 4))
            elif r < 0.7:
                blocks.append(self.rng.choice(self.code))
            elif r < 0.9:
                blocks.append(self._list())
            else:
                blocks.append(self.rng.choice(self.headings))
        return "\n\n".join(blocks)

    def tool(self) -> str:
        if self.rng.random() < 0.5:
            return self.rng.choice(self.code).split("\n", 1)[1].rsplit("\n", 1)[0]
        return json.dumps({"ok": True, "result": self._paragraph(1, 2)})

    def title(self) -> str:
        return self._phrase(2, 6).capitalize()


def preview_of(content: str) -> str | None:
    """What the messages_count_ai trigger stores as a session's preview (SQLite trim = spaces)."""
    if content.strip(" ") == "":
        return None
    flat = content.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return flat.strip(" ")[:200]


# --------------------------------------------------------------------------- plan


@dataclass
class SessionPlan:
    index: int
    working_dir: str
    start_ms: int
    count: int
    gaps_ms: float  # mean gap between messages
    id: str = ""
    title: str | None = None
    model: str = ""
    pinned: int = 0
    deleted_at: str | None = None
    status: str = "completed"
    # Filled while the messages are generated.
    last_ms: int = 0
    preview: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    made: int = 0
    block_first: dict[int, int] = field(default_factory=dict)


def make_dirs(rng: random.Random, n: int) -> tuple[list[str], str, str]:
    """`n` directories, many nested under a few project roots; returns (dirs, largest, root)."""
    subs = (
        "src tests docs web api scripts infra src/core src/cli services/auth services/billing"
        " packages/ui packages/db notebooks tools"
    ).split()
    projects = [f"proj-{w}" for w in rng.sample(SYLLABLES, 20)] + [
        f"{a}{b}" for a, b in zip(rng.sample(SYLLABLES, 30), rng.sample(SYLLABLES, 30), strict=True)
    ]
    root = "/home/dev/code/monorepo"
    largest = root + "/services/api"
    dirs = [largest, root] + [f"{root}/{s}" for s in subs]
    for proj in itertools.cycle(projects):
        if len(dirs) >= n:
            break
        base = f"/home/dev/code/{proj}"
        if base not in dirs:
            dirs.append(base)
            continue
        cand = f"{base}/{rng.choice(subs)}"
        if rng.random() < 0.4:
            cand += f"/{rng.choice(SYLLABLES)}{rng.randint(1, 99)}"
        if cand not in dirs:
            dirs.append(cand)
        elif rng.random() < 0.2:
            other = f"/home/dev/{rng.choice(('notes', 'scratch', 'tmp'))}/{rng.randint(1, 9999)}"
            if other not in dirs:
                dirs.append(other)
    return dirs[:n], largest, root


def plan_sessions(args: argparse.Namespace, rng: random.Random, now_ms: int) -> dict:
    dirs, largest, root = make_dirs(rng, args.dirs)
    n_sessions = args.sessions
    largest_n = min(args.largest_dir_sessions, n_sessions)
    span_ms = int(args.years * 365 * 86400 * 1000)
    # Directory of each session: the largest gets its share, the rest a Zipf-like spread.
    others = dirs[1:] or dirs
    weights = [1.0 / (r + 1) ** 0.8 for r in range(len(others))]
    dir_of = [largest] * largest_n + rng.choices(others, weights=weights, k=n_sessions - largest_n)
    rng.shuffle(dir_of)
    # Message counts: a few long sessions, the rest lognormal, scaled to the requested total.
    n_long = min(args.long_sessions, n_sessions)
    long_sizes = [args.long_size + rng.randint(0, args.long_size // 5) for _ in range(n_long)]
    rest_total = max(args.messages - sum(long_sizes), n_sessions - n_long)
    raw = [rng.lognormvariate(0, 1.0) for _ in range(n_sessions - n_long)]
    scale = rest_total / sum(raw)
    counts = [max(1, int(x * scale)) for x in raw]
    diff = rest_total - sum(counts)
    i = 0
    while diff != 0:
        j = i % len(counts)
        if diff > 0:
            counts[j] += 1
            diff -= 1
        elif counts[j] > 1:
            counts[j] -= 1
            diff += 1
        i += 1
    counts = long_sizes + counts
    plans = []
    for i, count in enumerate(counts):
        if i < n_long:
            gap = 90 * 86400 * 1000 / count  # spread over about three months
            working_dir = largest
        else:
            gap = rng.uniform(20_000, 300_000)
            working_dir = dir_of[i]
        duration = int(gap * count)
        # More activity recently: bias the start towards now.
        age = int((span_ms - duration) * rng.random() ** 1.6) if span_ms > duration else 0
        start = now_ms - duration - age - 60_000
        plans.append(SessionPlan(i, working_dir, start, count, gap))
    maker_rng = random.Random(args.seed + 1)
    for plan in plans:
        plan.model = maker_rng.choice(MODELS)
    pinned = rng.sample(range(n_sessions), min(args.pinned, n_sessions))
    in_largest = [p.index for p in plans if p.working_dir == largest]
    pinned += rng.sample(in_largest, min(5, len(in_largest)))
    for i in pinned:
        plans[i].pinned = 1
    return {"plans": plans, "dirs": dirs, "largest": largest, "root": root, "long": n_long}


# --------------------------------------------------------------------------- load


def create_statement(name: str) -> str:
    """The exact CREATE statement of a table in the migrations."""
    for migration in load_migrations():
        for statement in split_statements(migration.sql):
            if re.search(rf"CREATE\s+(VIRTUAL\s+)?TABLE\s+{name}\b", statement, re.IGNORECASE):
                return statement
    raise SystemExit(f"make_db: no table {name} in the migrations")


def trigger_statements() -> dict[str, str]:
    """The exact CREATE TRIGGER statements of the migrations, by trigger name."""
    found = {}
    for migration in load_migrations():
        for statement in split_statements(migration.sql):
            m = re.search(r"CREATE\s+TRIGGER\s+(\w+)", statement, re.IGNORECASE)
            if m:
                found[m[1]] = statement
    return found


def ms_to_ts(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def message_order(plans: list[SessionPlan], rng: random.Random, now_ms: int) -> list[int]:
    """Every message as an int key (time, session, seq), sorted: ids follow time across sessions.

    Also gives each session its UUIDv7 id from its (possibly moved) start time.
    """
    seq_bits = max(p.count for p in plans).bit_length()
    sess_bits = len(plans).bit_length()
    latest = now_ms - 60_000
    keys = []
    for p in plans:
        times = []
        t = float(p.start_ms)
        for _ in range(p.count):
            times.append(int(t))
            t += rng.expovariate(1.0 / p.gaps_ms) + 1000
        # Nothing happens in the future: a session that would run past now starts earlier.
        shift = max(0, times[-1] - latest) if times else 0
        p.start_ms -= shift
        for seq, when in enumerate(times):
            keys.append(((when - shift) << sess_bits | p.index) << seq_bits | seq)
    keys.sort()
    # ids are UUIDv7 of the start time, made in time order (uuid7 is monotonic).
    for plan in sorted(plans, key=lambda p: p.start_ms):
        plan.id = uuid7(datetime.fromtimestamp(plan.start_ms / 1000, UTC))
    return keys


SUMMARY_EVERY = 40


def message_rows(
    plans: list[SessionPlan], keys: list[int], text: TextMaker, rng: random.Random, summaries: list
) -> Iterator[tuple]:
    """The message rows in id order; fills in each plan's counters, preview and summary ranges.

    Texts come from the TextMaker's pools (make_pools), each with its own chance of a rare
    tail; the few random numbers a message needs are plain random() draws."""
    seq_bits = max(p.count for p in plans).bit_length()
    sess_bits = len(plans).bit_length()
    seq_mask = (1 << seq_bits) - 1
    sess_mask = (1 << sess_bits) - 1
    tool_ids = itertools.count(1)
    draw = rng.random
    users, assistants, tools = text.user_pool, text.assistant_pool, text.tool_pool
    n_users, n_assistants, n_tools = len(users), len(assistants), len(tools)
    rare, n_rare, rare_counts = text.rare, len(text.rare), text.rare_counts
    stamp = Stamps()
    for mid, key in enumerate(keys, start=1):
        seq = key & seq_mask
        p = plans[(key >> seq_bits) & sess_mask]
        ms = key >> (seq_bits + sess_bits)
        phase = seq % 6
        payload = None
        input_tokens = output_tokens = response_ms = None
        model = stop = None
        if phase in (0, 2):
            role, content = "user", users[int(draw() * n_users)]
        elif phase == 4 and draw() < 0.5:
            role, content = "tool", tools[int(draw() * n_tools)]
            payload = f'{{"tool_call_id": "call_{next(tool_ids)}"}}'
        else:
            role, content = "assistant", assistants[int(draw() * n_assistants)]
        if role != "tool" and draw() < 0.3:
            word = rare[int(draw() * n_rare)]
            rare_counts[word] += 1
            content += f" See `{word}` for the details."
        if role == "user":
            if p.preview is None:
                p.preview = preview_of(content)
        elif role == "assistant":
            input_tokens = 200 + int(draw() * 11_801)
            output_tokens = len(content) // 4
            response_ms = 400 + int(draw() * 39_601)
            model, stop = p.model, "stop"
            if draw() < 0.03:
                call = {
                    "id": f"call_{next(tool_ids)}",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "README.md"}'},
                }
                payload = json.dumps(
                    {"role": "assistant", "content": content[:40], "tool_calls": [call]}
                )
            p.input_tokens += input_tokens
            p.output_tokens += output_tokens
        p.last_ms = ms
        p.made += 1
        if p.count >= 2 * SUMMARY_EVERY:
            block = seq // SUMMARY_EVERY
            if seq % SUMMARY_EVERY == 0:
                p.block_first[block] = mid
            elif seq % SUMMARY_EVERY == SUMMARY_EVERY - 1 and p.made < p.count - 10:
                summaries.append((p, p.block_first.pop(block), mid, ms))
        yield (
            mid,
            p.id,
            role,
            content,
            payload,
            stamp(ms),
            input_tokens,
            output_tokens,
            model,
            stop,
            response_ms,
        )


class Stamps:
    """ms_to_ts, with each day's date made once (strftime per message was 3 us of 15)."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        seconds, milli = divmod(ms, 1000)
        day, rest = divmod(seconds, 86400)
        date = self.days.get(day)
        if date is None:
            date = self.days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{date}{hours:02d}:{minutes:02d}:{secs:02d}.{milli:03d}Z"


def build_index(side: str, plans: list[SessionPlan], batches) -> None:
    """Child process: the message search index, in a file of its own, from the rows as made
    (each batch: ids, texts and session indexes)."""
    tokens = [scopes.dir_tokens(p.working_dir) for p in plans]
    conn = sqlite3.connect(side, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -500000")
    conn.execute(create_statement("search_messages"))
    # Terms pile up in memory and go out in few large segments (less merging).
    conn.execute(
        "INSERT INTO search_messages (search_messages, rank) VALUES ('hashsize', ?)", (256 << 20,)
    )
    conn.execute("BEGIN")
    insert = "INSERT INTO search_messages (rowid, content, dirs) VALUES (?, ?, ?)"
    while (batch := batches.get()) is not None:
        ids, texts, owners = batch
        conn.executemany(insert, zip(ids, texts, [tokens[i] for i in owners], strict=True))
    conn.execute("COMMIT")
    conn.execute("DELETE FROM search_messages_config WHERE k = 'hashsize'")
    conn.close()


def adopt_index(conn: sqlite3.Connection, side: str) -> None:
    """Copy the side file's index into the database's (empty) search_messages."""
    conn.execute("ATTACH DATABASE ? AS side", (side,))
    conn.execute("BEGIN")
    for shadow in FTS_SHADOWS:
        conn.execute(f"DELETE FROM main.search_messages_{shadow}")
        conn.execute(
            f"INSERT INTO main.search_messages_{shadow} SELECT * FROM side.search_messages_{shadow}"
        )
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE side")


def load(args: argparse.Namespace, path: Path, log) -> dict:
    rng = random.Random(args.seed)
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    text = TextMaker(random.Random(args.seed + 2))
    plan = plan_sessions(args, rng, now_ms)
    plans: list[SessionPlan] = plan["plans"]
    keys = message_order(plans, rng, now_ms)
    took = time.perf_counter() - t0
    log(f"planned {len(plans):,} sessions, {len(keys):,} messages in {took:.1f}s")

    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")  # a throwaway file until renamed into place
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")  # sessions go in after their messages
    conn.execute("PRAGMA cache_size = -1000000")
    triggers = trigger_statements()
    for name in BULK_TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")

    insert = (
        "INSERT INTO messages (id, session_id, role, content, payload, created_at, input_tokens,"
        " output_tokens, model, stop_reason, response_ms, complete)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
    )
    t_load = time.perf_counter()
    # The rows are made and inserted here while a forked child process indexes their text
    # (the two halves cost about the same; only the text crosses between them).
    ctx = multiprocessing.get_context("fork")
    fts_batches = ctx.Queue(maxsize=8)
    side = f"{path}.index"
    for suffix in ("", "-journal"):
        Path(side + suffix).unlink(missing_ok=True)
    indexer = ctx.Process(target=build_index, args=(side, plans, fts_batches), daemon=True)
    indexer.start()
    t_pools = time.perf_counter()
    text.make_pools(max(min(len(keys) // 20, 100_000), 100))
    log(f"text pools made in {time.perf_counter() - t_pools:.1f}s")
    summaries: list = []
    owner = {p.id: p.index for p in plans}
    gen = message_rows(plans, keys, text, rng, summaries)
    done = 0
    conn.execute("BEGIN")
    while batch := list(itertools.islice(gen, 10_000)):
        ids, texts, owners = zip(*((r[0], r[3], owner[r[1]]) for r in batch), strict=True)
        fts_batches.put((ids, texts, owners))
        conn.executemany(insert, batch)
        done += len(batch)
        if done % 500_000 == 0:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            log(f"  messages: {done:,} ({done / (time.perf_counter() - t_load):,.0f}/s)")
    conn.execute("COMMIT")
    fts_batches.put(None)
    load_seconds = time.perf_counter() - t_load

    # Sessions, with the counters and preview the triggers would have kept.
    now_ts = ms_to_ts(now_ms)
    session_rows = []
    for p in plans:
        updated = ms_to_ts(p.last_ms) if p.count else ms_to_ts(p.start_ms)
        if rng.random() < 0.3:
            p.title = text.title()
        if p.last_ms > now_ms - 3600_000 and rng.random() < 0.5:
            p.status = "active"
        elif rng.random() < 0.003:
            p.status = "crashed"
        if not p.pinned and rng.random() < 0.005:
            p.deleted_at = ms_to_ts(now_ms - rng.randint(0, 20) * 86400_000)
        session_rows.append(
            (
                p.id,
                p.working_dir,
                scopes.dir_tokens(p.working_dir),
                p.title,
                p.preview,
                "openai-compatible",
                p.model,
                "You are a helpful assistant." if rng.random() < 0.2 else None,
                p.status,
                p.pinned,
                p.deleted_at,
                ms_to_ts(p.start_ms),
                updated,
                updated if p.status == "completed" else None,
                p.made,
                p.input_tokens,
                p.output_tokens,
            )
        )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sessions (id, working_dir, dir_tokens, title, preview, provider, model,"
        " system_prompt, status, pinned, deleted_at, created_at, updated_at, ended_at,"
        " message_count, total_input_tokens, total_output_tokens, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
        session_rows,
    )
    conn.executemany(
        "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
        " token_count, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                p.id,
                text._paragraph(3, 8),
                first,
                last,
                rng.randint(200, 600),
                p.model,
                ms_to_ts(ms + 1000),
            )
            for p, first, last, ms in summaries
        ),
    )
    by_dir: dict[str, list[SessionPlan]] = {}
    for p in plans:
        by_dir.setdefault(p.working_dir, []).append(p)
    dir_list = list(by_dir)
    memory_rows = []
    for _ in range(args.memories):
        d = rng.choice(dir_list)
        source = rng.choice(by_dir[d]) if rng.random() < 0.8 else None
        memory_rows.append(
            (
                d,
                source.id if source else None,
                rng.choice(text.sentences),
                rng.choice(CATEGORIES),
                rng.randint(1, 5),
                int(source is None),
                ms_to_ts(now_ms - rng.randint(0, int(args.years * 365)) * 86400_000),
            )
        )
    conn.executemany(
        "INSERT INTO memories (working_dir, session_id, fact, category, importance, is_manual,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        memory_rows,
    )
    for p in rng.sample(plans, min(10, len(plans))):
        conn.execute(
            "INSERT INTO pending_memory_extractions (session_id, next_attempt_at, created_at)"
            " VALUES (?, ?, ?)",
            (p.id, now_ts, now_ts),
        )
    conn.execute("COMMIT")
    log(
        f"sessions, {len(summaries):,} summaries and {len(memory_rows):,} memories written"
        f" ({time.perf_counter() - t0:.1f}s since the start)"
    )

    # The title/preview index, as the migration fills it.
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO search_session_keys (session_id) SELECT id FROM sessions ORDER BY rowid"
    )
    conn.execute(
        "INSERT INTO search_sessions (rowid, title, preview) SELECT k.rid, s.title, s.preview"
        " FROM search_session_keys AS k JOIN sessions AS s ON s.id = k.session_id"
    )
    conn.execute("INSERT INTO search_summaries (search_summaries) VALUES ('rebuild')")
    for name in BULK_TRIGGERS:
        conn.execute(triggers[name])
    conn.execute("COMMIT")
    t_fts = time.perf_counter()
    indexer.join()
    if indexer.exitcode != 0:
        raise SystemExit(f"make_db: the index builder failed ({indexer.exitcode})")
    waited = time.perf_counter() - t_fts
    adopt_index(conn, side)
    Path(side).unlink()
    if args.optimize:
        conn.execute("INSERT INTO search_messages (search_messages) VALUES ('optimize')")
    fts_seconds = time.perf_counter() - t_fts
    log(
        f"search index: waited {waited:.1f}s for its builder, {fts_seconds:.1f}s in all"
        f" ({time.perf_counter() - t0:.1f}s since the start)"
    )
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise SystemExit(f"make_db: foreign key problems: {problems[:5]}")
    conn.execute("PRAGMA journal_mode = WAL")
    notable = notable_rows(conn, plan, plans, text)
    conn.close()
    notable["timings"] = {
        "messages_loaded": len(keys),
        "load_seconds": round(load_seconds, 2),
        "messages_per_second": round(len(keys) / load_seconds),
        "fts_seconds": round(fts_seconds, 2),
    }
    return notable


def hits(conn: sqlite3.Connection, word: str) -> int:
    q = 'content : "' + word.replace('"', '""') + '"'
    sql = "SELECT count(*) FROM search_messages WHERE search_messages MATCH ?"
    return int(conn.execute(sql, (q,)).fetchone()[0])


def notable_rows(conn, plan: dict, plans: list[SessionPlan], text: TextMaker) -> dict:
    total = len(plans) and sum(p.count for p in plans)
    # A common word near 25% of messages (about 500,000 of 2,000,000), and the most common one.
    candidates = [w for w in text.words[:200] if len(w) >= 4][:25]
    counts = {w: hits(conn, w) for w in candidates}
    most = max(counts, key=counts.__getitem__)
    common = min(counts, key=lambda w: abs(counts[w] - total / 4))
    rare = next((w for w, c in sorted(text.rare_counts.items()) if 3 <= c <= 8), None)
    if rare is None and text.rare_counts:
        rare = min(text.rare_counts, key=text.rare_counts.__getitem__)
    phrase_words = text.sentences[0].rstrip(".").split()[:2]
    phrase = " ".join(phrase_words).lower()
    prefix = next(w for w in text.words[40:] if len(w) >= 5)[:3]
    long_ids = [p.id for p in plans[: plan["long"]]]
    largest_count = sum(1 for p in plans if p.working_dir == plan["largest"])
    return {
        "sessions": len(plans),
        "messages": total,
        "directories": len(plan["dirs"]),
        "largest_dir": plan["largest"],
        "largest_dir_sessions": largest_count,
        "workspace_root": plan["root"],
        "long_sessions": long_ids,
        "common_word": common,
        "common_word_hits": counts[common],
        "most_common_word": most,
        "most_common_word_hits": counts[most],
        "rare_word": rare,
        "rare_word_hits": hits(conn, rare) if rare else 0,
        "phrase": phrase,
        "prefix": prefix + "*",
        "small_dir": plan["dirs"][-1],
    }


def holders(path: Path) -> list[int]:
    """Processes that have `path` (or its -wal/-shm) open (Linux /proc; [] elsewhere)."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in names for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_until_unused(path: Path, log, limit: float = 1800) -> None:
    """Replacing a database (and removing its WAL) under a reader would pull it from under it."""
    deadline = time.monotonic() + limit
    while (pids := holders(path)) and time.monotonic() < deadline:
        log(f"waiting for {pids} to close {path} before replacing it")
        time.sleep(10)
    if holders(path):
        raise SystemExit(f"make_db: {path} is still in use; the new one is at {path}.building")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).expanduser().resolve()

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, flush=True)

    if out.exists() and not args.force:
        print(f"make_db: {out} exists (use --force to replace it)", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()

    async def create() -> None:
        store = await Store.open(tmp)  # the real migrations make the schema
        await store.close()

    asyncio.run(create())
    notable = load(args, tmp, log)
    wait_until_unused(out, log)
    for suffix in ("-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, out)
    os.chmod(out, 0o600)
    notable["timings"]["total_seconds"] = round(time.perf_counter() - started, 1)
    notable["built_at"] = fmt_ts(datetime.now(UTC))
    sidecar = Path(f"{out}.json")
    sidecar.write_text(json.dumps(notable, indent=2) + "\n")
    t = notable["timings"]
    print(
        f"{out}: {notable['sessions']:,} sessions, {notable['messages']:,} messages,"
        f" {out.stat().st_size / 1e6:,.0f} MB in {t['total_seconds']}s;"
        f" bulk load {t['messages_per_second']:,} messages/s,"
        f" search index {t['fts_seconds']}s after the load"
    )
    print(f"notable rows: {sidecar}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
