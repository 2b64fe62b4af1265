"""Every CLI view shows hostile text the same way: escape sequences, C1 controls, bidi overrides
and zero-width characters are drawn as placeholders (`^[`, `<U+202E>`), never written raw;
JSON keeps the data exact but escapes them (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.helpers import Result, fake_tty
from threadline.store import Store

# Bidi overrides and isolates reorder what follows them on a terminal that implements bidi;
# zero-width characters, the BOM and tag characters hide text. Each must show, as controls do.
HOSTILE = "esc\x1b]0;pwned\x07 csi\x9b2J rlo\u202ereversed\u202c iso\u2066x\u2069 zw\u200bsp\ufeff"
HOSTILE += " pay\u200dpal tag\U000e0041"
SHOWN = [
    "esc^[]0;pwned^G",
    "csi<U+009B>2J",
    "rlo<U+202E>reversed<U+202C>",
    "iso<U+2066>x<U+2069>",
    "zw<U+200B>sp<U+FEFF>",
    "pay<U+200D>pal",
    "tag<U+E0041>",
]
WORD = "hostile"  # what the searches find


def raw(text: str) -> list[str]:
    """The unsafe characters in `text` (C0 but tab/newline, DEL, C1, bidi, zero-width, tags)."""
    bidi = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    hidden = "\u200b\u200c\u200d\u2060\ufeff\u180e"
    return [
        f"U+{ord(c):04X}"
        for c in text
        if (ord(c) < 32 and c not in "\n\t")
        or 0x7F <= ord(c) <= 0x9F
        or c in bidi
        or c in hidden
        or 0xE0000 <= ord(c) <= 0xE007F
    ]


@pytest.fixture
def hostile(with_db: Callable[..., Any], clock: Any, tmp_path: Path) -> dict[str, str]:
    """A session whose title, directory, model, messages and summary are all hostile, and a
    memory whose fact is."""
    directory = tmp_path / f"dir {HOSTILE}"
    directory.mkdir()

    async def fill(store: Store) -> dict[str, str]:
        s = await store.create_session(
            str(directory), title=f"title {HOSTILE}", model=f"model {HOSTILE}", provider="p"
        )
        first = await store.add_message(s.id, "user", f"{WORD} user\n{HOSTILE}")
        last = await store.add_message(s.id, "assistant", f"{WORD} reply\n{HOSTILE}", model="m")
        await store.save_summary(s.id, f"{WORD} summary {HOSTILE}", first.id, last.id, model="m")
        await store.save_memory(str(directory), f"{WORD} fact {HOSTILE}", "fact", 3)
        clock.advance(minutes=1)
        return {"id": s.id, "dir": str(directory)}

    return with_db(fill)


VIEWS = [
    ("sessions", "list", "--all"),
    ("sessions", "show", "{id}"),
    ("search", WORD),
    ("memories", "list", "--dir", "{dir}"),
]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("argv", VIEWS, ids=[" ".join(v[:2]) for v in VIEWS])
def test_views_draw_hostile_text_as_placeholders(
    cli: Callable[..., Result],
    hostile: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    terminal: bool,
) -> None:
    if terminal:
        fake_tty(monkeypatch, columns=400)  # wide: cells are not cut
        monkeypatch.setenv("PAGER", "cat")  # what `sessions show` would give its pager
    r = cli(*(a.format(**hostile) for a in argv))
    assert r.status == 0, r.err
    out = r.out.replace("\x1b[1;7m", "").replace("\x1b[0m", "")  # search's own highlight
    assert raw(out) == [] and raw(r.err) == []
    for shown in SHOWN:
        assert shown in out, (shown, out)


@pytest.mark.parametrize("argv", VIEWS, ids=[" ".join(v[:2]) for v in VIEWS])
def test_json_keeps_hostile_text_exact_and_escaped(
    cli: Callable[..., Result], hostile: dict[str, str], argv: tuple[str, ...]
) -> None:
    r = cli(*(a.format(**hostile) for a in argv), "--json")
    assert r.status == 0, r.err
    assert raw(r.out) == []  # \u202e and the like, as JSON escapes
    assert any(HOSTILE in s for s in strings(json.loads(r.out)))  # the data is exact


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_an_error_naming_hostile_text_is_one_safe_line(
    cli: Callable[..., Result], hostile: dict[str, str]
) -> None:
    r = cli("sessions", "show", f"nope{HOSTILE}")
    assert r.status != 0 and r.out == ""
    assert r.err.startswith("threadline: error:") and r.err.count("\n") == 1
    assert raw(r.err) == []
