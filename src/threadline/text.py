"""Untrusted text made safe and tidy for a terminal: the one sanitiser, for the CLI and the app.

Conversation text, titles, previews, directory names, snippets and server messages come from
models, other tools and imports. Before any of it reaches a terminal it goes through
`sanitize_terminal` (the app's `ui.safe.clean` is this function), which draws every character a
terminal would act on, or that hides or reorders text, as a visible placeholder:

- C0 controls other than newline and tab in caret form (`\\x1b]0;title\\x07` shows as
  `^[]0;title^G`, a carriage return as `^M`), DEL as `^?`;
- C1 controls (an 8-bit CSI, 0x9b), bidirectional embeddings, overrides, isolates and marks
  (U+202E reverses the text after it), zero-width spaces and joiners, the BOM, tag characters
  and the other invisible format characters (all but the soft hyphen and the signs that enclose
  digits) as `<U+202E>`. Zero-width joiners between two non-ASCII letters, marks or symbols are
  kept: they are how emoji sequences (👩‍💻) and Indic and Persian words are written.

A CRLF line ending is a line ending (`\\n`). This module imports nothing heavy (no textual, no
rich); it also measures (cells a string takes on a terminal) and formats counts.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and newline, DEL, C1
_INVISIBLE = (
    "\u061c"  # arabic letter mark
    "\u180e"  # mongolian vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner; left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u206f"  # bidi isolates; deprecated invisible format characters
    "\ufeff"  # zero-width no-break space (BOM)
    "\ufff9-\ufffb"  # interlinear annotation (hides the annotated text)
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # invisible musical format characters
    "\U000e0000-\U000e007f"  # tag characters
)
# Everything sanitize_terminal draws as a placeholder (one_line also turns \n and \t to spaces).
UNSAFE = re.compile(f"[{_CONTROLS}{_INVISIBLE}]")
_JOINERS = "\u200c\u200d"
_HOLD = _JOINERS + "\r"
_WHITESPACE_RUN = re.compile(r"\s+")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ELLIPSIS = "…"


def placeholder(ch: str) -> str:
    """How an unsafe character is drawn: `^[` for ESC, `^?` for DEL, `<U+202E>` for the rest."""
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)  # ESC -> ^[, BEL -> ^G, CR -> ^M
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def _joins(text: str, at: int) -> bool:
    """True when the joiner at `at` sits between two characters it legitimately joins."""
    if at == 0 or at + 1 >= len(text):
        return False
    return _joinable(text[at - 1]) and _joinable(text[at + 1])


def _joinable(ch: str) -> bool:
    return ch > "\x7f" and unicodedata.category(ch)[0] in "LMS"


def _replace(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _JOINERS and _joins(match.string, match.start()):
        return ch
    return placeholder(ch)


def sanitize_terminal(text: str | None) -> str:
    """`text` with every unsafe character drawn as a visible placeholder (None: "").

    The result can be written to a terminal, or shown by the app, without anything in it being
    interpreted as an escape sequence, a bell, a carriage return that overwrites the line, a C1
    control, or a bidi control that reorders what follows; nothing invisible is left in it.
    """
    if not text:
        return ""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if not UNSAFE.search(text):
        return text
    return UNSAFE.sub(_replace, text)


def one_line(text: str | None, width: int | None = None) -> str:
    """Sanitised text on one line: newlines, tabs and runs of spaces become one space.

    With `width`, cut to at most that many cells (an ellipsis marks the cut).
    """
    flat = collapse_whitespace(sanitize_terminal(text))
    return flat if width is None else truncate(flat, width)


def collapse_whitespace(text: str) -> str:
    """`text` on one line, not sanitised: newlines, tabs and runs of spaces become one space.

    For values kept as data (a session's title); what is shown goes through `one_line`.
    """
    return _WHITESPACE_RUN.sub(" ", text).strip()


class StreamSanitizer:
    """`sanitize_terminal` for text that arrives in pieces (a streamed reply).

    A joiner or a carriage return at the end of a piece waits for the next one, which tells
    whether it joins two characters (or ends a CRLF line); so the pieces, sanitised, add up to
    the whole text sanitised.
    """

    def __init__(self) -> None:
        self._before = ""  # the last character written (the context of the next piece)
        self._held = ""  # a trailing joiner or CR whose next character has not arrived yet

    def feed(self, piece: str) -> str:
        """The sanitised form of `piece` that can be written now."""
        text = self._held + piece
        self._held = ""
        if text and text[-1] in _HOLD:
            text, self._held = text[:-1], text[-1]
        if not text:
            return ""
        before = self._before
        self._before = text[-1]
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        if not UNSAFE.search(text):
            return text
        # The character before the piece is context only (it was written already).
        return UNSAFE.sub(_replace, before + text)[len(sanitize_terminal(before)) :]

    def end(self) -> str:
        """What is still held back, now that nothing follows it."""
        held, self._held = self._held, ""
        return placeholder(held) if held else ""


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


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 message`, `2 messages`, `1,024 messages`."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


# Query parameters whose values are credentials (`?api_key=...`, `&token=...`).
_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|auth|sig", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` fit to show: credentials in it (`https://user:pass@host`, `?api_key=...`) are
    replaced by `***`; everything else is kept so the person can still tell which URL it is."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        # "user:password@" keeps the user; a lone "token@" is all secret.
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        fields = []
        for item in query.split("&"):
            name, eq, _value = item.partition("=")
            fields.append(f"{name}=***" if eq and _SECRET_PARAMETER.search(name) else item)
        query = "&".join(fields)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
