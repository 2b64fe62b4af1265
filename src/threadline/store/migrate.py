"""The migration runner: numbered .sql files applied in order, one transaction each.

A database newer than this code is refused before anything is written to it, and a database
that already holds sessions is copied with SQLite's backup API before it is migrated.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from threadline.store.connection import apply_pragmas, tighten_permissions
from threadline.store.errors import StoreError
from threadline.store.util import Clock, fmt_ts

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass
class MigrationReport:
    """What opening the database did to its schema."""

    from_version: int
    to_version: int
    applied: list[int] = field(default_factory=list)
    backup_path: Path | None = None


def load_migrations() -> list[Migration]:
    """The migrations shipped in threadline.store.migrations, in order, checked for gaps."""
    found = []
    for entry in resources.files("threadline.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {expected:04d} is missing")
    return found


def latest_version() -> int:
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            # Drop a statement that is nothing but comments.
            if re.sub(r"--[^\n]*", "", statement).strip().strip(";").strip():
                statements.append(statement)
            buffer = ""
    if re.sub(r"--[^\n]*", "", buffer).strip():
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer[:60]!r}")
    return statements


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new, empty database)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    value = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(value or 0)


def _has_sessions(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'"
    ).fetchone()
    return row is not None and conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchone() is not None


def backup_database(conn: sqlite3.Connection, dest: Path) -> None:
    """Copy the database to `dest` (0600) with SQLite's online backup API."""
    fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    target = sqlite3.connect(str(dest))
    try:
        conn.backup(target)
    finally:
        target.close()


def _backup_name(path: Path, version: int, clock: Clock) -> Path:
    stamp = fmt_ts(clock()).replace(":", "").replace("-", "").replace(".", "")[:15]
    candidate = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.v{version}-{stamp}-{n}.bak")
    return candidate


def _is_empty(conn: sqlite3.Connection) -> bool:
    """No table, index, view or trigger: a new file (or one SQLite made but never used)."""
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def open_and_migrate(
    conn: sqlite3.Connection,
    path: Path,
    clock: Clock,
    migrations: list[Migration] | None = None,
    *,
    read_only: bool = False,
) -> MigrationReport:
    """Check the version, set the pragmas, back up if needed and apply pending migrations.

    Runs on the writer connection before any other use. Nothing is written to a database that
    is newer than the code, another program's database, not a database, or corrupt; a
    read-only one is opened as it is, or refused when it would need upgrading. Taking the
    write lock happens only when there is a migration to apply.
    """
    migrations = load_migrations() if migrations is None else migrations
    latest = migrations[-1].version if migrations else 0
    conn.execute("PRAGMA busy_timeout = 5000")
    version = current_version(conn)  # reading first: an unreadable file fails here, untouched
    if version > latest:
        raise StoreError(
            f"{path}: the database is at schema version {version}, but this threadline only "
            f"knows up to {latest}; upgrade threadline (the database was left untouched)"
        )
    if version == 0 and not _is_empty(conn):
        raise StoreError(
            f"{path}: a SQLite database that is not threadline's (it has tables but no "
            "schema_version); choose another file with --db (this one was left untouched)"
        )
    pending = [m for m in migrations if m.version > version]
    if read_only:
        if pending:
            what = "is empty" if version == 0 else f"is at schema version {version}"
            raise StoreError(
                f"{path}: the database is read-only and {what}; threadline needs to write it "
                f"to bring it to version {latest} (left untouched)"
            )
        apply_pragmas(conn, reader=True)
        return MigrationReport(from_version=version, to_version=version)
    if version == 0:
        # Before anything writes the file's header (WAL does): only a new file can take it
        # without a VACUUM. Freed pages can then go back to the file system in short steps.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot switch the database to WAL mode (got {mode})")
    apply_pragmas(conn, reader=False)
    report = MigrationReport(from_version=version, to_version=version)
    if pending and version > 0 and _has_sessions(conn):
        report.backup_path = _backup_name(path, version, clock)
        backup_database(conn, report.backup_path)
    for migration in pending:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if current_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, fmt_ts(clock())),
            )
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(
                    f"{path}: migration {migration.version:04d}_{migration.name} failed ({exc}); "
                    "the database was left as it was"
                ) from None
            raise
        report.applied.append(migration.version)
        report.to_version = migration.version
    if pending:
        report.to_version = max(report.to_version, current_version(conn))
    tighten_permissions(path)
    return report
