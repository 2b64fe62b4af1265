"""Chaos: SIGKILL `threadline chat` at random moments of a turn, many times, and count what
survived.

Each run starts `threadline chat --new` against the fake OpenAI-compatible server (a reply of
--tokens tokens, 10 ms apart), reads the reply as the user sees it on stdout (with the time each
piece arrived), and kills the process at a random moment between its start and the reply's end:
before the message is saved, while the request waits, or mid-reply. Then the database is read
the way the app and `sessions list` read it, and every run is judged:

- nothing half-made: no session without messages, no reply without its user message;
- the user's message survived whenever chat had said it was saved ("session ..." on stderr);
- the reply kept everything shown more than a second (+0.3 s of scheduling slack) before the
  kill, and nothing that was not shown;
- the session reads "crashed" at once (the writer is provably gone), with no 30 s wait.

    python bench/chaos_sigkill.py [--runs 100] [--tokens 400] [--seed 1]

Prints the counts and the load average they were measured under.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"
SLACK = 1.3  # the checkpoint interval (1 s) and some scheduling on a busy machine


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
class Run:
    """What one killed `chat` showed before it died."""

    message: str
    pieces: list[tuple[float, str]] = field(default_factory=list)  # (time, text) on stdout
    saved_line: str | None = None  # "session ... (new)" on stderr: the message is saved
    killed_at: float = 0.0

    def shown_before(self, moment: float) -> str:
        return "".join(text for when, text in self.pieces if when <= moment)


def _reader(stream: object, sink: list[tuple[float, str]]) -> None:
    """Record each piece a pipe delivers, with the moment it arrived."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    while True:
        data = os.read(fd, 4096)
        if not data:
            return
        sink.append((time.monotonic(), data.decode("utf-8", errors="replace")))


def one_run(env: dict[str, str], workdir: str, i: int, tokens: int, rng: random.Random) -> Run:
    run = Run(message=f"chaos run {i}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline",
            "chat",
            "--new",
            "--model",
            f"x?tokens={tokens}&delay=0.01",
            run.message,
        ],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    errors: list[tuple[float, str]] = []
    threads = [
        threading.Thread(target=_reader, args=(proc.stdout, run.pieces), daemon=True),
        threading.Thread(target=_reader, args=(proc.stderr, errors), daemon=True),
    ]
    for t in threads:
        t.start()
    # Start-up takes ~0.3-1 s on a busy machine, the reply tokens * 10 ms: kill anywhere in it.
    time.sleep(rng.uniform(0.1, 0.8 + tokens * 0.01))
    run.killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for t in threads:
        t.join(timeout=5)
    text = "".join(piece for _, piece in errors)
    for line in text.splitlines():
        if line.startswith("session "):
            run.saved_line = line
    return run


@dataclass
class Tally:
    runs: int = 0
    before_save: int = 0  # killed before chat said the message was saved
    mid_turn: int = 0
    user_lost: int = 0  # chat said saved, but the message is not there
    empty_sessions: int = 0
    orphan_replies: int = 0
    reply_lost_more_than_a_second: int = 0
    reply_not_shown: int = 0  # saved text that does not continue what was shown
    saved_ahead: int = 0  # saved a token further than the screen (killed between the two)
    crashed_at_once: int = 0
    not_crashed: int = 0
    chars_shown: int = 0
    chars_saved: int = 0


def judge(db: Path, runs: list[Run]) -> Tally:
    from threadline.store import Store

    async def read() -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
        out: dict[str, tuple[str, str, list[tuple[str, str]]]] = {}
        async with await Store.open(db) as store:  # as the app would: nothing waits for 30 s
            for row in await store.list_sessions("all", limit=None):
                messages = await store.get_messages(row.id)
                pairs = [(m.role, m.content) for m in messages]
                out[row.id] = (row.status, row.preview or "", pairs)
        return out

    sessions = asyncio.run(read())
    by_message = {preview: (status, msgs) for status, preview, msgs in sessions.values()}
    tally = Tally(runs=len(runs))
    for _, _, messages in sessions.values():
        if not messages:
            tally.empty_sessions += 1
        elif messages[0][0] != "user":
            tally.orphan_replies += 1
    for run in runs:
        found = by_message.get(run.message)
        if run.saved_line is None:
            tally.before_save += 1
            continue
        tally.mid_turn += 1
        if found is None:
            tally.user_lost += 1
            continue
        status, messages = found
        if status == "crashed":
            tally.crashed_at_once += 1
        else:
            tally.not_crashed += 1
        reply = next((content for role, content in messages if role == "assistant"), "")
        # Everything it wrote to stdout (some of it read only after the kill), and what it had
        # certainly shown more than a second before the kill.
        shown = "".join(text for _, text in run.pieces)
        must = run.shown_before(run.killed_at - SLACK).rstrip("\n")
        tally.chars_shown += len(shown)
        tally.chars_saved += len(reply)
        if not shown.startswith(reply):
            # The reply's row is written with its first token just before that token is printed
            # (and a checkpoint may take a token the print has not reached): a kill between
            # the two leaves one token saved that the screen never got. Anything else is wrong.
            if reply.startswith(shown) and len(reply) - len(shown) <= 8:
                tally.saved_ahead += 1
            else:
                tally.reply_not_shown += 1
        if len(reply) < len(must):
            tally.reply_lost_more_than_a_second += 1
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, fake_server() as base_url:
        home = Path(tmp)
        workdir = home / "project"
        workdir.mkdir()
        db = home / "chaos.db"
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "THREADLINE_DB": str(db),
            "THREADLINE_BASE_URL": base_url,
            "THREADLINE_CONFIG": str(home / "none.toml"),
        }
        runs = []
        load_before = os.getloadavg()
        started = time.monotonic()
        for i in range(args.runs):
            runs.append(one_run(env, str(workdir), i, args.tokens, rng))
        seconds = time.monotonic() - started
        tally = judge(db, runs)
        conn = sqlite3.connect(db)
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    load_after = os.getloadavg()
    t = tally
    print(f"{t.runs} SIGKILLs of `threadline chat` in {seconds:.0f} s")
    print(f"  killed before the message was saved: {t.before_save} (nothing written)")
    print(f"  killed after it was saved:            {t.mid_turn}")
    print(f"    user messages lost:                 {t.user_lost}")
    print(f"    replies missing > 1 s of text:      {t.reply_lost_more_than_a_second}")
    print(f"    replies not continuing the screen:  {t.reply_not_shown}")
    print(f"    saved one token ahead of the screen: {t.saved_ahead}")
    print(f"    shown crashed at once:              {t.crashed_at_once} (not: {t.not_crashed})")
    print(f"    reply characters shown / saved:     {t.chars_shown:,} / {t.chars_saved:,}")
    print(f"  empty sessions:                       {t.empty_sessions}")
    print(f"  replies without their message:        {t.orphan_replies}")
    print(f"  integrity_check:                      {integrity}")
    lost = t.user_lost + t.reply_lost_more_than_a_second + t.empty_sessions + t.orphan_replies
    print(f"lost {lost}, survived {t.runs - lost}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    return 1 if lost or t.reply_not_shown or integrity != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
