"""Shared fixtures: a private environment, a movable clock and a store on a temporary file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.store import Store


@pytest.fixture(autouse=True)
def private_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every XDG and THREADLINE_* location at a temp dir: tests never touch real data."""
    root = tmp_path_factory.mktemp("env")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(root / var.lower()))
    for var in (
        "THREADLINE_DB",
        "THREADLINE_CONFIG",
        "THREADLINE_BASE_URL",
        "THREADLINE_MODEL",
        "THREADLINE_API_KEY",
        "NO_COLOR",  # colours and highlights are on unless a test turns them off
    ):
        monkeypatch.delenv(var, raising=False)
    # Coding agents' histories (capture follows them): never the machine's own.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(root / "claude"))
    monkeypatch.setenv("CODEX_HOME", str(root / "codex"))
    return root


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # Only the default location gets its directory made on demand (issue 11): make this one.
    (tmp_path / "data").mkdir(exist_ok=True)
    return tmp_path / "data" / "threadline.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    s = await Store.open(db_path, clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[str]:
    d = tmp_path / "project"
    d.mkdir()
    yield str(d.resolve())
