"""threadline.text: untrusted text made safe and measured for the terminal (both faces)."""

from __future__ import annotations

import unicodedata

import pytest

from threadline.text import (
    StreamSanitizer,
    collapse_whitespace,
    display_width,
    one_line,
    pad,
    plural,
    sanitize_terminal,
    truncate,
)
from threadline.ui import safe

# Characters that change how text reads or hide text: shown, never passed to the terminal.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\U000e0041"

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
    "admin\u202e\u2066// check later\u2069\u2066",  # Trojan Source: reorders what follows
    "pay\u200bpal\u200dx\ufeff",
    "\U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065",  # tags: hidden ASCII
]


def unsafe(ch: str) -> bool:
    code = ord(ch)
    return (
        (code < 32 and ch not in "\n\t")
        or 0x7F <= code <= 0x9F
        or ch in BIDI
        or ch in ZERO_WIDTH
        or 0xE0000 <= code <= 0xE007F
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_sanitize_leaves_no_control_or_invisible_characters(text):
    out = sanitize_terminal(text)
    assert not any(unsafe(c) for c in out)
    assert len(out) >= len(text)  # replaced visibly, never dropped


@pytest.mark.parametrize("ch", BIDI + ZERO_WIDTH)
def test_bidi_and_zero_width_characters_are_drawn_like_controls(ch):
    assert sanitize_terminal(f"a{ch}b") == f"a<U+{ord(ch):04X}>b"
    assert one_line(f"a{ch}b") == f"a<U+{ord(ch):04X}>b"


def test_one_sanitiser_one_drawing_for_both_faces():
    hostile = "t\x1b]0;x\x07 \x9b2J \u202eevil\u200b\r\nnext\x7f"
    assert safe.clean(hostile) == sanitize_terminal(hostile)
    assert safe.one_line(hostile) == one_line(hostile)
    assert sanitize_terminal(hostile) == "t^[]0;x^G <U+009B>2J <U+202E>evil<U+200B>\nnext^?"
    assert safe.clean(None) == "" and one_line(None) == ""


def test_joiners_inside_words_and_emoji_are_kept():
    for word in (
        "\U0001f469\u200d\U0001f4bb",  # woman technologist
        "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # ... with a skin tone
        "\u2764\ufe0f\u200d\U0001f525",  # heart on fire
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ
        "\u0915\u094d\u200d\u0937",  # Devanagari half form
    ):
        assert sanitize_terminal(word) == word
    # Next to ASCII, at either end, or beside another unsafe character: shown.
    assert sanitize_terminal("pay\u200dpal") == "pay<U+200D>pal"
    assert sanitize_terminal("\u200d\U0001f4bb") == "<U+200D>\U0001f4bb"
    assert sanitize_terminal("\U0001f469\u200d") == "\U0001f469<U+200D>"
    assert sanitize_terminal("\u202e\u200d\u0645") == "<U+202E><U+200D>\u0645"


def test_every_format_character_that_is_not_kept_on_purpose_is_shown():
    """Any invisible format character (category Cf) added to Unicode and used to hide text
    should be looked at; the ones that pass are the ones with a visible or shaping job."""
    kept = {"\u00ad", "\u200c", "\u200d"}  # soft hyphen (a visible hyphen); joiners (above)
    # Signs that enclose the digits after them, and hieroglyph layout: visible, or shaping.
    kept |= {chr(c) for c in range(0x0600, 0x0606)} | {"\u06dd", "\u070f", "\u0890", "\u0891"}
    kept |= {"\u08e2", "\U000110bd", "\U000110cd"} | {chr(c) for c in range(0x13430, 0x13460)}
    for code in range(0x80, 0x110000):
        ch = chr(code)
        if unicodedata.category(ch) == "Cf" and ch not in kept:
            assert sanitize_terminal(ch) != ch, f"U+{code:04X} {unicodedata.name(ch, '')}"


def test_streamed_pieces_add_up_to_the_whole_text_sanitised():
    text = "ok \x1b[31m\U0001f469\u200d\U0001f4bb a\u200db \u202e x\r\ny\r end\u200d"
    whole = sanitize_terminal(text)
    for size in range(1, 6):
        stream = StreamSanitizer()
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        out = "".join(stream.feed(p) for p in pieces) + stream.end()
        assert out == whole, size


def test_sanitize_shows_caret_forms_and_keeps_layout():
    assert sanitize_terminal("\x1b]0;t\x07") == "^[]0;t^G"
    assert sanitize_terminal("a\rb\x7f\x9b") == "a^Mb^?<U+009B>"
    assert sanitize_terminal("keep\nnew\tlines") == "keep\nnew\tlines"
    assert sanitize_terminal("crlf\r\nline\r") == "crlf\nline^M"
    plain = "plain text é 漢字 [bold]markup[/] stays"
    assert sanitize_terminal(plain) is plain


def test_one_line():
    assert one_line("  a\n\nb\tc \x1b[1m ") == "a b c ^[[1m"
    assert one_line("a  long\nline of text", 10) == "a long li…"
    # Kept as data (a stored title): one line, but not sanitised.
    assert collapse_whitespace(" a \n\x1b  b ") == "a \x1b b"


def test_plural():
    assert plural(1, "message") == "1 message"
    assert plural(1024, "message") == "1,024 messages"
    assert plural(2, "summary", "summaries") == "2 summaries"


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
