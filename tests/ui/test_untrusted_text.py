"""Stored text is untrusted: markup and escape sequences in titles, previews, directory names,
messages of every role, summaries, model names and notifications are shown literally, are inert
when clicked, and no control byte reaches the terminal."""

from __future__ import annotations

import os
import re
import select
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from apphelpers import (
    HANG_GUARD,
    make_app,
    screen_lines,
    screen_segments,
    screen_text,
    settle,
    terminal_output,
    until,
    widget_lines,
)
from sample_data import (
    HOSTILE,
    HOSTILE_DIR,
    HOSTILE_SHOWN,
    HOSTILE_STRINGS,
    NOW,
    Sample,
    done_filling,
    fill_quickly,
)

from threadline.store import Store
from threadline.ui.safe import clean, one_line, safe_content

ROOT = "/home/dev/h"
CSI = re.compile(r"\x1b\[[0-9;:?<>=]*[ -/]*[@-~]")


class _Clock:
    def __init__(self) -> None:
        self.now = NOW - timedelta(days=1)

    def __call__(self):
        return self.now


async def build_hostile(path: Path) -> dict[str, str]:
    """One session per hostile string as a title, one per string as a preview, one per string
    in a directory name, and one session holding every string in every kind of item."""
    clock = _Clock()
    store = await Store.open(path, clock=clock)
    await fill_quickly(store)
    ids: dict[str, str] = {}
    try:
        for i, text in enumerate(HOSTILE_STRINGS):
            clock.now += timedelta(minutes=1)
            s = await store.create_session(ROOT, title=f"T{i} {text}")
            await store.add_message(s.id, "user", "hi")
            clock.now += timedelta(minutes=1)
            s = await store.create_session(ROOT)
            await store.add_message(s.id, "user", f"P{i} {text}")
            clock.now += timedelta(minutes=1)
            s = await store.create_session(f"/home/dev/d{i}/{text}", title=f"dir {i}")
            await store.add_message(s.id, "user", "hi")
        clock.now += timedelta(minutes=1)
        s = await store.create_session(ROOT, title="Everything " + HOSTILE)
        ids["all"] = s.id
        lines = "\n\n".join(f"L{i} {text}" for i, text in enumerate(HOSTILE_STRINGS))
        await store.add_message(s.id, "system", "system\n" + lines)
        m1 = await store.add_message(s.id, "user", "user\n" + lines)
        m2 = await store.add_message(
            s.id,
            "assistant",
            "assistant\n\n" + lines + "\n\n```\n" + lines + "\n```",
            model="evil " + HOSTILE_STRINGS[2],
            input_tokens=1,
            output_tokens=2,
        )
        await store.save_summary(s.id, "summary\n\n" + lines, m1.id, m2.id, model="m")
        await store.add_message(s.id, "tool", "tool\n" + lines)
    finally:
        await done_filling(store)
        await store.close()
    return ids


@pytest.fixture
def hostile_db(built) -> tuple[Path, dict[str, str]]:  # noqa: ANN001
    return built("hostile.db", build_hostile)


def assert_no_control_bytes(output: str) -> None:
    """Nothing but Textual's own CSI sequences: no OSC, no BEL, no C1, no stray ESC."""
    rest = CSI.sub("", output)
    assert "\x1b" not in rest
    assert "\x07" not in rest
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", rest.replace("\r\n", "\n"))


def assert_inert(app) -> None:
    """No segment showing stored text carries a link or an action (mouse meta such as the
    scrollbar's `@mouse.down` belongs to Textual's own widgets, not to the text)."""
    needles = ("bold", "link", "click", "CLICK", "[/]", "^[", "^G", "evil", "pwned")
    checked = 0
    for segment in screen_segments(app):
        if not any(needle in segment.text for needle in needles):
            continue
        checked += 1
        style = segment.style
        if style is None:
            continue
        assert not style.link, segment
        assert not any(key.startswith("@") for key in style.meta), segment
    assert checked


def test_clean_makes_every_control_character_visible():
    for code in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]:
        shown = clean(f"a{chr(code)}b")
        assert chr(code) not in shown and shown.startswith("a") and shown.endswith("b")
    assert clean("tab\tand\nnewline") == "tab\tand\nnewline"
    assert clean("\x1b]0;pwned\x07") == "^[]0;pwned^G"
    assert clean("crlf\r\nline") == "crlf\nline"
    assert one_line("a\n\n  b\tc") == "a b c"
    for text, shown in zip(HOSTILE_STRINGS, HOSTILE_SHOWN, strict=False):
        assert clean(text) == shown
        assert safe_content(text).plain == shown  # literal: no markup was parsed


