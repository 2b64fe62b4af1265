"""A small, fixed database for the app's tests, snapshots and screenshots.

Everything is dated from NOW through a clock the store is given, so relative ages ("3 h") and
ids' time parts are the same on every run. Directories are under a fake home (/home/dev): set
HOME=/home/dev to see them shortened to `~`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline.store import Store

NOW = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
HOME = "/home/dev"
API = "/home/dev/src/api"
WEB = "/home/dev/src/web"
# A directory name is stored text too.
HOSTILE_DIR = "/home/dev/src/[bold]x[/bold]\x1b]0;pwned\x07"

HOSTILE_STRINGS = [
    "[bold]x[/bold]",
    "[link=https://evil.example]x[/link]",
    "[@click=app.quit]x[/]",
    "[ @click=app.quit]",
    "[@CLICK=app.quit]",
    "a stray [/]",
    "\x1b[31mred",
    "bell\x07",
    "\x1b]0;pwned\x07",
    "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\",
]
HOSTILE = " ".join(HOSTILE_STRINGS)
# What each looks like on screen after safe.clean().
HOSTILE_SHOWN = [
    "[bold]x[/bold]",
    "[link=https://evil.example]x[/link]",
    "[@click=app.quit]x[/]",
    "[ @click=app.quit]",
    "[@CLICK=app.quit]",
    "a stray [/]",
    "^[[31mred",
    "bell^G",
    "^[]0;pwned^G",
]

FIX_ANSWER = """The test is flaky because `retry()` sleeps for a fixed time, so a slow CI \
machine runs out of attempts. Back off instead:

```python
import time

def retry(fn, attempts=5, delay=0.1):
    for attempt in range(attempts):
        try:
            return fn()
        except TimeoutError:
            time.sleep(delay * 2**attempt)  # 0.1, 0.2, 0.4, 0.8 s: a slow runner still passes
    raise RuntimeError(f"gave up after {attempts} attempts")
```

Then **pin the seed** in the test so the order of the cases is stable:

```sh
pytest -p no:randomly tests/test_retry.py
```

