"""Time the store's hot paths on the large synthetic database; print medians and p90s.

    python bench/make_db.py                # once: /work/benchdata/big.db and big.db.json
    python bench/bench_store.py            # reads big.db; writes only to a scratch copy
    python bench/bench_store.py --runs 200 --only search

Reads run against the database itself (opening it is read-only in effect). Writes
(add_message, get_or_create_session) run against a copy made in --scratch, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from threadline.models import Scope
from threadline.store import Store

DEFAULT_DB = "/work/benchdata/big.db"


class Bench:
    def __init__(self, runs: int, only: str | None) -> None:
        self.runs = runs
        self.only = only
        self.results: list[tuple[str, float, float, float | None, int]] = []

    async def time(
        self,
        name: str,
        fn: Callable[[], Awaitable[Any]],
        target_ms: float | None = None,
        runs: int | None = None,
        warmup: int = 2,
    ) -> Any:
        if self.only and self.only not in name:
            return None
        result = None
        for _ in range(warmup):
            result = await fn()
        samples = []
        for _ in range(runs or self.runs):
            t0 = time.perf_counter()
            result = await fn()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        median = statistics.median(samples)
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        size = len(result) if isinstance(result, list) else -1
        self.results.append((name, median, p90, target_ms, size))
        verdict = "" if target_ms is None else ("ok" if median <= target_ms else "MISSED")
        target = "" if target_ms is None else f"<= {target_ms:g}"
        rows = "" if size < 0 else f"{size} rows"
        print(f"{name:<52} {median:9.2f} {p90:9.2f}  {target:>8} {verdict:>6}  {rows}", flush=True)
        return result


async def read_benches(b: Bench, db: Path, notable: dict[str, Any]) -> None:
    largest = notable["largest_dir"]
    small = notable["small_dir"]
    root = notable["workspace_root"]
    long_id = notable["long_sessions"][0]

    async def open_close() -> None:
        store = await Store.open(db)
        await store.close()

    async def open_only() -> None:
        t0 = time.perf_counter()
        store = await Store.open(db)
        open_samples.append((time.perf_counter() - t0) * 1000)
        await store.close()

    open_samples: list[float] = []
    if not b.only or "open" in b.only:
        await b.time("open + migration check + close", open_close, None, runs=min(b.runs, 30))
        for _ in range(min(b.runs, 30)):
            await open_only()
        open_samples.sort()
        med = statistics.median(open_samples)
        p90 = open_samples[int(len(open_samples) * 0.9)]
        b.results.append(("open (migration check)", med, p90, 20, -1))
        print(
            f"{'open (migration check)':<52} {med:9.2f} {p90:9.2f}  {'<= 20':>8} "
            f"{'ok' if med <= 20 else 'MISSED':>6}"
        )

    async with await Store.open(db) as store:
        await b.time(
            "sidebar: largest dir, 50 newest",
            lambda: store.list_sessions(Scope.DIRECTORY, largest, limit=50),
            2,
        )
        page = await store.list_sessions(Scope.DIRECTORY, largest, limit=2000)
        cursor = page[-1].cursor if page else None
        await b.time(
            "sidebar: largest dir, page after 2000",
            lambda: store.list_sessions(Scope.DIRECTORY, largest, limit=50, before=cursor),
            2,
        )
        await b.time(
            "sidebar: all scope, 50 newest",
            lambda: store.list_sessions(Scope.ALL, None, limit=50),
            2,
        )
        all_page = await store.list_sessions(Scope.ALL, None, limit=5000)
        all_cursor = all_page[-1].cursor if all_page else None
        await b.time(
            "sidebar: all scope, page after 5000",
            lambda: store.list_sessions(Scope.ALL, None, limit=50, before=all_cursor),
            2,
        )
        await b.time(
            "sidebar: workspace of largest dir, 50 newest",
            lambda: store.list_sessions(Scope.WORKSPACE, root, limit=50),
            None,
        )
        small_parent = str(Path(small).parent)
        await b.time(
            f"sidebar: workspace {small_parent}, 50 newest",
            lambda: store.list_sessions(Scope.WORKSPACE, small_parent, limit=50),
            2,
        )
        await b.time(
            "sidebar: workspace of small dir, 50 newest",
            lambda: store.list_sessions(Scope.WORKSPACE, small, limit=50),
            2,
        )
        await b.time(
            "sidebar: largest dir, title filter 'fix'",
            lambda: store.list_sessions(Scope.DIRECTORY, largest, limit=50, query="fix"),
            None,
        )
        await b.time(
            "count_sessions: workspace of largest dir",
            lambda: store.count_sessions(Scope.WORKSPACE, root),
        )
        await b.time(
            "sidebar: small dir, 50 newest",
            lambda: store.list_sessions(Scope.DIRECTORY, small, limit=50),
            2,
        )
        await b.time(
            "count_sessions: largest dir",
            lambda: store.count_sessions(Scope.DIRECTORY, largest),
        )
        await b.time("count_sessions: all", lambda: store.count_sessions(Scope.ALL, None))
        await b.time(
            "timeline: last 200 items of a 5,000-message session",
            lambda: store.timeline(long_id, limit=200),
            3,
        )
        items = await store.timeline(long_id, limit=2000)
        older = items[0].position if items else None
        await b.time(
            "timeline: 200 items 2,000 back",
            lambda: store.timeline(long_id, before=older, limit=200),
            3,
        )
        await b.time("get_session", lambda: store.get_session(long_id))
        queries = [
            ("common word", notable["common_word"], 10),
            ("rare word", notable["rare_word"], 10),
            ("phrase", f'"{notable["phrase"]}"', 10),
            ("prefix", notable["prefix"], 100),
            ("two words", f"{notable['common_word']} {notable['most_common_word']}", 10),
            (
                "uncommon phrase of common words",
                f'"{notable["most_common_word"]} {notable["common_word"]}"',
                10,
            ),
        ]
        for label, q, target in queries:
            await b.time(
                f"search newest: {label} ({q}), global",
                lambda q=q: store.search(q, Scope.ALL, None, limit=50),
                target,
            )
            await b.time(
                f"search newest: {label}, largest dir",
                lambda q=q: store.search(q, Scope.DIRECTORY, largest, limit=50),
                target,
            )
            await b.time(
                f"search newest: {label}, small dir",
                lambda q=q: store.search(q, Scope.DIRECTORY, small, limit=50),
                target,
            )
        await b.time(
            f"search ranked: most common ({notable['most_common_word']}), global",
            lambda: store.search(notable["most_common_word"], Scope.ALL, None, rank=True),
            300,
            runs=max(5, b.runs // 5),
        )
        await b.time(
            f"search ranked: common ({notable['common_word']}), global",
            lambda: store.search(notable["common_word"], Scope.ALL, None, rank=True),
            300,
            runs=max(5, b.runs // 5),
        )


async def write_benches(b: Bench, copy: Path, notable: dict[str, Any]) -> None:
    largest = notable["largest_dir"]
    async with await Store.open(copy) as store:
        session = await store.create_session(largest, title="bench")
        n = 0

        async def add() -> Any:
            nonlocal n
            n += 1
            return await store.add_message(
                session.id, "user" if n % 2 else "assistant", f"bench message {n} " * 20
            )

        await b.time("add_message (durable, synchronous=FULL)", add, 2, runs=max(b.runs, 200))
        long_id = notable["long_sessions"][0]
        await b.time(
            "add_message to a 5,000-message session",
            lambda: store.add_message(long_id, "user", "one more question about the code"),
            2,
            runs=max(b.runs, 100),
        )
        await b.time(
            "get_or_create_session (continues)",
            lambda: store.get_or_create_session(largest),
            2,
        )
        await b.time(
            "get_or_create_session (creates: window 0)",
            lambda: store.get_or_create_session(largest, continue_window_hours=0),
            2,
        )


async def main_async(args: argparse.Namespace) -> int:
    db = Path(args.db)
    sidecar = Path(f"{db}.json")
    if not db.exists() or not sidecar.exists():
        print(f"bench_store: {db} (and {sidecar}) missing: run bench/make_db.py first")
        return 1
    notable = json.loads(sidecar.read_text())
    print(
        f"database: {db} ({db.stat().st_size / 1e6:,.0f} MB, {notable['sessions']:,} sessions,"
        f" {notable['messages']:,} messages); runs: {args.runs}"
    )
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{'operation':<52} {'median ms':>9} {'p90 ms':>9}  {'target':>8}")
    b = Bench(args.runs, args.only)
    await read_benches(b, db, notable)
    writes = not args.only or any(k in args.only for k in ("add_message", "get_or_create"))
    if writes and not args.no_writes:
        scratch = Path(args.scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        copy = scratch / f"bench-store-{os.getpid()}.db"
        try:
            t0 = time.perf_counter()
            shutil.copyfile(db, copy)
            print(
                f"(copied the database for the write benchmarks in {time.perf_counter() - t0:.1f}s)"
            )
            await write_benches(b, copy, notable)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
    missed = [r for r in b.results if r[3] is not None and r[1] > r[3]]
    print(
        f"{len(b.results)} timings, {len(missed)} over target"
        + (": " + ", ".join(r[0] for r in missed) if missed else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--only", help="run only the timings whose name contains this text")
    p.add_argument("--scratch", default="/work/benchdata", help="where the write copy goes")
    p.add_argument("--no-writes", action="store_true", help="skip the benchmarks that write")
    return asyncio.run(main_async(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
