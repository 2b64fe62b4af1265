"""threadline.importing.import_source, the layer the import commands and live capture share:
progress, per-file errors, files skipped by stat, and the errors for nowhere to import from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.import_fixtures import claude_code_lines, write_claude_code
from threadline import sources
from threadline.importing import ImportPathError, ImportProgress, import_source
from threadline.records import SourceFormatError
from threadline.store import Store

SID = "5e551011-0000-4000-8000-00000000000"


async def test_progress_ends_at_every_byte_and_counts_as_it_goes(store: Store, tmp_path):
    root = tmp_path / "projects"
    for n in range(4):
        write_claude_code(root, f"{SID}{n}", f"/work/p{n}", [("p", "r")] * (n + 1))
    seen: list[ImportProgress] = []
    summary = await import_source(store, "claude-code", root, progress=seen.append)
    assert (summary.sessions, summary.messages) == (4, 30)
    last = seen[-1]
    assert last.phase == "loading" and last.files_done == last.files_total == 4
    assert last.bytes_done == last.bytes_total == sum(p.stat().st_size for p in root.rglob("*.*"))
    assert last.messages == 30 and last.sessions == 4
    done = [p.bytes_done for p in seen]
    assert done == sorted(done)  # never goes back


async def test_a_bad_file_in_a_directory_is_reported_and_the_rest_goes_in(store: Store, tmp_path):
    root = tmp_path / "projects"
    write_claude_code(root, f"{SID}1", "/work/a", [("p", "r")])
    bad = root / "-work-b" / "bad.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"type": "summary"}\n[]\n')
    reported: list[tuple[str, str]] = []
    summary = await import_source(
        store, "claude-code", root, on_file_error=lambda *a: reported.append(a)
    )
    assert summary.sessions == 1 and summary.failed == 1
    assert reported == [(str(bad), f"{bad}, line 2: not a JSON object")]
    assert summary.errors == [reported[0][1]]


async def test_one_bad_file_raises_before_anything_is_written(store: Store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(claude_code_lines(f"{SID}1", "/w", [("p", "r")])) + "{oops\n")
    with pytest.raises(SourceFormatError, match="line 7: not valid JSON"):
        await import_source(store, "claude-code", bad)
    assert await store.list_sessions("all") == []


async def test_unchanged_files_are_not_read_and_a_grown_subagent_is(store: Store, tmp_path):
    root = tmp_path / "projects"
    path = write_claude_code(root, f"{SID}1", "/work/a", [("p", "r")])
    source = sources.get("claude-code")
    first = await import_source(store, "claude-code", root, source=source)
    assert first.sessions == 1

    class Refuses:  # any attempt to read the file fails the test
        name, live = source.name, source.live
        default_path, discover = source.default_path, source.discover

        def read(self, *a, **k):  # pragma: no cover - must not be called
            raise AssertionError("an unchanged file was read")

    again = await import_source(store, "claude-code", root, source=Refuses())  # type: ignore[arg-type]
    assert (again.unchanged, again.skipped, again.messages) == (1, 1, 0)
    # A subagent transcript beside it written after the last read: the session is read again.
    agents = path.with_suffix("") / "subagents"
    agents.mkdir(parents=True)
    (agents / "agent-x.jsonl").write_text("")
    later = path.stat().st_mtime_ns + 10**9
    os.utime(agents / "agent-x.jsonl", ns=(later, later))
    third = await import_source(store, "claude-code", root, source=source)
    assert third.unchanged == 0 and third.skipped == 1


async def test_nowhere_to_import_from(store: Store, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    with pytest.raises(ImportPathError, match="nothing at its default location .*codex/sessions"):
        await import_source(store, "codex")
    with pytest.raises(ImportPathError, match="give the export file"):
        await import_source(store, "chatgpt")
    with pytest.raises(ImportPathError, match="no such directory"):
        await import_source(store, "chatgpt", tmp_path, working_dir=str(tmp_path / "gone"))
    with pytest.raises(ImportPathError, match="unknown source"):
        await import_source(store, "myspace", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    summary = await import_source(store, "claude-code", empty)
    assert (summary.files, summary.sessions) == (0, 0)
    not_ours = tmp_path / "notes.txt"
    not_ours.write_text("hello\n")
    with pytest.raises(SourceFormatError, match="notes.txt, line 1: not valid JSON"):
        await import_source(store, "codex", not_ours)


def test_the_path_must_exist(tmp_path: Path) -> None:
    import asyncio

    async def go() -> None:
        async with await Store.open(tmp_path / "t.db") as store:
            with pytest.raises(ImportPathError, match="no such file or directory"):
                await import_source(store, "llm", tmp_path / "logs.db")

    asyncio.run(go())


async def test_a_summary_line_titles_a_session_from_a_later_file(store: Store, tmp_path):
    """A resumed Claude Code session starts with a `summary` line naming the last line of the
    session it came from; that file may come later in the directory's order."""
    import json

    folder = tmp_path / "projects" / "-work-a"
    older = write_claude_code(tmp_path / "projects", f"{SID}9", "/work/a", [("old", "work")])
    leaf = json.loads(older.read_text().splitlines()[-1])["uuid"]
    newer = folder / f"{SID}0.jsonl"  # sorts first
    newer.write_text(
        json.dumps({"type": "summary", "summary": "Parser rewrite", "leafUuid": leaf})
        + "\n"
        + "".join(claude_code_lines(f"{SID}0", "/work/a", [("go on", "ok")]))
    )
    summary = await import_source(store, "claude-code", tmp_path / "projects")
    assert summary.sessions == 2 and summary.titled == 1
    (titled,) = [s for s in await store.list_sessions("all") if s.title == "Parser rewrite"]
    assert titled.preview.startswith("old")


