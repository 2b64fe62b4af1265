"""Shared by the source tests: where the real samples are, and a stand-in for the loader."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from threadline.records import (
    MESSAGE_KINDS,
    PART_TYPES,
    FileMark,
    IncomingMessage,
    IncomingSession,
    IncomingSummary,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = (ROOT / ".." / "shared" / "import-samples").resolve()
DATA = Path(__file__).resolve().parent / "data"

HOSTILE = "[bold red]not markup[/] \x1b[2J\x1b]0;pwned\x07 [@click=app.quit]x[/] \x9b31m"


def sample(rel: str, into: Path) -> Path:
    """The sample at `rel` (under import-samples), unpacked into `into` when it is a .gz."""
    src = SAMPLES / rel
    if src.suffix != ".gz":
        return src
    dst = into / Path(rel).with_suffix("")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(src, "rb") as fh, open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)
    return dst


def check_contract(batches: Iterable[IncomingSession], *, dump: bool = True) -> None:
    """Everything a source yields respects records.py (`dump`: and its payloads are JSON)."""
    for b in batches:
        assert b.created_at.tzinfo is not None
        json.dumps(b.metadata)
        if b.mark is not None:
            json.dumps(b.mark.state)
        for m in b.messages:
            assert isinstance(m, IncomingMessage)
            assert m.created_at.tzinfo is not None, m.key
            assert m.role in ("system", "user", "assistant", "tool")
            assert m.payload["kind"] in MESSAGE_KINDS
            assert m.payload["source"] == b.source
            assert isinstance(m.payload["records"], list) and m.payload["records"]
            for p in m.payload["parts"]:
                assert p["type"] in PART_TYPES, p
            assert m.content != "", (m.key, m.payload["parts"])
            if dump:
                json.dumps(m.payload)
        keys = [m.key for m in b.messages]
        assert len(keys) == len(set(keys)), "a key twice in one batch"


_MSG_FIELDS = dataclasses.fields(IncomingMessage)
_SUM_FIELDS = dataclasses.fields(IncomingSummary)


class FakeLoader:
    """What records.py says the loader does with batches, in memory: sessions by
    (source, source_id), messages by key in first-seen order, replaced when they differ."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.marks: dict[str, FileMark] = {}

    def load(self, batches: Iterable[IncomingSession]) -> None:
        for b in batches:
            sid = (b.source, b.source_id)
            if b.title_only:
                if sid in self.sessions:
                    self.sessions[sid]["title"] = b.title
                else:
                    self.sessions.setdefault(("pending-title",) + sid, {"title": b.title})
                continue
            s = self.sessions.setdefault(
                sid, {"messages": {}, "summaries": [], "title": None, "meta": None}
            )
            pending = self.sessions.pop(("pending-title",) + sid, None)
            if pending and s["title"] is None:
                s["title"] = pending["title"]
            if b.title is not None:
                s["title"] = b.title
            s["meta"] = (b.working_dir, b.created_at, b.model, b.system_prompt)
            for m in b.messages:  # what the loader keeps of a message (no deep copies: slow)
                s["messages"][m.key] = tuple(getattr(m, f.name) for f in _MSG_FIELDS)
            for summary in b.summaries:
                s["summaries"].append(tuple(getattr(summary, f.name) for f in _SUM_FIELDS))
            if b.mark is not None:
                self.marks[b.mark.path] = b.mark

    def state(self) -> dict[Any, Any]:
        return {
            k: {
                "messages": list(v["messages"].items()),
                "summaries": v["summaries"],
                "title": v["title"],
                "meta": v["meta"],
            }
            for k, v in self.sessions.items()
        }


def read_all(source: Any, path: Path, **kw: Any) -> list[IncomingSession]:
    batches = list(source.read(path, **kw))
    check_contract(batches)
    return batches


def sample_tree(rel: str, into: Path) -> Path:
    """A copy of the sample directory `rel` in `into`, .gz files unpacked (the tests need the
    files side by side, as the tool lays them out)."""
    src = SAMPLES / rel
    dst = into / Path(rel).name
    for f in sorted(src.rglob("*")):
        if not f.is_file():
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".gz":
            with gzip.open(f, "rb") as fh, open(target.with_suffix(""), "wb") as out:
                shutil.copyfileobj(fh, out)
        else:
            shutil.copyfile(f, target)
    return dst


def read_in_steps(source: Any, path: Path, cuts: Iterable[int]) -> FakeLoader:
    """Grow a copy of `path` to each byte offset in `cuts` (then to its full size), reading it
    with the saved mark after each step, as live capture does."""
    data = path.read_bytes()
    live = path.with_name(path.name)  # same name: the session id may be the file stem
    grown = live.parent / "grown"
    grown.mkdir(exist_ok=True)
    target = grown / live.name
    subagents = path.with_suffix("") / "subagents"
    if subagents.is_dir():
        shutil.copytree(subagents, target.with_suffix("") / "subagents", dirs_exist_ok=True)
    loader = FakeLoader()
    target.write_bytes(b"")
    steps = [*cuts, len(data)]
    for n, cut in enumerate(steps):
        with open(target, "r+b") as fh:
            fh.seek(0, 2)
            have = fh.tell()
            fh.write(data[have:cut])
        mark = loader.marks.get(str(target.resolve()))
        batches = list(source.read(target, mark=mark))
        check_contract(batches, dump=n == len(steps) - 1)
        loader.load(batches)
    shutil.rmtree(grown)
    return loader


def line_ends(path: Path) -> list[int]:
    data = path.read_bytes()
    out, pos = [], 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return out
        out.append(nl + 1)
        pos = nl + 1


def load_once(source: Any, path: Path) -> FakeLoader:
    loader = FakeLoader()
    loader.load(read_all(source, path))
    return loader
