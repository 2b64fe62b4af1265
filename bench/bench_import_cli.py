"""Time `threadline import claude-code|chatgpt` end to end (the real command, a fresh process):
messages/s including the full-text index, peak RSS, the re-scan of an unchanged tree, and the
longest another writer waited for the lock meanwhile. Prints medians and the load average.

    nice python bench/bench_import_cli.py                    # 1 GB / 2,000-session Claude tree,
                                                             # 200,000-message ChatGPT export
    nice python bench/bench_import_cli.py --claude-mb 200 --claude-sessions 400 --runs 1

The histories are made once by bench/gen_sources.py under --data (kept between runs; delete to
regenerate). Each run imports into a fresh database under --scratch, with a second process
writing a row every 20 ms (bench_import.OtherWriter). Then the same command again over the
unchanged tree (a `stat` per file; target <= 1 s) and over the export (everything skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_import import OtherWriter, _fresh, _init_db  # noqa: E402


def generate(kind: str, out: Path, extra: list[str]) -> None:
    print(f"generating {out} ...", flush=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(HERE / "gen_sources.py"), kind, "--out", str(out), *extra],
        check=True,
    )
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_import(argv: list[str], db: Path, env: dict[str, str]) -> dict[str, Any]:
    """One `threadline import ... --json` in its own process: wall time, peak RSS, its report."""
    threadline = shutil.which("threadline", path=os.path.dirname(sys.executable)) or "threadline"
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [threadline, "import", *argv, "--db", str(db), "--json"], stdout=out, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"threadline import {' '.join(argv)} failed ({status})")
    out.seek(0)
    data = json.loads(out.read())
    data.update(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,
        rate=data["messages"] / wall if wall else 0.0,
        load=os.getloadavg()[0],
    )
    return data


def measured(argv: list[str], db: Path, env: dict[str, str]) -> dict[str, Any]:
    _fresh(db)
    _init_db(db)
    other = OtherWriter(db)
    try:
        data = run_import(argv, db, env)
    finally:
        waited, writes, failed = other.finish()
    data.update(other_wait=waited, other_writes=writes, other_failed=failed)
    again = run_import(argv, db, env)
    data.update(
        again_wall=again["wall"],
        again_seconds=again["seconds"],  # the import itself, without starting the process
        again_skipped=again["skipped"],
        again_messages=again["messages"],
    )
    return data


def show(name: str, runs: list[dict[str, Any]], size: int) -> None:
    def med(key: str) -> float:
        return statistics.median(float(r[key]) for r in runs)

    rate = med("rate")
    print(
        f"  {name}: {int(med('messages')):,} messages, {int(med('sessions')):,} sessions, "
        f"{size / 2**20:,.0f} MB\n"
        f"    import   {med('wall'):7.1f} s  {rate:9,.0f} msg/s "
        f"({statistics.median(r['messages'] / r['cpu'] for r in runs):,.0f} per cpu-s)  "
        f"peak RSS {max(r['rss_mb'] for r in runs):,.0f} MB  "
        f"{'ok' if rate >= 50_000 else 'below the 50,000 msg/s target'}\n"
        f"    other writer waited <= {max(r['other_wait'] for r in runs):.2f} s "
        f"({int(med('other_writes'))} writes, {sum(r['other_failed'] for r in runs)} failed)\n"
        f"    again    {med('again_wall'):7.2f} s, of which the import {med('again_seconds'):.2f} s"
        f" (skipped {int(med('again_skipped')):,}, added {int(med('again_messages'))})"
        f"  load {med('load'):.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--scratch", type=Path, default=None)
    p.add_argument("--claude-mb", type=int, default=1024)
    p.add_argument("--claude-sessions", type=int, default=2000)
    p.add_argument("--chatgpt-messages", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--only", choices=("claude", "chatgpt"), default=None)
    args = p.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="bench-import-cli-"))
    scratch.mkdir(parents=True, exist_ok=True)
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".state"),
    )
    env.pop("THREADLINE_DB", None)

    jobs = []
    if args.only in (None, "claude"):
        claude = args.data / f"claude-{args.claude_sessions}s-{args.claude_mb}mb"
        if not claude.exists():
            generate(
                "claude",
                claude,
                ["--sessions", str(args.claude_sessions), "--size-mb", str(args.claude_mb)],
            )
        jobs.append(
            (
                f"claude-code tree ({args.claude_sessions:,} sessions)",
                ["claude-code", str(claude)],
                tree_size(claude),
            )
        )
    if args.only in (None, "chatgpt"):
        gpt = args.data / f"chatgpt-{args.chatgpt_messages}"
        if not gpt.exists():
            generate("chatgpt", gpt, ["--messages", str(args.chatgpt_messages)])
        export = gpt / "conversations.json"
        jobs.append(
            ("chatgpt export", ["chatgpt", str(export), "--dir", str(scratch)], tree_size(export))
        )
    print(f"{args.runs} run(s) each; load {os.getloadavg()} on {os.cpu_count()} cpus", flush=True)
    for name, argv, size in jobs:
        runs = [measured(argv, scratch / "bench.db", env) for _ in range(args.runs)]
        show(name, runs, size)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
