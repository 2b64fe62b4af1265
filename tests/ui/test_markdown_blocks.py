"""A growing Markdown text cut into blocks laid out once (ui/markdown_blocks.py, no Textual):
the blocks laid out one by one are the whole text laid out, at every step of a stream."""

from __future__ import annotations

import random

import pytest
from rich.console import Console

from threadline.ui.markdown import SafeMarkdown
from threadline.ui.markdown_blocks import (
    BlockCache,
    BlockSplitter,
    code_block_height,
    split_blocks,
    starts_with_break,
)

PIECES = [
    "A paragraph with `code`, **bold** and *emphasis*, long enough to wrap at a narrow width.",
    "Short one.",
    "```python\ndef f(x):\n    return x * 2\n\n\nprint(f(2))  # blank lines inside the fence\n```",
    "~~~\nplain fence\n\n  indented\n~~~",
    "```sh\nmake test && echo " + "done " * 30 + "\n```",
    "- one\n- two\n- three",
    "- loose\n\n- list\n\n  with a paragraph",
    "1. first\n2. second\n\n3. third",
    "| name | value |\n|------|-------|\n| a | 1 |\n| b | 22 |",
    "# A heading",
    "## Another heading",
    "> quoted text\n> over two lines",
    "---",
    "1. step\n\n    ```sh\n    make\n    ```\n\n2. next",
    "Text right before a fence:\n```js\nlet x = 1;\n```",
    "```\n```",
]


def document(rng: random.Random, blocks: int) -> str:
    return "\n\n".join(rng.choice(PIECES) for _ in range(blocks))


def chunks_of(text: str, rng: random.Random) -> list[str]:
    out, at = [], 0
    while at < len(text):
        step = rng.choice([1, 2, 3, 5, 8, 13, 40])
        out.append(text[at : at + step])
        at += step
    return out


CONSOLE = Console(width=80, force_terminal=True, color_system="truecolor")


def laid_out(text: str, width: int) -> list[str]:
    """The text's lines as the conversation draws a Markdown body (Rich, no Textual)."""
    if not text.strip():
        return []
    options = CONSOLE.options.update(width=width, height=None, highlight=False)
    return [
        "".join(segment.text for segment in line)
        for line in CONSOLE.render_lines(SafeMarkdown(text), options, pad=True)
    ]


def incremental(blocks: list[str], tail: str, width: int) -> list[str]:
    """The blocks laid out one by one, one blank line between two (as the live reply does)."""
    lines: list[str] = []
    for part in [*blocks, tail]:
        drawn = laid_out(part, width)
        if lines and drawn and not starts_with_break(SafeMarkdown(part).parsed):
            lines.append(" " * width)
        lines += drawn
    return lines


