"""`threadline sessions ...` through the real entry point."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from cli.helpers import HOSTILE_TITLE, fake_tty, no_controls
from threadline.store import Store

LIST_KEYS = [
    "id",
    "title",
    "preview",
    "working_dir",
    "created_at",
    "updated_at",
    "message_count",
    "provider",
    "model",
    "pinned",
    "status",
    "source",  # the tool an imported session came from (None: threadline wrote it)
]
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


@pytest.fixture
def sample(with_db, clock, workdir: str, tmp_path: Path) -> dict[str, str]:
    """Three sessions in `workdir` (one pinned, one hostile title), one elsewhere."""
    other = tmp_path / "elsewhere"
    other.mkdir()

    async def fill(store: Store) -> dict[str, str]:
        ids = {}
        a = await store.create_session(workdir, model="gpt-test", provider="local")
        await store.add_message(a.id, "user", "How do I index text in sqlite?")
        await store.add_message(a.id, "assistant", "Use FTS5.", input_tokens=5, output_tokens=7)
        ids["first"] = a.id
        clock.advance(minutes=5)
        b = await store.create_session(workdir, title=HOSTILE_TITLE)
        await store.add_message(b.id, "user", "evil \x1b]0;pwned\x07 body")
        ids["hostile"] = b.id
        clock.advance(minutes=5)
        c = await store.create_session(str(other), title="Elsewhere chat")
        await store.add_message(c.id, "user", "hello from elsewhere")
        ids["other"] = c.id
        clock.advance(minutes=5)
        d = await store.create_session(workdir, title="Pinned one")
        await store.update_session(d.id, pinned=True)
        ids["pinned"] = d.id
        return ids

    return with_db(fill)


def short(session_id: str) -> str:
    return session_id.replace("-", "")[:12]


def test_list_defaults_to_the_current_directory(cli, sample, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list")
    assert r.status == 0
    assert r.lines[0].split()[:3] == ["ID", "LAST", "ACTIVE"]
    body = r.out
    assert "Elsewhere chat" not in body
    assert "DIRECTORY" not in r.lines[0]  # one directory: no directory column
    # Pinned first, then newest activity.
    titles = [line for line in r.lines[1:]]
    assert "Pinned one" in titles[0]
    assert "How do I index text in sqlite?" in titles[2]
    assert "* pinned" in r.err  # the marks legend


def test_list_scopes(cli, sample, workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list", "--all")
    assert "Elsewhere chat" in r.out and "DIRECTORY" in r.lines[0]
    r = cli("sessions", "list", "--dir", str(tmp_path / "elsewhere"))
    assert "Elsewhere chat" in r.out and "Pinned one" not in r.out
    # --workspace: the git root and everything under it.
    (tmp_path / ".git").mkdir()
    r = cli("sessions", "list", "--workspace", "--json")
    assert {s["title"] for s in json.loads(r.out)} >= {"Elsewhere chat", "Pinned one"}
    r = cli("sessions", "list", "--all", "--workspace")
    assert r.status == 2 and "not allowed with" in r.err


def test_list_json_has_the_documented_keys(cli, sample, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list", "--json")
    data = json.loads(r.out)
    assert len(data) == 3
    for item in data:
        assert list(item) == LIST_KEYS
        assert item["created_at"].endswith("Z")
    first = next(s for s in data if s["id"] == sample["first"])
    assert first["preview"] == "How do I index text in sqlite?"
    assert first["title"] is None
    assert first["message_count"] == 2
    assert first["model"] == "gpt-test" and first["provider"] == "local"
    assert first["created_at"] == "2026-11-23T09:00:00.000Z"
    assert first["pinned"] is False and first["status"] == "active"
    hostile = next(s for s in data if s["id"] == sample["hostile"])
    assert hostile["title"] == HOSTILE_TITLE  # exact in JSON...
    assert no_controls(r.out)  # ...but escaped, so printing it is harmless


def test_list_limit_and_empty(cli, sample, workdir, monkeypatch, tmp_path):
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list", "--limit", "1")
    assert len(r.lines) == 2
    assert "1 of 3 sessions shown" in r.err
    r = cli("sessions", "list", "--limit", "0")
    assert len(r.lines) == 4
    r = cli("sessions", "list", "--limit", "-3")
    assert r.status == 2 and r.err.startswith("threadline: error:")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("sessions", "list", "--dir", str(empty))
    assert r.status == 0 and r.out == "" and "No sessions in" in r.err
    assert json.loads(cli("sessions", "list", "--dir", str(empty), "--json").out) == []


def test_list_sanitises_titles_and_fits_the_terminal(cli, sample, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list")
    assert no_controls(r.out)
    assert "^[]0;pwned^G" in r.out  # shown, not interpreted
    fake_tty(monkeypatch, columns=60)
    r = cli("sessions", "list")
    assert all(len(line) <= 60 for line in r.lines), r.out
    assert "…" in r.out  # long cells cut with an ellipsis
    assert no_controls(r.out)


def test_list_all_at_80_columns_gives_the_width_to_titles_then_directories(
    cli, with_db, tmp_path, monkeypatch, clock
):
    """The issue's case: at 80 columns `--all` kept both date columns at full width, dropped
    DIRECTORY and cut titles to 11 characters. Dates go compact and CREATED and MODEL give way
    before titles and directories do."""
    title = "Why does my rebase keep conflicting with main after the squash?"
    deep = tmp_path / "work" / "client-portal" / "services" / "backend"
    deep.mkdir(parents=True)

    async def fill(store: Store) -> None:
        for i in range(3):
            s = await store.create_session(
                str(deep), title=f"{title} {i}", model="qwen2.5-coder:7b"
            )
            await store.add_message(s.id, "user", "hello")
            clock.advance(hours=5)

    with_db(fill)
    fake_tty(monkeypatch, columns=80)
    r = cli("sessions", "list", "--all")
    header, *rows = r.lines
    assert header.split() == ["ID", "ACTIVE", "MSGS", "DIRECTORY", "TITLE"]
    assert all(len(line) <= 80 for line in r.lines), r.out
    assert all("…/backend" in row or "backend" in row for row in rows)
    title_at = header.index("TITLE")
    assert all(len(row[title_at:]) >= 32 for row in rows)
    assert title[:32] in rows[0]
    assert " ago " not in r.out and "just now" not in r.out  # compact ages: 5h, 3d, Nov 23
    # A wide terminal has room for everything, in full.
    fake_tty(monkeypatch, columns=200)
    header = cli("sessions", "list", "--all").lines[0]
    assert header.split() == [
        "ID",
        "LAST",
        "ACTIVE",
        "CREATED",
        "MSGS",
        "MODEL",
        "DIRECTORY",
        "TITLE",
    ]
    # Even 40 columns keep a title.
    fake_tty(monkeypatch, columns=40)
    r = cli("sessions", "list", "--all")
    assert r.lines[0].split() == ["ID", "ACTIVE", "TITLE"] and "Why does" in r.lines[1]


def test_list_full_rows_when_piped(cli, with_db, workdir, monkeypatch):
    title = "word " * 60

    async def fill(store: Store) -> None:
        await store.create_session(workdir, title=title)

    with_db(fill)
    monkeypatch.chdir(workdir)
    r = cli("sessions", "list")
    assert title.strip() in r.out  # not cut: pipes get whole rows


def test_list_marks_crashed_sessions(cli, with_db, workdir, monkeypatch, clock):
    async def fill(store: Store) -> str:
        s = await store.create_session(workdir, title="Broke off")
        await store.add_message(s.id, "assistant", "partial", complete=False)
        return s.id

    with_db(fill)
    clock.advance(minutes=5)  # the reply's writer is long gone: the session is crashed
    monkeypatch.chdir(workdir)
    line = next(x for x in cli("sessions", "list").lines if "Broke off" in x)
    assert " ! " in line
    assert json.loads(cli("sessions", "list", "--json").out)[0]["status"] == "crashed"


@pytest.fixture
def talk(with_db, workdir) -> str:
    """A session whose message ids (4..6) are not their positions (1..3), with a summary of
    the first two."""

    async def fill(store: Store) -> str:
        other = await store.create_session(workdir, title="Other")
        for i in range(3):
            await store.add_message(other.id, "user", f"elsewhere {i}")
        s = await store.create_session(workdir, title="Talk", model="m1")
        m1 = await store.add_message(s.id, "user", "first question", payload={"parts": [1]})
        m2 = await store.add_message(
            s.id, "assistant", "first answer", output_tokens=3, model="m", response_ms=9
        )
        await store.save_summary(s.id, "They discussed a question.", m1.id, m2.id, token_count=4)
        await store.add_message(s.id, "user", "evil \x1b]0;pwned\x07 text\nsecond line")
        return s.id

    return with_db(fill)


def test_show_prints_the_transcript(cli, talk):
    r = cli("sessions", "show", talk)
    assert r.status == 0
    out = r.out
    assert out.startswith("Talk")
    assert out.index("first question") < out.index("first answer")
    assert out.index("first answer") < out.index("summary of messages")
    assert out.index("summary of messages") < out.index("evil")
    assert "│ They discussed a question." in out
    assert no_controls(out) and "^[]0;pwned^G text\nsecond line" in out
    # Messages are numbered by position in the session, as the app numbers them; the
    # summary names those positions, never database ids (#4–#5).
    assert "── 1 · user · " in out and "── 2 · assistant · " in out and "── 3 · user · " in out
    assert "── summary of messages 1–2 · " in out
    assert "#" not in out


def test_show_json_shape(cli, talk):
    data = json.loads(cli("sessions", "show", talk, "--json").out)
    assert list(data) == ["session", "items"]
    assert list(data["session"])[: len(LIST_KEYS)] == LIST_KEYS
    kinds = [i["kind"] for i in data["items"]]
    assert kinds == ["message", "message", "summary", "message"]
    assert list(data["items"][1]) == [
        "kind",
        "id",
        "position",
        "role",
        "content",
        "created_at",
        "input_tokens",
        "output_tokens",
        "model",
        "stop_reason",
        "response_ms",
        "complete",
    ]
    assert data["items"][1]["response_ms"] == 9
    # ids stay ids; positions are what people see.
    assert [(i["id"], i["position"]) for i in data["items"] if i["kind"] == "message"] == [
        (4, 1),
        (5, 2),
        (6, 3),
    ]
    summary = data["items"][2]
    assert list(summary) == [
        "kind",
        "id",
        "content",
        "first_message_id",
        "last_message_id",
        "first_position",
        "last_position",
        "token_count",
        "created_at",
    ]
    assert (summary["first_message_id"], summary["last_message_id"]) == (4, 5)
    assert (summary["first_position"], summary["last_position"]) == (1, 2)


def write_pager(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in pager: records its LESS variable and everything it was given."""
    record = tmp_path / "paged.txt"
    script = tmp_path / "fakepager"
    script.write_text(f'#!/bin/sh\necho "LESS=$LESS" > {record}\ncat >> {record}\n')
    script.chmod(0o755)
    return script, record


