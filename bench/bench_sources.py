"""Time the source readers alone (no database) on the synthetic histories of gen_sources.py.

    python bench/gen_sources.py claude  --out bench/data/claude-projects
    python bench/gen_sources.py chatgpt --out bench/data/chatgpt
    python bench/bench_sources.py [--claude bench/data/claude-projects]
                                  [--chatgpt bench/data/chatgpt/conversations.json] [--repeat 3]

Each run is a fresh subprocess (so peak RSS is that run's own): our reader, then the bare
yardstick (orjson.loads of every line / ijson over every conversation, building nothing),
interleaved; medians and the ratio are printed with the load average. Also: a re-scan of the
unchanged tree (discover + stat, what the loader does before reading) and a re-read of every
file from its own mark (nothing new to take).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worker(kind: str, path: Path) -> dict:
    t0 = time.perf_counter()
    messages = files = 0
    nbytes = 0
    if kind == "claude":
        from threadline.sources import get

        source = get("claude-code")
        for f in source.discover(path):
            files += 1
            nbytes += f.stat().st_size
            for batch in source.read(f):
                messages += len(batch.messages)
    elif kind == "claude-bare":
        import orjson

        for f in sorted(path.rglob("*.jsonl")):
            files += 1
            with open(f, "rb") as fh:
                for line in fh:
                    nbytes += len(line)
                    orjson.loads(line)
                    messages += 1  # lines, for the bare run
    elif kind == "chatgpt":
        from threadline.sources import get

        source = get("chatgpt")
        nbytes = path.stat().st_size
        for batch in source.read(path, working_dir="/bench"):
            files += 1
            messages += len(batch.messages)
    elif kind == "chatgpt-bare":
        import ijson

        nbytes = path.stat().st_size
        with open(path, "rb") as fh:
            for conv in ijson.items(fh, "item", use_float=True):
                files += 1
                messages += len(conv["mapping"])  # nodes, for the bare run
    elif kind == "claude-rescan":
        from threadline.sources import get

        source = get("claude-code")
        for f in source.discover(path):
            st = f.stat()
            files += 1
            nbytes += st.st_size
    elif kind == "claude-reread":
        from threadline.sources import get

        source = get("claude-code")
        found = list(source.discover(path))
        marks = {}
        for f in found:
            for batch in source.read(f):
                marks[f] = batch.mark
        t0 = time.perf_counter()  # only the second pass is timed
        for f in found:
            files += 1
            for batch in source.read(f, mark=marks.get(f)):
                messages += len(batch.messages)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "kind": kind,
        "seconds": seconds,
        "messages": messages,
        "files": files,
        "bytes": nbytes,
        "rss_mb": rss_mb,
    }


def run(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(label: str, ours: str, bare: str, path: Path, repeat: int) -> None:
    load0 = os.getloadavg()
    o, b = [], []
    for _ in range(repeat):
        o.append(run(ours, path))
        b.append(run(bare, path))
    load1 = os.getloadavg()
    secs = statistics.median(r["seconds"] for r in o)
    bare_secs = statistics.median(r["seconds"] for r in b)
    msgs = o[0]["messages"]
    print(f"{label}: {o[0]['files']} sessions/files, {o[0]['bytes'] / 1e6:.0f} MB, {msgs} messages")
    print(
        f"  reader  median {secs:.2f} s = {msgs / secs:,.0f} messages/s, "
        f"{o[0]['bytes'] / 1e6 / secs:.0f} MB/s, peak RSS {max(r['rss_mb'] for r in o):.0f} MB"
    )
    print(
        f"  bare    median {bare_secs:.2f} s ({b[0]['messages']} records), "
        f"peak RSS {max(r['rss_mb'] for r in b):.0f} MB; reader/bare = {secs / bare_secs:.2f}"
    )
    print(
        f"  load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} "
        f"{load1[1]:.2f} (2 cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"))
    parser.add_argument("--claude", type=Path, default=Path("bench/data/claude-projects"))
    parser.add_argument(
        "--chatgpt", type=Path, default=Path("bench/data/chatgpt/conversations.json")
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    if args.claude.exists():
        bench("claude-code tree", "claude", "claude-bare", args.claude, args.repeat)
        rescans = [run("claude-rescan", args.claude) for _ in range(args.repeat)]
        print(
            f"  re-scan (discover + stat) median "
            f"{statistics.median(r['seconds'] for r in rescans):.3f} s"
        )
        reread = run("claude-reread", args.claude)
        print(
            f"  re-read of every file from its mark: {reread['seconds']:.2f} s, "
            f"{reread['messages']} messages re-sent (the open tail of each session)"
        )
    if args.chatgpt.exists():
        bench("chatgpt export", "chatgpt", "chatgpt-bare", args.chatgpt, args.repeat)


if __name__ == "__main__":
    main()
