"""CLI test helpers: run `threadline.cli.main(argv)` and fill a database through the store."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from threadline.cli import main
from threadline.store import Store

T = TypeVar("T")

HOSTILE_TITLE = "Evil \x1b]0;pwned\x07 title \x1b[31mred\x9b2J"


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


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


def fake_tty(monkeypatch: pytest.MonkeyPatch, stream: str = "stdout", columns: int = 80) -> None:
    """Make sys.<stream> claim to be a terminal `columns` wide."""
    monkeypatch.setattr(getattr(sys, stream), "isatty", lambda: True, raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("LINES", "24")


def no_controls(text: str) -> bool:
    """True when no C0 (other than newline/tab) or C1 control character is in `text`."""
    return not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)
