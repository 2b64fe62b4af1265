"""The live reply's rules without a screen (ui.live_stream): where its finished blocks end, the
pace of its repaints and which lines a repaint draws again. Times are given, never read."""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.models import Message
from threadline.ui.live_stream import LIVE_FPS, LiveStream, Repaint, live_delay, split_blocks

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def stream() -> LiveStream:
    return LiveStream(Message(id=7, session_id="s", role="assistant", content="", created_at=NOW))


def test_split_keeps_fences_lists_and_growing_tail_together():
    chunks, tail = split_blocks("A.\n\n```\ncode\n\nmore\n```\n\n- x\n\n- y\n\nB is gr")
    # (A list item after a blank line continues: a loose list stays one block.)
    assert chunks == ["A.", "```\ncode\n\nmore\n```\n\n- x\n\n- y"]
    assert tail == "B is gr"
    # An open fence: nothing after it is final.
    chunks, tail = split_blocks("A.\n\n```py\nx = 1\n\ny")
    assert chunks == ["A."] and tail == "```py\nx = 1\n\ny"
    assert "".join(split_blocks("")[1]) == ""
    # A thematic break's blank line does not end a block of its own.
    assert split_blocks("a\n\n---\n\nb\n\nc")[0] == ["a", "---\n\nb"]


def test_live_pacing_draws_at_most_live_fps_times_a_second():
    """The rule the view follows for each delta (no clock: the times are given)."""
    painted, paints, due = 0.0, 0, None
    for i in range(2000):  # 2,000 deltas over one second
        now = i / 2000
        if due is not None and now >= due:
            painted, paints, due = due, paints + 1, None
        if due is None:
            due = now + max(0.0, live_delay(painted, 0.002, now))
    assert LIVE_FPS <= paints + 1 <= LIVE_FPS + 1
    # A drawing that takes long paces the repaints further apart (a third of the time).
    assert abs(live_delay(0.0, 0.2, 0.0) - 0.6) < 1e-9


def test_a_delta_schedules_one_repaint_until_it_starts():
    live = stream()
    live.painted = 10.0
    # Right after a paint: wait out the interval; later deltas ride on the scheduled repaint.
    assert abs(live.arrived("Hel", 10.0) - 1 / LIVE_FPS) < 1e-9
    assert live.arrived("lo", 10.01) is None
    assert live.arrived(" there", 10.02) is None
    assert live.text == "Hello there" and live.deltas == 3
    assert live.due and live.frame == 0
    live.next_frame()
    assert not live.due and live.frame == 1
    # Long after the last paint: at once. A slow drawing (0.1 s) spaces repaints 0.3 s apart.
    assert live.arrived("!", 20.0) == 0.0
    live.next_frame()
    live.painted, live.render_seconds = 20.0, 0.1
    assert abs(live.arrived("?", 20.1) - 0.2) < 1e-9
    assert live.key == ("m", 7) and live.text == "Hello there!?"


def test_a_repaint_draws_again_only_what_can_have_changed():
    live = stream()
    live.stable_lines = 4  # the header and the finished blocks
    # The same height: from the growing end to the reply's end (entry at line 10, 9 lines).
    assert live.repaint(10, 9, 9, 40) == Repaint(14, 5, grew=False)
    # Grown: the layout below it moved; everything from the growing end to the layout's end.
    assert live.repaint(10, 12, 9, 43) == Repaint(14, 29, grew=True)
    # Nothing stable (or fewer lines than the stable count): at least its last line.
    live.stable_lines = 0
    assert live.repaint(10, 3, 3, 40) == Repaint(10, 3, grew=False)
    live.stable_lines = 8
    assert live.repaint(10, 3, 2, 13) == Repaint(12, 1, grew=True)
