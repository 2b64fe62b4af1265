"""`threadline export` and `threadline import threadline` through the real entry point."""

from __future__ import annotations

import io
import json
import sys

import pytest

from cli.helpers import no_controls
from threadline.store import Store


@pytest.fixture
def history(with_db, clock, workdir) -> dict[str, str]:
    """Two interleaved sessions (payloads, summaries, memories, one in the trash)."""

    async def fill(store: Store) -> dict[str, str]:
        a = await store.create_session(
            workdir, title="Alpha \x1b]0;t\x07", model="m", provider="p", system_prompt="Be brief."
        )
        b = await store.create_session(workdir)
        m1 = await store.add_message(
            a.id, "user", "hello é 漢字", payload={"parts": [{"text": "hello"}], "n": 1.5}
        )
        await store.add_message(b.id, "user", "other session \x9b31m")
        clock.advance(seconds=3)
        m3 = await store.add_message(
            a.id,
            "assistant",
            "reply\n\n```py\nx = 1\n```",
            input_tokens=4,
            output_tokens=9,
            model="m",
            stop_reason="stop",
            response_ms=120,
        )
        await store.add_message(b.id, "assistant", "cut", complete=False, stop_reason="error")
        await store.save_summary(a.id, "Greetings were exchanged.", m1.id, m3.id, 7, "m")
        first = await store.save_memory(
            workdir, "likes brevity", "preference", 4, session_id=a.id, source_message_id=m3.id
        )
        await store.save_memory(
            workdir, "likes short answers", "preference", 5, session_id=a.id, supersedes=first.id
        )
        await store.update_session(b.id, pinned=True, metadata={"k": [1, 2]})
        clock.advance(minutes=1)
        c = await store.create_session(workdir, title="Trashed")
        await store.add_message(c.id, "user", "gone soon")
        await store.delete_session(c.id)
        return {"a": a.id, "b": b.id, "c": c.id}

    return with_db(fill)


def counts(with_db) -> tuple[int, int, int, int]:
    async def run(store: Store):
        info = await store.info()
        return (info.sessions + info.trashed_sessions, info.messages, info.summaries, info.memories)

    return with_db(run)


def test_jsonl_round_trip_is_byte_identical(cli, history, tmp_path):
    first = tmp_path / "first.jsonl"
    r = cli("export", "--all", "--format", "jsonl", "-o", str(first))
    assert r.status == 0 and "Exported 3 sessions, 5 messages" in r.err
    assert oct(first.stat().st_mode & 0o777) == "0o600"
    fresh = tmp_path / "fresh.db"
    r = cli("import", "threadline", str(first), db=fresh)
    assert r.status == 0, r.err
    assert "Imported 3 sessions" in r.out and "5 messages" in r.out
    second = tmp_path / "second.jsonl"
    assert cli("export", "--all", "-o", str(second), db=fresh).status == 0
    assert first.read_bytes() == second.read_bytes()
    # Everything is in the file: payloads, ranges, memory links, trash, pins.
    lines = [json.loads(x) for x in first.read_text().splitlines()]
    assert lines[0] == {"type": "header", "format": "threadline", "version": 2}
    kinds = [x["type"] for x in lines]
    assert kinds.count("session") == 3 and kinds.count("memory") == 2
    message = next(x for x in lines if x["type"] == "message" and x["payload"])
    assert message["payload"] == {"parts": [{"text": "hello"}], "n": 1.5}
    memory = next(x for x in lines if x["type"] == "memory" and x["superseded_by"])
    assert memory["source_message_id"] is not None
    assert any(x["type"] == "session" and x["deleted_at"] for x in lines)
    assert no_controls(first.read_text())  # \u001b and \u009b escapes, not raw bytes


def test_reimport_adds_nothing(cli, history, tmp_path, with_db):
    dump = tmp_path / "all.jsonl"
    cli("export", "--all", "-o", str(dump))
    before = counts(with_db)
    r = cli("import", "threadline", str(dump))
    assert r.status == 0
    assert "Imported 0 sessions" in r.out and "Skipped 3 sessions" in r.out
    assert counts(with_db) == before
    r = cli("import", "threadline", str(dump), "--json")
    data = json.loads(r.out)
    assert data["sessions"] == 0 and len(data["skipped_sessions"]) == 3


