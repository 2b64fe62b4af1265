"""SIGKILL `threadline sync` at random moments, 20 times (the long form of tests/sync/test_kill.py).

Two machines (separate databases, clones of one bare repository on the local disk) keep adding
history; each trial starts a sync of one of them, kills it (SIGKILL, with its git children)
after a random delay, checks the killed database is whole (integrity check, counters equal to
their rows), then reruns it. At the end both sync and must hold the same history.

    python bench/chaos_sync.py [--trials 20] [--seed 1]
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

from tests.sync.helpers import Machine, first_difference, machines, snapshot  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def start_sync(m: Machine, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "threadline", "--db", str(m.db), "sync"],
        cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: git children die with it
    )  # fmt: skip


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


async def whole(m: Machine) -> dict:
    store = await m.open()
    try:
        problems = await store.integrity_check()
        assert problems == [], problems
        for row in await store.list_sessions("all", limit=None):
            assert row.message_count == await store.count_messages(row.id), row.id
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
    args = parser.parse_args()
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
        killed_during = 0
        for trial in range(args.trials):
            m = rng.choice(ms)
            asyncio.run(chat(rng.choice(ms), rng, f"t{trial}"))
            proc = start_sync(m, tmp)
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
                [sys.executable, "-m", "threadline", "--db", str(m.db), "sync"],
                cwd=tmp, env=ENV, capture_output=True, text=True,
            )  # fmt: skip
            assert rerun.returncode == 0, rerun.stderr
            print(f"trial {trial + 1:2d}: machine {m.name} {outcome}; rerun ok")
        for _ in range(2):
            for m in ms:
                done = subprocess.run(
                    [sys.executable, "-m", "threadline", "--db", str(m.db), "sync"],
                    cwd=tmp, env=ENV, capture_output=True, text=True,
                )  # fmt: skip
                assert done.returncode == 0, done.stderr
        views = [asyncio.run(whole(m)) for m in ms]
        assert views[0] == views[1], first_difference(views[0], views[1])
        sessions = len(views[0]["sessions"])
        print(
            f"{args.trials} trials, {killed_during} killed mid-sync: every rerun completed and"
            f" both machines hold the same {sessions} sessions   load {os.getloadavg()}"
        )
        time.sleep(0)


if __name__ == "__main__":
    main()
