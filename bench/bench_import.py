"""Time the history loader and the threadline import, with another writer at work; print medians.

    python bench/bench_import.py                      # 2,000 sessions / 200,000 messages
    python bench/bench_import.py --sessions 200 --messages 20000 --runs 1   # a quick look
    python bench/bench_import.py --large 1000000      # also into a database that holds 1M

What is measured, each in a fresh process (so peak RSS is the import's own), `--runs` times:

- `load_history`: synthetic IncomingSessions (a Claude Code-like mix: prompts, replies with
  code, tool results, raw records in the payload, a few 100 KB payloads) loaded into an empty
  database, and into a large one (a copy of a database built once with the same generator).
  The generator alone is timed too, as the yardstick: the loader's rate cannot exceed it.
- `import threadline`: the same history exported as JSONL, imported by the real command
  (`threadline import threadline FILE`), into an empty database.

Each run starts a second process that writes a row every 20 ms through BEGIN IMMEDIATE with
threadline's busy timeout, and reports the longest it waited for the write lock. Printed:
messages/s overall (the full-text index included: into an empty database it is built by a
child process beside the load and copied in at the end, store/transfer/side_index.py; that
process's CPU is not in load_history's cpu-s), peak RSS,
the longest write-lock hold the loader reported, the other writer's longest wait, and the
load average of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from threadline.records import IncomingMessage, IncomingSession

HERE = Path(__file__).resolve()

# --------------------------------------------------------------------------- the history

SYLLABLES = (
    "ka ri to mo ne sa lu vi pe da zo qui ran tel bor mik sen fal gor pra ven dul nox ter ash"
    " bel cor dri eth fin gal hem iro jun kel lim mun nor osp pal rux sol tam ulm vex wyr yol"
).split()
COMMON = (
    "the of and to a in is it you that for this with on be as are not have can use your if or"
    " function file error value code data list type return test run need should will from by"
    " what how there which one would but all new make like just more also some time first any"
).split()
TOOLS = ("Bash", "Read", "Edit", "Grep", "Write", "Glob")


class History:
    """Claude Code-like sessions from a fixed pool of texts (cheap to produce, realistic sizes)."""

    def __init__(
        self, sessions: int, messages: int, seed: int = 7, large_every: int = 500, prefix: str = ""
    ):
        rng = random.Random(seed)
        self.sessions = sessions
        self.messages = messages
        self.large_every = large_every
        self.prefix = prefix  # told apart from another History's sessions
        words = list(COMMON)
        while len(words) < 20_000:
            words.append("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 4)))))
        cum = list(itertools.accumulate(1.0 / (rank + 1) ** 1.07 for rank in range(len(words))))

        def sentence() -> str:
            text = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(5, 18)))
            return text[0].upper() + text[1:] + "."

        def paragraph(lo: int, hi: int) -> str:
            return " ".join(sentence() for _ in range(rng.randint(lo, hi)))

        def code() -> str:
            lines = [
                f"    {rng.choice(words)} = {rng.choice(words)}({rng.randint(0, 99)})"
                for _ in range(rng.randint(3, 20))
            ]
            return "```python\n" + "\n".join(lines) + "\n```"

        self.prompts = [paragraph(1, 3) for _ in range(400)]
        self.replies = [
            "\n\n".join(paragraph(1, 4) if rng.random() < 0.6 else code() for _ in range(3))
            for _ in range(400)
        ]
        self.outputs = [
            "\n".join(paragraph(1, 2) for _ in range(rng.randint(2, 12))) for _ in range(300)
        ]
        self.large = "x" * 100_000
        self.rng = rng

    def __iter__(self) -> Iterator[IncomingSession]:
        rng = random.Random(11)
        per = max(1, self.messages // self.sessions)
        start = datetime(2025, 1, 1, tzinfo=UTC)
        n = 0
        for s in range(self.sessions):
            created = start + timedelta(minutes=37 * s)
            sid = f"{self.prefix}{s:08x}-bench-{s:04d}"
            messages = []
            for i in range(per):
                n += 1
                turn = i % 4
                if turn == 0:
                    role, content, kind = "user", self.prompts[(s + i) % 400], "prompt"
                elif turn == 2:
                    role, content, kind = "tool", self.outputs[(s * 7 + i) % 300], "tool_result"
                else:
                    role, content, kind = "assistant", self.replies[(s * 3 + i) % 400], "reply"
                record: dict[str, Any] = {
                    "type": role,
                    "uuid": f"{sid}-{i}",
                    "sessionId": sid,
                    "cwd": f"/home/me/src/project{s % 40}",
                    "timestamp": (created + timedelta(seconds=20 * i)).isoformat(),
                    "message": {"role": role, "content": content},
                }
                if n % self.large_every == 0:
                    record["toolUseResult"] = self.large  # a large raw record, now and then
                messages.append(
                    IncomingMessage(
                        key=f"{sid}-{i}",
                        role=role,  # type: ignore[arg-type]
                        content=content,
                        created_at=created + timedelta(seconds=20 * i),
                        payload={"source": "claude-code", "kind": kind, "records": [record]},
                        model="claude-sonnet-4" if role == "assistant" else None,
                        input_tokens=rng.randint(10, 5000) if role == "assistant" else None,
                        output_tokens=rng.randint(10, 2000) if role == "assistant" else None,
                    )
                )
            yield IncomingSession(
                source="claude-code",
                source_id=sid,
                working_dir=f"/home/me/src/project{s % 40}",
                created_at=created,
                title=None,
                model="claude-sonnet-4",
                messages=messages,
            )


# --------------------------------------------------------------------------- one run (a child)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _child_load(db: str, sessions: int, messages: int, prefix: str) -> dict[str, Any]:
    from threadline.store import Store

    history = History(sessions, messages, prefix=prefix)
    store = await Store.open(db)
    try:
        t0, c0 = time.perf_counter(), _cpu()
        report = await store.load_history(iter(history))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    finally:
        await store.close()
    return {
        "messages": report.messages,
        "seconds": wall,
        "cpu": cpu,
        "rate": report.messages / wall,
        "longest_lock": report.longest_lock_seconds,
        "index_share": report.index_seconds / report.locked_seconds,
        "transactions": report.transactions,
        "rss_mb": _rss_mb(),
    }


def _child_generate(sessions: int, messages: int) -> dict[str, Any]:
    history = History(sessions, messages)
    t0, c0 = time.perf_counter(), _cpu()
    count = sum(len(s.messages) for s in history)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "messages": count,
        "seconds": wall,
        "cpu": cpu,
        "rate": count / wall,
        "rss_mb": _rss_mb(),
    }


def _child_bare(db: str, sessions: int, messages: int) -> dict[str, Any]:
    """The yardstick: the same texts into a bare table and a full-text index built like
    threadline's (the FTS5 declarations copied from a threadline database), in bulk, in
    transactions of 20,000 rows: what SQLite itself can do here, with no threadline around it."""
    from threadline.store import Store

    template = Path(db).with_suffix(".template.db")

    async def make() -> None:
        async with await Store.open(template):
            pass

    asyncio.run(make())
    with sqlite3.connect(template) as conn:
        fts = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5 %'"
                " AND name LIKE '%messages%'"
            )
        ]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, content TEXT, payload TEXT)")
    names = []
    for sql in fts:
        sql = re.sub(r"content\s*=\s*'[^']*'\s*,\s*content_rowid\s*=\s*'id'\s*,?", "", sql)
        conn.execute(sql)
        names.append(sql.split()[3])
    history = History(sessions, messages)
    rows = ((m.content, json.dumps(m.payload)) for s in history for m in s.messages)
    t0, c0 = time.perf_counter(), _cpu()
    count = 0
    while True:
        chunk = list(itertools.islice(rows, 20_000))
        if not chunk:
            break
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO m (content, payload) VALUES (?, ?)", chunk)
        for name in names:
            conn.execute(
                f"INSERT INTO {name} (rowid, content, dirs) SELECT id, content, 'e0 a0 a1'"
                " FROM m WHERE id > ?",
                (count,),
            )
        conn.execute("COMMIT")
        count += len(chunk)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    conn.close()
    return {
        "messages": count,
        "seconds": wall,
        "cpu": cpu,
        "rate": count / wall,
        "rss_mb": _rss_mb(),
    }


def child(argv: list[str]) -> None:
    mode, *rest = argv
    if mode == "load":
        db, sessions, messages = rest[0], int(rest[1]), int(rest[2])
        out = asyncio.run(_child_load(db, sessions, messages, rest[3] if len(rest) > 3 else ""))
    elif mode == "generate":
        out = _child_generate(int(rest[0]), int(rest[1]))
    elif mode == "bare":
        out = _child_bare(rest[0], int(rest[1]), int(rest[2]))
    else:  # pragma: no cover
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(out))


# --------------------------------------------------------------------------- the other writer

WRITER = r"""
import os, sqlite3, sys, time
db, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)  # threadline's busy timeout
conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (at REAL)")
longest, count, failed = 0.0, 0, 0
while not os.path.exists(stop):
    t0 = time.perf_counter()
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:  # waited 5 s: the write failed (threadline retries)
        failed += 1
        longest = max(longest, time.perf_counter() - t0)
        continue
    waited = time.perf_counter() - t0
    conn.execute("INSERT INTO bench_writes VALUES (?)", (time.time(),))
    conn.execute("COMMIT")
    longest, count = max(longest, waited), count + 1
    time.sleep(0.02)