def test_json_document_round_trip(cli, history, tmp_path):
    one = tmp_path / "one.json"
    assert cli("export", history["a"][:-4], "--format", "json", "-o", str(one)).status == 0
    doc = json.loads(one.read_text())
    assert list(doc) == ["format", "version", "session", "messages", "summaries", "memories"]
    assert doc["session"]["system_prompt"] == "Be brief."
    assert len(doc["messages"]) == 2 and len(doc["memories"]) == 2
    fresh = tmp_path / "fresh.db"
    r = cli("import", "threadline", str(one), db=fresh)
    assert r.status == 0 and "Imported 1 session" in r.out
    again = tmp_path / "again.json"
    cli("export", history["a"], "--format", "json", "-o", str(again), db=fresh)
    assert one.read_bytes() == again.read_bytes()


def test_import_renumbers_taken_ids_consistently(cli, history, tmp_path, with_db):
    dump = tmp_path / "all.jsonl"
    cli("export", "--all", "-o", str(dump))
    other = tmp_path / "other.db"

    async def occupy(store: Store) -> None:
        s = await store.create_session("/somewhere")
        for i in range(7):
            await store.add_message(s.id, "user", f"taken {i}")

    import asyncio

    async def go() -> None:
        store = await Store.open(other)
        try:
            await occupy(store)
        finally:
            await store.close()

    asyncio.run(go())
    r = cli("import", "threadline", str(dump), "--json", db=other)
    data = json.loads(r.out)
    assert data["sessions"] == 3 and len(data["renumbered_sessions"]) == 3
    show = json.loads(cli("sessions", "show", history["a"], "--json", db=other).out)
    messages = [i for i in show["items"] if i["kind"] == "message"]
    summary = next(i for i in show["items"] if i["kind"] == "summary")
    assert all(m["id"] > 7 for m in messages)
    assert [summary["first_message_id"], summary["last_message_id"]] == [
        messages[0]["id"],
        messages[-1]["id"],
    ]
    assert [m["content"] for m in messages][0] == "hello é 漢字"
    lines = [json.loads(x) for x in cli("export", "--all", db=other).out.splitlines()]
    memories = [x for x in lines if x["type"] == "memory"]
    assert memories[0]["source_message_id"] == messages[-1]["id"]
    assert memories[0]["superseded_by"] == memories[1]["id"]


def _dump_lines(cli, tmp_path) -> list[str]:
    dump = tmp_path / "good.jsonl"
    cli("export", "--all", "-o", str(dump))
    return dump.read_text().splitlines()


@pytest.mark.parametrize(
    ("name", "mutate", "expected"),
    [
        ("bad-json", lambda ls: ls[:3] + ["{not json"] + ls[3:], "line 4: not valid JSON"),
        (
            "wrong-version",
            lambda ls: [ls[0].replace('"version":2', '"version":9')] + ls[1:],
            "version 9 is not supported",
        ),
        (
            "missing-field",
            lambda ls: [x.replace('"role":"assistant",', "", 1) for x in ls],
            "role",
        ),
        (
            "bad-row-in-middle",
            lambda ls: ls[:6] + [ls[6].replace('"role":"', '"role":"wizard')] + ls[7:],
            "line 7",
        ),
        ("no-header", lambda ls: ls[1:], "header"),
        ("empty", lambda ls: [], "empty"),
        (
            "orphan-message",
            lambda ls: [ls[0], next(x for x in ls if '"type":"message"' in x)],
            "does not follow its session",
        ),
        (
            "duplicate-session",
            lambda ls: ls[:2] + ls[1:],
            "appears twice",
        ),
        (
            "bad-timestamp",
            lambda ls: (
                ls[:2] + [ls[2].replace('"created_at":"2026', '"created_at":"yesterday')] + ls[3:]
            ),
            "created_at",
        ),
        (
            "unknown-record",
            lambda ls: ls[:2] + ['{"type":"spaceship","id":1}'] + ls[2:],
            "line 3",
        ),
        (
            "garbage-at-end",
            lambda ls: ls + ["[1, 2, 3]"],
            "line",
        ),
    ],
)
def test_malformed_files_import_nothing(cli, history, tmp_path, name, mutate, expected):
    lines = mutate(_dump_lines(cli, tmp_path))
    bad = tmp_path / f"{name}.jsonl"
    bad.write_text("".join(line + "\n" for line in lines))
    fresh = tmp_path / "fresh.db"
    r = cli("import", "threadline", str(bad), db=fresh)
    assert r.status == 1, r.out
    assert r.err.startswith("threadline: error:") and r.err.count("\n") == 1
    assert expected in r.err and "nothing was imported" in r.err
    data = json.loads(cli("sessions", "list", "--all", "--json", db=fresh).out)
    assert data == []
    assert json.loads(cli("sessions", "trash", "--json", db=fresh).out) == []


