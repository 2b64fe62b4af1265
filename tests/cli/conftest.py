"""CLI test helpers: run `threadline.cli.main(argv)` and fill a database through the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cli.helpers import Result
from threadline.cli import main
from threadline.store import Store

T = TypeVar("T")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], db_path: Path) -> Callable[..., Result]:
    """Run threadline with `--db` pointing at the test database (unless db=None)."""

    def run(*argv: str, db: Path | None = db_path) -> Result:
        args = list(argv) + (["--db", str(db)] if db is not None else [])
        status = main(args)
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


@pytest.fixture
def with_db(db_path: Path, clock: Any) -> Callable[[Callable[[Store], Awaitable[T]]], T]:
    """Run an async function against the test database (opened, then closed again)."""

    def run(fn: Callable[[Store], Awaitable[T]]) -> T:
        async def go() -> T:
            store = await Store.open(db_path, clock=clock)
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(go())

    return run
