"""How a search hit's two lines are laid out (Textual-free functions, no app): literal text,
the matches marked as spans, the first match kept on screen, the directory's tail kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from threadline.models import HIGHLIGHT_END, HIGHLIGHT_START, Scope, SearchHit
from threadline.ui.widgets.search_results import (
    DETAIL,
    MATCH,
    TITLE,
    header_line,
    hit_view,
    snippet_line,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def hit(snippet: str, title: str = "A session", directory: str = "/home/u/src/api") -> SearchHit:
    return SearchHit(
        kind="message",
        session_id="s1",
        session_title=title,
        working_dir=directory,
        message_id=1,
        role="user",
        created_at=NOW - timedelta(days=3),
        snippet=snippet,
    )


def marked(word: str) -> str:
    return f"{HIGHLIGHT_START}{word}{HIGHLIGHT_END}"


def spans(content) -> list[tuple[str, str]]:
    return [(content.plain[s.start : s.end], s.style) for s in content.spans]


def test_the_matches_are_spans_and_markup_stays_text():
    view = hit_view(hit(f"[bold]x[/bold] and {marked('store')}\nnext"), NOW, Scope.ALL, None)
    line = snippet_line(view, 60)
    assert line.plain == "  [bold]x[/bold] and store next"
    assert spans(line) == [("store", MATCH)]


def test_the_snippet_moves_left_to_show_the_first_match():
    words = " ".join(f"word{i}" for i in range(30))
    view = hit_view(hit(f"{words} {marked('needle')} after"), NOW, Scope.DIRECTORY, None)
    line = snippet_line(view, 40)
    assert line.cell_length <= 40
    assert line.plain.startswith("  …") and "needle" in line.plain
    assert spans(line) == [("needle", MATCH)]


def test_the_header_keeps_the_details_and_the_end_of_the_directory():
    long_title = "A very long session title that goes on and on about many things"
    deep = "/srv/projects/" + "/".join(["deep"] * 12) + "/api"
    view = hit_view(hit("x", title=long_title, directory=deep), NOW, Scope.ALL, None)
    line = header_line(view, 80)
    assert line.cell_length <= 80
    assert "  You · 3 d · …" in line.plain and line.plain.endswith("/deep/api")
    kinds = {style for _, style in spans(line)}
    assert kinds == {TITLE, DETAIL}
    # In one directory there is no directory to show; the title gets the room.
    view = hit_view(hit("x", title=long_title, directory=deep), NOW, Scope.DIRECTORY, None)
    assert header_line(view, 80).plain == f"{long_title}  You · 3 d"
