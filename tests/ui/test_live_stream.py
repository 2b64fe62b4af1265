"""The live reply's repaints without a screen (ui.live_stream): their pace, the drawing kept
for one frame, and which lines a repaint draws again. Times are given, never read."""

from __future__ import annotations

from threadline.ui.live_stream import LIVE_FPS, LivePace, Repaint, live_delay


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
    pace = LivePace(painted=10.0)
    # Right after a paint: wait out the interval; later deltas ride on the scheduled repaint.
    delay = pace.arrived(0.001, 10.0)
    assert delay is not None and abs(delay - 1 / LIVE_FPS) < 1e-9
    assert pace.arrived(0.001, 10.01) is None
    assert pace.arrived(0.001, 10.02) is None
    assert pace.due and pace.frame == 0
    pace.next_frame()
    assert not pace.due and pace.frame == 1
    # Long after the last paint: at once. A slow drawing (0.1 s) spaces repaints 0.3 s apart.
    assert pace.arrived(0.001, 20.0) == 0.0
    pace.next_frame()
    pace.painted = 20.0
    delay = pace.arrived(0.1, 20.1)
    assert delay is not None and abs(delay - 0.2) < 1e-9


def test_a_frame_is_drawn_once_per_width_and_state():
    pace = LivePace()
    drawings: list[str] = []

    def draw(what: str):
        def make() -> list[str]:
            drawings.append(what)
            return [what]

        return make

    assert pace.drawn((80, "plain"), draw("a")) == ["a"]
    assert pace.drawn((80, "plain"), draw("b")) == ["a"]  # the same frame: kept
    assert pace.drawn((60, "plain"), draw("c")) == ["c"]  # another width: drawn
    pace.next_frame()
    assert pace.drawn((60, "plain"), draw("d")) == ["d"]  # the next frame: drawn
    pace.forget()
    assert pace.drawn((60, "plain"), draw("e")) == ["e"]  # the layout was replaced
    assert drawings == ["a", "c", "d", "e"]


def test_a_repaint_draws_again_only_what_can_have_changed():
    pace = LivePace()
    # 4 stable lines (header, finished blocks); the same height: from the growing end to
    # the reply's end (entry at line 10, 9 lines).
    assert pace.repaint(4, 10, 9, 9, 40) == Repaint(14, 5, grew=False)
    # Grown: the layout below it moved; everything from the growing end to the layout's end.
    assert pace.repaint(4, 10, 12, 9, 43) == Repaint(14, 29, grew=True)
    # Nothing stable (or fewer lines than the stable count): at least its last line.
    assert pace.repaint(0, 10, 3, 3, 40) == Repaint(10, 3, grew=False)
    assert pace.repaint(8, 10, 3, 2, 13) == Repaint(12, 1, grew=True)
