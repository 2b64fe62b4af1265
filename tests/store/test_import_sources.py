"""The real readers (threadline.sources) feeding the real loader, on real files of other tools.

The sources' own tests check what they yield against a stand-in loader; these check that the
store takes it as records.py says: a live file read in steps, each read resuming from the mark
the store saved, ends exactly where one whole read does; loading again adds nothing; the index
and counters hold.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sources.helpers import SAMPLES, line_ends, sample, sample_tree
from threadline import sources
from threadline.store import Store

SPOTTER = "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
CODEX_DIR = SAMPLES / "codex"


async def export(store: Store) -> list[dict[str, Any]]:
    """The database's content without what differs between two loads of the same history:
    when it was received, and the session ids of the rows (compared through their sources)."""
    out = io.StringIO()
    await store.export_jsonl(out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    for r in records:
        r.pop("received_at", None)
    return records


def fts_consistent(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'"
            " AND sql NOT LIKE '%fts5vocab%'"
        ).fetchall():
            conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


async def load_file(store: Store, source: Any, path: Path) -> Any:
    marks = await store.source_file_marks(source.name)
    return await store.load_history(source.read(path, mark=marks.get(str(path.resolve()))))


async def test_a_claude_code_session_read_in_steps_ends_as_one_read(tmp_path, clock) -> None:
    source = sources.get("claude-code")
    tree = sample_tree("claude-code/spotter", tmp_path / "samples")
    whole_path = tree / Path(SPOTTER).name
    data = whole_path.read_bytes()
    ends = line_ends(whole_path)
    cuts = [ends[len(ends) // 5], ends[len(ends) // 2] - 40, ends[-3]]  # one mid-line
    target = whole_path  # both stores read the same path (it is in the sessions' metadata)
    once = await Store.open(tmp_path / "once.db", clock=clock)
    steps = await Store.open(tmp_path / "steps.db", clock=clock)
    try:
        first = await load_file(once, source, target)
        assert first.sessions == 1 and first.messages > 100 and first.summaries >= 1
        again = await load_file(once, source, target)
        assert (again.sessions, again.messages, again.updated) == (0, 0, 0)
        reports = []
        for cut in [*cuts, len(data)]:
            target.write_bytes(data[:cut])  # the file as it stood at that moment
            reports.append(await load_file(steps, source, target))
        assert reports[0].sessions == 1 and all(r.sessions == 0 for r in reports[1:])
        assert sum(r.messages for r in reports) == first.messages
        assert await export(steps) == await export(once)
        (session,) = await steps.list_sessions("all")
        assert session.message_count == first.messages
    finally:
        await once.close()
        await steps.close()
    fts_consistent(tmp_path / "steps.db")


async def test_a_chatgpt_export_loads_once_and_a_dry_run_counts_the_same(tmp_path, clock):
    source = sources.get("chatgpt")
    path = sample("chatgpt/conversations.json.gz", tmp_path)
    async with await Store.open(tmp_path / "t.db", clock=clock) as store:
        dry = await store.load_history(source.read(path, working_dir="/home/me"), dry_run=True)
        assert (await store.info()).sessions == 0
        real = await store.load_history(source.read(path, working_dir="/home/me"))
        assert (dry.sessions, dry.messages, dry.summaries) == (
            real.sessions,
            real.messages,
            real.summaries,
        )
        assert real.sessions == 20 and real.failed == 0
        again = await store.load_history(source.read(path, working_dir="/home/me"))
        assert (again.sessions, again.messages, again.skipped) == (0, 0, 20)
        hits = await store.search("Python", limit=5)
        assert hits and all(h.working_dir == "/home/me" for h in hits)
    fts_consistent(tmp_path / "t.db")


@pytest.mark.parametrize(
    "rel", sorted(str(p.relative_to(CODEX_DIR)) for p in CODEX_DIR.rglob("*.jsonl*"))
)
async def test_codex_rollouts_load_and_reload_to_nothing_new(tmp_path, clock, rel) -> None:
    source = sources.get("codex")
    path = sample(f"codex/{rel}", tmp_path)
    if path.parent != tmp_path:
        path = Path(shutil.copyfile(path, tmp_path / path.name))
    async with await Store.open(tmp_path / "t.db", clock=clock) as store:
        first = await load_file(store, source, path)
        assert first.sessions == 1 and first.messages > 0 and first.marks >= 1
        again = await load_file(store, source, path)
        assert (again.sessions, again.messages, again.replaced) == (0, 0, 0)
        (session,) = await store.list_sessions("all")
        assert session.message_count == first.messages
