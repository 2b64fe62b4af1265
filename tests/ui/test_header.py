"""The header fits 80 columns by priority: separators tighten, the directory is cut from the
left, the app's name goes; the scope, the count, the filter and the memory indicator stay."""

from __future__ import annotations

from textual.content import Content

from threadline.models import Scope
from threadline.ui.widgets.bars import HeaderBar

ROOT = "/home/dev/src/projects/a-rather-long-directory-name/services/api"


def header(memory: str | None = None, query: str = "") -> HeaderBar:
    bar = HeaderBar()
    bar.show(Scope.WORKSPACE, ROOT, 12345, query, None)
    if memory:
        bar.set_memory(Content(memory))
    return bar


def test_wide_keeps_everything_with_wide_separators():
    line = header("memory: 8 queued · 2 failed").line(200).plain
    assert line.startswith("threadline  this workspace  ")
    assert line.endswith("  ·  12,345 sessions  ·  memory: 8 queued · 2 failed")


def test_at_80_the_count_filter_and_memory_stay_whole():
    for memory, query in (("memory: 8 queued · 2 failed", ""), (None, "retry"), (None, "")):
        line = header(memory, query).line(78).plain  # 80 minus the padding
        assert len(line) <= 78
        assert "this workspace" in line and "12,345 sessions" in line
        if memory:
            assert line.endswith("memory: 8 queued · 2 failed")
        if query:
            assert "filter “retry”" in line
    line = header("memory: 8 queued · 2 failed").line(78).plain
    assert "…" in line and line.split(" · ")[0].endswith("services/api")  # the end of the path
    assert not line.startswith("threadline")


def test_short_enough_keeps_the_name():
    bar = HeaderBar()
    bar.show(Scope.DIRECTORY, "/home/dev/src/api", 4, "", None)
    assert bar.line(78).plain.startswith("threadline  this directory  ~/src/api  ·  4")


async def test_the_footer_keeps_delete_and_write_at_80_columns_after_a_resize(plain_db):
    from apphelpers import make_app, screen_lines, settle

    app = make_app(plain_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        wide = screen_lines(app)[-1]
        assert "^p palette" in wide and "i Write" in wide
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        narrow = screen_lines(app)[-1]
        assert "d Delete" in narrow and "i Write" in narrow and "q Quit" in narrow
        assert "palette" not in narrow
        await pilot.resize_terminal(120, 36)
        await settle(pilot)
        assert "^p palette" in screen_lines(app)[-1]
