-- threadline schema, version 6: history imported from other tools (threadline.records) and
-- imports that survive a crash. Everything here is cheap on a large database: columns are added
-- without rewriting rows, and the one index over an existing table covers sessions only.

-- Where an imported session came from (also kept in its metadata) and when threadline first
-- received it; all three stay NULL for sessions threadline wrote itself.
ALTER TABLE sessions ADD COLUMN source TEXT;
ALTER TABLE sessions ADD COLUMN source_id TEXT;
ALTER TABLE sessions ADD COLUMN received_at TEXT;
CREATE UNIQUE INDEX sessions_source ON sessions (source, source_id) WHERE source IS NOT NULL;

-- The key each imported message is recognised by within its session, and a hash of what was
-- stored for it (NULL until first compared), so a re-read replaces only what changed. A row
-- outlives its message when the message is deleted (compacted away): the key is then known
-- and not imported again. Message ids are never reused, and lookups also match the session.
CREATE TABLE message_keys (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    hash       INTEGER,
    PRIMARY KEY (session_id, key)
) WITHOUT ROWID;
CREATE INDEX message_keys_message ON message_keys (message_id);

-- How far each file of a live source (Claude Code, Codex) has been read: saved in the same
-- transaction as the messages read, so a reader resumes exactly where the database stands.
CREATE TABLE source_files (
    path        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(state)),
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX source_files_source ON source_files (source);

-- A threadline export being loaded in short transactions: which file (by the hash of its
-- bytes), and each session it has put in so far, with how far that session's message and
-- summary ids were moved and, for a session loaded in parts, how many of its messages are in.
-- Running the same import again after a crash finishes it; the rows go when it completes.
CREATE TABLE import_runs (
    id         INTEGER PRIMARY KEY,
    digest     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE import_run_sessions (
    run_id        INTEGER NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL,
    message_shift INTEGER NOT NULL DEFAULT 0,
    summary_shift INTEGER NOT NULL DEFAULT 0,
    loaded_rows   INTEGER,  -- NULL once the whole session is in
    PRIMARY KEY (run_id, session_id)
) WITHOUT ROWID;
