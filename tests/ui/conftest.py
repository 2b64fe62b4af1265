"""Fixtures for the app's tests: a fixed time zone and home, and the sample databases."""

from __future__ import annotations

import asyncio
import copy
import random
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import sample_data  # noqa: E402

T = TypeVar("T")


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
def repeatable_ids(monkeypatch: pytest.MonkeyPatch) -> random.Random:
    """New ids take their random bits from a seeded generator: the short ids on screen (drawn
    from those bits) are the same on every run, whatever ran before in this process."""
    from threadline.store import util

    rng = random.Random(20261123)
    monkeypatch.setattr(util, "random_bytes", rng.randbytes)
    monkeypatch.setattr(util, "_uuid_last_ms", -1)
    return rng


# name -> (what the build returned, the id generator's state after it, the cached files)
_BUILT: dict[str, tuple[object, tuple[object, ...], dict[str, Path]]] = {}


@pytest.fixture
def built(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    repeatable_ids: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str, Callable[[Path], Awaitable[T]]], tuple[Path, T]]:
    """`built(name, build)`: a copy of the database `build(path)` writes, at tmp_path/name, and
    what the build returned. Each database is built once per test process and copied for each
    test (a copy costs a millisecond, a build a fifth of a second of fsyncs); the id generator
    is left as the build left it, so the ids a test makes are those it made after a build."""
    from threadline.store import util

    def copy_of(name: str, build: Callable[[Path], Awaitable[T]]) -> tuple[Path, T]:
        if name not in _BUILT:
            where = tmp_path_factory.mktemp("built") / name
            result = asyncio.run(build(where))
            files = {
                suffix: Path(f"{where}{suffix}")
                for suffix in ("", "-wal", "-shm")
                if Path(f"{where}{suffix}").exists()
            }
            state = (repeatable_ids.getstate(), util._uuid_last_ms, util._uuid_seq)
            _BUILT[name] = (result, state, files)
        result, (rng_state, last_ms, seq), files = _BUILT[name]
        target = tmp_path / name
        for suffix, source in files.items():
            shutil.copyfile(source, f"{target}{suffix}")
        repeatable_ids.setstate(rng_state)  # type: ignore[arg-type]
        monkeypatch.setattr(util, "_uuid_last_ms", last_ms)
        monkeypatch.setattr(util, "_uuid_seq", seq)
        return target, copy.deepcopy(result)  # type: ignore[return-value]

    return copy_of


@pytest.fixture
def sample_db(built) -> sample_data.Sample:  # noqa: ANN001
    """The sample database (sessions in ~/src/api and elsewhere, hostile text included)."""
    return sample_data.copied(built, "sample.db", sample_data.build)


@pytest.fixture
def plain_db(built) -> sample_data.Sample:  # noqa: ANN001
    """The sample database without the hostile sessions (for pictures of ordinary use)."""
    return sample_data.copied(built, "plain.db", sample_data.build, hostile=False)


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A path where no database exists yet (the app creates it, in a directory that exists)."""
    (tmp_path / "data").mkdir(exist_ok=True)
    return tmp_path / "data" / "empty.db"