def test_show_on_a_terminal_goes_through_the_pager(cli, talk, tmp_path, monkeypatch):
    script, record = write_pager(tmp_path)
    fake_tty(monkeypatch)
    monkeypatch.setenv("PAGER", str(script))
    monkeypatch.delenv("LESS", raising=False)
    r = cli("sessions", "show", talk)
    assert r.status == 0 and r.out == ""  # all of it went to the pager
    paged = record.read_text()
    assert paged.startswith("LESS=FRX\nTalk") and "│ They discussed a question." in paged
    assert no_controls(paged)
    # A LESS of one's own is kept; --no-pager prints directly.
    monkeypatch.setenv("LESS", "-S")
    assert cli("sessions", "show", talk).status == 0
    assert record.read_text().startswith("LESS=-S\n")
    record.unlink()
    r = cli("sessions", "show", talk, "--no-pager")
    assert r.out.startswith("Talk") and not record.exists()


def test_less_is_the_default_pager(cli, talk, tmp_path, monkeypatch):
    script, record = write_pager(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "less").symlink_to(script)
    fake_tty(monkeypatch)
    monkeypatch.delenv("PAGER", raising=False)
    monkeypatch.delenv("LESS", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    assert cli("sessions", "show", talk).status == 0
    assert record.read_text().startswith("LESS=FRX\nTalk")


def test_no_pager_when_piped_or_for_json_or_with_pager_cat(cli, talk, tmp_path, monkeypatch):
    script, record = write_pager(tmp_path)
    monkeypatch.setenv("PAGER", str(script))
    r = cli("sessions", "show", talk)  # stdout is not a terminal here
    assert r.out.startswith("Talk") and not record.exists()
    fake_tty(monkeypatch)
    r = cli("sessions", "show", talk, "--json")
    assert json.loads(r.out)["session"]["title"] == "Talk" and not record.exists()
    for value in ("cat", "", "no-such-pager-anywhere"):
        monkeypatch.setenv("PAGER", value)
        r = cli("sessions", "show", talk)
        assert r.status == 0 and r.out.startswith("Talk")


def test_an_unknown_id_is_an_error_before_any_pager(cli, talk, tmp_path, monkeypatch):
    script, record = write_pager(tmp_path)
    fake_tty(monkeypatch)
    monkeypatch.setenv("PAGER", str(script))
    r = cli("sessions", "show", "ffffffffffff0")
    assert r.status == 1 and "no session matches" in r.err and not record.exists()


def test_prefix_resolution(cli, with_db, workdir):
    async def fill(store: Store) -> list[str]:
        return [(await store.create_session(workdir)).id for _ in range(3)]

    ids = with_db(fill)
    # Made in the same millisecond: they share a long prefix.
    common = ids[0][:8]
    r = cli("sessions", "show", common)
    assert r.status == 1
    assert r.err.startswith("threadline: error:") and "ambiguous" in r.err
    assert r.err.count("\n") == 1
    r = cli("sessions", "show", "ffffffff")
    assert r.status == 1 and "no session matches" in r.err
    r = cli("sessions", "show", "not-hex!")
    assert r.status == 1 and "not a session id" in r.err
    full = ids[1]
    assert cli("sessions", "show", full.replace("-", "")).status == 0
    assert cli("sessions", "show", full.upper()).status == 0


def test_list_short_ids_resolve(cli, sample, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    for line in cli("sessions", "list", "--all").lines[1:]:
        shown = line.split()[0]
        assert cli("sessions", "show", shown).status == 0


def test_delete_reports_every_id_and_continues(cli, sample):
    r = cli("sessions", "delete", sample["first"], "deadbeef", sample["other"])
    assert r.status == 1
    assert "moved to the trash" in r.out and r.out.count("moved to the trash") == 2
    assert "deadbeef" in r.err and r.err.startswith("threadline: error:")
    r = cli("sessions", "delete", sample["first"])
    assert r.status == 0 and "already in the trash" in r.out
    trash = json.loads(cli("sessions", "trash", "--json").out)
    assert {s["id"] for s in trash} == {sample["first"], sample["other"]}
    assert all(s["deleted_at"].endswith("Z") and s["purge_after"] for s in trash)
    r = cli("sessions", "trash")
    assert "Elsewhere chat" in r.out and "restore" in r.err


def test_restore(cli, sample):
    cli("sessions", "delete", sample["first"])
    r = cli("sessions", "restore", sample["first"], sample["pinned"], "0000")
    assert r.status == 1
    assert "restored:" in r.out and "not in the trash:" in r.out
    assert "'0000'" in r.err
    assert json.loads(cli("sessions", "trash", "--json").out) == []


def test_purge_refuses_without_a_terminal(cli, sample, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    r = cli("sessions", "delete", "--purge", sample["first"])
    assert r.status == 1
    assert "refusing to purge" in r.err and "--yes" in r.err
    assert "Traceback" not in r.err
    assert cli("sessions", "show", sample["first"]).status == 0  # still there


def test_purge_asks_on_a_terminal(cli, sample, monkeypatch):
    answers = io.StringIO("n\ny\n")
    answers.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", answers)
    r = cli("sessions", "delete", "--purge", sample["first"], sample["other"])
    assert r.status == 1 and "cancelled" in r.err and "[y/N]" in r.err
    assert cli("sessions", "show", sample["first"]).status == 0
    r = cli("sessions", "delete", "--purge", sample["first"], sample["other"])
    assert r.status == 0 and r.out.count("purged for good") == 2
    assert cli("sessions", "show", sample["first"]).status == 1


def test_purge_with_yes(cli, sample, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    r = cli("sessions", "delete", "--purge", "--yes", sample["hostile"], "abcdef12")
    assert r.status == 1
    assert "purged for good" in r.out and no_controls(r.out)
    assert cli("sessions", "show", sample["hostile"]).status == 1


def test_empty_trash(cli, sample, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    r = cli("sessions", "empty-trash")
    assert r.status == 0 and "empty" in r.out
    cli("sessions", "delete", sample["first"], sample["other"])
    r = cli("sessions", "empty-trash")
    assert r.status == 1 and "refusing" in r.err
    r = cli("sessions", "empty-trash", "--yes")
    assert r.status == 0 and "Purged 2 sessions" in r.out and "Elsewhere chat" in r.out
    assert cli("sessions", "show", sample["other"]).status == 1


def test_rename_pin_unpin(cli, sample):
    r = cli("sessions", "rename", sample["first"], "New", "name")
    assert r.status == 0 and "New name" in r.out
    data = json.loads(cli("sessions", "show", sample["first"], "--json").out)["session"]
    assert data["title"] == "New name"
    r = cli("sessions", "rename", sample["first"], "")
    assert "title cleared" in r.out
    data = json.loads(cli("sessions", "show", sample["first"], "--json").out)["session"]
    assert data["title"] is None
    r = cli("sessions", "pin", sample["first"], sample["other"])
    assert r.status == 0 and r.out.count("pinned:") == 2
    assert json.loads(cli("sessions", "show", sample["other"], "--json").out)["session"]["pinned"]
    r = cli("sessions", "unpin", sample["other"], "nothex")
    assert r.status == 1 and "unpinned:" in r.out
    session = json.loads(cli("sessions", "show", sample["other"], "--json").out)["session"]
    assert session["pinned"] is False


def test_usage_errors_exit_2(cli):
    r = cli("sessions")
    assert r.status == 2 and r.err.startswith("threadline: error:")
    r = cli("sessions", "frobnicate")
    assert r.status == 2
    r = cli("sessions", "delete")
    assert r.status == 2


def test_options_after_the_subcommand(cli, sample, db_path, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[session]\ntrash_days = 7\n")
    r = cli("sessions", "trash", "--json", "--config", str(cfg))
    assert r.status == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[session]\nnope = 1\n")
    r = cli("sessions", "list", "--all", "--config", str(bad))
    assert r.status == 1 and "unknown key" in r.err


def test_unopenable_database(cli, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 10)
    r = cli("sessions", "list", "--all", db=junk)
    assert r.status == 1
    assert r.err.startswith("threadline: error:") and r.err.count("\n") == 1
    assert junk.read_bytes().startswith(b"this is not")


def test_delete_with_an_ambiguous_prefix_reports_and_continues(cli, with_db, workdir):
    async def fill(store: Store) -> list[str]:
        return [(await store.create_session(workdir, title=f"s{i}")).id for i in range(3)]

    ids = with_db(fill)
    r = cli("sessions", "delete", ids[0][:8], ids[2])
    assert r.status == 1
    assert "ambiguous" in r.err and "moved to the trash: " in r.out and "s2" in r.out
    trash = json.loads(cli("sessions", "trash", "--json").out)
    assert [s["id"] for s in trash] == [ids[2]]


def test_compact_ages_and_dates():
    from datetime import UTC, datetime, timedelta

    from threadline.cli.output import compact_age, compact_date

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert compact_age(now - timedelta(seconds=30), now) == "now"
    assert compact_age(now - timedelta(minutes=5), now) == "5m"
    assert compact_age(now - timedelta(hours=3), now) == "3h"
    assert compact_age(now - timedelta(days=12), now) == "12d"
    month_ago = now - timedelta(days=40)
    assert compact_age(month_ago, now) == compact_date(month_ago, now)
    assert len(compact_date(month_ago, now)) == 6  # "Oct 14"
    assert compact_date(now - timedelta(days=400), now)[-4:] == "2025"
