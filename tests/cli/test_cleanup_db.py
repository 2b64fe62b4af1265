"""`threadline cleanup` and `threadline db ...` through the real entry point."""

from __future__ import annotations

import json

import pytest

from threadline.store import Store


@pytest.fixture
def aged(with_db, clock, workdir) -> dict[str, str]:
    """An old session, an old pinned one, a recent one, and one trashed long ago."""

    async def fill(store: Store) -> dict[str, str]:
        old = await store.create_session(workdir, title="Old chat")
        await store.add_message(old.id, "user", "from long ago")
        pinned = await store.create_session(workdir, title="Old but pinned")
        await store.update_session(pinned.id, pinned=True)
        gone = await store.create_session(workdir, title="Trashed long ago")
        await store.delete_session(gone.id)
        clock.advance(days=40)
        recent = await store.create_session(workdir, title="Recent chat")
        await store.add_message(recent.id, "user", "just now")
        return {"old": old.id, "pinned": pinned.id, "gone": gone.id, "recent": recent.id}

    ids = with_db(fill)
    return ids


@pytest.fixture
def clock_now(clock, monkeypatch):
    """The CLI's store uses the real clock; line it up with the fake one the data was made with."""
    import threadline.store.util as util

    monkeypatch.setattr(util, "system_clock", clock)
    import threadline.store.facade as facade

    monkeypatch.setattr(facade, "system_clock", clock)
    return clock


def test_cleanup_dry_run_changes_nothing(cli, aged, clock_now):
    r = cli("cleanup", "--dry-run", "--older-than", "30d")
    assert r.status == 0
    assert "Dry run" in r.out and "Would move 1 session" in r.out and "Old chat" in r.out
    assert "Would purge 1 session" in r.out and "Trashed long ago" in r.out
    assert "Old but pinned" not in r.out
    trash = json.loads(cli("sessions", "trash", "--json").out)
    assert [s["id"] for s in trash] == [aged["gone"]]


def test_cleanup_moves_and_purges(cli, aged, clock_now):
    r = cli("cleanup", "--older-than", "30d", "--json")
    data = json.loads(r.out)
    assert data["dry_run"] is False
    moved = data["moved_to_trash"]
    assert moved["total"] == 1 and moved["by_retention"] == 1 and moved["by_max_limit"] == 0
    assert moved["sessions"] == [{"id": aged["old"], "title": "Old chat", "reason": "retention"}]
    assert data["purged"] == {
        "total": 1,
        "sessions": [{"id": aged["gone"], "title": "Trashed long ago"}],
    }
    trash = json.loads(cli("sessions", "trash", "--json").out)
    assert [s["id"] for s in trash] == [aged["old"]]
    assert cli("sessions", "show", aged["gone"]).status == 1
    assert cli("sessions", "show", aged["pinned"]).status == 0