async def test_titles_and_previews_in_the_sidebar(hostile_db):
    path, _ = hostile_db
    app = make_app(path, working_dir=ROOT)
    async with app.run_test(size=(200, 80)) as pilot:
        await settle(pilot)
        app.main_screen.query_one("#sidebar").styles.width = 120  # room for whole titles
        await pilot.pause()
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        for i, shown in enumerate(HOSTILE_SHOWN):
            assert f"T{i} {shown}" in sidebar, shown
            assert f"P{i} {shown}" in sidebar, shown
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        await click_everything(pilot, {f"T{i} ": shown for i, shown in enumerate(HOSTILE_SHOWN)})


async def test_directories_in_the_sidebar(hostile_db):
    path, _ = hostile_db
    app = make_app(path, working_dir=ROOT)
    async with app.run_test(size=(200, 80)) as pilot:
        await settle(pilot)
        app.main_screen.query_one("#sidebar").styles.width = 120  # room for whole paths
        # The "all" scope shows each entry's directory.
        await pilot.press("s", "s")
        await settle(pilot)
        sidebar = "\n".join(widget_lines(app.main_screen.sessions))
        shown = {}
        for i, text in enumerate(HOSTILE_STRINGS[: len(HOSTILE_SHOWN)]):
            # As stored (a path: "//" became "/"), made visible, shortened with ~.
            stored = "~" + clean(str(Path(f"/home/dev/d{i}/{text}")))[len("/home/dev") :]
            assert stored in sidebar, text
            shown[f"~/d{i}/"] = stored[len(f"~/d{i}/") :]
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        await click_everything(pilot, shown)


