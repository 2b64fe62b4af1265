"""The sidebar's paged rows (ui/pages.py), without Textual: pages read on demand by keyset
after a loaded page (by offset otherwise), a bound on the pages kept, reloads that swap in at
once and drop what an earlier load was still reading."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from threadline.errors import ThreadlineError
from threadline.ui.pages import PagedRows


@dataclass(frozen=True)
class Row:
    id: str
    n: int

    @property
    def cursor(self) -> int:
        return self.n


class FakeList:
    """`count` rows, newest first; records how each page was asked for."""

    def __init__(self, count: int) -> None:
        self.rows = [Row(f"r{i}", i) for i in range(count)]
        self.calls: list[tuple[object, int]] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def count(self) -> int:
        return len(self.rows)

    async def page(self, limit: int, before: object, offset: int) -> list[Row]:
        self.calls.append((before, offset))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ThreadlineError("the database is locked")
        if before is not None:
            return [r for r in self.rows if r.n > before][:limit]
        return self.rows[offset : offset + limit]


async def loaded(fake: FakeList, around: list[int], **kw) -> PagedRows[Row]:
    pages: PagedRows[Row] = PagedRows(page_size=10, **kw)
    assert await pages.reload(fake.count, fake.page, around) == len(fake.rows)
    return pages


async def test_a_reload_reads_the_pages_around_the_cursor_and_the_screen():
    fake = FakeList(95)
    pages = await loaded(fake, [0, 0, 12])
    assert sorted(pages.loaded()) == [0, 1]
    # The second page follows the first by keyset, not by offset.
    assert fake.calls == [(None, 0), (9, 0)]
    assert pages.row(12) == Row("r12", 12)
    # Indexes past the end are read as the last page.
    pages = await loaded(fake, [500])
    assert sorted(pages.loaded()) == [9] and pages.row(94) == Row("r94", 94)


async def test_missing_pages_are_wanted_once_and_read_on_demand():
    fake = FakeList(100)
    pages = await loaded(fake, [0])
    fake.calls.clear()
    assert pages.row(55) is None and pages.row(57) is None and pages.row(35) is None
    assert pages.wanted
    assert pages.take_wanted() == [3, 5]
    assert pages.take_wanted() == []  # being read: not wanted again
    assert pages.row(55) is None and not pages.wanted
    assert await pages.read(5, pages.token) and await pages.read(3, pages.token)
    assert pages.row(55) == Row("r55", 55) and pages.row(35) == Row("r35", 35)
    assert fake.calls == [(None, 50), (None, 30)]  # no page before them was loaded: offsets
    assert pages.row(1000) is None and not pages.wanted


async def test_at_most_max_pages_are_kept_the_least_recently_drawn_go():
    fake = FakeList(1000)
    pages = await loaded(fake, [0], max_pages=3)
    for page in (10, 20):
        pages.row(page * 10)
        for wanted in pages.take_wanted():
            await pages.read(wanted, pages.token)
    pages.row(0)  # page 0 drawn again: the most recent
    pages.row(300)
    for wanted in pages.take_wanted():
        await pages.read(wanted, pages.token)
    assert sorted(pages.loaded()) == [0, 20, 30]  # page 10 went
    assert len(pages.loaded_rows) == 30


async def test_a_page_read_for_an_earlier_load_is_dropped():
    fake = FakeList(100)
    pages = await loaded(fake, [0])
    pages.row(60)
    [page] = pages.take_wanted()
    fake.gate = asyncio.Event()
    reading = asyncio.ensure_future(pages.read(page, pages.token))
    await asyncio.sleep(0)
    shorter = FakeList(70)  # the list changed, and was reloaded meanwhile
    assert await pages.reload(shorter.count, shorter.page, [0]) == 70
    fake.gate.set()
    assert await reading is False
    assert sorted(pages.loaded()) == [0]


async def test_an_overtaken_reload_changes_nothing_and_its_error_is_not_told():
    fake = FakeList(50)
    pages = await loaded(fake, [0])
    fake.gate = asyncio.Event()
    fake.fail = True
    first = asyncio.ensure_future(pages.reload(fake.count, fake.page, [0]))
    await asyncio.sleep(0)
    later = FakeList(5)
    assert await pages.reload(later.count, later.page, [0]) == 5
    fake.gate.set()
    assert await first is None  # failed, but a later reload says what it finds
    assert pages.total == 5 and [r.id for r in pages.loaded_rows] == [f"r{i}" for i in range(5)]
    fake.gate = None
    with pytest.raises(ThreadlineError):
        await pages.reload(fake.count, fake.page, [0])
    assert pages.total == 5  # what is shown stays


async def test_rows_are_found_and_replaced_in_place():
    pages = await loaded(FakeList(30), [0, 25])
    assert pages.find("r25") == 25 and pages.find("r15") is None
    pages.replace(25, Row("r25", -1))
    assert pages.row(25) == Row("r25", -1)
