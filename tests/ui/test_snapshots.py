"""Pictures of the app's states (pytest-textual-snapshot). Each docstring says what to look for.

The database, the clock (NOW), the time zone (UTC) and home (/home/dev) are fixed, so the
pictures do not change from run to run. Review the SVGs under __snapshots__ when one changes.
"""

from __future__ import annotations

from apphelpers import make_app, settle
from sample_data import Sample

SMALL = (80, 24)
LARGE = (160, 48)


def focus_pane_and(*keys: str):
    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press("tab", *keys)
        await settle(pilot)

    return run


def open_and(session: str, sample: Sample, *keys: str):
    async def run(pilot) -> None:
        await settle(pilot)
        pilot.app.main_screen.open_session(sample.ids[session])
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return run


def keys(*presses: str, pause: float = 0.0):
    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press(*presses)
        if pause:
            await pilot.pause(pause)
        await settle(pilot)

    return run


def test_empty_database(snap_compare, empty_db):
    """A new, empty database at 80x24: the header says "this directory ~/src/api · 0 sessions";
    the sidebar says there are no sessions in ~/src/api yet and how to start one
    (`threadline chat "…"` or n); the pane says to pick a session or write below; the composer
    at the bottom is off (no provider in these settings) and says "No model provider yet: press
    i to set one up (ctrl+p: Set up a model provider)"; the footer lists the main keys."""
    assert snap_compare(make_app(empty_db), terminal_size=SMALL, run_before=settle)


def test_directory_with_sessions_small(snap_compare, plain_db):
    """~/src/api at 80x24: four sessions, the pinned "Design: the session store" on top with ★,
    its second line "6 msgs · ⚠ interrupted"; ages 3 d, 2 h, 5 h, 6 w; the first row is
    highlighted and marked open (▌). The pane shows the end of that session: the tool result
    and the assistant reply marked "⚠ interrupted" with "the reply broke off here"."""
    assert snap_compare(make_app(plain_db), terminal_size=SMALL, run_before=settle)


def test_directory_with_sessions_large(snap_compare, plain_db):
    """The same at 160x48: a wider sidebar (titles whole), the session's whole timeline from
    "start of the session · 6 messages · faded = summarised (f folds)": system, user,
    assistant (faded: the summary stands for them), the collapsed summary ("≡ Summary of
    messages 1–3 · 1,240 tokens", three lines, "▸ 4 more lines"), user, tool and the
    interrupted reply in full colour. Role labels are coloured differently."""
    assert snap_compare(make_app(plain_db), terminal_size=LARGE, run_before=settle)


def test_conversation_markdown_and_code_small(snap_compare, plain_db):
    """ "Fix the flaky retry test" open at 80x24 with the pane focused: the assistant reply
    rendered as Markdown; the view is at its end (the pytest command and the docs link shown
    as "the pytest docs (https://docs.pytest.org/)"); the message cursor (▌ and a highlighted
    header) is on the last message."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=open_and("fix", plain_db, "tab"))


def test_conversation_markdown_and_code_large(snap_compare, plain_db):
    """The same at 160x48: the user's two lines as written; the reply with inline code,
    bold, two highlighted code blocks on a dark background (the long Python line wraps inside
    the block, nothing cut), the link shown with its address."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=LARGE, run_before=open_and("fix", plain_db, "tab"))


def test_summary_expanded_with_metadata(snap_compare, plain_db):
    """The design session at 160x48 with the metadata lines on (m): each message has a dim
    line with its time (e.g. "20 Nov 09:01"), the model, "412 in / 96 out tokens" and "1.8 s"
    (the first three faded: the summary stands for them); the summary is expanded (cursor on
    it, enter): all five bullet points and "▴ collapse"."""
    app = make_app(plain_db)

    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press("m", "tab")
        view = pilot.app.main_screen.conversation
        while view.cursor_item is not None and view.cursor_item.kind != "summary":
            await pilot.press("k")
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run)


def test_hostile_text_is_shown_literally(snap_compare, sample_db):
    """The "Hostile …" session at 160x48: every line shows `[bold]x[/bold]`,
    `[link=https://evil.example]x[/link]`, `[@click=app.quit]x[/]`, `[ @click=app.quit]`,
    `[@CLICK=app.quit]`, `a stray [/]`, `^[[31mred`, `bell^G`, `^[]0;pwned^G` and the OSC 8
    link as `^[]8;;https://evil.example^[\\x^[]8;;^[\\` literally: nothing bold, red or linked,
    in the sidebar title, the pane title, and the system, user, assistant (paragraph and code
    block), summary and tool bodies."""
    app = make_app(sample_db)

    async def run(pilot) -> None:
        await settle(pilot)
        pilot.app.main_screen.open_session(sample_db.ids["hostile"])
        await settle(pilot)
        view = pilot.app.main_screen.conversation
        summary = next(i for i, item in enumerate(view.items) if item.kind == "summary")
        view.toggle_summary(summary)
        view.scroll_to(y=0, animate=False)
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run)


def test_all_directories_scope(snap_compare, sample_db):
    """After pressing s twice, at 160x48: the header says "all directories · 7 sessions"; each
    sidebar entry's second line ends with its directory (~/src/api, ~/src/web, and the strange
    one shown literally as ~/src/[bold]x[/bold]^[]0;pwned^G); the two sessions whose only
    message is the user's say "no reply" before it."""
    app = make_app(sample_db)
    assert snap_compare(app, terminal_size=LARGE, run_before=keys("s", "s"))


def test_filter_active(snap_compare, plain_db):
    """80x24 after `/` and typing "flaky": the filter field at the top of the sidebar holds
    "flaky", the header says `filter “flaky”` and "1 session", and the list holds only
    "Fix the flaky retry test"."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys("slash", *"flaky", pause=0.3))


def test_filter_without_a_match(snap_compare, plain_db):
    """80x24 after `/` and "zzz": the sidebar says `No session matches “zzz”.` and that esc
    clears the filter and s widens the scope; the header says "0 sessions"."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys("slash", *"zzz", pause=0.3))


def test_help_screen(snap_compare, plain_db):
    """`?` at 160x48: a "Keys" box over the dimmed app lists every key by group with what it
    does: Anywhere (two esc lines: "Cancel the reply being written", "Clear the filter"; ^f, M
    and Z; "i Write a message (focus the composer)"; "^r Answer your last message again …"),
    Session list, Conversation (with f), then (below, the box scrolls) Composer and Also; its
    bottom edge says esc closes it and ^p finds any action by name."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=LARGE, run_before=keys("question_mark"))


def test_help_screen_small(snap_compare, plain_db):
    """`?` at 80x24: the same box, fitted to the screen, scrollable, the first group visible."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys("question_mark"))


def test_rename_modal(snap_compare, plain_db):
    """`r` on "Fix the flaky retry test" at 80x24: a "Rename session" dialog says
    "Now: Fix the flaky retry test", the field holds the title, the hint says an empty title
    brings the first message back, and the bottom edge says "enter saves · esc cancels"."""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys("j", "r"))


def test_delete_with_undo_notification(snap_compare, plain_db):
    """`d` on the open, pinned design session at 80x24: it is gone from the list (three left,
    the cursor on "Fix the flaky retry test"); the pane says it is in the trash and u brings it
    back; a "Deleted" notification says `Moved “Design: the session store” to the trash. Press u
    to undo.`"""
    app = make_app(plain_db)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys("d", pause=0.2))