def test_malformed_json_document(cli, history, tmp_path):
    doc = tmp_path / "doc.json"
    cli("export", history["a"], "--format", "json", "-o", str(doc))
    data = json.loads(doc.read_text())
    del data["session"]["created_at"]
    doc.write_text(json.dumps(data, indent=2))
    fresh = tmp_path / "fresh.db"
    r = cli("import", "threadline", str(doc), db=fresh)
    assert r.status == 1 and "session.created_at" in r.err
    doc.write_text('{"format": "something-else", "version": 1}')
    r = cli("import", "threadline", str(doc), db=fresh)
    assert r.status == 1 and "not a threadline export" in r.err


def test_import_file_errors(cli, tmp_path):
    r = cli("import", "threadline", str(tmp_path / "missing.jsonl"))
    assert r.status == 1 and "no such file" in r.err
    r = cli("import", "threadline", str(tmp_path))
    assert r.status == 1 and "directory" in r.err
    r = cli("import")
    assert r.status == 2
    r = cli("import", "nonsense", "x")
    assert r.status == 2


def test_import_from_stdin(cli, history, tmp_path, monkeypatch):
    dump = tmp_path / "all.jsonl"
    cli("export", "--all", "-o", str(dump))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(dump.read_bytes())))
    r = cli("import", "threadline", "-", db=tmp_path / "fresh.db")
    assert r.status == 0 and "Imported 3 sessions" in r.out


def test_markdown_export(cli, history, tmp_path):
    r = cli("export", history["a"])
    assert r.status == 0
    md = r.out
    # Control characters are shown, in a pipe as on a terminal: `cat` of the file is harmless.
    assert md.startswith("# Alpha ^[]0;t^G\n") and no_controls(md)
    target = tmp_path / "a.md"
    assert cli("export", history["a"], "-o", str(target)).status == 0
    assert target.read_text() == md
    md_b = cli("export", history["b"]).out
    assert "other session <U+009B>31m" in md_b and no_controls(md_b)
    assert "- Directory: `" in md and "- Model: m (p)" in md
    assert "## User · " in md and "## Assistant · " in md
    assert md.index("hello é 漢字") < md.index("reply")
    assert "```py\nx = 1\n```" in md
    assert "> **Summary** of messages" in md and "> Greetings were exchanged." in md
    assert "> Be brief." in md


def test_a_title_that_is_a_heading_is_not_headed_twice(cli, with_db, workdir):
    async def make(store: Store) -> list[str]:
        ids = []
        for title in ("# Plan for the parser", "## Notes", "#hashtag first", "#"):
            ids.append((await store.create_session(workdir, title=title)).id)
        return ids

    ids = with_db(make)
    heads = [cli("export", i).out.splitlines()[0] for i in ids]
    assert heads == ["# Plan for the parser", "# Notes", "# #hashtag first", "# #"]


