"""The one path from stored (untrusted) text to the screen.

Conversation text, titles, previews, directory names and search snippets may hold Textual/Rich
markup (`[@click=app.quit]`, `[link=...]`, a stray `[/]`) and terminal escape sequences (OSC 0
window titles, OSC 8 links, SGR colours, BEL). Every piece of stored text goes through `clean()`
before it is drawn: C0/C1 control characters other than newline and tab become a visible
placeholder (caret notation, `^[` for ESC), so no control byte reaches the terminal. The result
is then used only as literal text: `Content(...)`, a Rich `Text`, a `Segment`, or the source of
`SafeMarkdown`; never parsed as markup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.markdown import Markdown
    from textual.content import Content

# C0 controls except \t (0x09) and \n (0x0a), DEL, and the C1 block.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _placeholder(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)  # ESC -> ^[, BEL -> ^G, CR -> ^M
    if code == 0x7F:
        return "^?"
    return "\ufffd"  # C1 controls (0x80-0x9f), including the 8-bit CSI and OSC


def clean(text: str | None) -> str:
    """`text` with every control character but newline and tab made visible (and inert)."""
    if not text:
        return ""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _CONTROL.sub(_placeholder, text)


def one_line(text: str | None) -> str:
    """`clean(text)` on a single line: runs of line breaks and tabs become one space."""
    return _LINE_BREAKS.sub(" ", clean(text).replace("\t", " ")).strip()


def safe_content(text: str | None, style: str = "") -> Content:
    """Stored text as a literal `Content` (no markup parsing), optionally styled."""
    from textual.content import Content

    content = Content(clean(text))
    return content.stylize(style) if style else content


def safe_markdown(text: str | None, code_theme: str = "monokai") -> Markdown:
    """Stored text as a Rich Markdown renderable: sanitised, HTML shown as text, links inert."""
    from threadline.ui.widgets.markdown import SafeMarkdown

    return SafeMarkdown(clean(text), code_theme=code_theme)
