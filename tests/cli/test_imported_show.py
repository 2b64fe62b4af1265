"""`sessions show` on a session imported from another tool: tool calls and results one line
each, the reasoning one marker line unless --thinking, notices and commands named for what they
are, and hostile text in the title, tool output and thinking drawn as placeholders."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cli.helpers import Result
from cli.test_hostile_text import raw
from fakes.imported import imported_session
from threadline.store import Store


@pytest.fixture
def imported(with_db: Callable[..., Any]) -> Callable[..., str]:
    def make(hostile: bool = False) -> str:
        async def fill(store: Store) -> str:
            await store.load_history([imported_session(hostile=hostile)])
            (row,) = await store.list_sessions("all")
            return row.id

        return with_db(fill)

    return make


def test_tools_are_one_liners_and_thinking_a_marker(
    cli: Callable[..., Result], imported: Callable[..., str]
) -> None:
    r = cli("sessions", "show", imported(), "--no-pager")
    assert r.status == 0, r.err
    assert "  imported   from claude-code (its id there: cc-1)" in r.lines
    assert "⚙ Bash  pytest -q" in r.lines
    assert "⚙ Read  /work/demo/setup.cfg" in r.lines
    assert "→ Bash  exit 1" in r.lines
    assert "→ Read  ✖ File does not exist." in r.lines
    assert "∴ thinking (2 lines)" in r.lines
    assert "Check pytest first" not in r.out
    assert "FAILED tests/test_app.py" not in r.out  # the output is behind its one line
    assert any(line.startswith("── 8 · system (info) · ") for line in r.lines)
    assert any(line.startswith("── 9 · user (command) · ") for line in r.lines)
    assert "$ /model" in r.lines and "  Kept model as Default" in r.lines
    assert any(line.startswith("── summary of messages 1–5") for line in r.lines)


def test_thinking_flag_shows_the_reasoning(
    cli: Callable[..., Result], imported: Callable[..., str]
) -> None:
    r = cli("sessions", "show", imported(), "--no-pager", "--thinking")
    assert r.status == 0, r.err
    assert "∴ thinking:" in r.lines
    assert "  The tests probably fail on the import path." in r.lines
    assert "  Check pytest first, then the config." in r.lines


def test_hostile_imported_text_is_drawn_as_placeholders(
    cli: Callable[..., Result], imported: Callable[..., str]
) -> None:
    session_id = imported(hostile=True)
    for extra in ((), ("--thinking",)):
        r = cli("sessions", "show", session_id, "--no-pager", *extra)
        assert r.status == 0, r.err
        assert raw(r.out) == [] and raw(r.err) == []
        assert "Fix the failing tests [bold red]not markup[/] ^[]0;pwned^G ^[[31mred" in r.out
        assert "<U+202E>gnp.exe [@click=app.quit]q[/]" in r.out
    assert "⚙ Read  /work/demo/setup.cfg [bold red]not markup[/] ^[]0;pwned^G" in r.out
    assert "[@click=app.quit]q[/]" in r.out.split("∴ thinking:")[1].split("──")[0]


def test_the_session_list_json_names_the_source(
    cli: Callable[..., Result], imported: Callable[..., str], with_db: Callable[..., Any]
) -> None:
    imported()
    with_db(lambda store: store.create_session("/work/demo", title="mine"))
    r = cli("sessions", "list", "--all", "--json")
    assert r.status == 0, r.err
    assert sorted((s["title"], s["source"]) for s in json.loads(r.out)) == [
        ("Fix the failing tests", "claude-code"),
        ("mine", None),
    ]
