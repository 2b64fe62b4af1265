"""bench/make_db.py builds its database through the real schema: a tiny run, checked closely."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.store import Store
from threadline.store.migrate import latest_version

ROOT = Path(__file__).resolve().parents[2]


def schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        return [tuple(r) for r in rows]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tiny.db"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "make_db.py"),
            "--out",
            str(out),
            "--sessions",
            "80",
            "--messages",
            "3000",
            "--dirs",
            "12",
            "--largest-dir-sessions",
            "25",
            "--long-sessions",
            "1",
            "--long-size",
            "400",
            "--memories",
            "30",
            "--pinned",
            "4",
            "--quiet",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "messages/s" in result.stdout
    return out


async def test_schema_identical_to_a_migrated_database(made: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    async with await Store.open(fresh):
        pass
    assert schema(made) == schema(fresh)
    conn = sqlite3.connect(made)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, latest_version() + 1))
    finally:
        conn.close()


def test_rows_are_what_the_triggers_would_keep(made: Path) -> None:
    built_at = json.loads(Path(f"{made}.json").read_text())["built_at"]
    conn = sqlite3.connect(made)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        assert one("SELECT max(created_at) FROM messages") < built_at  # nothing in the future
        assert one("SELECT count(*) FROM sessions") == 80
        assert one("SELECT count(*) FROM messages") == 3000
        assert one("SELECT max(message_count) FROM sessions") >= 400
        assert one("SELECT count(*) FROM summaries") > 0
        assert one("SELECT count(*) FROM memories") == 30
        assert one("SELECT count(*) FROM sessions WHERE pinned = 1") >= 4
        # Counters, totals and activity time match the messages.
        mismatched = one(
            "SELECT count(*) FROM sessions AS s WHERE message_count != "
            "(SELECT count(*) FROM messages WHERE session_id = s.id)"
            " OR total_input_tokens != "
            "(SELECT coalesce(sum(input_tokens), 0) FROM messages WHERE session_id = s.id)"
            " OR total_output_tokens != "
            "(SELECT coalesce(sum(output_tokens), 0) FROM messages WHERE session_id = s.id)"
            " OR updated_at != (SELECT max(created_at) FROM messages WHERE session_id = s.id)"
        )
        assert mismatched == 0
        # The preview is exactly the trigger's expression over the first user message.
        wrong_preview = one(
            "SELECT count(*) FROM sessions AS s WHERE preview IS NOT ("
            " SELECT substr(trim(replace(replace(replace(content, char(13), ' '), char(10), ' '),"
            " char(9), ' ')), 1, 200) FROM messages"
            " WHERE session_id = s.id AND role = 'user' AND trim(content) <> ''"
            " ORDER BY id LIMIT 1)"
        )
        assert wrong_preview == 0
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # The FTS indexes match their content exactly.
        for fts in ("search_messages", "search_summaries", "search_sessions"):
            conn.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
        # Every message and session is in its index.
        assert one("SELECT count(*) FROM search_messages_docsize") == 3000
        assert one("SELECT count(*) FROM search_sessions") == 80
        assert one("SELECT count(*) FROM search_build") == 0
    finally:
        conn.close()


async def test_sidecar_points_at_real_rows(made: Path) -> None:
    notable = json.loads(Path(f"{made}.json").read_text())
    async with await Store.open(made) as store:
        assert store.migration.applied == []
        assert await store.count_sessions("directory", notable["largest_dir"]) > 0
        long = await store.get_session(notable["long_sessions"][0])
        assert long is not None and long.message_count >= 400
        rare = await store.search(notable["rare_word"], limit=100)
        assert len(rare) == notable["rare_word_hits"] > 0
        assert len(await store.search(notable["common_word"])) == 50
        assert await store.search(notable["prefix"]) != []
        assert await store.integrity_check() == []
        # New writes keep the counters (the triggers are back).
        s = await store.create_session(notable["largest_dir"])
        await store.add_message(s.id, "user", "after the bulk load")
        got = await store.get_session(s.id)
        assert got is not None and got.message_count == 1
        assert len(await store.search("bulk load")) >= 1
    assert notable["timings"]["messages_per_second"] > 0
