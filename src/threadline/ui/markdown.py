"""Rich Markdown for untrusted text: HTML is shown as text and links are not live."""

from __future__ import annotations

from markdown_it import MarkdownIt
from rich.markdown import Markdown

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")


class SafeMarkdown(Markdown):
    """`rich.markdown.Markdown` with `html` off and `hyperlinks=False`.

    Rich's own parser has HTML on and drops inline tags it does not know, so `<div>` in a reply
    would vanish; with HTML off it is shown as written. Links are drawn as "text (url)" and are
    not terminal hyperlinks, so a click opens nothing. Give it text from `safe.clean()`.
    """

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
