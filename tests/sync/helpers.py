"""Simulated machines for sync tests: each a database, a clone and a project folder of its own,
all sharing one bare repository on the local disk."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from threadline.store import Store
from threadline.sync import engine
from threadline.sync.engine import SyncOptions


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, ms: int = 7) -> None:
        self.now += timedelta(milliseconds=ms)


START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def make_project(folder: Path, remote: str) -> str:
    """A git checkout of `remote` (only its config matters) at `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "remote", "add", "origin", remote], check=True)
    return str(folder.resolve())


@dataclass
class Machine:
    name: str
    root: Path
    remote_repo: Path
    project: str
    clock: Clock = field(default_factory=lambda: Clock(START))
    store: Store | None = None
    options: SyncOptions = field(default_factory=SyncOptions)

    @property
    def db(self) -> Path:
        return self.root / "threadline.db"

    async def open(self) -> Store:
        self.store = await Store.open(self.db, clock=self.clock)
        return self.store

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def init(self) -> engine.SyncReport:
        assert self.store is not None
        return await engine.init(self.store, str(self.remote_repo), self.options)

    async def sync(self) -> engine.SyncReport:
        assert self.store is not None
        return await engine.sync(self.store, self.options)


async def machines(tmp_path: Path, count: int = 3) -> list[Machine]:
    """`count` machines, each with the project checked out at a different path."""
    out = []
    for i in range(count):
        name = "abc"[i] if i < 3 else f"m{i}"
        root = tmp_path / f"machine-{name}"
        project = make_project(root / "home" / f"work-{name}" / "api", "git@example.org:me/api.git")
        m = Machine(name, root, tmp_path / "remote.git", project)
        await m.open()
        out.append(m)
    return out


async def snapshot(store: Store) -> dict[str, Any]:
    """The store's history as an export, with what differs between machines by design taken
    out: local ids (messages are kept in order, summaries point at message texts), working
    directories (replaced by the project's identity), and local bookkeeping."""
    buf = io.StringIO()
    await store.export_jsonl(buf)
    sessions: dict[str, Any] = {}
    messages: dict[int, dict[str, Any]] = {}
    memories: dict[int, dict[str, Any]] = {}
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    for row in rows:
        if row["type"] == "message":
            messages[row["id"]] = dict(row)
    for row in rows:
        kind = row.pop("type")
        if kind == "session":
            row.pop("working_dir")
            row["metadata"].pop("memory_watermark", None)
            for key in ("preview", "total_input_tokens", "total_output_tokens"):
                row.pop(key, None)
            row["messages"], row["summaries"] = [], []
            sessions[row["id"]] = row
        elif kind == "message":
            ident = row.pop("id")
            row.pop("session_id")
            sessions[messages[ident]["session_id"]]["messages"].append(row)
        elif kind == "summary":
            row.pop("id")
            sid = row.pop("session_id")
            first, last = row.pop("first_message_id"), row.pop("last_message_id")
            # What it stands for: the messages of its range still stored (ids differ by machine).
            row["covers"] = [
                m["content"]
                for ident, m in sorted(messages.items())
                if m["session_id"] == sid and first <= ident <= last
            ]
            sessions[sid]["summaries"].append(row)
        elif kind == "memory":
            memories[row["id"]] = dict(row)
    out_memories = []
    for row in memories.values():
        row = dict(row)
        row.pop("id")
        row.pop("working_dir")
        source = messages.get(row.pop("source_message_id") or 0)
        row["source"] = None if source is None else source["content"]
        target = memories.get(row.pop("superseded_by") or 0)
        row["superseded_by"] = None if target is None else target["fact"]
        out_memories.append(row)
    for session in sessions.values():
        session["summaries"].sort(key=lambda s: (s["created_at"], s["content"]))
    out_memories.sort(key=lambda m: (m["created_at"], m["fact"]))
    return {"sessions": sessions, "memories": out_memories}


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two snapshots first differ (for a readable assertion message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'first' if key in a else 'second'}"
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: {len(a)} items against {len(b)}"
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"
