"""Fixtures for the app's tests: a fixed time zone and home, and the sample databases."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import sample_data  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC and home is /home/dev, so pictures do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("HOME", sample_data.HOME)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def quick_idle_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pilot's idle checks look in 5 ms slices, not 20 ms (see internals.look_for_idle_in)."""
    from internals import look_for_idle_in

    look_for_idle_in(0.005, monkeypatch)


@pytest.fixture(autouse=True)
def repeatable_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """New ids take their random bits from a seeded generator: the short ids on screen (drawn
    from those bits) are the same on every run, whatever ran before in this process."""
    from threadline.store import util

    monkeypatch.setattr(util, "random_bytes", random.Random(20261123).randbytes)
    monkeypatch.setattr(util, "_uuid_last_ms", -1)


@pytest.fixture
def sample_db(tmp_path: Path) -> sample_data.Sample:
    """The sample database (sessions in ~/src/api and elsewhere, hostile text included)."""
    return asyncio.run(sample_data.build(tmp_path / "sample.db"))


@pytest.fixture
def plain_db(tmp_path: Path) -> sample_data.Sample:
    """The sample database without the hostile sessions (for pictures of ordinary use)."""
    return asyncio.run(sample_data.build(tmp_path / "plain.db", hostile=False))


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A path where no database exists yet (the app creates it, in a directory that exists)."""
    (tmp_path / "data").mkdir(exist_ok=True)
    return tmp_path / "data" / "empty.db"
