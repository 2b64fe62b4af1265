"""A machine catching up on many records: its messages go into the search index in one build at
the end (shown as progress), a stopped catch-up leaves the index whole for what it covers, and
the next sync finishes the build."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from sync.helpers import Machine, first_difference, machines, snapshot
from sync.test_kill import run_sync
from threadline.sync import engine
from threadline.sync.engine import INDEXING


async def _chat(m: Machine, tag: str, sessions: int, messages: int) -> None:
    store = m.store
    assert store is not None
    for i in range(sessions):
        session = await store.create_session(m.project, title=f"{tag} {i}")
        for j in range(messages):
            m.clock.tick()
            await store.add_message(session.id, "user", f"{tag}word{i}x{j} and more text")


async def _found(m: Machine, word: str) -> int:
    assert m.store is not None
    return len(await m.store.search(word, limit=1000))


async def test_a_new_machine_indexes_what_it_caught_up_on_once_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "APPLY_BATCH", 20)  # a catch-up of several transactions
    a, b = await machines(tmp_path, 2)
    await a.init()
    await _chat(a, "alpha", 6, 10)
    await a.sync()
    assert b.store is not None
    phases: list[tuple[str, int, int | None]] = []
    report = await engine.init(b.store, str(b.remote_repo), b.options, lambda *p: phases.append(p))
    assert report.applied == 66
    indexing = [p for p in phases if p[0] == INDEXING]
    assert indexing, phases
    assert indexing[-1][1] == indexing[-1][2] == 60  # every message, shown as it went
    # Applying came first, then the build (one, not a piece per transaction).
    assert max(i for i, p in enumerate(phases) if p[0] == "applying") < phases.index(indexing[0])
    assert (await b.store.search_build_state()).finished
    assert await _found(b, "alpha*") == 60
    assert await _found(b, "alphaword3x7") == 1
    assert await b.store.integrity_check() == []
    for m in (a, b):
        await m.close()


async def test_a_machine_with_more_history_than_comes_keeps_indexing_per_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "APPLY_BATCH", 20)
    a, b = await machines(tmp_path, 2)
    await a.init()
    await _chat(a, "alpha", 3, 10)
    await a.sync()
    await _chat(b, "beta", 5, 10)  # 50 messages here against 33 records coming
    phases: list[tuple[str, int, int | None]] = []
    assert b.store is not None
    await engine.init(b.store, str(b.remote_repo), b.options, lambda *p: phases.append(p))
    assert [p for p in phases if p[0] == INDEXING] == []
    assert await _found(b, "alpha*") == 30
    assert await _found(b, "beta*") == 50
    for m in (a, b):
        await m.close()


@pytest.mark.parametrize(("point", "nth"), [("batch", 2), ("indexing", 1)])
def test_a_catch_up_stopped_before_its_index_is_built_is_finished_by_the_next_sync(
    tmp_path: Path, point: str, nth: int
) -> None:
    async def setup() -> list[Machine]:
        a, b = await machines(tmp_path, 2)
        for m in (a, b):
            await m.init()
        await _chat(a, "alpha", 6, 10)
        await a.sync()
        await _chat(b, "beta", 1, 5)
        for m in (a, b):
            await m.close()
        return [a, b]

    a, b = asyncio.run(setup())
    code = run_sync(b, tmp_path, point, nth)  # 20 records a transaction
    assert code == -signal.SIGKILL

    async def stopped() -> None:
        store = await b.open()
        assert await store.integrity_check() == []  # the index is whole for what it holds
        assert not (await store.search_build_state()).finished
        assert await _found(b, "beta*") == 5  # this machine's own messages are still found
        await b.close()

    asyncio.run(stopped())
    # `threadline db index` finishes the build as it does an upgrade's: every message applied
    # so far is found.
    from threadline.cli import main

    assert main(["--db", str(b.db), "db", "index"]) == 0

    async def indexed() -> None:
        store = await b.open()
        assert (await store.search_build_state()).finished
        sessions = await store.list_sessions("all", limit=None)
        applied = sum(s.message_count for s in sessions if (s.title or "").startswith("alpha"))
        assert applied > 0
        assert await _found(b, "alpha*") == applied
        await b.close()

    asyncio.run(indexed())
    run_sync(b, tmp_path)
    run_sync(a, tmp_path)

    async def finished() -> tuple[dict, dict]:
        views = []
        for m in (a, b):
            store = await m.open()
            assert await store.integrity_check() == []
            assert (await store.search_build_state()).finished
            assert await _found(m, "alpha*") == 60
            assert await _found(m, "beta*") == 5
            views.append(await snapshot(store))
            await m.close()
        return views[0], views[1]

    va, vb = asyncio.run(finished())
    assert va == vb, first_difference(va, vb)


@pytest.mark.parametrize("change", ["records", "garbage"])
async def test_a_file_checked_while_git_works_is_checked_again_when_git_changes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Other machines' files are checked while git commits, pulls and pushes: one the pull
    rewrites is read again (more records: all applied; garbage: nothing of it applied)."""
    import subprocess
    import threading

    from sync.test_bad_files import _push_edit

    a, b = await machines(tmp_path, 2)
    for m in (a, b):
        await m.init()
    await _chat(a, "alpha", 2, 5)
    await a.sync()
    # b's clone holds a's records without having applied them (a sync stopped after its pull).
    subprocess.run(["git", "-C", f"{b.db}.sync", "pull", "-q", "--rebase"], check=True)
    if change == "records":
        await _chat(a, "gamma", 1, 4)
        await a.sync()
    else:
        _push_edit(a, "not json at all\n")

    checked = threading.Event()
    check = engine._Early._check

    def check_then_tell(self: engine._Early, *args: Any) -> dict:
        try:
            return check(self, *args)
        finally:
            checked.set()

    def checkpoint(name: str) -> None:
        if name == "written":  # the check is over before git changes anything
            assert checked.wait(30)

    monkeypatch.setattr(engine._Early, "_check", check_then_tell)
    monkeypatch.setattr(engine, "_checkpoint", checkpoint)
    report = await b.sync()
    assert checked.is_set()
    if change == "records":
        assert report.errors == []
        assert await _found(b, "alpha*") == 10
        assert await _found(b, "gamma*") == 4
    else:
        assert len(report.errors) == 1 and "not a valid journal" in report.errors[0]
        assert await _found(b, "alpha*") == 0  # nothing applied from the file
    for m in (a, b):
        await m.close()


