-- threadline schema, version 8: summaries by creation time.
--
-- A newest-first search merges message and summary hits by time: once the newest messages
-- fill the page, only a summary at least as new as the last of them can be shown, and this
-- index says in one lookup whether there is any (most often none), so the summaries' index is
-- not searched for nothing. A small index over a small table: built in a moment.
CREATE INDEX summaries_created ON summaries (created_at);