See [the pytest docs](https://docs.pytest.org/) for more.
"""

SUMMARY = """The user is designing the session store for a terminal chat app.

- Sessions are scoped to a working directory; one SQLite file holds them all.
- Writes go through one connection in `BEGIN IMMEDIATE` transactions.
- Replies are checkpointed every second while they stream.
- Deleting moves a session to a trash that is purged after 30 days.
- Keyset paging keeps the sidebar fast with 100,000 sessions."""


async def fill_quickly(store: Store) -> None:
    """Writing test data: commits stop waiting for the disk (the store's catch-up setting,
    synchronous=NORMAL in WAL mode, which a crashed process cannot undo; only a power cut
    could). The data written is the same; call `done_filling(store)` before closing it."""
    await store.journal.catching_up(True)


async def done_filling(store: Store) -> None:
    await store.journal.catching_up(False)


@dataclass
class Sample:
    path: Path
    ids: dict[str, str] = field(default_factory=dict)


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _fresh_ids() -> None:
    """Let ids follow the sample's clock: the store's id generator never goes back in time
    within a process, so after a test that used the real clock the sample's ids (and the short
    ids on screen) would depend on test order."""
    from threadline.store import util

    util._uuid_last_ms = -1


async def build(path: str | os.PathLike[str], *, hostile: bool = True) -> Sample:
    """Write the sample sessions into a new database at `path` (in time order)."""
    _fresh_ids()
    clock = _Clock()
    sample = Sample(Path(path))
    store = await Store.open(path, clock=clock)
    await fill_quickly(store)

    async def at(delta: timedelta) -> None:
        clock.now = NOW - delta

    try:
        await at(timedelta(days=40))
        s = await store.create_session(API, title="Upgrade to Python 3.13")
        await store.add_message(s.id, "user", "What breaks if we move the service to 3.13?")
        await store.add_message(s.id, "assistant", "Mostly nothing; check `datetime.utcnow()`.")
        sample.ids["old"] = s.id

        if hostile:
            await at(timedelta(days=4))
            s = await store.create_session(HOSTILE_DIR, title="A session in a strange directory")
            sample.ids["hostile_dir"] = s.id
            await store.add_message(s.id, "user", "hello")

        await at(timedelta(days=3))
        s = await store.create_session(API, title="Design: the session store", model="gpt-4o")
        sample.ids["design"] = s.id
        first = await store.add_message(s.id, "system", "You are a careful database engineer.")
        await store.add_message(s.id, "user", "How should the store handle concurrent writers?")
        await at(timedelta(days=3) - timedelta(minutes=1))
        last = await store.add_message(
            s.id,
            "assistant",
            "One writer connection with `BEGIN IMMEDIATE`, readers in WAL mode.",
            input_tokens=412,
            output_tokens=96,
            model="gpt-4o",
            response_ms=1840,
        )
        await store.save_summary(s.id, SUMMARY, first.id, last.id, token_count=1240, model="gpt-4o")
        await at(timedelta(days=3) - timedelta(minutes=5))
        await store.add_message(s.id, "user", "And what if the process dies mid-reply?")
        await store.add_message(
            s.id,
            "tool",
            '{"tool": "sqlite", "query": "PRAGMA journal_mode", "result": "wal"}',
        )
        await store.add_message(
            s.id,
            "assistant",
            "The reply is checkpointed every second, so at most the last second of",
            complete=False,
            model="gpt-4o",
        )
        await store.update_session(s.id, pinned=True, status="crashed")

        await at(timedelta(days=2))
        s = await store.create_session(WEB, title="Dark mode for the dashboard")
        sample.ids["web"] = s.id
        await store.add_message(s.id, "user", "How do I follow the system's dark mode in CSS?")

        if hostile:
            await at(timedelta(days=1))
            s = await store.create_session(API, title="Hostile " + HOSTILE)
            sample.ids["hostile"] = s.id
            await store.add_message(s.id, "system", "system: " + HOSTILE)
            m1 = await store.add_message(s.id, "user", "user: " + HOSTILE + "\nsecond line")
            m2 = await store.add_message(
                s.id,
                "assistant",
                "assistant: " + HOSTILE + "\n\n```\n" + HOSTILE + "\n```",
                model="model " + HOSTILE,
            )
            await store.save_summary(s.id, "summary: " + HOSTILE, m1.id, m2.id, token_count=9)
            await store.add_message(s.id, "tool", "tool: " + HOSTILE)

        await at(timedelta(hours=5))
        s = await store.create_session(API)
        sample.ids["untitled"] = s.id
        await store.add_message(
            s.id, "user", "How do I page through a SQLite table by keyset instead of OFFSET?"
        )
        await store.add_message(
            s.id,
            "assistant",
            "Order by a unique key and remember the last row:\n\n```sql\n"
            "SELECT * FROM sessions WHERE (updated_at, id) < (?, ?)\n"
            "ORDER BY updated_at DESC, id DESC LIMIT 50;\n```",
            input_tokens=88,
            output_tokens=52,
            model="gpt-4o-mini",
            response_ms=910,
        )

        await at(timedelta(hours=2))
        s = await store.create_session(API, title="Fix the flaky retry test", model="gpt-4o-mini")
        sample.ids["fix"] = s.id
        await store.add_message(
            s.id, "user", "tests/test_retry.py fails one run in ten on CI.\nWhy?"
        )
        await at(timedelta(hours=2) - timedelta(minutes=1))
        await store.add_message(
            s.id,
            "assistant",
            FIX_ANSWER,
            input_tokens=1530,
            output_tokens=412,
            model="gpt-4o-mini",
            response_ms=5230,
        )
    finally:
        await done_filling(store)
        await store.close()
    return sample


async def add_long_session(
    path: str | os.PathLike[str], messages: int, directory: str = API
) -> str:
    """A session of `messages` numbered messages (for paging tests)."""
    _fresh_ids()
    clock = _Clock()
    store = await Store.open(path, clock=clock)
    await fill_quickly(store)
    try:
        clock.now = NOW - timedelta(minutes=30)
        s = await store.create_session(directory, title=f"Long session ({messages} messages)")
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            text = f"Message {i}" + ("\n\nwith a second paragraph" if i % 3 == 0 else "")
            await store.add_message(s.id, role, text)
        return s.id
    finally:
        await done_filling(store)
        await store.close()


if __name__ == "__main__":
    import sys

    print(asyncio.run(build(sys.argv[1])).ids)


def copied(built, name: str, build, **options: bool) -> Sample:  # noqa: ANN001
    """A copy of the sample `build(path, **options)` writes, made with conftest's `built`
    fixture (built once per test process, copied for each test), at tmp_path/name."""
    path, sample = built(name, lambda where: build(where, **options))
    return Sample(path, dict(sample.ids))
