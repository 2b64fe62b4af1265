"""Benchmark: what runs before every turn — context assembly and memory selection.

Builds a temporary database (schema through the store; rows bulk-inserted with sqlite3, the
store's triggers keeping counters and the search index in step) and prints medians of:

- context assembly for a 5,000-message session with summaries (target <= 20 ms): the whole
  path a turn takes before its request, memory section included
  (chat.memory.memory_context + chat.context.load_context), with a budget of 16,000 tokens;
  also the same session without any summary (the budget alone bounds what is read), and the
  check a turn makes when the session no longer fits (summarise.next_range);
- memory selection for a directory with 10,000 memories among 60,000 (target <= 10 ms):
  store.select_memories + the section text, as a new session's first turn does.

Run: python bench/bench_context.py [--runs 200] [--messages 5000] [--memories 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline.chat.context import load_context
from threadline.chat.memory import memory_context, memory_section
from threadline.chat.summarise import next_range
from threadline.config import MemoryConfig
from threadline.store import Store
from threadline.store.util import fmt_ts

WORDS = (
    "the a function returns value list table index query session message model context "
    "summary token memory python sqlite async await error test file path directory commit"
).split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build(path: Path, messages: int, memories: int, other_memories: int) -> tuple[str, str]:
    """The database: one long session (with a summary every 250 messages) and memories."""
    rng = random.Random(7)
    project = path.parent.parent / "project"
    project.mkdir(parents=True)
    directory = str(project.resolve())

    async def schema() -> str:
        async with await Store.open(path) as store:
            session = await store.create_session(directory, model="bench")
            return session.id

    session_id = asyncio.run(schema())
    start = datetime(2025, 1, 1, tzinfo=UTC)
    conn = sqlite3.connect(path)
    with conn:
        rows = []
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            # Users write a line or two, replies a few paragraphs.
            body = text(rng, rng.randint(10, 60) if role == "user" else rng.randint(80, 400))
            when = fmt_ts(start + timedelta(seconds=30 * i))
            out = rng.randint(100, 600) if role == "assistant" else None
            rows.append((session_id, role, body, when, out))
        conn.executemany(
            "INSERT INTO messages (session_id, role, content, created_at, output_tokens)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        ids = [r[0] for r in conn.execute("SELECT id FROM messages ORDER BY id")]
        summaries = []
        for end in range(250, messages - 40, 250):
            summaries.append(
                (session_id, text(rng, 600), ids[0], ids[end - 1], 800, "bench", fmt_ts(start))
            )
        conn.executemany(
            "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
            " token_count, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            summaries,
        )
        mem_rows = []
        dirs = [directory] + [f"/work/other-{n}" for n in range(50)]
        total = memories + other_memories
        for n in range(total):
            where = directory if n < memories else dirs[1 + n % 50]
            mem_rows.append(
                (
                    where,
                    text(rng, rng.randint(8, 25)),
                    rng.choice(["preference", "fact", "decision", "context", "correction"]),
                    rng.randint(1, 5),
                    fmt_ts(start + timedelta(minutes=n)),
                )
            )
        conn.executemany(
            "INSERT INTO memories (working_dir, fact, category, importance, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            mem_rows,
        )
        # A fifth of the directory's memories were superseded by a later one.
        conn.execute(
            "UPDATE memories SET superseded_by = id + 1"
            " WHERE working_dir = ? AND id % 5 = 0 AND id < (SELECT max(id) FROM memories"
            " WHERE working_dir = ?)",
            (directory, directory),
        )
    conn.execute("ANALYZE")
    conn.close()
    return session_id, directory


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    for _ in range(5):  # warm the caches and the reader threads
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return samples


def line(label: str, samples: list[float], target: float | None = None) -> str:
    med = statistics.median(samples) * 1000
    p90 = statistics.quantiles(samples, n=10)[-1] * 1000
    verdict = ""
    if target is not None:
        verdict = f"   target <= {target:g} ms: {'ok' if med <= target else 'MISSED'}"
    return f"{label:<58} median {med:7.2f} ms   p90 {p90:7.2f} ms{verdict}"


async def measure(path: Path, session_id: str, directory: str, runs: int) -> None:
    store = await Store.open(path)
    try:
        session = await store.get_session(session_id)
        assert session is not None
        last = (await store.get_messages(session_id, limit=1))[-1]
        config = MemoryConfig()
        # A new session in the same directory: its memories are all older than it.
        fresh = session.model_copy(update={"created_at": datetime.now(UTC)})

        async def assemble() -> object:
            extra = await memory_context(store, fresh, config)
            return await load_context(
                store, session, upto_id=last.id, max_tokens=16000, extra_system=extra
            )

        window = await assemble()
        print(
            f"session: {session.message_count:,} messages, "
            f"{len(await store.list_summaries(session_id))} summaries; "
            f"request: {len(window.messages)} messages, ~{window.estimated_tokens:,} tokens"  # type: ignore[attr-defined]
        )
        print(
            line("context assembly (memories + summary + recent)", await timed(assemble, runs), 20)
        )

        # The same path with the summaries hidden: the budget alone bounds the reads.
        async def without_summaries() -> object:
            real = store.latest_summary

            async def none(_: str) -> None:
                return None

            store.latest_summary = none  # type: ignore[method-assign]
            try:
                return await load_context(store, session, upto_id=last.id, max_tokens=16000)
            finally:
                store.latest_summary = real  # type: ignore[method-assign]

        print(
            line(
                "context assembly, no summary (budget-bound)", await timed(without_summaries, runs)
            )
        )

        async def range_check() -> object:
            return await next_range(
                store, session_id, keep_recent=20, max_tokens=16000, upto_id=last.id
            )

        print(
            line(
                "next_range (the check when a session no longer fits)",
                await timed(range_check, runs),
            )
        )

        count = len(await store.get_memories(directory, include_superseded=True))

        async def select() -> object:
            memories = await store.select_memories(
                directory, config.max_in_context, created_before=fresh.created_at
            )
            return memory_section(memories, config.context_tokens, directory)

        info = await store.info()
        print(
            f"memories: {count:,} in the directory (a fifth superseded), {info.memories:,} in all"
        )
        print(line("memory selection (30 best, 800-token budget)", await timed(select, runs), 10))

        async def select_all_listed() -> object:
            return await store.get_memories(directory, 100)

        print(
            line(
                "memories list, first 100 (the CLI / memories screen)",
                await timed(select_all_listed, runs),
            )
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--memories", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        path = Path(tmp) / "data" / "threadline.db"
        started = time.perf_counter()
        session_id, directory = build(path, args.messages, args.memories, 50_000)
        print(f"built {path.name} in {time.perf_counter() - started:.1f} s")
        asyncio.run(measure(path, session_id, directory, args.runs))


if __name__ == "__main__":
    main()
