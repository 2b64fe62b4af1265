"""What following agent histories costs while nothing changes: one look (capture.Watch, a stat
of every session file) and one capture pass over an unchanged tree (import_source: a stat per
file against its saved mark), on a synthetic ~/.claude/projects of N sessions in N/10 folders.

    nice python bench/bench_capture_watch.py [--sessions 2000]

Prints medians of several runs; the app looks every capture.POLL_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path


def make_tree(root: Path, sessions: int) -> None:
    for i in range(sessions):
        folder = root / f"-work-project-{i // 10:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for j in range(10):
            base = {
                "sessionId": f"s-{i}",
                "cwd": f"/work/project-{i // 10:04d}",
                "isSidechain": False,
                "timestamp": f"2026-11-20T10:00:{j:02d}.000Z",
                "parentUuid": None,
            }
            if j % 2 == 0:
                base |= {
                    "type": "user",
                    "uuid": f"u{i}-{j}",
                    "message": {"role": "user", "content": f"question {j} " * 20},
                }
            else:
                base |= {
                    "type": "assistant",
                    "uuid": f"a{i}-{j}",
                    "message": {
                        "id": f"m{i}-{j}",
                        "role": "assistant",
                        "model": "x",
                        "content": [{"type": "text", "text": f"answer {j} " * 40}],
                    },
                }
            lines.append(json.dumps(base))
        (folder / f"s-{i}.jsonl").write_text("\n".join(lines) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from threadline import capture
    from threadline.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "projects"
        make_tree(root, args.sessions)
        f = capture.Followed("claude-code", "Claude Code", "claude_code", root, True)
        watch = capture.Watch([root])
        watch.changed()
        looks = []
        for _ in range(args.runs):
            t = time.perf_counter()
            assert not watch.changed()
            looks.append(time.perf_counter() - t)
        store = await Store.open(Path(tmp) / "t.db")
        runner = capture.Capture([f])
        t = time.perf_counter()
        first = await runner.run(store)
        first_s = time.perf_counter() - t
        passes = []
        for _ in range(args.runs):
            t = time.perf_counter()
            again = await runner.run(store)
            passes.append(time.perf_counter() - t)
            assert again.messages == 0
        await store.close()
    print(f"{args.sessions:,} sessions, {first.messages:,} messages")
    print(f"first capture: {first_s:.2f} s")
    look_ms = statistics.median(looks) * 1000
    print(f"look for changes (Watch.changed, unchanged tree): median {look_ms:.1f} ms")
    print(f"capture pass over the unchanged tree: median {statistics.median(passes) * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
