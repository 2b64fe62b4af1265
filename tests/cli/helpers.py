"""Helpers shared by the CLI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

HOSTILE_TITLE = "Evil \x1b]0;pwned\x07 title \x1b[31mred\x9b2J"


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def fake_tty(monkeypatch: pytest.MonkeyPatch, stream: str = "stdout", columns: int = 80) -> None:
    """Make sys.<stream> claim to be a terminal `columns` wide."""
    monkeypatch.setattr(getattr(sys, stream), "isatty", lambda: True, raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("LINES", "24")


def no_controls(text: str) -> bool:
    """True when no C0 (other than newline/tab) or C1 control character is in `text`."""
    return not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)
