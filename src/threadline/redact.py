"""Credentials in URLs (`http://user:secret@host/v1`) are never stored or shown.

The provider takes them out of its base URL before it uses it (they travel as an Authorization
header instead), so no message it builds can carry them; `redact_urls` is the guard on every
text threadline makes from a URL (errors, settings shown), in case one slips through.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

# scheme://userinfo@ : the userinfo runs to the last "@" before the path, query or fragment.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")
MASK = "***"


def redact_urls(text: str) -> str:
    """`text` with the user:password part of every URL in it replaced by ***."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its userinfo, and (user, password) when it had any (percent-decoded)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_urls(url), None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, (unquote(user), unquote(password))
