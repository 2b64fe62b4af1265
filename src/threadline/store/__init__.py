"""The store: the only code that speaks SQL. Async (a thread per sqlite3 connection), returns
the records of threadline.models.

This package is the store's public surface (with threadline.models): code outside store/
imports from here, never from its modules (tests/test_layering.py checks it).
"""

from typing import TYPE_CHECKING, Any

from threadline.store.errors import (
    AmbiguousIdError,
    DatabaseDamaged,
    DatabaseReadOnly,
    LockTimeout,
    NotFoundError,
    SearchQueryError,
    StoreError,
)
from threadline.store.facade import UNSET, Store
from threadline.store.scope import scope_root
from threadline.store.search import MAX_QUERY_CHARS
from threadline.store.util import Clock, system_clock

if TYPE_CHECKING:
    from threadline.store.journal import Batch, JournalMark, strip_root
    from threadline.store.project import Project, project_of
    from threadline.store.transfer import (
        ImportFormatError,
        ImportResult,
        LoadReport,
        imported_session_id,
    )

__all__ = [
    "Batch",
    "JournalMark",
    "Project",
    "project_of",
    "strip_root",
    "MAX_QUERY_CHARS",
    "UNSET",
    "AmbiguousIdError",
    "Clock",
    "DatabaseDamaged",
    "DatabaseReadOnly",
    "ImportFormatError",
    "LockTimeout",
    "ImportResult",
    "LoadReport",
    "NotFoundError",
    "SearchQueryError",
    "Store",
    "StoreError",
    "imported_session_id",
    "scope_root",
    "system_clock",
]

# What loads only when asked for: the import/export models (start-up of the quick commands).
_TRANSFER = ("ImportFormatError", "ImportResult", "LoadReport", "imported_session_id")


def __getattr__(name: str) -> Any:
    if name in _TRANSFER:
        from threadline.store import transfer

        return getattr(transfer, name)
    if name in ("Batch", "JournalMark", "strip_root"):  # sync's side of the store (lazily)
        from threadline.store import journal

        return getattr(journal, name)
    if name in ("Project", "project_of"):
        from threadline.store import project

        return getattr(project, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
