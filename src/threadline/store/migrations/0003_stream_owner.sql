-- The process writing a session's reply (see store/liveness.py), set beside heartbeat_at: a
-- reader on the same machine can tell at once that a writer died instead of waiting 30 s.
ALTER TABLE sessions ADD COLUMN stream_owner TEXT;
