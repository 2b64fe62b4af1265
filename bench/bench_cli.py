"""Time the history commands on the large synthetic database; print medians.

    python bench/make_db.py            # once: /work/benchdata/big.db and big.db.json
    python bench/bench_cli.py          # everything (the full re-import takes minutes)
    python bench/bench_cli.py --only search --runs 30
    python bench/bench_cli.py --import-messages 200000   # re-import a sample only

Sections: search latency through the store (as `threadline search` calls it), whole-process
wall time of `threadline sessions list` / `search` / `sessions show` / `export` (start-up
included), and full JSONL export and re-import throughput. The big database is only read;
exports and the re-import go to a scratch directory that is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from threadline.models import Scope
from threadline.store import Store

DEFAULT_DB = "/work/benchdata/big.db"
THREADLINE = str(Path(sys.executable).with_name("threadline"))


class Report:
    def __init__(self, only: str | None) -> None:
        self.only = only
        self.rows: list[tuple[str, str, str, str]] = []

    def wanted(self, name: str) -> bool:
        return self.only is None or self.only in name

    def add(self, name: str, figure: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((name, figure, target, verdict))
        print(f"  {name:<52} {figure:>18}  {target:<12} {verdict}", flush=True)


def _verdict(value: float, target: float | None, higher_is_better: bool = False) -> str:
    if target is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "ok" if ok else "MISSED"


async def time_async(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _drop_threadline_bytecode() -> None:
    """Remove threadline's own __pycache__ dirs (as with PYTHONDONTWRITEBYTECODE from the start)."""
    import threadline

    for cache in Path(threadline.__file__).parent.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def time_process(
    argv: list[str], runs: int, env: dict[str, str], warmup: int = 1, cold_bytecode: bool = False
) -> float:
    """Median wall time of running `threadline ARGV` to completion, output discarded."""
    samples = []
    for i in range(warmup + runs):
        if cold_bytecode:
            _drop_threadline_bytecode()
        t0 = time.perf_counter()
        done = subprocess.run(
            [THREADLINE, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"threadline {' '.join(argv)} failed: {done.stderr.decode()}")
        if i >= warmup:
            samples.append(elapsed)
    return statistics.median(samples)


async def bench_search(db: Path, facts: dict[str, Any], report: Report, runs: int) -> None:
    print("search latency (store.search, limit 20, as `threadline search` runs it):")
    big_dir = facts["largest_dir"]
    cases: list[tuple[str, str, Scope, str | None, bool, float | None]] = [
        (f"common word {facts['common_word']!r}", facts["common_word"], Scope.ALL, None, False, 10),
        (f"rare word {facts['rare_word']!r}", facts["rare_word"], Scope.ALL, None, False, 10),
        (f"phrase '\"{facts['phrase']}\"'", f'"{facts["phrase"]}"', Scope.ALL, None, False, 10),
        (f"prefix {facts['prefix']!r}", facts["prefix"], Scope.ALL, None, False, 100),
        (
            f"ranked common word {facts['common_word']!r} (--rank)",
            facts["common_word"],
            Scope.ALL,
            None,
            True,
            300,
        ),
        (
            f"ranked most common {facts['most_common_word']!r} (--rank)",
            facts["most_common_word"],
            Scope.ALL,
            None,
            True,
            300,
        ),
        (
            f"common word, one directory ({Path(big_dir).name})",
            facts["common_word"],
            Scope.DIRECTORY,
            big_dir,
            False,
            10,
        ),
        (
            "common word, workspace",
            facts["common_word"],
            Scope.WORKSPACE,
            facts.get("workspace_root", big_dir),
            False,
            10,
        ),
        (
            "rare word, one small directory",
            facts["rare_word"],
            Scope.DIRECTORY,
            facts.get("small_dir", big_dir),
            False,
            10,
        ),
    ]
    store = await Store.open(db, readers=1)
    try:
        for name, query, scope, directory, rank, target in cases:
            if not report.wanted("search " + name):
                continue

            async def run(
                q: str = query, s: Scope = scope, d: str | None = directory, r: bool = rank
            ) -> Any:
                return await store.search(q, s, d, limit=20, rank=r)

            median = await time_async(run, runs)
            report.add(
                "search " + name,
                f"{median * 1000:.1f} ms",
                f"<= {target} ms" if target else "",
                _verdict(median * 1000, target),
            )
    finally:
        await store.close()


def bench_processes(db: Path, facts: dict[str, Any], report: Report, runs: int, env: dict) -> None:
    print("whole processes (start-up included; output to /dev/null):")
    big_dir = facts["largest_dir"]
    long_session = facts["long_sessions"][0]
    cases: list[tuple[str, list[str], float | None]] = [
        (
            "threadline sessions list (largest directory)",
            ["sessions", "list", "--dir", big_dir],
            0.35,
        ),
        ("threadline sessions list --all", ["sessions", "list", "--all"], 0.35),
        ("threadline sessions list --all --json", ["sessions", "list", "--all", "--json"], 0.35),
        ("threadline search <common word>", ["search", facts["common_word"]], 0.35),
        ("threadline search <rare word>", ["search", facts["rare_word"]], 0.35),
        (
            "threadline search --rank <common word>",
            ["search", "--rank", facts["common_word"]],
            0.35,
        ),
        (
            "threadline search <common word> --dir <largest>",
            ["search", facts["common_word"], "--dir", big_dir],
            0.35,
        ),
        ("threadline sessions show <5,000 messages>", ["sessions", "show", long_session], 1.0),
        (
            "threadline sessions show <5,000 messages> --json",
            ["sessions", "show", long_session, "--json"],
            1.0,
        ),
        ("threadline export <5,000 messages> (markdown)", ["export", long_session], None),
        (
            "threadline export <5,000 messages> --format json",
            ["export", long_session, "--format", "json"],
            None,
        ),
    ]
    for name, argv, target in cases:
        if not report.wanted(name):
            continue
        try:
            median = time_process([*argv, "--db", str(db)], runs, env)
        except RuntimeError as exc:
            report.add(name, "FAILED", "", str(exc).strip()[:80])
            continue
        report.add(
            name, f"{median:.3f} s", f"<= {target} s" if target else "", _verdict(median, target)
        )
        if target == 0.35:
            # As this environment runs by default: no .pyc for threadline's own (editable)
            # sources, compiled again at every start. A normal install caches bytecode, so
            # the figure above is the one users see.
            median = time_process(
                [*argv, "--db", str(db)],
                runs,
                {**env, "PYTHONDONTWRITEBYTECODE": "1"},
                cold_bytecode=True,
            )
            report.add("  same, PYTHONDONTWRITEBYTECODE=1", f"{median:.3f} s", "", "")


def _sample(dump: Path, target: Path, messages: int) -> int:
    """The first sessions of `dump` holding about `messages` messages (no memories)."""
    count = 0
    with dump.open("rb") as fh, target.open("wb") as out:
        for line in fh:
            if count >= messages and line.startswith(b'{"type":"session"'):
                break
            if line.startswith(b'{"type":"memory"'):
                break
            count += line.startswith(b'{"type":"message"')
            out.write(line)
    return count


def bench_transfer(
    db: Path,
    facts: dict[str, Any],
    report: Report,
    scratch: Path,
    env: dict,
    sample: int | None,
    runs: int,
) -> None:
    print("full JSONL export, and re-import into a fresh database (medians):")
    dump = scratch / "all.jsonl"
    messages = facts["messages"]
    argv = [THREADLINE, "export", "--all", "--format", "jsonl", "-o", str(dump), "--db", str(db)]
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
    elapsed = statistics.median(walls)
    rate = messages / elapsed
    report.add(
        f"export --all --format jsonl ({messages:,} messages, {dump.stat().st_size / 1e9:.2f} GB)",
        f"{rate:,.0f} msg/s",
        ">= 50,000/s",
        _verdict(rate, 50_000, higher_is_better=True),
    )
    print(f"    (median {elapsed:.1f} s of {runs}: {', '.join(f'{w:.1f}' for w in walls)})")
    source, count = dump, messages
    if sample:
        source = scratch / "sample.jsonl"
        count = _sample(dump, source, sample)
    phases: dict[str, list[float]] = {}
    walls = []
    for _ in range(runs):
        fresh = scratch / "fresh.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{fresh}{suffix}").unlink(missing_ok=True)
        t0 = time.perf_counter()
        done = subprocess.run(
            [THREADLINE, "import", "threadline", str(source), "--db", str(fresh), "--json"],
            check=True,
            env=env,
            stdout=subprocess.PIPE,
        )
        walls.append(time.perf_counter() - t0)
        timings = json.loads(done.stdout)["timings"]
        for key, value in timings.items():
            phases.setdefault(key, []).append(value)
    median = {key: statistics.median(values) for key, values in phases.items()}
    wall = statistics.median(walls)

    def row(name: str, seconds: float, target: bool) -> None:
        rate = count / seconds if seconds else 0.0
        report.add(
            name,
            f"{rate:,.0f} msg/s",
            ">= 50,000/s" if target else "",
            _verdict(rate, 50_000, higher_is_better=True) if target else "",
        )
        print(f"    ({seconds:.1f} s)")

    print(f"  import threadline, {count:,} messages ({runs} run(s); phases from --json):")
    row("  read + validate + stage (no lock held)", median["read_seconds"], False)
    row("  load: bulk insert, counters (write lock)", median["load_seconds"], True)
    row("  index: FTS5, messages + summaries (write lock)", median["index_seconds"], False)
    row("  commit (write lock)", median["commit_seconds"], False)
    row("  whole process, start-up included", wall, True)
    print(f"    other writers waited {median['locked_seconds']:.1f} s (the write lock)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--runs", type=int, default=15, help="timed runs per figure (processes: /3)")
    p.add_argument("--only", default=None, help="only figures whose name contains this text")
    p.add_argument("--scratch", default=None, help="directory for exports (default: a temp dir)")
    p.add_argument(
        "--import-messages",
        type=int,
        default=None,
        help="re-import only the first sessions holding about N messages (default: all)",
    )
    p.add_argument("--no-transfer", action="store_true", help="skip the full export/import")
    p.add_argument(
        "--transfer-runs", type=int, default=1, help="export/import runs (median; default 1)"
    )
    args = p.parse_args()
    db = Path(args.db)
    facts = json.loads(Path(f"{db}.json").read_text())
    report = Report(args.only)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="threadline-bench-cli-"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Bytecode is cached as in a normal install (some shells here set PYTHONDONTWRITEBYTECODE,
    # which would make every run compile threadline's sources again).
    for var in ("THREADLINE_DB", "THREADLINE_CONFIG", "PYTHONDONTWRITEBYTECODE"):
        env.pop(var, None)
    env["XDG_CONFIG_HOME"] = str(scratch / "config")
    env["XDG_DATA_HOME"] = str(scratch / "data")
    print(f"database: {db} ({facts['sessions']:,} sessions, {facts['messages']:,} messages)")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    try:
        asyncio.run(bench_search(db, facts, report, args.runs))
        bench_processes(db, facts, report, max(5, args.runs // 3), env)
        if not args.no_transfer and report.wanted("export --all") or report.wanted("import"):
            if not args.no_transfer:
                bench_transfer(
                    db, facts, report, scratch, env, args.import_messages, args.transfer_runs
                )
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    print(f"load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
