"""The one path from stored (untrusted) text to the screen.

Conversation text, titles, previews, directory names and search snippets may hold Textual/Rich
markup (`[@click=app.quit]`, `[link=...]`, a stray `[/]`), terminal escape sequences (OSC 0
window titles, OSC 8 links, SGR colours, BEL) and invisible characters (bidi overrides, zero-width
spaces). Every piece of stored text goes through `clean()` before it is drawn: that is
`threadline.text.sanitize_terminal`, the sanitiser the CLI uses too, so both faces draw an unsafe
character the same way (`^[` for ESC, `<U+202E>` for a bidi override). The result is then used
only as literal text: `Content(...)`, a Rich `Text`, a `Segment`, or the source of
`SafeMarkdown`; never parsed as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.text import one_line
from threadline.text import sanitize_terminal as clean

if TYPE_CHECKING:
    from rich.markdown import Markdown
    from textual.content import Content

__all__ = ["clean", "one_line", "safe_content", "safe_markdown"]


def safe_content(text: str | None, style: str = "") -> Content:
    """Stored text as a literal `Content` (no markup parsing), optionally styled."""
    from textual.content import Content

    content = Content(clean(text))
    return content.stylize(style) if style else content


def safe_markdown(text: str | None, code_theme: str = "monokai") -> Markdown:
    """Stored text as a Rich Markdown renderable: sanitised, HTML shown as text, links inert."""
    from threadline.ui.markdown import SafeMarkdown

    return SafeMarkdown(clean(text), code_theme=code_theme)