async def test_an_unchanged_export_is_not_read_again(store: Store, tmp_path):
    from cli.import_fixtures import chatgpt_conversation, write_chatgpt

    export = write_chatgpt(
        tmp_path / "conversations.json",
        [chatgpt_conversation(f"c{n}", f"T{n}", [("q", "a")]) for n in range(3)],
    )
    first = await import_source(store, "chatgpt", export, working_dir=str(tmp_path))
    assert (first.sessions, first.messages, first.unchanged) == (3, 6, 0)
    source = sources.get("chatgpt")

    class Refuses:
        name, live = source.name, source.live
        default_path, discover = source.default_path, source.discover

        def read(self, *a, **k):  # pragma: no cover - must not be called
            raise AssertionError("an unchanged export was read")

    again = await import_source(
        store,
        "chatgpt",
        tmp_path,  # the directory holding it: the same file, found by its name
        working_dir=str(tmp_path),
        source=Refuses(),  # type: ignore[arg-type]
    )
    assert (again.unchanged, again.skipped, again.sessions, again.messages) == (1, 3, 0, 0)
    # A newer export saved over it is read (and adds only what is new).
    write_chatgpt(export, [chatgpt_conversation(f"c{n}", f"T{n}", [("q", "a")]) for n in range(4)])
    newer = await import_source(store, "chatgpt", export, working_dir=str(tmp_path))
    assert (newer.unchanged, newer.sessions, newer.skipped, newer.messages) == (0, 1, 3, 2)


async def test_llm_written_in_wal_mode_since_the_last_import_is_read_again(store, tmp_path):
    """llm's logs.db in WAL mode: new rows sit in logs.db-wal, the database file unchanged."""
    import shutil
    import sqlite3

    logs = tmp_path / "logs.db"
    shutil.copyfile(Path(__file__).parent / "sources" / "data" / "llm" / "llm-0.26.db", logs)
    llm = sqlite3.connect(logs)  # llm itself, still running
    try:
        llm.execute("PRAGMA journal_mode=WAL")
        first = await import_source(store, "llm", logs, working_dir=str(tmp_path))
        assert first.sessions > 0
        before = logs.stat()
        cols = [r[1] for r in llm.execute("PRAGMA table_info(responses)")]
        row = dict(zip(cols, llm.execute("SELECT * FROM responses").fetchone(), strict=True))
        row.update(id="01zzzzzzzzzzzzzzzzzzzzzzzz", prompt="one more", response="echo: one more")
        llm.execute(
            f"INSERT INTO responses ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            list(row.values()),
        )
        llm.commit()
        assert (logs.stat().st_size, logs.stat().st_mtime_ns) == (
            before.st_size,
            before.st_mtime_ns,
        )
        again = await import_source(store, "llm", logs, working_dir=str(tmp_path))
        assert (again.unchanged, again.updated, again.messages) == (0, 1, 2)
    finally:
        llm.close()