async def click_everything(pilot, needles: list[str] | dict[str, str]) -> None:
    """Click on each needle's line, over the hostile text: nothing but selection may happen.
    A list: twice, 2 and 14 cells after each needle; a dict (needle: the text after it): once,
    in the middle of the text."""
    app = pilot.app
    lines = screen_lines(app)  # the needles are in the sidebar: clicks do not move them
    texts = needles if isinstance(needles, dict) else dict.fromkeys(needles, "")
    clicked = 0
    for needle, text in texts.items():
        for y, line in enumerate(lines):
            x = line.find(needle + text[:3])
            if x >= 0:
                offsets = [len(needle) + min(len(text) // 2, 8)] if text else [2, 14]
                for dx in offsets:
                    await pilot.click(offset=(min(x + dx, app.size.width - 3), y))
                    assert app.is_running
                clicked += 1
                break
    if isinstance(needles, dict):
        assert clicked == len(needles)
    await settle(pilot)
    assert app.is_running and app.return_code is None


async def test_every_kind_of_item_in_the_conversation(hostile_db):
    path, ids = hostile_db
    app = make_app(path, working_dir=ROOT)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(ids["all"])
        await settle(pilot)
        view = app.main_screen.conversation
        await pilot.press("tab", "m")  # the metadata line shows the (hostile) model name
        await settle(pilot)
        summary = next(i for i, item in enumerate(view.items) if item.kind == "summary")
        view.toggle_summary(summary)
        seen: set[str] = set()
        view.scroll_to(y=0, animate=False)
        while True:
            await settle(pilot)
            text = "\n".join(widget_lines(view))
            seen.update(line.strip(" ▎▌│") for line in text.split("\n"))
            assert_no_control_bytes(terminal_output(app))
            assert_inert(app)
            await click_everything(pilot, ["L0", "L2", "L3", "L4", "L5"])
            if view.scroll_y >= view.max_scroll_y:
                break
            view.scroll_to(
                y=view.scroll_y + view.scrollable_content_region.height - 2, animate=False
            )
        everything = "\n".join(seen)
        for role in ("system", "user", "assistant", "summary", "tool"):
            assert role in everything
        for i, shown in enumerate(HOSTILE_SHOWN):
            # Each line shows in the system, user, tool (plain), assistant (twice: markdown
            # paragraph and code block) and summary bodies.
            assert sum(1 for line in seen if line.startswith(f"L{i} {shown}")) >= 1, shown
            occurrences = sum(text.count(f"L{i} {shown}") for text in seen)
            assert occurrences >= 1
        assert "evil [@click=app.quit]x[/]" in everything  # the model name in the metadata
        title = "\n".join(widget_lines(app.main_screen.query_one("#session-title")))
        assert "Everything [bold]x[/bold]" in title


async def test_count_each_hostile_line_per_role(hostile_db):
    path, ids = hostile_db
    app = make_app(path, working_dir=ROOT)
    async with app.run_test(size=(200, 200)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(ids["all"])
        await settle(pilot)
        view = app.main_screen.conversation
        summary = next(i for i, item in enumerate(view.items) if item.kind == "summary")
        view.toggle_summary(summary)
        view.scroll_to(y=0, animate=False)
        await settle(pilot)
        text = "\n".join(widget_lines(view))
        for i, shown in enumerate(HOSTILE_SHOWN):
            # system, user, tool, summary, assistant paragraph and assistant code block.
            assert text.count(f"L{i} {shown}") == 6, (shown, text.count(f"L{i} {shown}"))


async def test_notifications_and_the_rename_dialog(hostile_db):
    path, ids = hostile_db
    app = make_app(path, working_dir=ROOT)
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await settle(pilot)
        sessions = app.main_screen.sessions
        # The "Everything" session is the newest: first row.
        assert sessions.highlighted.id == ids["all"]
        await pilot.press("r")
        await pilot.pause()
        dialog = screen_text(app)
        assert "Now: Everything [bold]x[/bold]" in dialog
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        await pilot.press("ctrl+u", *"[@click=app.quit]new[/]", "enter")
        await settle(pilot)
        # Toasts are mounted after the notification is posted.
        await until(pilot, lambda: "Renamed to “[@click=app.quit]new[/]”." in screen_text(app))
        assert app.is_running
        await pilot.press("d")
        await settle(pilot)
        await until(
            pilot, lambda: "Moved “[@click=app.quit]new[/]” to the trash." in screen_text(app)
        )
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)
        await click_everything(pilot, ["Renamed to", "Moved “"])


async def test_the_header_shows_a_hostile_working_directory_literally(sample_db: Sample):
    app = make_app(sample_db, working_dir=HOSTILE_DIR)
    async with app.run_test(size=(150, 30)) as pilot:
        await settle(pilot)
        header = screen_text(app).split("\n")[0]
        assert "~/src/[bold]x[/bold]^[]0;pwned^G" in header
        assert_no_control_bytes(terminal_output(app))
        assert_inert(app)


def test_a_real_terminal_receives_no_injected_sequence(tmp_path: Path):
    """End to end: run `threadline` in a pseudo-terminal on the hostile sessions and read the
    bytes it writes."""
    import asyncio
    import pty

    db = tmp_path / "hostile.db"
    ids = asyncio.run(build_hostile(db))
    assert ids

    async def last_message_time() -> str:
        from datetime import UTC, datetime

        from threadline.ui.format import clock_time

        async with await Store.open(db) as store:
            last = (await store.get_messages(ids["all"]))[-1]
        return clock_time(last.created_at, datetime.now(UTC))

    # The metadata line of the session's last message (on screen once `m` is pressed).
    meta = asyncio.run(last_message_time()).encode()
    env = {
        **os.environ,
        "THREADLINE_DB": str(db),
        "HOME": "/home/dev",
        "TERM": "xterm-256color",
        "COLUMNS": "200",
        "LINES": "60",
    }
    config = tmp_path / "config.toml"
    config.write_text("[session]\nauto_cleanup = false\n")
    env["THREADLINE_CONFIG"] = str(config)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, in the hostile directory's scope
        os.execvpe(
            sys.executable,
            # --dir must exist (issue 11): start in one, then `s s` widens to all directories.
            [sys.executable, "-m", "threadline", "--dir", str(tmp_path)],
            env,
        )
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
    output = bytearray()

    def read_until(marker: bytes | None) -> None:
        """Read what the app writes until `marker` has come (None: until it ends)."""
        while marker is None or marker not in output:
            ready, _, _ = select.select([fd], [], [], HANG_GUARD)
            assert ready, f"the app wrote nothing for {HANG_GUARD:.0f} s (waiting for {marker!r})"
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            output.extend(chunk)

    try:
        read_until(b"No sessions in")  # the empty directory it starts in
        os.write(fd, b"ss")  # the workspace scope, then every directory's sessions
        read_until(b"Everything")  # the sidebar
        read_until(b"L0 ")  # the newest session, opened
        os.write(fd, b"\t")  # into the conversation, then the metadata lines
        os.write(fd, b"m")
        read_until(meta)
        os.write(fd, b"q")
        read_until(None)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    # Textual itself sets the mouse pointer's shape (OSC 22, ended by BEL); nothing else.
    data = re.sub(rb"\x1b\]22;[a-z-]*\x07", b"", bytes(output))
    assert b"[bold]x[/bold]" in data
    assert b"pwned" in data  # shown, as text
    assert b"\x1b]0;" not in data  # no window title was set
    assert b"\x1b]8;;https://evil.example" not in data  # no hyperlink
    assert b"\x1b[31mred" not in data
    assert b"\x07" not in data
