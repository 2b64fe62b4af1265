-- threadline schema, version 1: sessions, messages, summaries, memories and the extraction queue.
-- Timestamps are UTC ISO-8601 text with milliseconds ("2026-11-23T08:46:53.123Z"): they sort as text.

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,              -- UUIDv7, time-ordered
    working_dir         TEXT NOT NULL,                 -- absolute, resolved
    dir_tokens          TEXT NOT NULL DEFAULT '',      -- search scope tokens (store/scope.py)
    title               TEXT,                          -- user-set or derived; NULL shows the preview
    preview             TEXT,                          -- first user message, one line, truncated
    provider            TEXT,
    model               TEXT,
    system_prompt       TEXT,
    status              TEXT NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'crashed')),
    pinned              INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    deleted_at          TEXT,                          -- set while the session is in the trash
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,                 -- time of the last message
    ended_at            TEXT,
    heartbeat_at        TEXT,                          -- set while a reply streams into this session
    message_count       INTEGER NOT NULL DEFAULT 0,
    total_input_tokens  INTEGER NOT NULL DEFAULT 0,
    total_output_tokens INTEGER NOT NULL DEFAULT 0,
    metadata            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);

-- A directory's sessions, pinned first then newest activity (the sidebar and `sessions list`).
CREATE INDEX sessions_dir_recent ON sessions (working_dir, pinned DESC, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;
-- Every directory's sessions in the same order (the "all" scope).
CREATE INDEX sessions_recent ON sessions (pinned DESC, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;
-- The newest session of a directory, whatever its pin (continuity lookups, cleanup by age).
CREATE INDEX sessions_dir_updated ON sessions (working_dir, updated_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX sessions_updated ON sessions (updated_at) WHERE deleted_at IS NULL;
CREATE INDEX sessions_trash ON sessions (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX sessions_streaming ON sessions (heartbeat_at) WHERE heartbeat_at IS NOT NULL;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: safe to cache and cite
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content       TEXT NOT NULL,
    payload       TEXT CHECK (payload IS NULL OR json_valid(payload)),
    created_at    TEXT NOT NULL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    model         TEXT,
    stop_reason   TEXT,
    response_ms   INTEGER,
    complete      INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1))
);

-- A session's messages in order.
CREATE INDEX messages_session ON messages (session_id, id);

CREATE TABLE summaries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    content          TEXT NOT NULL,
    -- The range of message ids it stands for; not foreign keys, since compacting
    -- removes the covered messages and keeps the summary.
    first_message_id INTEGER NOT NULL,
    last_message_id  INTEGER NOT NULL CHECK (last_message_id >= first_message_id),
    token_count      INTEGER,
    model            TEXT,
    created_at       TEXT NOT NULL
);

-- A session's summaries in timeline order.
CREATE INDEX summaries_session ON summaries (session_id, last_message_id);

CREATE TABLE memories (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    working_dir       TEXT NOT NULL,
    session_id        TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    source_message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    fact              TEXT NOT NULL,
    category          TEXT NOT NULL
                      CHECK (category IN ('preference', 'fact', 'decision', 'context', 'correction')),
    importance        INTEGER NOT NULL CHECK (importance BETWEEN 1 AND 5),
    superseded_by     INTEGER REFERENCES memories (id) ON DELETE SET NULL,
    is_manual         INTEGER NOT NULL DEFAULT 0 CHECK (is_manual IN (0, 1)),
    created_at        TEXT NOT NULL
);

-- A directory's memories by importance, then newest.
CREATE INDEX memories_dir ON memories (working_dir, importance DESC, created_at DESC);
-- Foreign-key lookups when a session, message or memory is deleted.
CREATE INDEX memories_session ON memories (session_id);
CREATE INDEX memories_source ON memories (source_message_id);
CREATE INDEX memories_superseded ON memories (superseded_by);

CREATE TABLE pending_memory_extractions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    from_message_id INTEGER,
    to_message_id   INTEGER,
    attempt_count   INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    last_attempt_at TEXT,
    next_attempt_at TEXT NOT NULL,
    error_message   TEXT,
    created_at      TEXT NOT NULL
);

CREATE INDEX pending_due ON pending_memory_extractions (next_attempt_at);
CREATE INDEX pending_session ON pending_memory_extractions (session_id);

-- Session counters and preview follow the messages in the same transaction, whoever writes.
CREATE TRIGGER messages_count_ai AFTER INSERT ON messages BEGIN
    UPDATE sessions SET
        message_count = message_count + 1,
        total_input_tokens = total_input_tokens + coalesce(new.input_tokens, 0),
        total_output_tokens = total_output_tokens + coalesce(new.output_tokens, 0),
        updated_at = max(updated_at, new.created_at),
        preview = CASE
            WHEN preview IS NULL AND new.role = 'user' AND trim(new.content) <> ''
            THEN substr(trim(replace(replace(replace(new.content, char(13), ' '), char(10), ' '),
                                     char(9), ' ')), 1, 200)
            ELSE preview END
    WHERE id = new.session_id;
END;

CREATE TRIGGER messages_count_ad AFTER DELETE ON messages BEGIN
    UPDATE sessions SET
        message_count = message_count - 1,
        total_input_tokens = total_input_tokens - coalesce(old.input_tokens, 0),
        total_output_tokens = total_output_tokens - coalesce(old.output_tokens, 0)
    WHERE id = old.session_id;
END;

CREATE TRIGGER messages_count_au AFTER UPDATE OF input_tokens, output_tokens ON messages BEGIN
    UPDATE sessions SET
        total_input_tokens = total_input_tokens
            - coalesce(old.input_tokens, 0) + coalesce(new.input_tokens, 0),
        total_output_tokens = total_output_tokens
            - coalesce(old.output_tokens, 0) + coalesce(new.output_tokens, 0)
    WHERE id = new.session_id;
END;

-- Children go before their session, so their own triggers still see the session row.
CREATE TRIGGER sessions_bd BEFORE DELETE ON sessions BEGIN
    DELETE FROM messages WHERE session_id = old.id;
    DELETE FROM summaries WHERE session_id = old.id;
END;