print(longest, count, failed)
"""


class OtherWriter:
    """A second process writing every 20 ms; reports its longest wait for the write lock."""

    def __init__(self, db: Path) -> None:
        self.stop = db.with_suffix(".stop")
        self.stop.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(self.stop)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def finish(self) -> tuple[float, int, int]:
        self.stop.touch()
        out, _ = self.proc.communicate(timeout=60)
        longest, count, failed = out.split()
        return float(longest), int(count), int(failed)


# --------------------------------------------------------------------------- the runs


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _init_db(path: Path) -> None:
    """A migrated, empty database (so the other writer has a file to open)."""
    from threadline.store import Store

    async def go() -> None:
        store = await Store.open(path)
        await store.close()

    asyncio.run(go())


def _run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measured(db: Path, run: Any) -> dict[str, Any]:
    other = OtherWriter(db)
    try:
        out = run()
    finally:
        waited, writes, failed = other.finish()
    out["other_wait"] = waited
    out["other_writes"] = writes
    out["other_failed"] = failed
    out["load"] = os.getloadavg()[0]
    return out


def _cli_import(source: Path, db: Path, env: dict[str, str]) -> dict[str, Any]:
    threadline = shutil.which("threadline", path=os.path.dirname(sys.executable)) or "threadline"
    t0 = time.perf_counter()
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [threadline, "import", "threadline", str(source), "--db", str(db), "--json"],
        stdout=out,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed with status {proc.returncode}")
    rss = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime
    out.seek(0)
    data = json.loads(out.read())
    return {
        "messages": data["messages"],
        "seconds": wall,
        "cpu": cpu,
        "rate": data["messages"] / wall,
        "longest_lock": data["timings"]["longest_lock_seconds"],
        "index_share": data["timings"]["index_seconds"] / data["timings"]["locked_seconds"],
        "transactions": data["timings"]["transactions"],
        "read_seconds": data["timings"]["read_seconds"],
        "rss_mb": rss,
    }


def _row(name: str, runs: list[dict[str, Any]], target: float | None = 50_000) -> None:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    rate = med("rate")
    verdict = "" if target is None else ("ok" if rate >= target else "MISSED")
    extra = ""
    if "longest_lock" in runs[0]:
        extra += f"  lock held <= {max(r['longest_lock'] for r in runs):.2f} s"
        extra += f" (index {med('index_share'):.0%} of it)"
    if "other_wait" in runs[0]:
        extra += f"  other writer waited <= {max(r['other_wait'] for r in runs):.2f} s"
        extra += (
            f" ({int(med('other_writes'))} writes, {sum(r['other_failed'] for r in runs)} failed)"
        )
    cpu_rate = statistics.median(r["messages"] / r["cpu"] for r in runs if r.get("cpu"))
    print(
        f"  {name:44} {rate:>9,.0f} msg/s ({cpu_rate:,.0f}/cpu-s)  {med('seconds'):6.1f} s"
        f"  rss {max(r['rss_mb'] for r in runs):5.0f} MB{extra}"
        f"  load {med('load') if 'load' in runs[0] else os.getloadavg()[0]:.1f}  {verdict}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--large", type=int, default=0, help="also load into a database of this many messages"
    )
    p.add_argument("--scratch", default=None, help="where the databases go (default: a temp dir)")
    p.add_argument("--skip-cli", action="store_true", help="skip the threadline JSONL import")
    args = p.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench-import-"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.update(XDG_DATA_HOME=str(home / ".local/share"), XDG_STATE_HOME=str(home / ".state"))
    n, m = args.sessions, args.messages
    print(f"{n:,} sessions, {m:,} messages; {args.runs} runs each; load {os.getloadavg()}")
    db = scratch / "bench.db"
    results: dict[str, list[dict[str, Any]]] = {}
    large = None
    if args.large:
        large = scratch / "large.db"
        if not large.exists():
            print(f"building the large database ({args.large:,} messages) ...", flush=True)
            _fresh(large)
            base = ["load", str(large), str(max(1, args.large // 100)), str(args.large), "base-"]
            _run_child(base, env)
    for _ in range(args.runs):
        results.setdefault("generator alone (the yardstick)", []).append(
            _run_child(["generate", str(n), str(m)], env)
        )
        bare = scratch / "bare.db"
        for path in (bare, bare.with_suffix(".template.db")):
            _fresh(path)
        results.setdefault("bare SQLite + the same FTS5 (the ceiling)", []).append(
            _run_child(["bare", str(bare), str(n), str(m)], env)
        )
        _fresh(db)
        _init_db(db)
        results.setdefault("load_history, empty database", []).append(
            _measured(db, lambda: _run_child(["load", str(db), str(n), str(m)], env))
        )
        if large is not None:
            _fresh(db)
            shutil.copyfile(large, db)
            results.setdefault(f"load_history, into {args.large:,} messages", []).append(
                _measured(db, lambda: _run_child(["load", str(db), str(n), str(m)], env))
            )
    if not args.skip_cli:
        _fresh(db)
        _init_db(db)
        _run_child(["load", str(db), str(n), str(m)], env)
        dump = scratch / "dump.jsonl"
        threadline = shutil.which("threadline", path=os.path.dirname(sys.executable))
        subprocess.run(
            [threadline or "threadline", "export", "--all", "-o", str(dump), "--db", str(db)],
            check=True,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        print(f"export: {dump.stat().st_size / 1e6:,.0f} MB of JSONL")
        for _ in range(args.runs):
            fresh = scratch / "fresh.db"
            _fresh(fresh)
            _init_db(fresh)
            results.setdefault("import threadline FILE (JSONL), empty db", []).append(
                _measured(fresh, lambda fresh=fresh: _cli_import(dump, fresh, env))
            )
    print("medians (the index included, built beside the load; rss is the peak of the process):")
    for name, runs in results.items():
        _row(name, runs, None if name.startswith(("generator", "bare")) else 50_000)
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
