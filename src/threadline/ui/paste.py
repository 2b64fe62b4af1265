"""Bracketed paste that keeps what was pasted, ESC included (a work-around for Textual 8.2).

Textual's input parser (`textual._xterm_parser.XTermParser.parse`) keeps parsing escape
sequences while a bracketed paste is open. Pasted text that holds an ESC (coloured output copied
from a terminal, `\\x1b[31m`) starts a "sequence": the characters read while scanning it never
reach the paste buffer, and once the scan gives up (32 characters, or the next ESC) they are
re-issued as key presses, ahead of the Paste event that carries the rest, with the ESC turned
into `^`. The pasted text arrives scrambled: its tail first, its head last, `[`s and ESCs lost.

`PasteSafeParser` takes the paste out of the byte stream before that parser sees it: the text
between `ESC[200~` and `ESC[201~` becomes one Paste event, exactly as it came; everything else
goes to Textual's parser unchanged. A marker split across two reads is held back until the rest
arrives (a lone ESC held this way still becomes the escape key after Textual's ESCAPE_DELAY).
`install()` makes Textual's drivers use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.message import Message

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"


def _partial(data: str, marker: str) -> int:
    """How many characters at the end of `data` could begin `marker` (0: none)."""
    for size in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:size]):
            return size
    return 0


class PasteSafeParser(XTermParser):
    """XTermParser with bracketed pastes read verbatim (see the module's docstring)."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self._pasting: list[str] | None = None  # the paste being read, None outside one
        self._held = ""  # the end of the last read, which may be the start of a marker
        self._held_since = 0.0

    def feed(self, data: str) -> Iterable[Message]:
        if not data:  # the end of input
            held, self._held = self._held, ""
            if self._pasting is not None:
                yield events.Paste(self._finish(held))
            elif held:
                yield from super().feed(held)
            yield from super().feed("")
            return
        data = self._held + data
        self._held = ""
        while data:
            if self._pasting is not None:
                end = data.find(PASTE_END)
                if end < 0:
                    keep = _partial(data, PASTE_END)
                    self._pasting.append(data[: len(data) - keep])
                    self._hold(data[len(data) - keep :])
                    return
                text = self._finish(data[:end])
                data = data[end + len(PASTE_END) :]
                yield events.Paste(text)
                continue
            start = data.find(PASTE_START)
            if start < 0:
                keep = _partial(data, PASTE_START)
                if data[: len(data) - keep]:
                    yield from super().feed(data[: len(data) - keep])
                self._hold(data[len(data) - keep :])
                return
            if start:
                yield from super().feed(data[:start])
            self._pasting = []
            data = data[start + len(PASTE_START) :]

    def tick(self) -> Iterable[Message]:
        # A held tail that no more input has followed within ESCAPE_DELAY was not a marker.
        held = self._held
        if held and self._pasting is None:
            if time.monotonic() - self._held_since >= constants.ESCAPE_DELAY:
                self._held = ""
                if held == "\x1b":
                    yield events.Key("escape", "\x1b")  # what Textual makes of a lone ESC
                else:
                    yield from super().feed(held)
        yield from super().tick()

    def _hold(self, tail: str) -> None:
        if tail and not self._held:
            self._held_since = time.monotonic()
        self._held = tail

    def _finish(self, last: str) -> str:
        assert self._pasting is not None
        self._pasting.append(last)
        text = "".join(self._pasting)
        self._pasting = None
        return text.replace("\x00", "")  # as Textual does (NUL breaks widgets)


def install() -> None:
    """Make Textual's terminal drivers read input with PasteSafeParser."""
    import importlib
    import sys

    names = ("win32",) if sys.platform == "win32" else ("linux_driver", "linux_inline_driver")
    for name in names:
        try:
            module = importlib.import_module(f"textual.drivers.{name}")
        except ImportError:  # not this platform's driver
            continue
        if getattr(module, "XTermParser", None) is XTermParser:
            module.XTermParser = PasteSafeParser  # type: ignore[attr-defined]
