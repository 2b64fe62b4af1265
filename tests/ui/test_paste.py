"""Bracketed pastes that hold ESC reach the app whole and in order (ui/paste.py): the terminal's
bytes fed to the input parser as Textual's driver feeds them, in any split across reads."""

from __future__ import annotations

import time

import pytest
from textual import events

from threadline.ui.paste import PASTE_END, PASTE_START, PasteSafeParser

PASTED = "before \x1b[31mred\x1b[0m after\nsecond line \x1b]0;title\x07 end " + "[x" * 40


def _feed(chunks: list[str]) -> list[object]:
    parser = PasteSafeParser()
    out: list[object] = []
    for chunk in chunks:
        out += list(parser.feed(chunk))
    return out


def _summary(tokens: list[object]) -> list[tuple[str, str]]:
    shown = []
    for token in tokens:
        if isinstance(token, events.Paste):
            shown.append(("paste", token.text))
        elif isinstance(token, events.Key):
            shown.append(("key", token.key))
    return shown


def test_a_paste_holding_escapes_is_one_paste_event_exactly_as_pasted() -> None:
    data = "a" + PASTE_START + PASTED + PASTE_END + "b"
    assert _summary(_feed([data])) == [("key", "a"), ("paste", PASTED), ("key", "b")]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_split_across_reads_gives_the_same_events(size: int) -> None:
    data = "a" + PASTE_START + PASTED + PASTE_END + "b"
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert _summary(_feed(chunks)) == [("key", "a"), ("paste", PASTED), ("key", "b")]


def test_keys_and_sequences_outside_a_paste_are_textuals() -> None:
    tokens = _summary(_feed(["x\x1b[A", "\x1b[1;5Cy"]))
    assert tokens == [("key", "x"), ("key", "up"), ("key", "ctrl+right"), ("key", "y")]


def test_a_lone_escape_key_still_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = PasteSafeParser()
    assert list(parser.feed("\x1b")) == []  # could be the start of a paste marker: held
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 1.0)  # ESCAPE_DELAY has passed
    assert _summary(list(parser.tick())) == [("key", "escape")]


def test_an_empty_paste_and_nul_bytes() -> None:
    assert _summary(_feed([PASTE_START + PASTE_END])) == [("paste", "")]
    assert _summary(_feed([PASTE_START + "a\x00b" + PASTE_END])) == [("paste", "ab")]
