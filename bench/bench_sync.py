"""Sync benchmarks: a new machine catching up, an incremental sync with nothing new, and what
change capture costs a bulk import. Prints medians with the load average.

    python bench/bench_sync.py                      # 10,000 sessions / 200,000 messages
    python bench/bench_sync.py --sessions 1000 --messages 20 --runs 3

The repository is synthetic: three machines' journals written straight in the record format
(store/journal.py), pushed to a bare repository on the local disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

WORDS = (
    "the a model reply function class test error value file path sync record merge index query"
    " session message summary memory project branch commit push pull rebase apply journal"
).split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


def _session(sid: str, at: str, s: int, title: str) -> dict:
    return {
        "op": "session",
        "id": sid,
        "created_at": at,
        "updated_at": at,
        "working_dir": f"/home/me/src/p{s % 50}",
        "project_remote": f"example.org/me/p{s % 50}",
        "project_path": "",
        "title": title,
        "status": "active",
        "pinned": False,
        "metadata": {},
    }


def _message(uid: str, sid: str, j: int, created: str, content: str) -> dict:
    return {
        "op": "message",
        "uid": uid,
        "session": sid,
        "role": "user" if j % 2 == 0 else "assistant",
        "content": content,
        "payload": None,
        "created_at": created,
        "input_tokens": None,
        "output_tokens": None,
        "model": None,
        "stop_reason": None,
        "response_ms": None,
        "complete": True,
    }


def build_repository(tmp: Path, sessions: int, per_session: int) -> tuple[Path, int]:
    """A bare repository holding three machines' journals; returns it and the message count."""
    rng = random.Random(7)
    remote = tmp / "remote.git"
    _git("init", "-q", "--bare", "--initial-branch=main", str(remote), cwd=tmp)
    work = tmp / "writer"
    _git("clone", "-q", str(remote), str(work), cwd=tmp)
    machines = [f"{i:016x}" for i in (0xA1, 0xB2, 0xC3)]
    seqs = dict.fromkeys(machines, 0)
    lines: dict[str, list[str]] = {m: [] for m in machines}
    total = 0
    for s in range(sessions):
        machine = machines[s % 3]
        sid = f"01a20000-{s // 65536:04x}-7{s % 4096:03x}-8000-{s:012x}"
        at = f"2026-11-{1 + s % 28:02d}T{s % 24:02d}:{s % 60:02d}:00.000Z"
        records = [_session(sid, at, s, _text(rng, 4))]
        for j in range(per_session):
            created = f"{at[:17]}{j // 1000:02d}.{j % 1000:03d}Z"
            uid = f"{machine}:{seqs[machine] + len(records)}"
            records.append(_message(uid, sid, j, created, _text(rng, rng.randint(10, 60))))
            total += 1
        for record in records:
            seqs[machine] += 1
            lines[machine].append(json.dumps({"v": 1, "seq": seqs[machine], "at": at, **record}))
    _write_export(tmp / "same-history.jsonl", lines)
    for machine, body in lines.items():
        folder = work / "machines" / machine
        folder.mkdir(parents=True)
        (folder / "2026-11.jsonl").write_text("\n".join(body) + "\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-qm", "history", cwd=work)
    _git("push", "-q", "origin", "HEAD:main", cwd=work)
    return remote, total


def _write_export(path: Path, lines: dict[str, list[str]]) -> None:
    """The same history as a threadline export (the yardstick: the store's bulk import)."""
    sessions: dict[str, dict] = {}
    messages: dict[str, list[dict]] = {}
    for body in lines.values():
        for line in body:
            record = json.loads(line)
            if record["op"] == "session":
                sessions[record["id"]] = record
            else:
                messages.setdefault(record["session"], []).append(record)
    next_id = 1
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "format": "threadline", "version": 1}) + "\n")
        for sid, rec in sessions.items():
            row = {k: rec[k] for k in ("id", "working_dir", "title", "status", "pinned")}
            row.update(type="session", created_at=rec["created_at"], updated_at=rec["updated_at"])
            out.write(json.dumps(row) + "\n")
            for m in messages.get(sid, []):
                msg = {k: m[k] for k in ("role", "content", "created_at", "complete")}
                msg.update(type="message", id=next_id, session_id=sid)
                next_id += 1
                out.write(json.dumps(msg) + "\n")


def bulk_import(tmp: Path, run: int) -> float:
    """Seconds the store's bulk import takes for the same history (into an empty database)."""
    from threadline.store import Store

    async def go() -> float:
        (tmp / f"yard{run}").mkdir()
        store = await Store.open(tmp / f"yard{run}" / "t.db")
        try:
            started = time.perf_counter()
            with open(tmp / "same-history.jsonl", "rb") as fh:
                await store.import_export(fh, "same-history.jsonl")
            return time.perf_counter() - started
        finally:
            await store.close()

    return asyncio.run(go())


def tl(db: Path, *args: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "threadline", "--db", str(db), *args],
        cwd=cwd, check=True, capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    return time.perf_counter() - started


