"""A long list read a page at a time (no Textual here): the sidebar's rows.

The list's length comes from one count; rows are read in pages of `page_size` (keyset paging
from the page before when it is loaded, an offset otherwise) and at most `max_pages` pages are
kept, the least recently drawn dropped first, so a list of 100,000 rows costs what a few
screens do. A reload reads the pages it needs first and swaps them in at once (no flash); a
page read for an earlier load is dropped (one token, as in `timeline.py`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar


class PagedRow(Protocol):
    """What a row must have: an id, and its keyset position."""

    @property
    def id(self) -> str: ...

    @property
    def cursor(self) -> object: ...


R = TypeVar("R", bound=PagedRow)
CountFn = Callable[[], Awaitable[int]]
# (limit, the last row of the page before (keyset) or None, offset) -> rows
PageFn = Callable[[int, Any, int], Awaitable[list[R]]]


class PagedRows(Generic[R]):
    """The rows of a list that are in memory, by page."""

    def __init__(self, page_size: int = 100, max_pages: int = 60) -> None:
        self.page_size = page_size
        self.max_pages = max_pages
        self.total: int | None = None  # None: not counted yet
        self._pages: OrderedDict[int, list[R]] = OrderedDict()
        self._pending: set[int] = set()  # being read
        self._wanted: set[int] = set()  # to read (drawn while missing)
        self._page_fn: PageFn[R] | None = None
        self._token = 0

    # ------------------------------------------------------------------ reading rows

    def row(self, index: int, want: bool = True) -> R | None:
        """Row `index`, or None when its page is not in memory (then, with `want`, the page
        is wanted: see `take_wanted`)."""
        if self.total is None or not 0 <= index < self.total:
            return None
        page, offset = divmod(index, self.page_size)
        rows = self._pages.get(page)
        if rows is None:
            if want and page not in self._pending:
                self._wanted.add(page)
            return None
        self._pages.move_to_end(page)
        return rows[offset] if offset < len(rows) else None

    @property
    def wanted(self) -> bool:
        return bool(self._wanted)

    def take_wanted(self) -> list[int]:
        """The pages wanted since the last call, now being read (pass each to `read`)."""
        wanted, self._wanted = sorted(self._wanted), set()
        pages = [p for p in wanted if p not in self._pages and p not in self._pending]
        self._pending.update(pages)
        return pages

    @property
    def token(self) -> int:
        return self._token

    async def read(self, page: int, token: int) -> bool:
        """Read a wanted page; False when the list was reloaded meanwhile (it is dropped).

        Raises ThreadlineError when the store fails (the page can be wanted again)."""
        page_fn = self._page_fn
        if page_fn is None:
            return False
        try:
            rows = await page_fn(self.page_size, *self._where(page, self._pages))
        finally:
            if token == self._token:
                self._pending.discard(page)
        if token != self._token:
            return False
        self._pages[page] = rows
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return True

    def _where(self, page: int, pages: dict[int, list[R]]) -> tuple[object | None, int]:
        """(keyset position, offset) to read `page` with: after the page before, if loaded."""
        previous = pages.get(page - 1)
        if previous is not None and len(previous) == self.page_size:
            return previous[-1].cursor, 0
        return None, page * self.page_size

    # ------------------------------------------------------------------ (re)loading

    async def reload(self, count: CountFn, page_fn: PageFn[R], around: list[int]) -> int | None:
        """Count the rows and read the pages holding the rows at `around` (indexes: the
        cursor, the screen's top and bottom, clamped to the new count), then swap them in.
        Returns the count, or None when a later reload began meanwhile.

        Raises ThreadlineError when the store fails (what is shown stays; not when a later
        reload began meanwhile)."""
        from threadline.errors import ThreadlineError

        self._token += 1
        token = self._token
        try:
            total = await count()
            wanted = {max(0, min(i, total - 1)) // self.page_size for i in around}
            pages: dict[int, list[R]] = {}
            for page in sorted(wanted):
                pages[page] = await page_fn(self.page_size, *self._where(page, pages))
        except ThreadlineError:
            if token != self._token:
                return None  # a later reload says what it finds
            raise
        if token != self._token:
            return None
        self._pages = OrderedDict(sorted(pages.items()))
        self._pending.clear()
        self._wanted.clear()
        self._page_fn = page_fn
        self.total = total
        return total

    # ------------------------------------------------------------------ what is loaded

    def loaded(self) -> dict[int, list[R]]:
        """The pages in memory (page number -> its rows), in list order."""
        return dict(sorted(self._pages.items()))

    @property
    def loaded_rows(self) -> list[R]:
        return [row for rows in self.loaded().values() for row in rows]

    def find(self, row_id: str) -> int | None:
        """The index of the loaded row with this id."""
        for page, rows in self._pages.items():
            for i, row in enumerate(rows):
                if row.id == row_id:
                    return page * self.page_size + i
        return None

    def replace(self, index: int, row: R) -> None:
        """A loaded row's newer copy (same place in the list)."""
        page, offset = divmod(index, self.page_size)
        self._pages[page][offset] = row