@pytest.mark.parametrize(("keep", "reads"), [(None, 1), (3000, 2)])
async def test_each_file_is_read_once_while_what_is_kept_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int | None, reads: int
) -> None:
    """Checked, then applied: a file is read (parsed, decrypted) once when its records fit in
    what a sync keeps in memory, twice when they do not; the result is the same."""
    from collections import Counter

    from threadline.sync import files as journal_files

    if keep is not None:
        monkeypatch.setattr(journal_files, "KEEP_BYTES", keep)
    read = journal_files.read_items
    opened: Counter[str] = Counter()

    def counted(file: journal_files.PeerFile, *args: Any, **kw: Any) -> Any:
        opened[file.rel] += 1
        return read(file, *args, **kw)

    monkeypatch.setattr(journal_files, "read_items", counted)
    a, b = await machines(tmp_path, 2)
    await a.init()
    await _chat(a, "alpha", 4, 10)
    await a.sync()
    assert b.store is not None
    report = await engine.init(b.store, str(b.remote_repo), b.options)
    assert report.applied == 44
    assert list(opened.values()) == [reads]  # a's one journal file
    assert a.store is not None
    va, vb = await snapshot(a.store), await snapshot(b.store)
    assert va == vb, first_difference(va, vb)
    for m in (a, b):
        await m.close()
