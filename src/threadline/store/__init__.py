"""The store: the only code that speaks SQL. Async (a thread per sqlite3 connection), returns
pydantic models."""

from threadline.store.errors import (
    AmbiguousIdError,
    NotFoundError,
    SearchQueryError,
    StoreError,
)
from threadline.store.facade import UNSET, Store

__all__ = [
    "UNSET",
    "AmbiguousIdError",
    "NotFoundError",
    "SearchQueryError",
    "Store",
    "StoreError",
]
