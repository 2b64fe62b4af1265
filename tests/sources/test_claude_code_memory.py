"""A long Claude Code session is read in batches, and what a batch held is not kept after it
is sent: memory follows a batch, not the file (a 635 MB session once took 1.3 GB)."""

from __future__ import annotations

import gc

from cli.import_fixtures import claude_code_lines
from threadline import sources
from threadline.sources._common import Msg


def live_msgs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Msg)


def test_messages_already_sent_are_not_kept(tmp_path) -> None:
    sid = "6a6a6a6a-0000-4000-8000-000000000001"
    path = tmp_path / f"{sid}.jsonl"
    path.write_text("".join(claude_code_lines(sid, "/w", [("p", "r")] * 3000)))
    reader = sources.get("claude-code").read(path)
    sent = 0
    for n, batch in enumerate(reader):
        sent += len(batch.messages)
        del batch
        if n == 3:
            break
    assert sent > 6000  # several batches of about 2,000 went by
    assert live_msgs() < 2500  # at most a batch being built, not all that was sent
    reader.close()
