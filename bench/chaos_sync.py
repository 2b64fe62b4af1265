"""SIGKILL `threadline sync` at random moments, 20 times (the long form of tests/sync/test_kill.py).

Two machines (separate databases, clones of one bare repository on the local disk) keep adding
history; each trial starts a sync of one of them, kills it (SIGKILL, with its git children)
after a random delay, checks the killed database is whole (integrity check, counters equal to
their rows), then reruns it. Every fifth trial a new machine joins instead (`sync init`, killed
the same way while it catches up and builds its search index, then run again). At the end all
sync and must hold the same history.

Syncs apply --batch records per transaction (default 50, so a catch-up is many transactions
and leaves its messages to one search index build, as a new machine's does).

    python bench/chaos_sync.py [--trials 20] [--seed 1] [--batch 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.sync.helpers import (  # noqa: E402
    Machine,
    first_difference,
    machines,
    make_project,
    snapshot,
)

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


# `threadline` with engine.APPLY_BATCH set (argv[1]).
DRIVER = """
import sys
from threadline.sync import engine
engine.APPLY_BATCH = int(sys.argv[1])
from threadline.cli import main
sys.exit(main(sys.argv[2:]))
"""
BATCH = ["50"]


def command(m: Machine, *args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER, BATCH[0], "--db", str(m.db), *args]


def start_sync(m: Machine, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command(m, *(args or ("sync",))),
        cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: git children die with it
    )  # fmt: skip


def new_machine(tmp: Path, name: str) -> Machine:
    root = tmp / f"machine-{name}"
    project = make_project(root / "home" / f"work-{name}" / "api", "git@example.org:me/api.git")
    return Machine(name, root, tmp / "remote.git", project)


async def chat(m: Machine, rng: random.Random, tag: str) -> None:
    store = await m.open()
    try:
        for i in range(rng.randint(1, 4)):
            session = await store.create_session(m.project, title=f"{tag} {i}")
            for j in range(rng.randint(5, 60)):
                m.clock.tick()
                await store.add_message(session.id, "user", f"{tag} {i}.{j} " + "words " * 20)
        rows = await store.list_sessions("all", limit=20)
        if rows:
            await store.update_session(rng.choice(rows).id, title=f"renamed {tag}")
            if rng.random() < 0.3:
                await store.delete_session(rng.choice(rows).id)
    finally:
        await m.close()


async def whole(m: Machine, *, indexed: bool = False) -> dict:
    """The killed database is whole (its search index too, for the rows it holds); after the
    last syncs (`indexed`), its index holds every message: each one is found by its text."""
    store = await m.open()
    try:
        problems = await store.integrity_check()
        assert problems == [], problems
        for row in await store.list_sessions("all", limit=None):
            assert row.message_count == await store.count_messages(row.id), row.id
        if indexed:
            assert (await store.search_build_state()).finished, m.name
            sessions = await store.list_sessions("all", limit=None)
            messages = sum(r.message_count for r in sessions)
            assert len(await store.search("words", limit=messages + 1)) == messages, m.name
        return await snapshot(store)
    finally:
        await m.close()


class _keep:
    def __enter__(self) -> str:
        self.name = tempfile.mkdtemp()
        return self.name

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            import shutil

            shutil.rmtree(self.name, ignore_errors=True)
        else:
            print(f"left for inspection: {self.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=50, help="records per apply transaction")
    args = parser.parse_args()
    BATCH[0] = str(args.batch)
    rng = random.Random(args.seed)
    with _keep() as name:
        tmp = Path(name)
        os.environ.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "cfg"))
        ENV.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "cfg"))

        async def setup() -> list[Machine]:
            ms = await machines(tmp, 2)
            for m in ms:
                await m.init()
                await m.close()
            return ms

        ms = asyncio.run(setup())
        killed_during = joined = 0
        for trial in range(args.trials):
            asyncio.run(chat(rng.choice(ms), rng, f"t{trial}"))
            if trial % 5 == 4:  # a new machine joins: clone, catch up, index
                joined += 1
                m = new_machine(tmp, f"j{joined}")
                run = ("sync", "init", str(m.remote_repo))
                ms.append(m)
            else:
                m = rng.choice(ms)
                run = ("sync",)
            proc = start_sync(m, tmp, *run)
            delay = rng.uniform(0.05, 1.5)
            try:
                proc.wait(timeout=delay)
                outcome = f"finished before the kill (exit {proc.returncode})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed_during += 1
                outcome = f"killed after {delay:.2f} s"
            asyncio.run(whole(m))
            rerun = subprocess.run(
                command(m, *run), cwd=tmp, env=ENV, capture_output=True, text=True
            )
            assert rerun.returncode == 0, rerun.stderr
            print(f"trial {trial + 1:2d}: machine {m.name} {outcome}; rerun ok")
        for _ in range(2):
            for m in ms:
                done = subprocess.run(
                    command(m, "sync"), cwd=tmp, env=ENV, capture_output=True, text=True
                )
                assert done.returncode == 0, done.stderr
        views = [asyncio.run(whole(m, indexed=True)) for m in ms]
        for view in views[1:]:
            assert views[0] == view, first_difference(views[0], view)
        sessions = len(views[0]["sessions"])
        print(
            f"{args.trials} trials ({joined} of them a new machine joining), {killed_during}"
            f" killed mid-sync: every rerun completed and all {len(ms)} machines hold the same"
            f" {sessions} sessions, their search index built   load {os.getloadavg()}"
        )
        time.sleep(0)


if __name__ == "__main__":
    main()
