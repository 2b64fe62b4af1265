-- threadline schema, version 3: sessions can be found by the random end of their id.
-- A UUIDv7 starts with its timestamp, so sessions made in the same minute share their leading
-- digits; the short ids threadline prints are drawn from the id's last group (random bits)
-- instead, and this index finds a session by any prefix of that group (store/sessions.py).
CREATE INDEX sessions_id_tail ON sessions (substr(id, 25));
