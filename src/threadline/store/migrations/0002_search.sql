-- threadline schema, version 2: full-text search over messages and summaries (FTS5).
-- Each indexed row carries its session's directory tokens in the `dirs` column, so a search
-- scoped to a directory or workspace is an FTS intersection, not a scan of every hit.

CREATE VIEW messages_fts_source AS
    SELECT m.id AS id, m.content AS content, s.dir_tokens AS dirs
    FROM messages AS m JOIN sessions AS s ON s.id = m.session_id;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, dirs,
    content = 'messages_fts_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);

CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
END;

CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
    INSERT INTO messages_fts (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE VIEW summaries_fts_source AS
    SELECT m.id AS id, m.content AS content, s.dir_tokens AS dirs
    FROM summaries AS m JOIN sessions AS s ON s.id = m.session_id;

CREATE VIRTUAL TABLE summaries_fts USING fts5 (
    content, dirs,
    content = 'summaries_fts_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);

CREATE TRIGGER summaries_fts_ai AFTER INSERT ON summaries BEGIN
    INSERT INTO summaries_fts (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

CREATE TRIGGER summaries_fts_ad AFTER DELETE ON summaries BEGIN
    INSERT INTO summaries_fts (summaries_fts, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
END;

CREATE TRIGGER summaries_fts_au AFTER UPDATE OF content ON summaries BEGIN
    INSERT INTO summaries_fts (summaries_fts, rowid, content, dirs)
    VALUES ('delete', old.id, old.content,
            (SELECT dir_tokens FROM sessions WHERE id = old.session_id));
    INSERT INTO summaries_fts (rowid, content, dirs)
    VALUES (new.id, new.content, (SELECT dir_tokens FROM sessions WHERE id = new.session_id));
END;

-- Index what a version-1 database already holds.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
INSERT INTO summaries_fts (summaries_fts) VALUES ('rebuild');
