"""Sync errors: one line each, fit for `threadline: error: ...`."""

from threadline.errors import ThreadlineError


class SyncError(ThreadlineError):
    """A sync could not be done (no git, no repository, a failed push, a busy lock)."""


class JournalFileError(SyncError):
    """A journal file of another machine cannot be applied (garbage, or a newer format).

    Nothing from that file is applied; the rest of the sync goes on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}; nothing was applied from it")
        self.path = path
        self.reason = reason
