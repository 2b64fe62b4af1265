"""Gzip-compressed histories (`.gz`), through `import_source`: each source imports a `.gz` file,
and a directory of them, exactly as the plain file; names (session ids, subagent folders) ignore
the `.gz`; a compressed file is recognised on the next import; a large one is read in steps."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.import_fixtures import (
    chatgpt_conversation,
    claude_ai_conversation,
    codex_rollout,
    gemini_session,
    write_chatgpt,
    write_claude_code,
)
from fakes.clock import FakeClock
from threadline import importing, sources
from threadline.importing import ImportProgress, ImportSummary, import_source
from threadline.store import Store

from .helpers import SAMPLES, sample

SID = "9a2e7c10-0000-4000-8000-00000000000"
CODEX_NAME = "rollout-2026-03-01T09-00-00-{}.jsonl"


def gz(path: Path, *, keep: bool = False) -> Path:
    """`path` gzipped beside it as `<name>.gz` (the plain file removed unless `keep`)."""
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    if not keep:
        path.unlink()
    return out


async def imported(
    db: Path, name: str, path: Path, **kw: Any
) -> tuple[ImportSummary, list[dict[str, Any]]]:
    """Import into the database `db`; what it then holds, without the file names it came from."""
    store = await Store.open(db, clock=FakeClock())
    try:
        summary = await import_source(store, name, path, working_dir=str(db.parent), **kw)
        return summary, await dump(store)
    finally:
        await store.close()


async def dump(store: Store) -> list[dict[str, Any]]:
    out = []
    for s in await store.list_sessions("all", limit=None):
        full = await store.get_session(s.id)
        assert full is not None
        meta = {k: v for k, v in full.metadata.items() if k != "file"}
        messages = [
            (m.role, m.content, m.payload, m.created_at, m.model, m.input_tokens, m.output_tokens)
            for m in await store.get_messages(s.id)
        ]
        out.append(
            {
                "meta": meta,
                "title": full.title,
                "working_dir": full.working_dir,
                "created_at": full.created_at,
                "model": full.model,
                "messages": messages,
            }
        )
    return sorted(out, key=lambda d: json.dumps(d["meta"], sort_keys=True, default=str))


def parts(sessions: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        p
        for s in sessions
        for m in s["messages"]
        if isinstance(m[2], dict)
        for p in m[2].get("parts", [])
        if p["type"] == kind
    ]


# -- one plain history per source, written by hand ----------------------------------------------


def claude_code(root: Path) -> Path:
    return write_claude_code(root, f"{SID}1", "/work/alpha", [("first", "one"), ("next", "two")])


def codex(root: Path) -> Path:
    return codex_rollout(
        root / "2026" / "03" / "01" / CODEX_NAME.format(f"{SID}2"),
        f"{SID}2",
        "/work/beta",
        [("fix it", "fixed"), ("test it", "tested")],
    )


def gemini(root: Path) -> Path:
    path = root / ("0" * 64) / "chats" / "session-2026-02-01T08-00-9a2e7c10.json"
    return gemini_session(path, f"{SID}3", [("hello", "hi there"), ("bye", "see you")])


def chatgpt(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    convs = [chatgpt_conversation(f"c{n}", f"Chat {n}", [("q", "a"), ("q2", "a2")]) for n in (1, 2)]
    return write_chatgpt(root / "conversations.json", convs)


def claude_ai(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    convs = [claude_ai_conversation(f"u{n}", f"Talk {n}", [("q", "a")]) for n in (1, 2)]
    path = root / "conversations.json"
    path.write_text(json.dumps(convs))
    return path


WRITERS: dict[str, Callable[[Path], Path]] = {
    "claude-code": claude_code,
    "codex": codex,
    "gemini-cli": gemini,
    "chatgpt": chatgpt,
    "claude-ai": claude_ai,
}


@pytest.mark.parametrize("source", list(WRITERS))
async def test_a_gz_file_and_a_directory_of_them_import_as_the_plain_file(tmp_path, source):
    plain = WRITERS[source](tmp_path / "plain")
    _, want = await imported(tmp_path / "plain.db", source, plain)
    assert want and all(s["messages"] for s in want)

    packed = gz(WRITERS[source](tmp_path / "packed"))
    summary, got = await imported(tmp_path / "file.db", source, packed)
    assert summary.errors == [] and got == want

    seen: list[ImportProgress] = []
    summary, got = await imported(
        tmp_path / "dir.db", source, tmp_path / "packed", progress=seen.append
    )
    assert summary.files == 1 and summary.errors == [] and got == want
    assert seen[-1].bytes_done == seen[-1].bytes_total == packed.stat().st_size

    again, got = await imported(tmp_path / "dir.db", source, tmp_path / "packed")
    assert (again.unchanged, again.sessions, again.messages) == (1, 0, 0)
    assert again.skipped == len(want) and got == want


async def test_a_history_gzipped_after_its_import_adds_nothing(tmp_path):
    """The compressed file of a session already in is the same session: nothing twice."""
    roots = {"codex": tmp_path / "codex", "claude-code": tmp_path / "claude"}
    codex(roots["codex"])
    claude_code(roots["claude-code"])
    for source, root in roots.items():
        _, want = await imported(tmp_path / "t.db", source, root)
    assert len(want) == 2
    for path in list(tmp_path.rglob("*.jsonl")):
        gz(path)
    for source, root in roots.items():
        summary, got = await imported(tmp_path / "t.db", source, root)
        assert (summary.files, summary.sessions, summary.updated, summary.messages) == (1, 0, 0, 0)
        assert summary.skipped == 1 and got == want


async def test_session_ids_taken_from_the_name_ignore_the_gz(tmp_path):
    """Without an id inside (no session_meta, no sessionId), the name gives it: without `.gz`."""
    rollout = codex(tmp_path / "c")
    rollout.write_text("".join(rollout.read_text().splitlines(keepends=True)[1:]))
    transcript = claude_code(tmp_path / "cc")
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    for obj in lines:
        obj.pop("sessionId", None)
    transcript.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    for source, path, sid in (
        ("codex", gz(rollout), f"{SID}2"),
        ("claude-code", gz(transcript), f"{SID}1"),
    ):
        _, got = await imported(tmp_path / f"{source}.db", source, path)
        assert [s["meta"]["source_id"] for s in got] == [sid]


# -- the real samples, as they are (compressed) and unpacked --------------------------------------


@pytest.mark.parametrize(
    ("source", "rel"),
    [
        ("codex", "codex/codemie-code"),
        ("codex", "codex/codex-session-view"),
        ("chatgpt", "chatgpt/conversations.json.gz"),
        ("claude-ai", "claude-ai/nexus-ai-chat-importer/conversations.json.gz"),
        ("gemini-cli", "gemini-cli/vibecodingtracker/gemini.jsonl.gz"),
        (
            "claude-code",
            "claude-code/claude-code-viewer/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl.gz",
        ),
    ],
)
async def test_the_real_compressed_samples_import_as_unpacked(tmp_path, source, rel):
    given = SAMPLES / rel
    if given.is_file():
        plain = sample(rel, tmp_path / "unpacked")
    else:
        for f in given.iterdir():
            sample(f"{rel}/{f.name}", tmp_path / "unpacked")
        plain = tmp_path / "unpacked" / rel
    assert not list(plain.parent.rglob("*.gz"))
    _, want = await imported(tmp_path / "plain.db", source, plain)
    summary, got = await imported(tmp_path / "gz.db", source, given)
    assert summary.errors == [] and want and got == want


async def test_a_compressed_transcript_finds_its_compressed_subagents(tmp_path):
    """The 1,512-line Claude Code session as the samples keep it (`<id>.jsonl.gz`, beside it
    `<id>/subagents/agent-a2898e3.jsonl.gz` and `agent-acompact-e1f845.jsonl`) imports as the
    same tree unpacked: both subagents are found under the name without `.gz`."""
    rel = "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569"
    given = SAMPLES / f"{rel}.jsonl.gz"
    plain = sample(f"{rel}.jsonl.gz", tmp_path)
    sample(f"{rel}/subagents/agent-a2898e3.jsonl.gz", tmp_path)
    shutil.copyfile(
        SAMPLES / rel / "subagents" / "agent-acompact-e1f845.jsonl",
        tmp_path / rel / "subagents" / "agent-acompact-e1f845.jsonl",
    )
    _, want = await imported(tmp_path / "plain.db", "claude-code", plain)
    summary, got = await imported(tmp_path / "gz.db", "claude-code", given)
    assert summary.errors == [] and got == want
    agents = {p["agent"] for p in parts(got, "subagent")}
    assert len(agents) >= 2, agents  # the Explore agent (.gz) and the compaction agent


# -- big files: read in steps, checked whole first ------------------------------------------------


async def test_a_large_gz_file_is_checked_then_read_as_the_plain_one(tmp_path, monkeypatch):
    """Over BUFFER_BYTES (of what it holds, not of its compressed size) a file is read twice,
    a check then the load, holding nothing between: the same for a .gz file."""
    monkeypatch.setattr(importing, "BUFFER_BYTES", 2000)
    turns = [(f"prompt {n}", f"reply {n} " + "x" * 200) for n in range(40)]
    plain = codex_rollout(tmp_path / "p" / CODEX_NAME.format(f"{SID}4"), f"{SID}4", "/w", turns)
    packed = gz(codex_rollout(tmp_path / "z" / plain.name, f"{SID}4", "/w", turns))
    assert packed.stat().st_size < importing.BUFFER_BYTES < plain.stat().st_size
    results = []
    for path in (plain, packed):
        reads: list[Path] = []
        summary, got = await imported(
            tmp_path / f"{path.suffix}.db", "codex", path, source=Counting("codex", reads)
        )
        assert summary.messages == 80 and reads == [path, path]
        results.append(got)
    assert results[0] == results[1]


class Counting:
    """A source's reader that notes each file it is asked to read."""

    def __init__(self, name: str, reads: list[Path]) -> None:
        self.reader = sources.get(name)
        self.name, self.live = self.reader.name, self.reader.live
        self.default_path, self.discover = self.reader.default_path, self.reader.discover
        self.reads = reads

    def read(self, path: Path, **kw: Any) -> Any:
        self.reads.append(path)
        return self.reader.read(path, **kw)
