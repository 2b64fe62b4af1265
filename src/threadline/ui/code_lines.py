"""Code lines cut to a width, and the fences' languages: what drawing code needs without
importing a Markdown parser (the conversation imports this at start-up; markdown.py, which
imports markdown-it and Rich's Markdown and Syntax, is imported when a message is drawn).
"""

from __future__ import annotations

import re

from rich.cells import cell_len

CONTINUATION = "↪ "  # starts each continued piece of a long code line, after its indent
_INDENT = re.compile(r"[ \t]*")

# A fence's opening line and its language (the first word of the info string, as Rich reads it).
_FENCE_LANGUAGE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[ \t]*([^\s`]+)", re.MULTILINE)
_warmed: set[str] = set()


def wrap_code_line(line: str, width: int, marker: str = CONTINUATION) -> list[tuple[int, int, str]]:
    """Where a code line `width` cells wide is cut: (start, end, prefix) pieces in order.

    The first piece has no prefix; each continuation starts with the line's indent and
    `marker` (the indent is dropped when it would leave less than half the width).
    Every piece with its prefix fits in `width` cells (a wide character never straddles).
    """
    width = max(1, width)
    if cell_len(line) <= width:
        return [(0, len(line), "")]
    indent = _INDENT.match(line).group()  # type: ignore[union-attr]
    prefix = indent + marker
    if cell_len(prefix) > width // 2:
        prefix = marker if cell_len(marker) < width else ""
    pieces: list[tuple[int, int, str]] = []
    start, lead = 0, ""
    while start < len(line):
        room = max(1, width - cell_len(lead))
        end, used = start, 0
        while end < len(line):
            cells = cell_len(line[end])
            if used + cells > room and end > start:
                break
            used += cells
            end += 1
        pieces.append((start, end, lead))
        start, lead = end, prefix
    return pieces


def fence_languages(text: str) -> set[str]:
    """The languages named by the code fences of a Markdown text, not warmed yet."""
    if "```" not in text and "~~~" not in text:
        return set()
    return {name.lower() for name in _FENCE_LANGUAGE.findall(text)} - _warmed


def warm_lexers(names: set[str]) -> None:
    """Build each language's Pygments lexer once, so that drawing a code block does not.

    A lexer's first use compiles its rules (50-250 ms for some languages; Pygments keeps them
    on the class afterwards): run this on a thread for the languages of messages about to be
    drawn, and a page-up that reaches them does not pay it."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    for name in sorted(names - _warmed):
        try:
            get_lexer_by_name(name)
        except ClassNotFound:
            pass
        except Exception:  # noqa: BLE001 - a broken lexer fails when drawn, as before
            pass
        _warmed.add(name)
