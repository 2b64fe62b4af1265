"""Rich Markdown for untrusted text: HTML is shown as text and links are not live.

Code blocks keep their shape: a line too long for the pane continues on the next screen line
at the line's own indent, after a `↪` marker, instead of wrapping to the block's left edge at a
space (which reads as broken code). No Textual here (Rich only): `wrap_code_line` is the rule.
"""

from __future__ import annotations

import re
from typing import ClassVar

from markdown_it import MarkdownIt
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Markdown, MarkdownElement
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text

CONTINUATION = "↪ "  # starts each continued piece of a long code line, after its indent
_INDENT = re.compile(r"[ \t]*")

# A fence's opening line and its language (the first word of the info string, as Rich reads it).
_FENCE_LANGUAGE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[ \t]*([^\s`]+)", re.MULTILINE)
_warmed: set[str] = set()

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")


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


class WrappedSyntax(Syntax):
    """Syntax whose long lines are cut by `wrap_code_line` (set `wrap_width`, the code's
    width inside the padding), so nothing is wrapped again at a space."""

    wrap_width: int | None = None

    def highlight(self, code: str, line_range: tuple[int | None, int | None] | None = None) -> Text:
        text = super().highlight(code, line_range)
        width = self.wrap_width
        if not width or all(cell_len(line) <= width for line in code.split("\n")):
            return text
        marker_style = self._get_base_style() + Style(dim=True)
        pieces: list[Text] = []
        # With a line range, the lines before it stay one line each (Syntax picks the range's
        # lines by counting lines).
        first = (line_range[0] or 1) - 1 if line_range else 0
        for number, line in enumerate(text.split("\n", allow_blank=True)):
            if number < first:
                pieces.append(line)
                continue
            cuts = wrap_code_line(line.plain, width)
            if len(cuts) == 1:
                pieces.append(line)
                continue
            offsets = [start for start, _, _ in cuts[1:]]
            for (_, _, prefix), part in zip(cuts, line.divide(offsets), strict=True):
                if prefix:
                    part = Text.assemble((prefix, marker_style), part)
                pieces.append(part)
        result = Text("\n").join(pieces)
        result.end = text.end
        return result


class WrappedCodeBlock(CodeBlock):
    """A code block whose long lines continue at their indent after a marker."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        syntax = WrappedSyntax(code, self.lexer_name, theme=self.theme, word_wrap=True, padding=1)
        syntax.wrap_width = max(1, options.max_width - 2)  # inside the padding
        yield syntax


class SafeMarkdown(Markdown):
    """`rich.markdown.Markdown` with `html` off and `hyperlinks=False`.

    Rich's own parser has HTML on and drops inline tags it does not know, so `<div>` in a reply
    would vanish; with HTML off it is shown as written. Links are drawn as "text (url)" and are
    not terminal hyperlinks, so a click opens nothing. Give it text from `safe.clean()`.
    Long code lines continue after a marker at their indent (`WrappedCodeBlock`).
    """

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "fence": WrappedCodeBlock,
        "code_block": WrappedCodeBlock,
    }

    def __init__(self, markup: str, code_theme: str = "monokai") -> None:
        # Not calling super().__init__: it would parse a second time with HTML on.
        self.markup = markup
        self.parsed = _PARSER.parse(markup)
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme
