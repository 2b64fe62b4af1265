"""How the costs the user meets grow with the history: a table over databases of different sizes
(by default an empty one, 200,000 messages and 2,000,000), each figure taken the same way.

    python bench/make_db.py --out /tmp/200k.db --sessions 10000 --messages 200000 --dirs 200
    python bench/make_db.py --out /tmp/2m.db          # the default size (takes a while)
    python bench/bench_scaling.py --db empty --db /tmp/200k.db --db /tmp/2m.db

`empty` is a fresh database made here. For each database:

- start-up: `threadline` (the real entry point) to the painted sidebar, in a real terminal
  (tmux), next to a bare Textual app in the same run (bench/bench_ui.py --terminal);
- open: enter on a 5,000-message session to the paint of its last screen; scroll: each
  page-up to its paint (median and worst) while paging back through it; RSS after opening and
  at the end (bench/bench_ui.py, headless);
- search and list: `threadline search WORD` (the sidecar's common word) and `threadline
  sessions list` in the largest directory, as whole processes (start-up included), median
  wall time of --cli-runs runs, each next to `python -c pass` run just before it.

Every database is used in place (the app may write to it: use scratch copies). Each row is
printed as soon as it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def make_empty(directory: Path) -> tuple[str, dict[str, Any]]:
    from threadline.store import Store

    db = directory / "empty.db"

    async def make() -> None:
        store = await Store.open(db)
        await store.close()

    asyncio.run(make())
    info = {"sessions": 0, "messages": 0, "largest_dir": str(directory), "long_sessions": []}
    Path(f"{db}.json").write_text(json.dumps(info))
    return str(db), info


def process_seconds(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds of `argv` as a process, and of `python -c pass` next to it."""
    own, floor = [], []
    for _ in range(runs + 1):
        t = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.monotonic() - t)
        t = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
        own.append(time.monotonic() - t)
    return statistics.median(own[1:]), statistics.median(floor[1:])


def bench_ui(db: str, extra: list[str], scratch: Path) -> dict[str, Any]:
    out = scratch / f"ui{time.monotonic_ns()}.json"
    subprocess.run(
        [sys.executable, str(HERE / "bench_ui.py"), "--db", db, "--no-copy", "--json", str(out)]
        + extra,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text()) if out.exists() else {"medians": {}, "details": {}}


def ms(value: float | None) -> str:
    return "      -" if value is None or value != value else f"{value * 1000:6.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", required=True, help="a database, or 'empty'")
    parser.add_argument("--runs", type=int, default=3, help="bench_ui runs per database")
    parser.add_argument("--cli-runs", type=int, default=7)
    parser.add_argument("--scroll-back", type=int, default=2000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench_scaling_"))
    home = scratch / "home"
    home.mkdir()
    config = home / "config.toml"
    config.write_text("[session]\nauto_cleanup = false\n")
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        THREADLINE_CONFIG=str(config),
    )
    threadline = [sys.executable, "-m", "threadline"]
    print(f"load (1 min) at the start: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'database':<22}{'start':>9}{'bare':>9}{'ratio':>7}{'open':>9}{'pgup med':>10}"
        f"{'pgup max':>10}{'RSS open':>10}{'RSS end':>9}{'search':>9}{'list':>9}{'py':>8}"
    )
    print(header, flush=True)
    for given in args.db:
        if given == "empty":
            db, info = make_empty(scratch)
            label = "empty"
        else:
            db = given
            info = json.loads(Path(f"{db}.json").read_text())
            label = f"{Path(db).name} ({info.get('messages', 0):,})"
        start = bench_ui(db, ["--terminal", "--skip-open", "--runs", str(args.runs)], scratch)
        sm = start["medians"]
        opened: dict[str, Any] = {}
        if info.get("long_sessions"):
            opened = bench_ui(
                db, ["--runs", str(args.runs), "--scroll-back", str(args.scroll_back)], scratch
            )["medians"]
        word = info.get("common_word", "hello")
        directory = info.get("largest_dir", str(scratch))
        search, floor = process_seconds([*threadline, "--db", db, "search", word], args.cli_runs)
        listing, _ = process_seconds(
            [*threadline, "--db", db, "sessions", "list", "--dir", directory], args.cli_runs
        )
        ratio = sm.get("start", float("nan")) / sm.get("bare start", float("nan"))
        rss_open, rss_end = opened.get("rss after open"), opened.get("rss end")
        print(
            f"{label:<22}{ms(sm.get('start'))}{ms(sm.get('bare start'))}{ratio:7.2f}"
            f"{ms(opened.get('open last screen'))}{ms(opened.get('pageup median')):>10}"
            f"{ms(opened.get('pageup max')):>10}"
            f"{(f'{rss_open:6.0f} MB' if rss_open else '      -'):>10}"
            f"{(f'{rss_end:6.0f} MB' if rss_end else '      -'):>9}"
            f"{ms(search)}{ms(listing)}{ms(floor):>8}",
            flush=True,
        )
    print(f"load (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("start: process start to the painted sidebar, real terminal; bare: a bare Textual app")
    print("(one Static) to its first paint, same run; open/pgup/RSS: headless, 5,000-message")
    print("session; search/list: whole processes; py: `python -c pass`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
