-- threadline schema, version 3: sync between a person's machines (see threadline/sync/).
--
-- Every change that matters is captured by the triggers below into sync_outbox, whoever writes
-- (the app, `threadline chat`, scripts, imports, cleanup): the journal writer turns those rows
-- into records of this machine's journal. Nothing is captured until a sync repository is set
-- up (sync_state.capture = 1), and nothing while another machine's records are applied (the
-- applier sets capture = 0 inside its own transaction). Everything here is O(1) on a large
-- database: no table is scanned and no index is built over existing rows.

-- Where a session's project is, independent of the path it has on one machine: the normalised
-- git remote of its repository and the working directory's path inside it ('' at the root).
ALTER TABLE sessions ADD COLUMN project_remote TEXT;
ALTER TABLE sessions ADD COLUMN project_path TEXT;
CREATE INDEX sessions_project ON sessions (project_remote, project_path)
    WHERE project_remote IS NOT NULL;

-- This database's identity and the state of its journal.
CREATE TABLE sync_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    machine_id   TEXT NOT NULL,                 -- 16 hex digits, made once per database
    capture      INTEGER NOT NULL DEFAULT 0,    -- 1 while changes are to be journalled
    next_seq     INTEGER NOT NULL DEFAULT 1,    -- the next record's sequence number
    repo_dir     TEXT,                          -- the local clone of the sync repository
    remote       TEXT,                          -- what `sync init` was given (credentials removed)
    snapshot     TEXT,                          -- JSON cursor of the initial snapshot, NULL when done
    last_sync_at TEXT,                          -- the end of the last complete sync
    last_error   TEXT                           -- the last sync's failure (NULL after a success)
);
INSERT INTO sync_state (id, machine_id) VALUES (1, lower(hex(randomblob(8))));

-- Changes waiting to be journalled (`at` is left out where it costs a bulk import time). `key` is the row's id (a session id, or a message, summary
-- or memory id); `field` names the changed field of a `*.set`, or a deleted message's session.
CREATE TABLE sync_outbox (
    seq   INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    field TEXT,
    at    TEXT    -- when it changed; NULL for messages (the journal writer's time is used)
);

-- Records rendered from the outbox and not yet appended to this machine's journal file.
CREATE TABLE sync_pending (
    seq  INTEGER PRIMARY KEY,
    at   TEXT NOT NULL,
    line TEXT NOT NULL
);

-- Global ids of rows that did not start here (or whose local id changed): messages (m),
-- summaries (y) and memories (k). A row without an entry is '<machine_id>:<local id>'.
CREATE TABLE sync_ids (
    kind  TEXT NOT NULL,
    uid   TEXT NOT NULL,
    local INTEGER NOT NULL,
    PRIMARY KEY (kind, uid)
) WITHOUT ROWID;
CREATE INDEX sync_ids_local ON sync_ids (kind, local);

-- Last-writer-wins clocks of applied and journalled changes: key -> (time, machine).
CREATE TABLE sync_clock (
    key     TEXT PRIMARY KEY,
    at      TEXT NOT NULL,
    machine TEXT NOT NULL
) WITHOUT ROWID;

-- What was removed for good: purged sessions (s:<id>), deleted memories (k:<uid>) and
-- compacted messages (m:<uid>). A record about a removed row is ignored.
CREATE TABLE sync_tombstones (
    key     TEXT PRIMARY KEY,
    at      TEXT NOT NULL,
    machine TEXT NOT NULL
) WITHOUT ROWID;

-- Records of other machines waiting for the session (or memory) they refer to.
CREATE TABLE sync_parked (
    id      INTEGER PRIMARY KEY,
    wait    TEXT NOT NULL,          -- the key awaited (s:<session id>, k:<memory uid>)
    machine TEXT NOT NULL,
    line    TEXT NOT NULL
);
CREATE INDEX sync_parked_wait ON sync_parked (wait);

-- How far each journal file of another machine has been applied.
CREATE TABLE sync_files (
    path    TEXT PRIMARY KEY,       -- relative to the repository
    machine TEXT NOT NULL,
    offset  INTEGER NOT NULL,       -- bytes applied (the end of the last applied line)
    size    INTEGER NOT NULL
) WITHOUT ROWID;

-- The last record applied from each other machine (its sequence is contiguous).
CREATE TABLE sync_peers (
    machine  TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL DEFAULT 0,
    records  INTEGER NOT NULL DEFAULT 0,
    last_at  TEXT,
    error    TEXT                   -- why its journal stopped applying (a bad file), or NULL
) WITHOUT ROWID;

-- ------------------------------------------------------------------ capture

CREATE TRIGGER sync_sessions_ai AFTER INSERT ON sessions
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, at) VALUES ('session', new.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

CREATE TRIGGER sync_sessions_au AFTER UPDATE OF
    title, pinned, deleted_at, status, ended_at, model, provider, system_prompt ON sessions
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, field, at)
    SELECT 'session.set', new.id, f, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM (
        SELECT 'title' AS f WHERE new.title IS NOT old.title
        UNION ALL SELECT 'pinned' WHERE new.pinned IS NOT old.pinned
        UNION ALL SELECT 'deleted_at' WHERE new.deleted_at IS NOT old.deleted_at
        UNION ALL SELECT 'status' WHERE new.status IS NOT old.status
        UNION ALL SELECT 'ended_at' WHERE new.ended_at IS NOT old.ended_at
        UNION ALL SELECT 'model' WHERE new.model IS NOT old.model
        UNION ALL SELECT 'provider' WHERE new.provider IS NOT old.provider
        UNION ALL SELECT 'system_prompt' WHERE new.system_prompt IS NOT old.system_prompt);
END;

CREATE TRIGGER sync_sessions_ad AFTER DELETE ON sessions
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, at) VALUES ('session.purge', old.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

-- A streaming reply is journalled once it is complete or interrupted, not per checkpoint.
CREATE TRIGGER sync_messages_ai AFTER INSERT ON messages
WHEN (new.complete OR new.stop_reason IS NOT NULL) AND (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key) VALUES ('message', new.id);
END;

CREATE TRIGGER sync_messages_au AFTER UPDATE OF
    content, payload, complete, stop_reason, input_tokens, output_tokens, model, response_ms
    ON messages
WHEN (new.complete OR new.stop_reason IS NOT NULL) AND (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key) VALUES ('message', new.id);
END;

CREATE TRIGGER sync_messages_ad AFTER DELETE ON messages
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, field) VALUES ('message.delete', old.id, old.session_id);
END;

CREATE TRIGGER sync_summaries_ai AFTER INSERT ON summaries
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, at) VALUES ('summary', new.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

CREATE TRIGGER sync_memories_ai AFTER INSERT ON memories
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, at) VALUES ('memory', new.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

CREATE TRIGGER sync_memories_au AFTER UPDATE OF
    fact, category, importance, superseded_by ON memories
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, field, at)
    SELECT 'memory.set', new.id, f, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM (
        SELECT 'fact' AS f WHERE new.fact IS NOT old.fact
        UNION ALL SELECT 'category' WHERE new.category IS NOT old.category
        UNION ALL SELECT 'importance' WHERE new.importance IS NOT old.importance
        UNION ALL SELECT 'superseded_by' WHERE new.superseded_by IS NOT old.superseded_by);
END;

CREATE TRIGGER sync_memories_ad AFTER DELETE ON memories
WHEN (SELECT capture FROM sync_state) BEGIN
    INSERT INTO sync_outbox (kind, key, at) VALUES ('memory.delete', old.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;
