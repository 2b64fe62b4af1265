"""Full garbage collections wait for a pause in the input (ui/idle_gc.py)."""

from __future__ import annotations

import gc

from threadline.ui.idle_gc import OFF, IdleCollector


class Fake:
    """A clock and a collector that only count."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pending = 0  # generation-1 collections since the last full one
        self.collected: list[int] = []

    def collect(self, generation: int) -> int:
        self.collected.append(generation)
        self.pending = 0
        return 0

    def make(self, **kwargs: object) -> IdleCollector:
        return IdleCollector(
            clock=lambda: self.now,
            collect=self.collect,
            count=lambda: (0, 0, self.pending),
            **kwargs,  # type: ignore[arg-type]
        )


def test_a_due_collection_waits_for_quiet_input() -> None:
    fake = Fake()
    collector = fake.make(due=10, overdue=1000, quiet=1.0)
    fake.pending = 9
    fake.now += 5
    assert not collector.tick()  # not due yet, however quiet
    fake.pending = 10
    collector.activity()
    fake.now += 0.5
    assert not collector.tick()  # due, but a key came half a second ago
    fake.now += 0.6
    assert collector.tick()  # a second without input: collected
    assert fake.collected == [2]
    assert not collector.tick()  # and not again until it is due again
    assert collector.collections == 1


def test_an_overdue_collection_runs_while_keys_keep_coming() -> None:
    fake = Fake()
    collector = fake.make(due=10, overdue=50, quiet=1.0)
    for pending in range(10, 50):
        fake.pending = pending
        collector.activity()
        fake.now += 0.1
        assert not collector.tick()
    fake.pending = 50
    collector.activity()
    assert collector.tick()
    assert fake.collected == [2]


def test_start_turns_automatic_full_collections_off_and_stop_restores_them() -> None:
    before = gc.get_threshold()
    collector = IdleCollector()
    collector.start()
    try:
        assert collector.started
        assert gc.get_threshold() == (before[0], before[1], OFF)
        collector.start()  # twice: the thresholds saved are still the first ones
    finally:
        collector.stop()
    assert gc.get_threshold() == before
    assert not collector.started
    collector.stop()  # stopping again changes nothing
    assert gc.get_threshold() == before
