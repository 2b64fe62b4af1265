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


class DatabaseDamaged(StoreError):
    """SQLite reported the file corrupt (or not a database): nothing more is written to it."""


class DatabaseReadOnly(StoreError):
    """The database file cannot be written (permissions, an immutable file, read-only media)."""


class LockTimeout(StoreError):
    """Another process held the write lock for longer than this store waits; nothing was written."""
