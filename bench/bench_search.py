"""Time search in the store as the app uses it, on a large database: medians, p99s and load.

    python bench/make_db.py --out /tmp/big.db              # once
    nice python bench/bench_search.py --db /tmp/big.db --runs 50

Through the public store API only, so the same script measures any version of the code
(`PYTHONPATH=/path/to/other/src python bench/bench_search.py ...` times that one; opening a
database at an older schema version migrates it, so give it one at that version's schema).
The queries run round-robin (each run goes through every query once), so a burst of load on
the machine spreads over all of them instead of landing on one. Limits are the app's: 100
for search, 100 rows for the sidebar.

Prefixes are typed the way the search screen sends them (`conf` -> `conf*`), at every length
of a common word, of the most common one, of a rare identifier and a few two-letter ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from threadline.models import Scope
from threadline.store import Store

LIMIT = 100  # the search screen's
SIDEBAR = 100  # rows the sidebar loads


def cases(info: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(group, label, call(store)) for every query measured."""
    common, most, rare = info["common_word"], info["most_common_word"], info["rare_word"]
    largest, root = info["largest_dir"], info["workspace_root"]
    phrase = info["phrase"]
    out: list[tuple[str, str, Any]] = []

    def search(q: str, scope: Scope, d: str | None, rank: bool = False) -> Any:
        return lambda s: s.search(q, scope, d, limit=LIMIT, rank=rank)

    for word in (common, most):
        for n in range(1, len(word) + 1):
            q = word[:n] + "*"
            out.append(("prefix", f"{q} all", search(q, Scope.ALL, None)))
            out.append(("prefix", f"{q} dir", search(q, Scope.DIRECTORY, largest)))
    for n in (3, 5, len(rare)):
        q = rare[:n] + "*"
        out.append(("prefix", f"{q} all", search(q, Scope.ALL, None)))
    for q in ("th*", "co*", "re*", "zq*", "ü*"):
        out.append(("prefix", f"{q} all", search(q, Scope.ALL, None)))
    out.append(("prefix", f"{common} th* all", search(f"{common} th*", Scope.ALL, None)))
    for q in (common, most, rare, f'"{phrase}"', f"{common} {most}", f"{common} {rare}"):
        for scope, d, name in (
            (Scope.ALL, None, "all"),
            (Scope.DIRECTORY, largest, "dir"),
            (Scope.WORKSPACE, root, "workspace"),
        ):
            out.append(("newest", f"{q} {name}", search(q, scope, d)))
    for q in (most, common, f'"{phrase}"'):
        out.append(("ranked", f"{q} all", search(q, Scope.ALL, None, rank=True)))
        out.append(("ranked", f"{q} dir", search(q, Scope.DIRECTORY, largest, rank=True)))
    for scope, d, name in (
        (Scope.ALL, None, "all"),
        (Scope.WORKSPACE, root, "workspace"),
        (Scope.DIRECTORY, largest, "dir"),
    ):
        out.append(("count", name, lambda s, scope=scope, d=d: s.count_sessions(scope, d)))
    for q in ("fix", common[:3], common, most, f"{common} {most}"[:12], "zzqq"):
        out.append(
            (
                "filter",
                f"{q!r} dir list",
                lambda s, q=q: s.list_sessions(Scope.DIRECTORY, largest, limit=SIDEBAR, query=q),
            )
        )
        out.append(
            (
                "filter",
                f"{q!r} all list+count",
                lambda s, q=q: _list_and_count(s, q),
            )
        )
    return out


async def _list_and_count(store: Store, q: str) -> Any:
    rows = await store.list_sessions(Scope.ALL, None, limit=SIDEBAR, query=q)
    await store.count_sessions(Scope.ALL, None, q)
    return rows


async def run(db: Path, runs: int, only: str | None, warm: bool) -> None:
    cold = None
    if not warm:
        try:
            from threadline.store.search import _cache as cold  # type: ignore[attr-defined]
        except ImportError:  # a version without the cache
            cold = None
    info = json.loads(Path(f"{db}.json").read_text())
    todo = [c for c in cases(info) if not only or only in f"{c[0]} {c[1]}"]
    samples: dict[str, list[float]] = {f"{g} {label}": [] for g, label, _ in todo}
    cpu: dict[str, list[float]] = {f"{g} {label}": [] for g, label, _ in todo}
    sizes: dict[str, int] = {}
    loads = [os.getloadavg()[0]]
    t_open = time.perf_counter()
    store = await Store.open(db)
    print(f"opened in {(time.perf_counter() - t_open) * 1000:.0f} ms; runs={runs}", flush=True)
    try:
        for _group, _label, call in todo:  # warm the cache once
            await call(store)
        for _ in range(runs):
            for group, label, call in todo:
                if cold is not None:
                    cold.clear()  # no expansion remembered from the run before
                t0, c0 = time.perf_counter(), time.process_time()
                result = await call(store)
                samples[f"{group} {label}"].append((time.perf_counter() - t0) * 1000)
                cpu[f"{group} {label}"].append((time.process_time() - c0) * 1000)
                if isinstance(result, list):
                    sizes[f"{group} {label}"] = len(result)
            loads.append(os.getloadavg()[0])
    finally:
        await store.close()
    print(f"{'query':<44} {'median':>7} {'p99':>7} {'cpu med':>7} {'cpu p99':>7} rows  (ms)")
    groups: dict[str, list[float]] = {}
    cpu_groups: dict[str, list[float]] = {}
    for key, values in samples.items():
        values.sort()
        spent = sorted(cpu[key])
        med, cmed = statistics.median(values), statistics.median(spent)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        cp99 = spent[min(len(spent) - 1, int(len(spent) * 0.99))]
        groups.setdefault(key.split()[0], []).append(med)
        cpu_groups.setdefault(key.split()[0], []).append(cmed)
        print(f"{key:<44} {med:7.2f} {p99:7.2f} {cmed:7.2f} {cp99:7.2f} {sizes.get(key, '')}")
    print(
        "worst median per group (wall): "
        + ", ".join(f"{g} {max(v):.1f}" for g, v in groups.items())
    )
    print(
        "worst median per group (cpu):  "
        + ", ".join(f"{g} {max(v):.1f}" for g, v in cpu_groups.items())
    )
    print(
        f"load (1-min avg) during the run: median {statistics.median(loads):.1f},"
        f" min {min(loads):.1f}, max {max(loads):.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--only", help="only the queries whose 'group label' contains this")
    p.add_argument(
        "--warm",
        action="store_true",
        help="keep the prefix expansions the store caches between runs (default: every "
        "query pays for its expansion, as the first time)",
    )
    args = p.parse_args()
    asyncio.run(run(Path(args.db), args.runs, args.only, args.warm))


if __name__ == "__main__":
    main()
