"""Pictures of sessions imported from other tools (a hand-written Claude Code session, and
ChatGPT and llm ones, in ~/src/api beside the plain sample). Each docstring says what to see."""

from __future__ import annotations

import imported_data
import pytest
from apphelpers import make_app, settle
from sample_data import copied

MEDIUM = (120, 36)
SMALL = (80, 24)


@pytest.fixture
def imported_db(built):  # noqa: ANN001
    return copied(built, "imported.db", imported_data.build)


def open_cc(sample, *keys: str, tool: bool = False):
    async def run(pilot) -> None:
        await settle(pilot)
        pilot.app.main_screen.open_session(sample.ids["cc"])
        await settle(pilot)
        view = pilot.app.main_screen.conversation
        await pilot.press("tab")
        if tool:  # the cursor on the first tool output, opened
            first = next(i for i, item in enumerate(view.items) if item.role == "tool")
            view._set_cursor(first)
            await pilot.press("enter")
        await pilot.press(*keys)
        await settle(pilot)

    return run


def test_imported_session_collapsed(snap_compare, imported_db):
    """The Claude Code session "Fix the failing tests" at 120x36, pane focused (its header says
    "from Claude Code"; the cursor on the first message): the reply shows
    "∴ Thinking · 2 lines · t shows", its text, then "⚙ Bash  pytest -q  → exit 1" and
    "⚙ Read  /work/demo/setup.cfg  → ✖ File does not exist." (answers paired from the tool
    messages); below, two tight one-line outputs "↳ F.  (+3 lines)" and "↳ File does not
    exist." (red); the faded messages 1–5 and the summary "≡ Summary of messages 1–5" in place
    after them; the injected context as one dim "· context added by the tool: …" line; the
    notice "· [Request interrupted by user]"; the "/model" command as "$ /model" and its
    output. The sidebar's rows show "cc", "gpt", "llm" tags before the message counts."""
    app = make_app(imported_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=open_cc(imported_db, "home"))


def test_imported_session_tool_expanded(snap_compare, imported_db):
    """The same, the first tool output opened with enter (cursor ▌ on it): "↳ 4 lines of
    output" then the whole pytest output indented ("F.", "FAILED tests/test_app.py::test_start
    - ImportError", "1 failed, 1 passed"); the other output stays one line."""
    app = make_app(imported_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=open_cc(imported_db, tool=True))


def test_imported_session_thinking_shown(snap_compare, imported_db):
    """The same with t pressed: "∴ Thinking · t hides" then the two lines of reasoning in
    italics, indented, before the reply's text; the tool lines unchanged."""
    app = make_app(imported_db)
    assert snap_compare(app, terminal_size=MEDIUM, run_before=open_cc(imported_db, "t", "home"))


def test_sidebar_source_tags_small(snap_compare, imported_db):
    """~/src/api at 80x24: the sidebar lists the plain sample's sessions (no tag) with the
    imported ones: "Fix the failing tests" (second line "cc · 9 msgs"), "CSV reading in
    Python" ("gpt · 2 msgs"), "Quick question about csv" ("llm · 2 msgs"), in activity order."""
    app = make_app(imported_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=settle)
