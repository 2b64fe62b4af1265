"""Benchmark: what showing and continuing an imported session costs, against the same messages
as plain text.

A real Claude Code session (the 1,512-line spotter sample: 293 messages, 150 tool calls,
thinking, a compaction) is loaded from ../shared/import-samples into a temporary database;
its newest page (PAGE_SIZE items) is then, per run:

- laid out: `TimelineWindow.state` + `estimate_height` for every entry (what the view does
  before drawing: pairing calls with results, the thinking toggle);
- drawn: `render_block` of every entry at 100 columns (what the view does for the entries near
  the screen; here all of them);
- sent: `build_context` over all of its messages (tool calls and results as text);

and the same for a copy whose messages have their payload dropped (drawn as plain text). Prints
medians (ms) and the ratio imported / plain.

Run: nice python bench/bench_imported_view.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.style import Style

from threadline import sources
from threadline.chat.context import build_context
from threadline.models import Message
from threadline.store import Store
from threadline.ui.timeline import PAGE_SIZE, TimelineWindow
from threadline.ui.widgets.blocks import BlockStyles, estimate_height, render_block

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (
    ROOT
    / ".."
    / "shared"
    / "import-samples"
    / "claude-code"
    / "spotter"
    / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl.gz"
).resolve()
PLAIN = Style()
STYLES = BlockStyles(
    base=PLAIN,
    labels={},
    meta=PLAIN,
    body=PLAIN,
    dim_body=PLAIN,
    interrupted=PLAIN,
    streaming=PLAIN,
    summary_label=PLAIN,
    summary_body=PLAIN,
    more=PLAIN,
    code_theme="monokai",
)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WIDTH = 100


async def load(tmp: Path):
    path = tmp / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
    with gzip.open(SAMPLE) as fh, open(path, "wb") as out:
        shutil.copyfileobj(fh, out)
    store = await Store.open(tmp / "bench.db")
    await store.load_history(sources.get("claude-code").read(path))
    (row,) = await store.list_sessions("all")
    session = await store.get_session(row.id)
    assert session is not None

    async def page(before, after, limit):
        return await store.timeline(session.id, before=before, after=after, limit=limit)

    window = TimelineWindow(summaries=store)
    await window.open(session, page)
    messages = await store.get_messages(session.id)
    await store.close()
    return session, window, messages


def one_run(window: TimelineWindow, messages: list[Message], console: Console) -> list[float]:
    t0 = time.perf_counter()
    for i, entry in enumerate(window.entries):
        estimate_height(entry.item, WIDTH, window.state(i))
    t1 = time.perf_counter()
    for i, entry in enumerate(window.entries):
        render_block(entry.item, WIDTH, window.state(i), STYLES, console, console.options, NOW)
    t2 = time.perf_counter()
    build_context(messages, system_prompt=None, summary=None, max_tokens=10**9)
    t3 = time.perf_counter()
    return [(t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        session, window, messages = asyncio.run(load(Path(tmp)))
    plain_window = TimelineWindow()
    plain_window.session = session
    plain_window._replace(
        [
            item.model_copy(update={"payload": None}) if isinstance(item, Message) else item
            for item in window.items
        ]
    )
    plain_messages = [m.model_copy(update={"payload": None}) for m in messages]
    console = Console(width=WIDTH, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    results = {"imported": [], "plain": []}
    for _ in range(args.runs):
        results["imported"].append(one_run(window, messages, console))
        results["plain"].append(one_run(plain_window, plain_messages, console))
    print(
        f"{len(window.entries)} window entries (page {PAGE_SIZE}), {len(messages)} messages; "
        f"medians of {args.runs} runs, ms"
    )
    for n, what in enumerate(("lay out (state + estimate)", "draw every entry", "build context")):
        imported = statistics.median(r[n] for r in results["imported"])
        plain = statistics.median(r[n] for r in results["plain"])
        print(
            f"  {what:28} imported {imported:8.2f}  plain {plain:8.2f}"
            f"  ratio {imported / plain:5.2f}"
        )


if __name__ == "__main__":
    main()
