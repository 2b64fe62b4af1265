"""Untrusted text made safe and tidy for a terminal: no escape sequences, measured widths.

Conversation text, titles, previews, directory names and snippets come from models, other tools
and imports. Before any of it reaches a terminal (CLI tables and transcripts; the Textual UI's
own sanitiser should build on `sanitize_terminal`), C0/C1 control characters other than newline
and tab are replaced by a visible caret form, so `\\x1b]0;title\\x07` shows as `^[]0;title^G`
instead of setting the window title. This module imports nothing heavy (no textual, no rich).
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls except tab (\x09) and newline (\x0a), DEL, and the C1 range.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE_RUN = re.compile(r"\s+")
ELLIPSIS = "…"


def _caret(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)  # ESC -> ^[, BEL -> ^G, CR -> ^M
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"  # C1 (e.g. CSI 0x9b): no caret form people know


def sanitize_terminal(text: str) -> str:
    """`text` with control characters (other than newline and tab) shown as `^[`, `^G`, ...

    The result can be written to a terminal without anything in it being interpreted as an
    escape sequence, a bell, a carriage return that overwrites the line, or a C1 control.
    """
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_caret, text)


def one_line(text: str) -> str:
    """Sanitised text on one line: newlines, tabs and runs of spaces become one space."""
    text = _CONTROL.sub(_caret, text)
    return _WHITESPACE_RUN.sub(" ", text).strip()


def has_controls(text: str) -> bool:
    """True when `text` holds a character that sanitize_terminal would replace."""
    return _CONTROL.search(text) is not None


def char_width(ch: str) -> int:
    """Terminal cells a character takes: 2 for wide East Asian, 0 for combining marks."""
    if ch < "\u0300":  # Latin and the like: the fast, common case
        return 0 if _CONTROL_OR_SPACE.match(ch) and ch not in "\t\n" else 1
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """How many terminal cells `text` (already on one line) takes."""
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def truncate(text: str, width: int, *, left: bool = False) -> str:
    """Cut `text` to at most `width` cells, marking the cut with an ellipsis.

    With left=True the start is cut instead (`…/projects/app`), for paths whose end matters.
    """
    if width <= 0:
        return ""
    if display_width(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    budget = width - 1
    chars = reversed(text) if left else iter(text)
    kept: list[str] = []
    used = 0
    for ch in chars:
        w = char_width(ch)
        if used + w > budget:
            break
        kept.append(ch)
        used += w
    if left:
        return ELLIPSIS + "".join(reversed(kept))
    return "".join(kept) + ELLIPSIS


def pad(text: str, width: int, *, right: bool = False) -> str:
    """`text` padded with spaces to `width` cells (aligned right with right=True)."""
    gap = width - display_width(text)
    if gap <= 0:
        return text
    return " " * gap + text if right else text + " " * gap
