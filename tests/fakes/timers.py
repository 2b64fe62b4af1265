"""Counting a turn's checkpoint timer: how often the reply keeper's interval ran out.

Tests of "a few writes, not one per token" compare the writes with these expiries instead of
with the elapsed time, so a busy machine (which only makes the timer run out more often)
cannot fail them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

# The keeper task's coroutine, as asyncio.current_task() names it.
KEEPER = "Turn._keep"


class KeeperTimer:
    """Stands in for `asyncio` inside threadline.chat.turns; counts wait_for time-outs."""

    def __init__(self) -> None:
        self.expiries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError:
            self.expiries += 1
            raise


def count_keeper_timer(monkeypatch: pytest.MonkeyPatch) -> KeeperTimer:
    from threadline.chat import turns

    timer = KeeperTimer()
    monkeypatch.setattr(turns, "asyncio", timer)
    return timer


def current_task_name() -> str:
    """The coroutine of the running task (KEEPER for the reply keeper's writes)."""
    task = asyncio.current_task()
    return task.get_coro().__qualname__ if task is not None else ""  # type: ignore[union-attr]
