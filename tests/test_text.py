"""threadline.text: untrusted text made safe and measured for the terminal."""

from __future__ import annotations

import pytest

from threadline.text import display_width, one_line, pad, sanitize_terminal, truncate

HOSTILE = [
    "\x1b]0;window title\x07",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "bell\x07",
    "over\rwrite",
    "\x9b31m",
    "del\x7f",
    "nul\x00byte",
    "\x1bP+q\x1b\\",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_sanitize_leaves_no_control_characters(text):
    out = sanitize_terminal(text)
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in out)
    assert len(out) >= len(text)  # replaced visibly, never dropped


def test_sanitize_shows_caret_forms_and_keeps_layout():
    assert sanitize_terminal("\x1b]0;t\x07") == "^[]0;t^G"
    assert sanitize_terminal("a\rb\x7f\x9b") == "a^Mb^?<U+009B>"
    assert sanitize_terminal("keep\nnew\tlines") == "keep\nnew\tlines"
    plain = "plain text é 漢字 [bold]markup[/] stays"
    assert sanitize_terminal(plain) is plain


def test_one_line():
    assert one_line("  a\n\nb\tc \x1b[1m ") == "a b c ^[[1m"


def test_widths_and_truncation():
    assert display_width("abc") == 3
    assert display_width("漢字") == 4
    assert display_width("e\u0301") == 1
    assert truncate("hello world", 8) == "hello w…"
    assert truncate("short", 8) == "short"
    assert truncate("/home/me/projects/app", 10, left=True) == "…jects/app"
    assert display_width(truncate("漢字漢字漢字", 7)) <= 7
    assert truncate("abc", 0) == "" and truncate("abc", 1) == "…"
    assert pad("ab", 4) == "ab  " and pad("ab", 4, right=True) == "  ab"
