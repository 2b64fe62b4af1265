"""`threadline import claude-code|codex|chatgpt|claude-ai|llm|gemini-cli` through the real entry
point: default locations, --dir, --json, --dry-run, bad input leaving the database byte-identical,
directories going in file by file, re-imports and grown files, progress, hostile text."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.helpers import Result, fake_tty, no_controls
from cli.import_fixtures import (
    HOSTILE,
    chatgpt_conversation,
    claude_ai_conversation,
    claude_code_lines,
    codex_rollout,
    gemini_session,
    write_chatgpt,
    write_claude_code,
)
from threadline import importing
from threadline.cli import import_history

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = (ROOT / ".." / "shared" / "import-samples").resolve()
LLM_DBS = ROOT / "tests" / "sources" / "data" / "llm"
SID = "0b1c2d3e-0000-4000-8000-000000000001"
COUNTS = ("sessions", "updated", "messages", "skipped")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway HOME, and no tool's own location variable leaking in from the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "LLM_USER_PATH", "GEMINI_CLI_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def unpacked(rel: str, into: Path) -> Path:
    """A sample from ../shared/import-samples; a .gz one unpacked into `into` (never the repo)."""
    src = SAMPLES / rel
    if src.suffix != ".gz":
        return src
    dst = into / Path(rel).with_suffix("")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(src, "rb") as fh, open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)
    return dst


def as_json(r: Result) -> dict[str, Any]:
    data = json.loads(r.out)
    for key in COUNTS:
        assert type(data[key]) is int, key
    return data


def counts(r: Result) -> tuple[int, ...]:
    data = as_json(r)
    return tuple(data[key] for key in COUNTS)


def digest(db: Path) -> str:
    """The database's bytes (and its WAL's, if one was left behind)."""
    h = hashlib.sha256()
    for p in sorted(db.parent.glob(db.name + "*")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def sessions(cli: Callable[..., Result]) -> list[dict[str, Any]]:
    r = cli("sessions", "list", "--all", "--json")
    assert r.status == 0, r.err
    return json.loads(r.out)


# ------------------------------------------------------------------------- Claude Code


def test_claude_code_from_its_default_location_then_again(cli, home, db_path):
    projects = home / ".claude" / "projects"
    write_claude_code(projects, SID, "/work/alpha", [("first prompt", "first reply")])
    write_claude_code(
        projects,
        SID.replace("0001", "0002"),
        "/work/beta",
        [("one", "uno"), ("two", "dos")],
    )
    r = cli("import", "claude-code", "--json")
    assert r.status == 0, r.err
    assert counts(r) == (2, 0, 9, 0)  # per turn: prompt, reply, tool result
    data = as_json(r)
    assert data["path"] == str(projects) and data["files"] == 2 and data["errors"] == []
    listed = {s["working_dir"]: s for s in sessions(cli)}
    assert set(listed) == {"/work/alpha", "/work/beta"}  # each session's own cwd
    assert listed["/work/beta"]["model"] == "claude-test-1"
    assert listed["/work/beta"]["message_count"] == 6
    before = digest(db_path)
    again = cli("import", "claude-code", "--json")
    assert counts(again) == (0, 0, 0, 2)
    assert as_json(again)["unchanged"] == 2  # not even opened: stat says nothing changed
    assert digest(db_path) == before


def test_plain_summary_line(cli, home, tmp_path):
    write_claude_code(tmp_path / "cc", SID, "/work/alpha", [("p", "r")])
    r = cli("import", "claude-code", str(tmp_path / "cc"))
    assert r.status == 0 and r.err == ""
    assert r.out == f"Imported 3 messages from {tmp_path / 'cc'}: 1 new session.\n"
    r = cli("import", "claude-code", str(tmp_path / "cc"))
    assert r.out.endswith(": 0 new sessions; 1 session already up to date.\n")


def test_a_grown_file_in_two_steps_equals_one_import(cli, tmp_path):
    whole = "".join(
        claude_code_lines(SID, "/work/alpha", [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")])
    ).encode()
    cut = whole.index(b"\n", len(whole) // 2) - 30  # in the middle of a line
    live = tmp_path / "live" / f"{SID}.jsonl"
    live.parent.mkdir()
    steps_db, once_db = tmp_path / "steps.db", tmp_path / "once.db"
    live.write_bytes(whole[:cut])
    first = cli("import", "claude-code", str(live), "--json", db=steps_db)
    live.write_bytes(whole)
    second = cli("import", "claude-code", str(live), "--json", db=steps_db)
    assert as_json(first)["sessions"] == 1 and as_json(second)["sessions"] == 0
    assert as_json(second)["updated"] == 1
    once = cli("import", "claude-code", str(live), "--json", db=once_db)
    assert as_json(first)["messages"] + as_json(second)["messages"] == as_json(once)["messages"]
    assert as_json(once)["messages"] == 12

    def transcript(db: Path) -> Any:
        (s,) = sessions(lambda *a: cli(*a, db=db))
        shown = cli("sessions", "show", s["id"], "--json", db=db)
        assert shown.status == 0, shown.err
        data = json.loads(shown.out)
        items = [
            (m["kind"], m.get("role"), m["content"], m.get("input_tokens"), m.get("model"))
            for m in data["items"]
        ]
        return items, s["message_count"], s["title"], s["created_at"]

    assert transcript(steps_db) == transcript(once_db)


def test_a_corrupt_single_file_leaves_the_database_byte_identical(cli, tmp_path, db_path):
    good = write_claude_code(tmp_path / "cc", SID, "/work/alpha", [("p", "r")])
    assert cli("import", "claude-code", str(good)).status == 0
    lines = claude_code_lines(SID.replace("0001", "0009"), "/work/x", [("a", "b"), ("c", "d")])
    lines.insert(4, '{"type": "user", "message": {broken\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))
    before = digest(db_path)
    r = cli("import", "claude-code", str(bad))
    assert r.status == 1 and r.out == ""
    assert r.err.count("\n") == 1
    assert r.err.startswith(f"threadline: error: {bad}, line 5: not valid JSON")
    assert digest(db_path) == before
    r = cli("import", "claude-code", str(bad), "--dry-run")
    assert r.status == 1 and digest(db_path) == before


def test_a_large_bad_file_is_checked_whole_before_loading(cli, tmp_path, db_path, monkeypatch):
    """Over BUFFER_BYTES a file is read twice (check, then load): a fault at its very end
    still leaves the database as it was."""
    monkeypatch.setattr(importing, "BUFFER_BYTES", 1000)
    first = write_claude_code(tmp_path, SID, "/w", [("p", "r")])
    assert cli("import", "claude-code", str(first)).status == 0
    convs = [chatgpt_conversation(f"big-{n}", f"Big {n}", [("q", "a")]) for n in range(40)]
    big = tmp_path / "big.json"
    big.write_text(json.dumps(convs)[:-30])  # cut inside the last conversation
    assert big.stat().st_size > 10 * importing.BUFFER_BYTES
    before = digest(db_path)
    r = cli("import", "chatgpt", str(big), "--dir", str(tmp_path))
    assert r.status == 1 and "after conversation 39: bad JSON" in r.err
    assert r.err.count("\n") == 1
    assert digest(db_path) == before  # the 39 whole conversations before the fault: not in
    write_chatgpt(big, convs)  # mended: now it goes in, read once more after the check
    r = cli("import", "chatgpt", str(big), "--dir", str(tmp_path), "--json")
    assert r.status == 0 and counts(r) == (40, 0, 80, 0)


def test_a_directory_with_a_bad_file_imports_the_others(cli, tmp_path):
    root = tmp_path / "projects"
    write_claude_code(root, SID, "/work/alpha", [("p", "r")])
    write_claude_code(root, SID.replace("0001", "0002"), "/work/beta", [("p", "r")])
    bad = root / "-work-gamma" / "bad-session.jsonl"
    bad.parent.mkdir()
    good_lines = claude_code_lines("bad-session", "/work/gamma", [("p", "r")])
    bad.write_text("".join(good_lines[:2]) + "not json at all\n" + "".join(good_lines[2:]))
    r = cli("import", "claude-code", str(root), "--json")
    assert r.status == 1
    assert counts(r) == (2, 0, 6, 0)
    errors = [line for line in r.err.splitlines()]
    assert errors[0].startswith(f"threadline: error: {bad}, line 3: not valid JSON")
    assert errors[-1] == (
        "threadline: error: 1 file could not be imported (named above); the others were"
    )
    assert as_json(r)["failed"] == 1
    assert {s["working_dir"] for s in sessions(cli)} == {"/work/alpha", "/work/beta"}
    # Mended, it goes in on the next run; the two already there are unchanged.
    bad.write_text("".join(good_lines))
    r = cli("import", "claude-code", str(root), "--json")
    assert r.status == 0 and counts(r) == (1, 0, 3, 2)


def test_dry_run_reports_the_same_and_writes_nothing(cli, tmp_path, db_path):
    root = tmp_path / "projects"
    write_claude_code(root, SID, "/work/alpha", [("p", "r"), ("q", "s")])
    assert cli("sessions", "list", "--all").status == 0  # the database exists
    before = digest(db_path)
    dry = cli("import", "claude-code", str(root), "--dry-run", "--json")
    assert dry.status == 0 and as_json(dry)["dry_run"] is True
    assert digest(db_path) == before
    assert cli("import", "claude-code", str(root), "--dry-run").out.startswith(
        "Would import 6 messages from"
    )
    real = cli("import", "claude-code", str(root), "--json")
    assert counts(dry) == counts(real) == (1, 0, 6, 0)


def test_missing_default_locations_are_named(cli, home, monkeypatch, tmp_path):
    for name, where in (
        ("claude-code", home / ".claude" / "projects"),
        ("codex", home / ".codex" / "sessions"),
        ("gemini-cli", home / ".gemini" / "tmp"),
    ):
        r = cli("import", name)
        assert r.status == 1 and r.out == ""
        assert r.err == f"threadline: error: {name}: nothing at its default location {where}" + (
            " (give a PATH)\n"
        )
    config = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    r = cli("import", "llm")
    assert r.status == 1 and str(config / "io.datasette.llm" / "logs.db") in r.err
    r = cli("import", "chatgpt")  # an export has no default: its path is required
    assert r.status == 2 and "PATH" in r.err
    r = cli("import", "claude-code", str(tmp_path / "nowhere"))
    assert r.status == 1 and r.err.endswith("nowhere: no such file or directory\n")


# ------------------------------------------------------------------------- exports


def test_chatgpt_goes_to_dir_and_a_missing_dir_is_an_error(cli, tmp_path):
    export = write_chatgpt(
        tmp_path / "conversations.json",
        [
            chatgpt_conversation("conv-1", "First", [("q1", "a1"), ("q2", "a2")]),
            chatgpt_conversation("conv-2", "Second", [("q", "a")]),
        ],
    )
    project = tmp_path / "project"
    project.mkdir()
    r = cli("import", "chatgpt", str(export), "--dir", str(tmp_path / "missing"))
    assert r.status == 1 and "missing: no such directory" in r.err
    r = cli("import", "chatgpt", str(export), "--dir", str(project), "--json")
    assert r.status == 0 and counts(r) == (2, 0, 6, 0)
    listed = sessions(cli)
    assert {s["working_dir"] for s in listed} == {str(project.resolve())}
    assert {s["title"] for s in listed} == {"First", "Second"}
    # The export grows (a newer one): only what is new goes in.
    write_chatgpt(
        export,
        [
            chatgpt_conversation("conv-1", "First", [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]),
            chatgpt_conversation("conv-2", "Second", [("q", "a")]),
        ],
    )
    r = cli("import", "chatgpt", str(export), "--dir", str(project), "--json")
    assert counts(r) == (0, 1, 2, 1)


def test_chatgpt_zip_and_the_working_directory_default(cli, tmp_path, monkeypatch):
    import zipfile

    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr(
            "conversations.json",
            json.dumps([chatgpt_conversation("z-1", "Zipped", [("q", "a")])]),
        )
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = cli("import", "chatgpt", str(export), "--json")
    assert r.status == 0 and counts(r) == (1, 0, 2, 0)
    assert sessions(cli)[0]["working_dir"] == str(here.resolve())


def test_an_export_that_is_not_what_it_claims(cli, tmp_path, db_path):
    assert cli("sessions", "list", "--all").status == 0
    before = digest(db_path)
    cases = {
        "object.json": ('{"not": "an array"}', "not a ChatGPT export"),
        "truncated.json": (
            json.dumps([chatgpt_conversation("t-1", "T", [("q", "a")])] * 3)[:-40],
            "bad JSON",
        ),
        "no-mapping.json": ('[{"id": "x", "title": "y"}]', "no mapping"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        r = cli("import", "chatgpt", str(path))
        assert r.status == 1 and expected in r.err and r.err.count("\n") == 1, name
        assert r.err.startswith(f"threadline: error: {path}")
    r = cli("import", "claude-ai", str(tmp_path / "object.json"))
    assert r.status == 1 and "not a Claude.ai export" in r.err
    assert digest(db_path) == before


def test_claude_ai_export(cli, tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(
        json.dumps(
            [
                claude_ai_conversation("u-1", "Pricing", [("how much", "this much")]),
                claude_ai_conversation("u-2", "", [("untitled", "ok")]),
            ]
        )
    )
    r = cli("import", "claude-ai", str(path), "--dir", str(tmp_path), "--json")
    assert r.status == 0 and counts(r) == (2, 0, 4, 0)
    r = cli("import", "claude-ai", str(path), "--dir", str(tmp_path), "--json")
    assert counts(r) == (0, 0, 0, 2)


# ------------------------------------------------------------------------- llm


def test_llm_from_llm_user_path_left_byte_identical(cli, tmp_path, monkeypatch):
    user = tmp_path / "llm-user"
    user.mkdir()
    logs = user / "logs.db"
    shutil.copyfile(LLM_DBS / "llm-0.26.db", logs)
    monkeypatch.setenv("LLM_USER_PATH", str(user))
    source_bytes = logs.read_bytes()
    r = cli("import", "llm", "--dir", str(tmp_path), "--json")
    assert r.status == 0, r.err
    first = as_json(r)
    assert first["sessions"] > 0 and first["messages"] >= 2 * first["sessions"]
    assert first["path"] == str(logs)
    assert logs.read_bytes() == source_bytes
    again = cli("import", "llm", "--dir", str(tmp_path), "--json")
    assert counts(again) == (0, 0, 0, first["sessions"])


def test_llm_from_xdg_config_home(cli, tmp_path, monkeypatch):
    config = tmp_path / "config"
    (config / "io.datasette.llm").mkdir(parents=True)
    shutil.copyfile(LLM_DBS / "llm-upgraded.db", config / "io.datasette.llm" / "logs.db")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    r = cli("import", "llm", "--json", "--dir", str(tmp_path))
    assert r.status == 0 and as_json(r)["sessions"] > 0
    not_llm = tmp_path / "other.db"
    not_llm.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    r = cli("import", "llm", str(not_llm))
    assert r.status == 1 and r.err.count("\n") == 1 and str(not_llm) in r.err


# ------------------------------------------------------------------------- real samples


def test_the_real_claude_code_samples_directory(cli, tmp_path):
    """The samples directory as it is (its .gz session files read too), then the 1,512-line
    session unpacked, with its subagents beside it."""
    r = cli("import", "claude-code", str(SAMPLES / "claude-code"), "--json", db=tmp_path / "s.db")
    assert r.status == 0, r.err
    data = as_json(r)
    assert data["files"] == 6 and data["sessions"] == 6 and data["errors"] == []
    big = unpacked("claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl.gz", tmp_path)
    tree = big.parent  # unpacked as the samples lay it out: the session, its subagents beside
    agents = "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569/subagents"
    unpacked(f"{agents}/agent-a2898e3.jsonl.gz", tmp_path)
    shutil.copyfile(
        SAMPLES / agents / "agent-acompact-e1f845.jsonl",
        tmp_path / agents / "agent-acompact-e1f845.jsonl",
    )
    r = cli("import", "claude-code", str(tree), "--json")
    data = as_json(r)
    assert r.status == 0 and data["files"] == 1 and data["sessions"] == 1
    assert data["messages"] > 100 and data["summaries"] >= 1


def test_the_real_chatgpt_and_codex_samples(cli, tmp_path):
    export = unpacked("chatgpt/conversations.json.gz", tmp_path)
    r = cli("import", "chatgpt", str(export), "--dir", str(tmp_path), "--json")
    assert r.status == 0 and as_json(r)["sessions"] == 20
    r = cli("import", "chatgpt", str(export), "--dir", str(tmp_path), "--json")
    assert counts(r) == (0, 0, 0, 20)
    rollout = unpacked(
        "codex/codemie-code/rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799"
        ".jsonl.gz",
        tmp_path / "codex",
    )
    r = cli("import", "codex", str(rollout.parent.parent.parent), "--json")
    assert r.status == 0 and as_json(r)["sessions"] == 1
    listed = [s for s in sessions(cli) if s["working_dir"] != str(tmp_path.resolve())]
    assert len(listed) == 1 and listed[0]["model"]


# ------------------------------------------------------------------------- output


def _hostile_history(kind: str, tmp_path: Path) -> list[str]:
    """A history of `kind` whose title, prompt and reply carry HOSTILE; the import arguments."""
    turns = [(f"prompt {HOSTILE}", f"reply {HOSTILE}")]
    if kind == "claude-code":
        write_claude_code(tmp_path / "cc", SID, f"/work/{HOSTILE}", turns)
        return [str(tmp_path / "cc")]
    if kind == "codex":
        rid = "0b1c2d3e-0000-4000-8000-0000000000cc"
        path = tmp_path / "codex" / f"rollout-2026-03-01T09-00-00-{rid}.jsonl"
        return [str(codex_rollout(path, rid, "/work/codex", turns))]
    if kind == "chatgpt":
        convs = [chatgpt_conversation("h-1", f"title {HOSTILE}", turns)]
        return [str(write_chatgpt(tmp_path / "c.json", convs)), "--dir", str(tmp_path)]
    if kind == "claude-ai":
        path = tmp_path / "conversations.json"
        path.write_text(json.dumps([claude_ai_conversation("h-2", f"title {HOSTILE}", turns)]))
        return [str(path), "--dir", str(tmp_path)]
    if kind == "gemini-cli":
        path = gemini_session(tmp_path / "g" / "session-2026-02-01T08-00-h.json", "h-3", turns)
        return [str(path), "--dir", str(tmp_path)]
    assert kind == "llm"
    logs = tmp_path / "logs.db"
    shutil.copyfile(LLM_DBS / "llm-0.26.db", logs)
    conn = sqlite3.connect(logs)
    with conn:
        conn.execute("UPDATE responses SET prompt = ?, response = ?", turns[0])
        conn.execute("UPDATE conversations SET name = ?", (f"title {HOSTILE}",))
    conn.close()
    return [str(logs), "--dir", str(tmp_path)]


@pytest.mark.parametrize(
    "kind", ["claude-code", "codex", "chatgpt", "claude-ai", "llm", "gemini-cli"]
)
def test_hostile_imported_text_is_shown_literally(cli, tmp_path, kind):
    r = cli("import", kind, *_hostile_history(kind, tmp_path))
    assert r.status == 0, r.err
    assert no_controls(r.out)
    listed = sessions(cli)
    assert listed
    for s in listed:
        shown = cli("sessions", "show", s["id"])
        assert shown.status == 0, shown.err
        assert no_controls(shown.out)
        for text in ("prompt", "reply"):
            # Rich markup is text, kept as typed; the OSC sequence is drawn, never sent.
            assert f"{text} [bold red]not markup[/] ^[[2J^[]0;pwned^G [@click=app.quit]x[/]" in (
                shown.out
            )
    listing = cli("sessions", "list", "--all")
    assert no_controls(listing.out)
    if kind in ("chatgpt", "claude-ai", "llm"):
        assert "title [bold red]not markup[/]" in listing.out


def test_progress_bar_on_a_terminal_only(cli, tmp_path, monkeypatch):
    root = tmp_path / "projects"
    for n in range(3):
        write_claude_code(root, SID.replace("0001", f"000{n + 1}"), "/w", [("p", "r")])
    monkeypatch.setattr(import_history, "BAR_AFTER", 0.0)
    r = cli("import", "claude-code", str(root), "--dry-run")  # stderr is not a terminal
    assert r.status == 0 and r.err == ""
    fake_tty(monkeypatch, "stderr")
    r = cli("import", "claude-code", str(root))
    assert r.status == 0
    assert "\rcounting" not in r.err and "\rimporting claude-code [" in r.err
    assert "%  " in r.err and "messages (" in r.err  # a bar over the bytes, and the count
    assert r.err.endswith("\r\x1b[K")  # the bar is removed before the summary
    assert r.out.startswith("Imported 9 messages")


def test_a_session_is_previewed_by_what_the_person_typed_not_injected_context(cli, tmp_path):
    """Codex sends its environment context as a user message first; Claude Code starts with
    slash commands: neither is what the sidebar should show for the session."""
    rollout = unpacked(
        "codex/codex-session-view/rollout-2025-11-17T15-30-28-019a93b9-f380-7600-98ff-940e6b99603c"
        ".jsonl.gz",
        tmp_path / "codex",
    )
    r = cli("import", "codex", str(rollout), "--json")
    assert r.status == 0
    (listed,) = sessions(cli)
    assert listed["preview"].startswith("finish up the users work")
    r = cli("import", "claude-code", str(SAMPLES / "claude-code" / "claude-code-viewer"), "--json")
    assert r.status == 0
    previews = {s["preview"] for s in sessions(cli) if s["source"] == "claude-code"}
    # Sessions of slash commands alone: the first command, not the text Claude Code injected;
    # the third (fe5e1c67, compressed) has a typed prompt after its first command: the prompt,
    # however the load is cut into transactions.
    typed = "Thanks! Please update CLAUDE.md for current changes"
    assert len(previews) == 3 and typed in previews, previews
    assert all(p.startswith("/") for p in previews - {typed}), previews
