-- threadline schema, version 7: search indexes without prefix indexes, built in short steps,
-- an index over session titles and previews for the sidebar filter, and per-directory
-- session counts.
--
-- A typed prefix is expanded from the index's term list (the *_terms fts5vocab tables) into
-- exact terms (store/search.py), so the prefix indexes of version 2 ('2 3', two thirds of
-- the indexing work) go. This migration only creates the new, empty indexes: it runs in a
-- moment on any database. The rows already there are indexed afterwards in short write
-- transactions (search.build_step), resuming from search_build after a crash; until an
-- index is complete, search uses the version-2 one, which its triggers keep up to date, and
-- once both are complete the version-2 indexes are dropped, also in short steps.

-- Rows of `name` with done < id <= upto are still to be indexed by the build; every other row
-- is kept indexed by the triggers. No row: the index is complete.
CREATE TABLE search_build (
    name TEXT PRIMARY KEY,
    done INTEGER NOT NULL,
    upto INTEGER NOT NULL
);
INSERT INTO search_build (name, done, upto)
    SELECT 'messages', 0, max(id) FROM messages HAVING max(id) IS NOT NULL;
INSERT INTO search_build (name, done, upto)
    SELECT 'summaries', 0, max(id) FROM summaries HAVING max(id) IS NOT NULL;

CREATE VIEW search_messages_source AS
    SELECT m.id AS id, m.content AS content, s.dir_tokens AS dirs
    FROM messages AS m JOIN sessions AS s ON s.id = m.session_id;

CREATE VIRTUAL TABLE search_messages USING fts5 (
    content, dirs,
    content = 'search_messages_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE search_messages_terms USING fts5vocab (search_messages, instance);

CREATE TRIGGER search_messages_ai AFTER INSERT ON messages
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'messages' AND new.id > b.done AND new.id <= b.upto)
BEGIN
    INSERT INTO search_messages (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE TRIGGER search_messages_ad AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'messages' AND old.id > b.done AND old.id <= b.upto)
BEGIN
    INSERT INTO search_messages (search_messages, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
END;

CREATE TRIGGER search_messages_au AFTER UPDATE OF content ON messages
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'messages' AND old.id > b.done AND old.id <= b.upto)
BEGIN
    INSERT INTO search_messages (search_messages, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
    INSERT INTO search_messages (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE VIEW search_summaries_source AS
    SELECT m.id AS id, m.content AS content, s.dir_tokens AS dirs
    FROM summaries AS m JOIN sessions AS s ON s.id = m.session_id;

CREATE VIRTUAL TABLE search_summaries USING fts5 (
    content, dirs,
    content = 'search_summaries_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE search_summaries_terms USING fts5vocab (search_summaries, instance);

CREATE TRIGGER search_summaries_ai AFTER INSERT ON summaries
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'summaries' AND new.id > b.done AND new.id <= b.upto)
BEGIN
    INSERT INTO search_summaries (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE TRIGGER search_summaries_ad AFTER DELETE ON summaries
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'summaries' AND old.id > b.done AND old.id <= b.upto)
BEGIN
    INSERT INTO search_summaries (search_summaries, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
END;

CREATE TRIGGER search_summaries_au AFTER UPDATE OF content ON summaries
WHEN NOT EXISTS (SELECT 1 FROM search_build AS b
                 WHERE b.name = 'summaries' AND old.id > b.done AND old.id <= b.upto)
BEGIN
    INSERT INTO search_summaries (search_summaries, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
    INSERT INTO search_summaries (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

-- The version-2 indexes' term lists, for prefixes while they still serve the searches.
CREATE VIRTUAL TABLE messages_fts_terms USING fts5vocab (messages_fts, instance);
CREATE VIRTUAL TABLE summaries_fts_terms USING fts5vocab (summaries_fts, instance);

-- The sidebar filter: session titles and previews. The index keeps its own copy of the text
-- (a few hundred bytes a session) under a key of its own, since a session's rowid may change
-- on VACUUM. The sessions already there are indexed by the build (by rowid, resumable);
-- until then the filter scans, as version 6 did. The triggers need no condition: a session
-- without a key yet has nothing in the index to change or delete.
CREATE TABLE search_session_keys (
    rid        INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE  -- its session's id; the row goes with the session
);
CREATE VIRTUAL TABLE search_sessions USING fts5 (
    title, preview,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE search_sessions_terms USING fts5vocab (search_sessions, instance);

INSERT INTO search_build (name, done, upto)
    SELECT 'sessions', 0, max(rowid) FROM sessions HAVING max(rowid) IS NOT NULL;

CREATE TRIGGER search_sessions_ai AFTER INSERT ON sessions BEGIN
    INSERT INTO search_session_keys (session_id) VALUES (new.id);
    INSERT INTO search_sessions (rowid, title, preview)
    VALUES ((SELECT rid FROM search_session_keys WHERE session_id = new.id),
            new.title, new.preview);
END;

CREATE TRIGGER search_sessions_au AFTER UPDATE OF title, preview ON sessions
WHEN old.title IS NOT new.title OR old.preview IS NOT new.preview
BEGIN
    UPDATE search_sessions SET title = new.title, preview = new.preview
    WHERE rowid = (SELECT rid FROM search_session_keys WHERE session_id = new.id);
END;

CREATE TRIGGER search_sessions_ad AFTER DELETE ON sessions BEGIN
    DELETE FROM search_sessions
    WHERE rowid = (SELECT rid FROM search_session_keys WHERE session_id = old.id);
    DELETE FROM search_session_keys WHERE session_id = old.id;
END;

-- Sessions per directory, kept by triggers, so counting a scope reads at most one row per
-- directory instead of every session (the sidebar counts its scope on every open).
CREATE TABLE session_counts (
    working_dir TEXT PRIMARY KEY,
    live        INTEGER NOT NULL DEFAULT 0,  -- not in the trash
    trashed     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO session_counts (working_dir, live, trashed)
    SELECT working_dir, sum(deleted_at IS NULL), sum(deleted_at IS NOT NULL)
    FROM sessions GROUP BY working_dir;

CREATE TRIGGER session_counts_ai AFTER INSERT ON sessions BEGIN
    INSERT INTO session_counts (working_dir, live, trashed)
    VALUES (new.working_dir, new.deleted_at IS NULL, new.deleted_at IS NOT NULL)
    ON CONFLICT (working_dir) DO UPDATE SET
        live = live + excluded.live, trashed = trashed + excluded.trashed;
END;

CREATE TRIGGER session_counts_ad AFTER DELETE ON sessions BEGIN
    UPDATE session_counts SET
        live = live - (old.deleted_at IS NULL), trashed = trashed - (old.deleted_at IS NOT NULL)
    WHERE working_dir = old.working_dir;
END;

CREATE TRIGGER session_counts_au AFTER UPDATE OF working_dir, deleted_at ON sessions
WHEN old.working_dir IS NOT new.working_dir OR (old.deleted_at IS NULL) <> (new.deleted_at IS NULL)
BEGIN
    UPDATE session_counts SET
        live = live - (old.deleted_at IS NULL), trashed = trashed - (old.deleted_at IS NOT NULL)
    WHERE working_dir = old.working_dir;
    INSERT INTO session_counts (working_dir, live, trashed)
    VALUES (new.working_dir, new.deleted_at IS NULL, new.deleted_at IS NOT NULL)
    ON CONFLICT (working_dir) DO UPDATE SET
        live = live + excluded.live, trashed = trashed + excluded.trashed;
END;
