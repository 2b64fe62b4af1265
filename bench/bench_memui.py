"""Benchmark: what summaries in place and the memories screen cost the app.

Builds a temporary database like bench_context.py (one 5,000-message session with a summary
every 250 messages, 10,000 memories in its directory among 12,000) and gives the memories
source sessions (500 of them). Prints medians of:

- the summary facts a session needs when it opens (latest summary, and its position among the
  messages: `Store.latest_summary` + `Store.summary_spans`), next to the timeline page that
  opening reads anyway;
- `summary_spans` for one summary in the middle of the session (what each page with a
  summary adds);
- opening the session in the conversation view, headless (facts, the newest page, drawing the
  last screen), folded (the default: what the latest summary stands for is left out) and
  unfolded;
- the memories screen's data (`get_memories` with the superseded ones + the source sessions'
  titles), and M to the list drawn in the app, headless (the first time, which composes the
  screen, is one sample per app run: its "median" is that one figure).

Run: python bench/bench_memui.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ui"))

from bench_context import build, line, timed  # noqa: E402
from threadline.store import Store  # noqa: E402


def give_sources(path: Path, directory: str, sessions: int) -> None:
    """Spread the directory's memories over `sessions` source sessions (made by the store)."""

    async def make() -> list[str]:
        async with await Store.open(path) as store:
            return [(await store.create_session(directory)).id for _ in range(sessions)]

    ids = asyncio.run(make())
    rng = random.Random(3)
    conn = sqlite3.connect(path)
    with conn:
        rows = conn.execute("SELECT id FROM memories WHERE working_dir = ?", (directory,))
        conn.executemany(
            "UPDATE memories SET session_id = ? WHERE id = ?",
            [(rng.choice(ids), memory_id) for (memory_id,) in rows.fetchall()],
        )
    conn.close()


async def store_figures(path: Path, session_id: str, directory: str, runs: int) -> None:
    store = await Store.open(path)
    try:
        summaries = await store.list_summaries(session_id)
        session = await store.get_session(session_id)
        assert session is not None
        print(f"session: {session.message_count:,} messages, {len(summaries)} summaries")

        async def facts() -> object:
            latest = await store.latest_summary(session_id)
            assert latest is not None
            return await store.summary_spans(session_id, [latest])

        async def page() -> object:
            return await store.timeline(session_id, None, 100)

        middle = summaries[len(summaries) // 2]

        async def one_span() -> object:
            return await store.summary_spans(session_id, [middle])

        print(line("open: latest summary + its span", await timed(facts, runs)))
        print(
            line("open: the newest timeline page (100 items), for scale", await timed(page, runs))
        )
        print(line("a page's summary: summary_spans for one", await timed(one_span, runs)))

        async def memories() -> object:
            rows = await store.get_memories(directory, None, include_superseded=True)
            return await store.get_session_summaries(
                [m.session_id for m in rows if m.session_id is not None]
            )

        count = len(await store.get_memories(directory, None, include_superseded=True))
        print(
            line(
                f"memories screen data ({count:,} memories, 500 sessions)",
                await timed(memories, max(5, runs // 5)),
            )
        )
    finally:
        await store.close()


def app_figures(path: Path, session_id: str, directory: str, runs: int) -> None:
    from apphelpers import FixedClock, quiet_settings

    from threadline.ui.app import ThreadlineApp
    from threadline.ui.screens.memories import MemoriesScreen

    async def settle_workers(app: ThreadlineApp, pilot) -> None:  # noqa: ANN001
        for _ in range(200):
            await pilot.pause()
            await app.workers.wait_for_complete()
            if not any(w.is_running for w in app.workers) and app.main_screen.total is not None:
                return

    opens: dict[bool, list[float]] = {True: [], False: []}
    screens: list[float] = []
    first: list[float] = []

    async def run() -> None:
        app = ThreadlineApp(path, quiet_settings(), directory, clock=FixedClock())
        async with app.run_test(size=(120, 40)) as pilot:
            await settle_workers(app, pilot)
            store = app.store
            assert store is not None
            screen = app.main_screen
            view = screen.conversation
            session = await store.get_session(session_id)
            assert session is not None

            async def timeline(before, after, limit):  # noqa: ANN001, ANN202
                return await store.timeline(session_id, before, limit, after=after)

            for folded in (True, False):
                for i in range(runs + 2):
                    view._fold_choice = folded
                    view.session = session  # the same session: the choice is kept
                    started = time.perf_counter()
                    await view.open(session, timeline)
                    await pilot.pause()  # the paint
                    if i >= 2:
                        opens[folded].append(time.perf_counter() - started)
                    assert view.folded is folded
            for i in range(max(3, runs // 5) + 1):
                started = time.perf_counter()
                await pilot.press("M")
                memories = app.screen
                assert isinstance(memories, MemoriesScreen)
                await pilot.pause()
                await app.workers.wait_for_complete()  # the memories read (again) and shown
                await pilot.pause()
                assert memories.memory_list.rows
                (first if i == 0 else screens).append(time.perf_counter() - started)
                await pilot.press("escape")
                await pilot.pause()

    asyncio.run(run())
    print(line("view.open, folded (to the paint)", opens[True]))
    print(line("view.open, unfolded (to the paint)", opens[False]))
    print(line("M to the memories list drawn, first time (composes the screen)", first * 2))
    print(line("M to the memories list drawn, again (the screen is kept, data re-read)", screens))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data" / "bench.db"
        path.parent.mkdir()
        session_id, directory = build(path, 5000, 10000, 2000)
        give_sources(path, directory, 500)
        asyncio.run(store_figures(path, session_id, directory, args.runs))
        app_figures(path, session_id, directory, max(5, args.runs // 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
