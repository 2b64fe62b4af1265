"""How long `sessions compact` and `db vacuum` hold the write lock per transaction (issue 13).

On a copy of a make_db.py database (`python bench/make_db.py --out X --long-size 5000 ...`):
compacts the longest session (a summary covering all but its last 100 messages), purges a
third of the sessions, then vacuums in steps; prints the median and largest transaction of
each, and the same for a --full VACUUM for comparison.

    nice python bench/bench_maintenance_lock.py /tmp/b.db
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from threadline.chat.summarise import compact_session
from threadline.store import Store, facade
from threadline.store import messages as message_ops


def timed(log: list[float], fn: Any) -> Any:
    def run(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            log.append(time.perf_counter() - started)

    return run


def report(name: str, log: list[float]) -> None:
    print(
        f"{name:<28} {len(log):>5} transactions  median {statistics.median(log) * 1000:7.1f} ms"
        f"  max {max(log) * 1000:7.1f} ms"
    )


async def main(source: Path) -> None:
    meta = json.loads(source.with_name(source.name + ".json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.db"
        shutil.copy(source, path)
        store = await Store.open(path)
        try:
            long = meta["long_sessions"][0]
            messages = await store.get_messages(long)
            await store.save_summary(long, "bench", messages[0].id, messages[-101].id)
            steps: list[float] = []
            message_ops.delete_messages_step = timed(steps, message_ops.delete_messages_step)
            removed = await compact_session(store, long)
            report(f"compact ({removed:,} messages)", steps)

            ids = [s.id for s in await store.list_sessions("all", limit=100_000)]
            for sid in ids[::3]:
                await store.purge_session(sid)
            await store.checkpoint()
            size = path.stat().st_size
            steps = []
            facade._vacuum_step = timed(steps, facade._vacuum_step)
            await store.vacuum()
            after = path.stat().st_size
            report(f"vacuum ({size >> 20} -> {after >> 20} MiB)", steps)
            started = time.perf_counter()
            await store.vacuum(full=True)
            report("vacuum --full (one)", [time.perf_counter() - started])
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
