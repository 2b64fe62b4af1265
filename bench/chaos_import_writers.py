"""Chaos: `threadline chat` writers while a large import holds the database, and what was lost.

Builds a synthetic history (bench/make_db.py, --messages messages), exports it as JSONL, then
imports it into a database that people are chatting in: --writers processes each run --turns
`threadline chat --new` turns back to back while `threadline import threadline FILE` runs (and
keeps going until every writer is done). Every turn is judged afterwards:

- lost: chat was started, but its user message is not in the database (must be 0: a writer
  that cannot get the lock waits, saying so on stderr, instead of failing);
- failed: chat exited non-zero (for any reason);
- waited: chat said "waiting for the database" (the import held the lock past a busy timeout).

    python bench/chaos_import_writers.py [--messages 200000] [--writers 8] [--turns 50]

Prints the counts, the import's time and exit status, the longest turn, and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"


@contextlib.contextmanager
def fake_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise SystemExit("the fake server did not start")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Turn:
    writer: int
    n: int
    status: int
    seconds: float
    waited: bool
    stderr: str

    @property
    def message(self) -> str:
        return turn_text(self.writer, self.n)


def turn_text(writer: int, n: int) -> str:
    return f"writer {writer} turn {n}"


def threadline(*args: str) -> list[str]:
    return [sys.executable, "-m", "threadline", *args]


def build_export(tmp: Path, messages: int, env: dict[str, str]) -> Path:
    source = tmp / "source.db"
    sessions = max(10, messages // 20)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "make_db.py"),
            "--out",
            str(source),
            "--sessions",
            str(sessions),
            "--messages",
            str(messages),
            "--dirs",
            "50",
            "--long-sessions",
            "1",
            "--long-size",
            str(min(2000, messages // 10)),
            "--pinned",
            "5",
            "--memories",
            "100",
            "--quiet",
        ],
        check=True,
    )
    export = tmp / "history.jsonl"
    subprocess.run(
        threadline("--db", str(source), "export", "--all", "--output", str(export)),
        check=True,
        env=env,
    )
    return export


def writer(
    n: int, turns: int, env: dict[str, str], workdir: str, out: list[Turn], lock: threading.Lock
) -> None:
    for t in range(turns):
        started = time.monotonic()
        done = subprocess.run(
            threadline("chat", "--new", "--model", "x?tokens=20", turn_text(n, t)),
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        turn = Turn(
            n,
            t,
            done.returncode,
            time.monotonic() - started,
            "waiting for the database" in done.stderr,
            done.stderr,
        )
        with lock:
            out.append(turn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, fake_server() as base_url:
        tmp = Path(tmp_name)
        workdir = tmp / "project"
        workdir.mkdir()
        db = tmp / "live.db"
        env = {
            **os.environ,
            "HOME": str(tmp),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "THREADLINE_DB": str(db),
            "THREADLINE_BASE_URL": base_url,
            "THREADLINE_CONFIG": str(tmp / "none.toml"),
        }
        print(f"building a {args.messages:,}-message export...", flush=True)
        export = build_export(tmp, args.messages, {**env, "THREADLINE_DB": str(tmp / "x.db")})
        subprocess.run(
            threadline("chat", "--new", "--model", "x?tokens=5", "before the import"),
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
        )
        load_before = os.getloadavg()
        turns: list[Turn] = []
        lock = threading.Lock()
        threads = [
            threading.Thread(target=writer, args=(w, args.turns, env, str(workdir), turns, lock))
            for w in range(args.writers)
        ]
        started = time.monotonic()
        importer = subprocess.Popen(
            threadline("import", "threadline", str(export)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for thread in threads:
            thread.start()
        _, import_err = importer.communicate()
        import_seconds = time.monotonic() - started
        for thread in threads:
            thread.join()
        total_seconds = time.monotonic() - started
        load_after = os.getloadavg()
        conn = sqlite3.connect(db)
        saved = {
            row[0]
            for row in conn.execute("SELECT content FROM messages WHERE role = 'user'")
            if row[0].startswith("writer ")
        }
        imported = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    lost = [t for t in turns if t.message not in saved]
    failed = [t for t in turns if t.status != 0]
    waited = [t for t in turns if t.waited]
    durations = [t.seconds for t in turns]
    why = f" ({import_err.strip()[:200]})" if importer.returncode else ""
    print(
        f"import of {args.messages:,} messages: exit {importer.returncode} in "
        f"{import_seconds:.1f} s{why}"
    )
    print(f"{len(turns)} chat turns by {args.writers} writers over {total_seconds:.1f} s")
    print(f"  lost (user message not saved): {len(lost)}")
    print(f"  failed (non-zero exit):        {len(failed)}")
    print(f"  waited for the lock, saying so: {len(waited)}")
    print(
        f"  turn time: median {statistics.median(durations):.2f} s, longest {max(durations):.1f} s"
    )
    print(f"  messages in the database: {imported:,}; integrity_check: {integrity}")
    for t in failed[:3]:
        print(f"  e.g. writer {t.writer} turn {t.n}: {t.stderr.strip()[:200]}")
    print(f"lost {len(lost)}, survived {len(turns) - len(lost)}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    return 1 if lost or integrity != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