def trimmed(lines: list[str]) -> list[str]:
    """Without the blank lines at the end: a block's marker that has no text yet ("> ", "# ")
    draws nothing, where the whole text draws the blank line before it (for a moment)."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


@pytest.mark.parametrize("seed", range(6))
def test_the_blocks_laid_out_one_by_one_are_the_whole_text_at_every_step(seed: int):
    rng = random.Random(seed)
    text = document(rng, 8)
    width = rng.choice([30, 57, 100])
    splitter = BlockSplitter()
    seen = ""
    finished: list[str] = []
    tail = ""
    for piece in chunks_of(text, rng):
        seen += piece
        before = tail
        blocks, tail = splitter.update(seen)
        # Finished blocks never change: each update only adds to them ...
        assert blocks[: len(finished)] == finished
        finished = blocks
        # ... only the rest is scanned, not the whole text again ...
        assert splitter.scanned == len(before) + len(piece)
        assert seen.endswith(tail)
        # ... and the blocks with the rest, laid out one by one, are the text laid out whole.
        assert trimmed(incremental(blocks, tail, width)) == trimmed(laid_out(seen, width)), seen
    whole, last = split_blocks(text)
    assert finished == whole[: len(finished)]
    assert incremental(finished, splitter.update(text)[1], width) == laid_out(text, width)


def test_a_block_is_finished_only_once_the_next_line_says_so():
    splitter = BlockSplitter()
    assert splitter.update("A.\n\n") == ([], "A.\n\n")
    # "-" may start a list item that continues a list above: not decided yet.
    assert splitter.update("A.\n\n-") == ([], "A.\n\n-")
    # A list item goes on with the block above (a loose list is one block) ...
    assert splitter.update("A.\n\n- x\n") == ([], "A.\n\n- x\n")
    # ... and a letter starts a new block at once.
    assert splitter.update("A.\n\n- x\n\nB") == (["A.\n\n- x"], "B")
    # Inside a fence, blank lines end nothing.
    splitter = BlockSplitter()
    assert splitter.update("```\ncode\n\nmore\n") == ([], "```\ncode\n\nmore\n")
    # Another text (not a continuation): split again from the start.
    assert splitter.update("Other.\n\nText") == (["Other."], "Text")


def test_split_blocks_keeps_fences_lists_and_the_growing_tail_together():
    chunks, tail = split_blocks("A.\n\n```\ncode\n\nmore\n```\n\n- x\n\n- y\n\nB is gr")
    assert chunks == ["A.", "```\ncode\n\nmore\n```\n\n- x\n\n- y"]
    assert tail == "B is gr"


@pytest.mark.parametrize("width", [8, 20, 57, 100])
def test_a_code_blocks_height_is_known_without_drawing_it(width: int):
    rng = random.Random(width)
    blocks = [piece for piece in PIECES if piece.startswith(("```", "~~~"))]
    for _ in range(60):
        body = "\n".join(
            rng.choice(["", "    x = 1", "a" * rng.randint(0, 150), "漢字" * rng.randint(0, 40)])
            for _ in range(rng.randint(0, 10))
        )
        blocks.append(f"```{rng.choice(['', 'python', 'nosuchlang'])}\n{body}\n```")
    for block in blocks:
        if block.startswith("Text"):
            continue
        assert code_block_height(block, width) == len(laid_out(block, width)), block


def test_only_a_block_that_is_one_code_block_has_a_known_height():
    for block in [
        "Text right before a fence:\n```js\nlet x = 1;\n```",
        "```\ncode\n```\nand text after it",
        "```\nunclosed",
        "    ```\n    indented\n    ```",
        "```\ntab\there\n```",
        "- ```\n  in a list\n  ```",
        "plain",
    ]:
        assert code_block_height(block, 40) is None, block


def test_the_cache_lays_out_a_block_once_per_width_and_style():
    cache: BlockCache[list[str]] = BlockCache(size=2)
    calls: list[str] = []

    def lay_out(text: str) -> list[str]:
        calls.append(text)
        return [text]

    assert cache.get("a", 40, "dark", lambda: lay_out("a")) == ["a"]
    assert cache.get("a", 40, "dark", lambda: lay_out("a")) == ["a"]
    assert calls == ["a"]
    cache.get("a", 41, "dark", lambda: lay_out("a"))  # another width
    cache.get("a", 40, "light", lambda: lay_out("a"))  # other styles; the first goes
    assert calls == ["a", "a", "a"]
    cache.get("a", 40, "dark", lambda: lay_out("a"))
    assert calls == ["a", "a", "a", "a"] and cache.misses == 4


def test_the_lexers_of_code_blocks_about_to_be_drawn_are_built_ahead():
    from pygments.lexers.rust import RustLexer

    from threadline.ui.markdown import fence_languages, warm_lexers

    text = "Text.\n\n```Rust\nfn main() {}\n```\n\n~~~ nosuchlanguage x\n~~~\n\n```\nplain\n```"
    names = fence_languages(text)
    # (rust may have been built by another test already; nothing else names this language)
    assert "nosuchlanguage" in names and names <= {"rust", "nosuchlanguage"}
    warm_lexers({"rust", "nosuchlanguage"})  # an unknown name is not an error
    assert "_tokens" in RustLexer.__dict__  # its rules are compiled: drawing it will not
    assert fence_languages(text) == set()  # and they are not built again
    assert fence_languages("no fences at all") == set()
