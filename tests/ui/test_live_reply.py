"""The live reply's incremental drawing: finished blocks drawn once, the whole the same as
drawing the finished reply at once (so nothing jumps when the reply ends)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console
from rich.style import Style
from sample_data import FIX_ANSWER, HOSTILE
from test_markdown_blocks import trimmed

from threadline.models import Message
from threadline.ui.widgets.blocks import BlockState, BlockStyles, render_block
from threadline.ui.widgets.live import LiveReply, split_blocks

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PLAIN = Style()
STYLES = BlockStyles(
    base=PLAIN,
    labels={"assistant": Style(bold=True)},
    meta=PLAIN,
    body=PLAIN,
    dim_body=PLAIN,
    interrupted=PLAIN,
    streaming=PLAIN,
    summary_label=PLAIN,
    summary_body=PLAIN,
    more=PLAIN,
    code_theme="monokai",
)
TEXTS = {
    "answer with code": FIX_ANSWER,
    "paragraphs": "First.\n\nSecond with **bold** and `code`.\n\nThird.",
    "headings": "# Title\n\nText.\n\n## Part\n\nMore text.",
    "fence with a blank line": "Intro:\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter.",
    "loose list": "- a\n- b\n\n- c\n\nText.",
    "ordered list": "1. one\n2. two\n\n3. three\n\nEnd.",
    "rule and quote": "> quoted\n\nplain\n\n---\n\nafter the rule",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |\n\nText.",
    "indented code in a list": "1. step\n\n    ```sh\n    make\n    ```\n\n2. next\n\nDone.",
    "one long paragraph": " ".join(f"t{i}" for i in range(400)),
}


def message(text: str) -> Message:
    return Message(id=7, session_id="s", role="assistant", content=text, created_at=NOW)


def lines(strips) -> list[str]:
    return [strip.text for strip in strips]


@pytest.fixture
def console() -> Console:
    return Console(width=72, force_terminal=True, color_system="truecolor")


def test_split_keeps_fences_lists_and_growing_tail_together():
    chunks, tail = split_blocks("A.\n\n```\ncode\n\nmore\n```\n\n- x\n\n- y\n\nB is gr")
    # (A list item after a blank line continues: a loose list stays one block.)
    assert chunks == ["A.", "```\ncode\n\nmore\n```\n\n- x\n\n- y"]
    assert tail == "B is gr"
    # An open fence: nothing after it is final.
    chunks, tail = split_blocks("A.\n\n```py\nx = 1\n\ny")
    assert chunks == ["A."] and tail == "```py\nx = 1\n\ny"
    assert "".join(split_blocks("")[1]) == ""


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_the_streamed_drawing_ends_as_the_whole_drawing(name: str, console: Console):
    text = TEXTS[name]
    whole = lines(
        render_block(message(text), 60, BlockState(), STYLES, console, console.options, NOW)
    )
    live = LiveReply(message(""))
    # Arrive in word-sized pieces, drawing now and then, as the view does.
    pieces = text.split(" ")
    for i, piece in enumerate(pieces):
        live.append(piece + (" " if i < len(pieces) - 1 else ""))
        if i % 7 == 0:
            live.render(60, BlockState(), STYLES, console, console.options, NOW)
    drawn = lines(live.render(60, BlockState(), STYLES, console, console.options, NOW))
    assert drawn[0].rstrip().endswith("● writing…")
    assert drawn[1:] == whole[1:]
    # The finished reply drawn from the same chunks is exactly what render_block draws.
    final = live.render_final(
        message(text), 60, BlockState(), STYLES, console, console.options, NOW
    )
    assert final is not None and lines(final) == whole
    shown = BlockState(show_meta=True)
    final = live.render_final(message(text), 60, shown, STYLES, console, console.options, NOW)
    whole = render_block(message(text), 60, shown, STYLES, console, console.options, NOW)
    assert final is not None and lines(final) == lines(whole)
    # Not for another text, nor for a reply that ended in an error.
    other = message(text + " more")
    assert live.render_final(other, 60, BlockState(), STYLES, console, console.options, NOW) is None
    ended = BlockState(mark="error")
    assert (
        live.render_final(message(text), 60, ended, STYLES, console, console.options, NOW) is None
    )


def test_finished_blocks_are_drawn_once(console: Console, monkeypatch):
    from threadline.ui.widgets import live as live_module

    drawn: list[str] = []
    real = live_module._render

    def counting(renderable, *args, **kwargs):
        drawn.append(getattr(renderable, "markup", "?"))
        return real(renderable, *args, **kwargs)

    monkeypatch.setattr(live_module, "_render", counting)
    live = LiveReply(message(""))
    for part in ["First paragraph.", "\n\n", "Second ", "para", "graph.", "\n\n", "Third"]:
        live.append(part)
        live.render(60, BlockState(), STYLES, console, console.options, NOW)
    # Each finished paragraph was drawn while it grew, then once more when it was finished,
    # and never again; the last drawing drew only the growing "Third".
    assert drawn.count("First paragraph.") == 2
    assert drawn.count("Second paragraph.") == 2
    assert drawn[-1] == "Third"
    assert live.renders == 7


def test_hostile_deltas_are_made_inert(console: Console):
    live = LiveReply(message(""))
    for word in HOSTILE.split(" "):
        live.append(word + " ")
    text = "\n".join(lines(live.render(200, BlockState(), STYLES, console, console.options, NOW)))
    assert "\x1b" not in text and "\x07" not in text
    assert "^[]0;pwned^G" in text
    assert "[@click=app.quit]x[/]" in text


def body(strips) -> list[str]:
    """The lines under the header ("● writing…" or not), the spacer left out."""
    return lines(strips)[1:-1]


@pytest.mark.parametrize("seed", range(4))
def test_the_live_drawing_is_the_whole_drawing_at_every_step(seed: int, console: Console):
    import random

    from test_markdown_blocks import PIECES, chunks_of

    rng = random.Random(seed)
    text = "\n\n".join(rng.choice(PIECES) for _ in range(7))
    live = LiveReply(message(""))
    seen = ""
    for piece in chunks_of(text, rng):
        live.append(piece)
        seen += piece
        drawn = live.render(57, BlockState(), STYLES, console, console.options, NOW)
        whole = render_block(message(seen), 57, BlockState(), STYLES, console, console.options, NOW)
        if seen.strip():
            assert trimmed(body(drawn)) == trimmed(body(whole)), seen
    drawn = live.render(57, BlockState(), STYLES, console, console.options, NOW)
    whole = render_block(message(text), 57, BlockState(), STYLES, console, console.options, NOW)
    assert body(drawn) == body(whole)  # finished: the same, line for line


def test_a_paragraph_then_a_table_or_a_quote_keeps_one_blank_line(console: Console):
    for text in [
        "Text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter.",
        "Text.\n\n> quoted\n\nAfter.",
    ]:
        live = LiveReply(message(""))
        live.append(text)
        drawn = live.render(60, BlockState(), STYLES, console, console.options, NOW)
        whole = render_block(message(text), 60, BlockState(), STYLES, console, console.options, NOW)
        assert body(drawn) == body(whole)


def test_a_finished_code_block_is_drawn_when_its_lines_are_shown(console: Console, monkeypatch):
    from threadline.ui.widgets import live as live_module

    drawn: list[str] = []
    real = live_module._render

    def counting(renderable, *args, **kwargs):
        drawn.append(getattr(renderable, "markup", "?"))
        return real(renderable, *args, **kwargs)

    monkeypatch.setattr(live_module, "_render", counting)
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(30)) + "\n```"
    live = LiveReply(message(""), blocks=live_module.BlockCache(8))
    live.append(f"Intro.\n\n{code}\n\nThe end of the reply")
    strips = live.render(60, BlockState(), STYLES, console, console.options, NOW)
    # Its height is known (30 lines and a padding line above and below) ...
    whole = render_block(
        message(live.text), 60, BlockState(), STYLES, console, console.options, NOW
    )
    assert len(strips) == len(whole)
    # ... but it is not drawn until one of its lines is read.
    assert code not in drawn and strips.pending == 32
    assert strips[-2].text.startswith("The end of the reply")
    assert code not in drawn
    line = strips[10]  # within the code block
    assert drawn.count(code) == 1 and strips.pending == 0
    assert line.text.strip().startswith("x")
    assert lines(strips)[1:] == lines(whole)[1:]  # the header says it is being written


def test_a_growing_code_block_draws_only_its_new_lines(console: Console, monkeypatch):
    from threadline.ui.markdown import WrappedSyntax
    from threadline.ui.widgets import live as live_module

    ranges: list[tuple[int | None, int | None] | None] = []
    real = live_module._render

    def counting(renderable, *args, **kwargs):
        if isinstance(renderable, WrappedSyntax):
            ranges.append(renderable.line_range)
        return real(renderable, *args, **kwargs)

    monkeypatch.setattr(live_module, "_render", counting)
    code = [
        "def f(x):  ",
        '    """A docstring',
        "",
        '    over lines"""',
        "    return x * 2  # " + "a long comment " * 8,
        "\tindented = 'with a tab'",
        "",
        "",
        "print(f(2))   ",
    ]
    text = "Intro.\n\n```python\n" + "\n".join(code) + "\n```\n\nAfter."
    live = LiveReply(message(""))
    seen = ""
    for piece in [text[i : i + 4] for i in range(0, len(text), 4)]:
        live.append(piece)
        seen += piece
        drawn = live.render(50, BlockState(), STYLES, console, console.options, NOW)
        whole = render_block(message(seen), 50, BlockState(), STYLES, console, console.options, NOW)
        # Every step is the whole text's drawing (highlighting across lines included) ...
        assert trimmed(body(drawn)) == trimmed(body(whole)), seen
    # ... and once the block had lines, each repaint drew only the lines from its last one on.
    starts = [line_range[0] for line_range in ranges if line_range is not None]
    assert starts and max(starts) >= len(code) - 2
    assert sorted(starts) == starts  # never back to the start