def catch_up(tmp: Path, remote: Path, messages: int, runs: int) -> None:
    """A new machine joins: clone, check and apply everything (`sync init`)."""
    from threadline.store import Store
    from threadline.sync import engine

    walls, applies, yards = [], [], []
    for run in range(runs):
        yards.append(bulk_import(tmp, run))
        db = tmp / f"new{run}" / "t.db"
        db.parent.mkdir(exist_ok=True)
        marks: dict[str, float] = {}

        def progress(phase: str, done: int, total: int | None, marks: dict = marks) -> None:
            marks.setdefault(phase, time.perf_counter())
            marks[phase + " end"] = time.perf_counter()

        async def go(db: Path = db, progress: engine.Progress = progress) -> float:
            store = await Store.open(db)
            try:
                started = time.perf_counter()
                await engine.init(store, str(remote), engine.SyncOptions(), progress)
                return time.perf_counter() - started
            finally:
                await store.close()

        walls.append(asyncio.run(go()))
        conn = sqlite3.connect(db)
        got = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        conn.close()
        assert got == messages, (got, messages)
        applies.append(marks["applying end"] - marks["applying"])
    wall = statistics.median(walls)
    print(
        f"new machine catching up on {messages:,} messages: median {wall:.2f} s"
        f" = {messages / wall:,.0f} messages/s (clone, check and apply; progress shown),"
        f" apply phase {messages / statistics.median(applies):,.0f} messages/s"
        f"   load {os.getloadavg()}"
    )
    yard = statistics.median(yards)
    print(
        f"  yardstick, the store's bulk import of the same history (`threadline import`):"
        f" {messages / yard:,.0f} messages/s; catch-up takes {wall / yard:.2f}x its time"
    )


def incremental(tmp: Path, remote: Path, runs: int) -> None:
    db = tmp / "new0" / "t.db"
    clone = Path(f"{db}.sync")
    ours, yard = [], []
    for _ in range(runs):
        ours.append(tl(db, "sync", cwd=tmp))
        started = time.perf_counter()  # git's own part of a sync with nothing new
        for args in (
            ["status", "--porcelain"],
            ["fetch", "-q", "origin"],
            ["rebase", "-q", "origin/main"],
            ["rev-list", "--count", "origin/main..HEAD"],
        ):
            subprocess.run(["git", *args], cwd=clone, check=True, capture_output=True)
        yard.append(time.perf_counter() - started)
    start = tl(db, "sessions", "list", "--limit", "1", cwd=tmp)
    print(
        f"incremental sync, nothing new: median {statistics.median(ours):.3f} s, of which git"
        f" ~{statistics.median(yard):.3f} s; a bare `sessions list` process {start:.3f} s"
        f"   load {os.getloadavg()}"
    )


def capture_cost(tmp: Path, runs: int) -> None:
    """Per message, the bulk path's cost of the sync triggers (loader drops its own triggers)."""
    from threadline.store.migrate import load_migrations, split_statements

    text = _text(random.Random(1), 40)

    def fresh(capture: int | None) -> sqlite3.Connection:
        path = tmp / f"cap-{capture}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        for migration in load_migrations():
            if capture is None and migration.name == "sync":
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
        if capture is not None:
            conn.execute("UPDATE sync_state SET capture = ?", (capture,))
        for name in ("messages_count_ai", "messages_fts_ai", "search_messages_ai"):  # as bulk does
            conn.execute(f"DROP TRIGGER {name}")
        conn.executemany(
            "INSERT INTO sessions (id, working_dir, created_at, updated_at)"
            " VALUES (?, '/p', 'x', 'x')",
            [(f"s{i}",) for i in range(100)],
        )
        return conn

    n = 50_000
    results: dict[str, list[float]] = {"no sync schema": [], "capture off": [], "capture on": []}
    for _ in range(3 * runs):
        for label, capture in (("no sync schema", None), ("capture off", 0), ("capture on", 1)):
            conn = fresh(capture)
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO messages (session_id, role, content, created_at)"
                " VALUES (?, 'user', ?, '2026-11-23T09:00:00.000Z')",
                ((f"s{i % 100}", text) for i in range(n)),
            )
            conn.execute("COMMIT")
            results[label].append((time.perf_counter() - started) / n * 1e6)
            conn.close()
    base, floor = statistics.median(results["no sync schema"]), min(results["no sync schema"])
    for label, values in results.items():
        med, low = statistics.median(values), min(values)
        print(
            f"bulk insert, {label:15s}: median {med:6.2f} us/message ({med - base:+.2f}),"
            f" best {low:6.2f} ({low - floor:+.2f})"
        )
    print(f"   load {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20, help="per session")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=0, help="records per apply transaction")
    args = parser.parse_args()
    if args.batch:
        from threadline.sync import engine

        engine.APPLY_BATCH = args.batch
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["HOME"] = str(tmp)
        os.environ["XDG_CONFIG_HOME"] = str(tmp / "cfg")
        os.environ["XDG_DATA_HOME"] = str(tmp / "data")
        if not args.batch:
            capture_cost(tmp, args.runs)
        remote, total = build_repository(tmp, args.sessions, args.messages)
        catch_up(tmp, remote, total, args.runs)
        incremental(tmp, remote, max(5, args.runs))


if __name__ == "__main__":
    main()
