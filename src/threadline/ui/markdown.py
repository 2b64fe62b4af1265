"""Rich Markdown for untrusted text: HTML is shown as text and links are not live.

Code blocks keep their shape: a line too long for the pane continues on the next screen line
at the line's own indent, after a `↪` marker, instead of wrapping to the block's left edge at a
space (which reads as broken code). No Textual here (Rich only): `wrap_code_line` is the rule.
"""

from __future__ import annotations

from typing import ClassVar

from markdown_it import MarkdownIt
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Markdown, MarkdownElement
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text

from threadline.ui.code_lines import (  # noqa: F401 - re-exported
    CONTINUATION,
    fence_languages,
    warm_lexers,
    wrap_code_line,
)

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")


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
