"""Long lines in code blocks: cut to the pane, continued at their indent after a marker."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console

from threadline.ui.markdown import CONTINUATION, SafeMarkdown, wrap_code_line


def pieces(line: str, width: int) -> list[str]:
    return [prefix + line[start:end] for start, end, prefix in wrap_code_line(line, width)]


def test_a_short_line_is_one_piece():
    assert wrap_code_line("x = 1", 10) == [(0, 5, "")]
    assert wrap_code_line("", 10) == [(0, 0, "")]


def test_a_long_line_continues_at_its_indent_after_the_marker():
    line = "        return call(alpha, beta, gamma, delta)"
    got = pieces(line, 24)
    assert got[0] == line[:24]
    assert all(p.startswith("        " + CONTINUATION) for p in got[1:])
    assert all(cell_len(p) <= 24 for p in got)
    # Nothing is lost or repeated: the pieces without their prefixes are the line.
    assert "".join(line[s:e] for s, e, _ in wrap_code_line(line, 24)) == line


def test_a_deep_indent_is_dropped_rather_than_leaving_no_room():
    line = " " * 30 + "x" * 40
    got = pieces(line, 20)
    assert all(p.startswith(CONTINUATION) for p in got[1:])
    assert all(cell_len(p) <= 20 for p in got)


def test_wide_characters_never_straddle_the_edge():
    line = "s = '" + "漢字" * 10 + "'"
    got = pieces(line, 11)
    assert all(cell_len(p) <= 11 for p in got)
    assert "".join(line[s:e] for s, e, _ in wrap_code_line(line, 11)) == line


def render(markdown: str, width: int) -> list[str]:
    console = Console(width=width, color_system=None, force_terminal=False, record=True)
    console.print(SafeMarkdown(markdown))
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_code_block_in_a_reply_keeps_its_shape():
    code = "def f():\n    return some_function(argument_one, argument_two, argument_three)\nx = 1"
    lines = render(f"Text\n\n```python\n{code}\n```\n\nafter", 40)
    body = [line for line in lines if line.strip() and line.strip() not in ("Text", "after")]
    assert body[0] == " def f():"
    assert body[1].startswith("     return some_function(")
    # Continued at the line's indent (4, inside the block's padding of 1) after the marker.
    continued = [line for line in body if CONTINUATION.strip() in line]
    assert continued and all(line.startswith("     " + CONTINUATION) for line in continued)
    assert body[-1] == " x = 1"  # the next line starts where it should
    joined = "".join(
        line[5 + len(CONTINUATION) :] if CONTINUATION.strip() in line else line[5:]
        for line in body[1:-1]
    )
    assert joined == code.split("\n")[1][4:]


def test_code_that_fits_is_drawn_as_before():
    lines = render("```\nshort line\n```", 40)
    assert " short line" in lines and not any(CONTINUATION.strip() in line for line in lines)