def test_an_out_of_range_number_is_a_one_line_error(cli, history, tmp_path):
    lines = _dump_lines(cli, tmp_path)
    at = next(i for i, x in enumerate(lines) if '"input_tokens":4' in x)
    for bad in ("1e30", "1000000000000000000000000000000", "-5"):
        lines_bad = [*lines]
        lines_bad[at] = lines[at].replace('"input_tokens":4', f'"input_tokens":{bad}')
        path = tmp_path / "big.jsonl"
        path.write_text("".join(x + "\n" for x in lines_bad))
        r = cli("import", "threadline", str(path), db=tmp_path / "fresh.db")
        assert r.status == 1 and r.err.count("\n") == 1 and "Traceback" not in r.err
        assert r.err.startswith(f"threadline: error: {path}: line {at + 1}: message.input_tokens")
        assert "nothing was imported" in r.err
    assert (
        json.loads(cli("sessions", "list", "--all", "--json", db=tmp_path / "fresh.db").out) == []
    )


def test_import_json_counts(cli, history, tmp_path):
    dump = tmp_path / "all.jsonl"
    cli("export", "--all", "-o", str(dump))
    r = cli("import", "threadline", str(dump), "--json", db=tmp_path / "fresh.db")
    data = json.loads(r.out)
    assert (data["sessions"], data["updated"], data["messages"], data["skipped"]) == (3, 0, 5, 0)
    assert data["resumed"] is False and data["timings"]["transactions"] >= 2
    again = json.loads(
        cli("import", "threadline", str(dump), "--json", db=tmp_path / "fresh.db").out
    )
    assert (again["sessions"], again["messages"], again["skipped"]) == (0, 0, 3)


def test_markdown_to_a_terminal_is_sanitised(cli, history, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    r = cli("export", history["a"])
    assert no_controls(r.out) and "^[]0;t^G" in r.out


def test_export_several_and_stdout_jsonl(cli, history):
    r = cli("export", history["a"], history["b"], "--format", "jsonl")
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert [x["type"] for x in lines].count("session") == 2
    r = cli("export", history["a"], history["b"])
    assert r.out.count("\n---\n") == 1


def test_export_errors(cli, history, tmp_path):
    r = cli("export")
    assert r.status == 2
    assert cli("export", "--all", "--format", "markdown").status == 2
    assert cli("export", "--all", history["a"]).status == 2
    assert cli("export", history["a"], history["b"], "--format", "json").status == 2
    r = cli("export", "feedface")
    assert r.status == 1 and "no session matches" in r.err
    r = cli("export", history["a"], "-o", str(tmp_path / "nodir" / "x.md"))
    assert r.status == 1 and "no such directory" in r.err
    r = cli("export", history["a"], "-o", str(tmp_path))
    assert r.status == 1 and "is a directory" in r.err
    # Unwritable even for root: sysfs refuses new files.
    r = cli("export", history["a"], "-o", "/sys/threadline-test.md")
    assert r.status == 1 and "cannot write" in r.err and r.err.count("\n") == 1


def test_failed_export_leaves_no_file(cli, history, tmp_path):
    target = tmp_path / "out.json"
    r = cli("export", "0000000", "--format", "json", "-o", str(target))
    assert r.status == 1
    assert not target.exists()
    assert list(tmp_path.glob(".out.json.*")) == []


def test_progress_on_a_terminal_only(cli, history, tmp_path, monkeypatch):
    from cli.helpers import fake_tty

    dump = tmp_path / "all.jsonl"
    r = cli("export", "--all", "-o", str(dump))
    assert "\r" not in r.err  # not a terminal: no bar
    fake_tty(monkeypatch, "stderr")
    r = cli("export", "--all", "-o", str(tmp_path / "again.jsonl"))
    assert "exporting [" in r.err and "\r" in r.err
    r = cli("import", "threadline", str(dump), db=tmp_path / "fresh.db")
    assert "importing: reading [" in r.err and "importing: loading [" in r.err
    # Then where the time went, the load and the indexing apart.
    assert "loaded 5 messages in " in r.err and "; indexed in " in r.err and " in all (" in r.err
    assert r.status == 0
