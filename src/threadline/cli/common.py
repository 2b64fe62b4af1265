"""Helpers shared by the subcommands: errors, settings and store access, output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from threadline.config import Settings
    from threadline.store import Store

T = TypeVar("T")


class CommandFailed(Exception):
    """End the command with `status`; `message` (if any) is printed as a one-line error."""

    def __init__(self, message: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ThreadlineArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (`threadline: error: ...`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        report_error(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def report_error(message: str) -> None:
    text = " ".join(str(message).split())
    print(f"threadline: error: {text}", file=sys.stderr)


def load_settings(args: argparse.Namespace) -> Settings:
    from threadline.config import load_settings as load

    return load(getattr(args, "config", None))


async def open_store(args: argparse.Namespace) -> Store:
    from threadline.store import Store

    return await Store.open(getattr(args, "db", None))


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body on a fresh event loop."""
    import asyncio  # loaded by the commands that run, not by the parser

    return asyncio.run(_wrap(coro_fn))


async def _wrap(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return await coro_fn()


def print_json(value: Any) -> None:
    """Pretty JSON on stdout, every control character escaped (safe on a terminal)."""
    from threadline.cli.output import print_json as write

    write(value)
