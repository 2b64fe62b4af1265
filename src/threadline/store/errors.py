"""Store errors: each carries a message fit to show a user on one line."""

from threadline.errors import ThreadlineError


class StoreError(ThreadlineError):
    """The database cannot do what was asked (unreadable, newer, corrupt, locked, bad input)."""


class NotFoundError(StoreError):
    """No session (or message, memory) has that id or prefix."""


class AmbiguousIdError(StoreError):
    """A prefix matches more than one session."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:5])
        super().__init__(
            f"session id prefix {prefix!r} is ambiguous: it matches {shown}"
            f"{' and more' if len(candidates) > 5 else ''}; type more characters"
        )
        self.prefix = prefix
        self.candidates = candidates


class SearchQueryError(StoreError):
    """A search query that cannot be searched (for example, nothing but punctuation)."""
