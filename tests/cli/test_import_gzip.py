"""`threadline import` of gzip-compressed files through the real entry point: a damaged or cut
short `.gz` is one line naming the file and leaves the database byte-identical; in a directory
the other files still go in; a Claude.ai export's projects.json may be compressed too."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from cli.import_fixtures import (
    chatgpt_conversation,
    claude_ai_conversation,
    claude_code_lines,
    codex_rollout,
    write_claude_code,
)
from cli.test_import_history import as_json, counts, digest, sessions

CUT = "the gzip file is cut short (incomplete or truncated)"
SID = "7c0de5e1-0000-4000-8000-00000000000"


def packed(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))
    return path


def cut_short(path: Path) -> Path:
    """The .gz file with its last third gone (a copy interrupted, a disk that filled up)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def test_a_cut_short_gz_file_is_one_line_and_writes_nothing(cli, tmp_path, db_path):
    good = write_claude_code(tmp_path / "cc", f"{SID}1", "/work/a", [("p", "r")])
    assert cli("import", "claude-code", str(good)).status == 0
    lines = claude_code_lines(f"{SID}2", "/work/b", [("a", "b")] * 30)
    bad = cut_short(packed(tmp_path / f"{SID}2.jsonl.gz", "".join(lines).encode()))
    before = digest(db_path)
    r = cli("import", "claude-code", str(bad))
    assert r.status == 1 and r.out == ""
    assert (
        r.err == f"threadline: error: {bad}: the gzip file is cut short (incomplete or truncated)\n"
    )
    assert digest(db_path) == before


def test_a_file_named_gz_that_is_not_gzip(cli, tmp_path, db_path):
    plain = codex_rollout(tmp_path / "r.jsonl", f"{SID}3", "/w", [("p", "r")])
    bad = tmp_path / f"rollout-2026-03-01T09-00-00-{SID}3.jsonl.gz"
    plain.rename(bad)  # not compressed, whatever its name says
    assert cli("sessions", "list", "--all").status == 0  # the database exists
    before = digest(db_path)
    r = cli("import", "codex", str(bad))
    assert r.status == 1 and r.err.count("\n") == 1
    assert r.err.startswith(f"threadline: error: {bad}: not a valid gzip file (Not a gzipped file")
    assert digest(db_path) == before


def test_damage_inside_a_gz_export_is_found_before_anything_is_written(cli, tmp_path, db_path):
    """A byte changed in the middle of the compressed data: the conversations before it
    decompress, but the file is refused whole."""
    convs = [chatgpt_conversation(f"g{n}", f"Chat {n}", [("q", "a" * n)]) for n in range(60)]
    export = packed(tmp_path / "conversations.json.gz", json.dumps(convs).encode())
    data = bytearray(export.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    export.write_bytes(bytes(data))
    assert cli("sessions", "list", "--all").status == 0
    before = digest(db_path)
    r = cli("import", "chatgpt", str(export), "--dir", str(tmp_path))
    assert r.status == 1 and r.err.count("\n") == 1
    assert r.err.startswith(f"threadline: error: {export}: not a valid gzip file (")
    assert digest(db_path) == before


def test_a_directory_with_a_bad_gz_file_imports_the_others(cli, tmp_path):
    root = tmp_path / "projects"
    write_claude_code(root, f"{SID}4", "/work/alpha", [("p", "r")])
    lines = claude_code_lines(f"{SID}5", "/work/beta", [("p", "r")] * 20)
    packed(root / "-work-beta" / f"{SID}5.jsonl.gz", "".join(lines).encode())
    bad = cut_short(packed(root / "-work-gamma" / f"{SID}6.jsonl.gz", "".join(lines).encode()))
    r = cli("import", "claude-code", str(root), "--json")
    assert r.status == 1
    assert counts(r) == (2, 0, 63, 0) and as_json(r)["failed"] == 1
    assert r.err.splitlines() == [
        f"threadline: error: {bad}: {CUT}",
        "threadline: error: 1 file could not be imported (named above); the others were",
    ]
    assert {s["working_dir"] for s in sessions(cli)} == {"/work/alpha", "/work/beta"}
    again = cli("import", "claude-code", str(root), "--json")  # the bad one is tried again
    assert counts(again) == (0, 0, 0, 2) and as_json(again)["unchanged"] == 2


def test_claude_ai_export_with_its_projects_compressed(cli, tmp_path):
    conv = claude_ai_conversation("a1", "Seeds", [("when to sow?", "in spring")])
    conv["project_uuid"] = "p1"
    export = tmp_path / "export"
    packed(export / "conversations.json.gz", json.dumps([conv]).encode())
    packed(export / "projects.json.gz", json.dumps([{"uuid": "p1", "name": "Garden"}]).encode())
    r = cli("import", "claude-ai", str(export), "--dir", str(tmp_path), "--json")
    assert r.status == 0, r.err
    assert counts(r) == (1, 0, 2, 0)
    (s,) = sessions(cli)
    shown = json.loads(cli("sessions", "show", s["id"], "--json").out)
    assert shown["session"]["metadata"]["project"] == "Garden"


def test_nowhere_to_unpack_a_gz_file_is_one_line(cli, tmp_path, db_path, monkeypatch):
    """A .gz session file is unpacked into a temporary file; a temporary directory that
    cannot take it is named (and nothing is written)."""
    import tempfile

    plain = codex_rollout(
        tmp_path / f"rollout-2026-03-01T09-00-00-{SID}7.jsonl", f"{SID}7", "/w", [("p", "r")]
    )
    path = packed(plain.with_name(plain.name + ".gz"), plain.read_bytes())
    not_a_dir = tmp_path / "tmp-is-a-file"
    not_a_dir.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
    assert cli("sessions", "list", "--all").status == 0
    before = digest(db_path)
    r = cli("import", "codex", str(path))
    assert r.status == 1
    assert (
        r.err == f"threadline: error: {path}: cannot unpack it into {not_a_dir} (Not a directory)\n"
    )
    assert digest(db_path) == before
    monkeypatch.setattr(tempfile, "tempdir", None)  # found again: the usual one
    assert counts(cli("import", "codex", str(path), "--json")) == (1, 0, 2, 0)