def test_cleanup_uses_the_config(cli, aged, clock_now, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[session]\nretention_days = 90\nmax_sessions = 1\ntrash_days = 60\n")
    r = cli("cleanup", "--config", str(cfg))
    assert r.status == 0
    assert "oldest beyond the limit of 1 session" in r.out
    assert "Old chat" in r.out and "Purged nothing" in r.out
    r = cli("cleanup", "--config", str(cfg), "--json")
    assert json.loads(r.out)["moved_to_trash"]["total"] == 0


def test_cleanup_bad_age(cli):
    for age in ("soon", "0d", "-3d", "5y"):
        r = cli("cleanup", "--older-than", age)
        assert r.status == 2 and r.err.startswith("threadline: error:")


def test_db_path_does_not_create(cli, tmp_path):
    target = tmp_path / "nowhere" / "x.db"
    r = cli("db", "path", db=target)
    assert r.status == 0 and r.out.strip() == str(target)
    assert not target.exists() and not target.parent.exists()


def test_db_path_default_location(cli, private_env):
    r = cli("db", "path", db=None)
    assert r.out.strip().endswith("threadline.db")
    assert r.out.startswith(str(private_env))


def test_db_check(cli, aged, db_path):
    r = cli("db", "check")
    assert r.status == 0 and "integrity       ok" in r.out and "schema version" in r.out
    data = json.loads(cli("db", "check", "--json").out)
    assert data["ok"] is True and data["problems"] == []
    assert data["sessions"] == 3 and data["trashed_sessions"] == 1
    assert data["path"] == str(db_path)


def test_db_check_missing_and_corrupt(cli, tmp_path):
    r = cli("db", "check", db=tmp_path / "missing.db")
    assert r.status == 1 and "no database" in r.err
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    r = cli("db", "check", db=junk)
    assert r.status == 1 and r.err.startswith("threadline: error:")
    assert r.err.count("\n") == 1


def test_db_backup(cli, aged, tmp_path):
    copy = tmp_path / "copy.db"
    r = cli("db", "backup", str(copy))
    assert r.status == 0 and "Backed up to" in r.out
    r = cli("sessions", "list", "--all", "--json", db=copy)
    assert {s["title"] for s in json.loads(r.out)} == {"Old chat", "Old but pinned", "Recent chat"}
    r = cli("db", "backup", str(copy))
    assert r.status == 1 and "already exists" in r.err
    r = cli("db", "backup", str(tmp_path / "no" / "dir.db"))
    assert r.status == 1 and "no such directory" in r.err


def test_db_vacuum(cli, aged):
    r = cli("db", "vacuum")
    assert r.status == 0 and r.out.startswith("Vacuumed:")
    assert cli("db", "check").status == 0


def test_db_usage(cli):
    assert cli("db").status == 2
    assert cli("db", "backup").status == 2


def test_help_lists_every_command(cli):
    r = cli("--help", db=None)
    for name in ("sessions", "search", "export", "import", "cleanup", "db"):
        assert name in r.out
    for argv in (["sessions", "--help"], ["sessions", "delete", "--help"], ["search", "--help"]):
        assert cli(*argv, db=None).status == 0


def test_db_vacuum_leaves_no_wal(cli, aged, db_path):
    assert cli("db", "vacuum").status == 0
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_db_index_finishes_an_upgraded_database(cli, tmp_path, clock):
    import sqlite3

    from store.test_search_index import build_v6

    path = tmp_path / "v6.db"
    build_v6(path, clock)
    before = json.loads(cli("search", "tom*", "--all", "--json", "--limit", "500", db=path).out)
    r = cli("db", "index", db=path)
    assert r.status == 0 and "Search index complete (126 rows indexed now)." in r.out
    assert "100% (126 of 126 rows)" in r.err  # progress, on stderr (3 sessions too)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM search_build").fetchone() == (0,)
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "messages_fts" not in names
    after = json.loads(cli("search", "tom*", "--all", "--json", "--limit", "500", db=path).out)
    assert [h["message_id"] for h in after] == [h["message_id"] for h in before]
    assert len(after) == 123
    # Again: nothing left to do; --rebuild repairs from the rows.
    assert cli("db", "index", db=path).out.strip() == "Search index complete."
    assert cli("db", "index", "--rebuild", db=path).status == 0
    assert cli("db", "check", db=path).status == 0


@pytest.fixture
def many_old(with_db, clock, workdir) -> list[str]:
    """Twelve of threadline's own sessions 100 days old and three imported ones, two years old
    by their messages and received 100 days ago."""
    from datetime import timedelta

    from threadline.records import IncomingMessage, IncomingSession

    async def fill(store: Store) -> list[str]:
        ids = []
        for i in range(12):
            s = await store.create_session(workdir, title=f"old {i}")
            await store.add_message(s.id, "user", "long ago")
            ids.append(s.id)
        when = clock() - timedelta(days=700)
        await store.load_history(
            IncomingSession(
                source="codex",
                source_id=f"x{i}",
                working_dir=workdir,
                created_at=when,
                messages=[
                    IncomingMessage(
                        key="k", role="user", content="imported", created_at=when, payload={}
                    )
                ],
            )
            for i in range(3)
        )
        clock.advance(days=100)
        return ids

    return with_db(fill)


def test_cleanup_without_a_terminal_only_reports_many(cli, many_old, clock_now, with_db):
    # Under pytest stdin is no terminal: as under cron, more than ten to move is only reported.
    r = cli("cleanup", "--json")
    assert r.status == 0, r.err
    data = json.loads(r.out)
    assert (data["held_back"], data["dry_run"]) == (True, True)
    assert data["moved_to_trash"]["total"] == 12  # the imported ones are not even counted
    r = cli("cleanup")
    assert "Not moving 12 sessions with no terminal to confirm" in r.out
    assert "Nothing was changed" in r.out

    async def live(store: Store) -> int:
        return await store.count_sessions("all")

    assert with_db(live) == 15
    r = cli("cleanup", "--yes", "--json")
    data = json.loads(r.out)
    assert (data["held_back"], data["dry_run"], data["moved_to_trash"]["total"]) == (
        False,
        False,
        12,
    )
    assert with_db(live) == 3
    # Imported history goes only when asked for (age by receipt: 100 days).
    r = cli("cleanup", "--include-imported", "--json")
    assert json.loads(r.out)["moved_to_trash"]["total"] == 3
    assert with_db(live) == 0


def test_db_vacuum_goes_in_steps_and_full_says_it_holds_the_lock(cli, aged, db_path):
    import sqlite3

    r = cli("db", "vacuum")
    assert r.status == 0 and r.out.startswith("Vacuumed:") and r.err == ""
    r = cli("db", "vacuum", "--full")
    assert r.status == 0 and r.out.startswith("Vacuumed:")
    assert "one transaction: other writers wait until it ends" in r.err
    assert "made before" not in r.err
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)


def test_db_vacuum_converts_an_old_database_once(cli, aged, db_path):
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")  # as a database made before stepped vacuuming is
    conn.close()
    r = cli("db", "vacuum")
    assert r.status == 0 and r.out.startswith("Vacuumed:")
    assert "made before stepped vacuuming, so it is rebuilt whole once" in r.err
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    r = cli("db", "vacuum")
    assert r.status == 0 and r.err == ""
    r = cli("sessions", "list", "--all", "--json")
    assert len(json.loads(r.out)) == 3
