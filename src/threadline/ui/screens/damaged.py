"""The database is damaged: say so, say what to do, and let nothing more be written.

Shown over everything the first time SQLite reports the file corrupt (whichever read or write
saw it); the store refuses every write from then on, so nothing is queued or saved behind it.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from threadline.ui.safe import clean


def backups_beside(db_path: Path) -> list[Path]:
    """The copies threadline made before upgrades (`<name>.v<N>-<stamp>.bak`), newest first."""
    try:
        found = list(db_path.parent.glob(f"{db_path.name}.v*.bak"))
    except OSError:
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def damage_advice(db_path: Path, problem: str) -> Content:
    """What the screen says: the problem (literal text) and the steps that help."""
    prefix = f"{db_path}: "
    if problem.startswith(prefix):  # the path is shown on its own line
        problem = problem[len(prefix) :]
    backups = backups_beside(db_path)
    if backups:
        where = "the newest copy threadline made before an upgrade is " + str(backups[0])
    else:
        where = "threadline found no copy of its own beside it; use one you made"
    lines = [
        Content.styled("The database is damaged", "bold $error"),
        Content(""),
        Content(clean(str(db_path))),
        Content(""),
        Content(clean(problem)),
        Content(""),
        Content("Nothing more will be written to it: no message is saved and nothing is queued."),
        Content(""),
        Content("What to do:"),
        Content("  1. Quit (q) and run `threadline db check` to see what is wrong."),
        Content(f"  2. Restore a backup ({clean(where)}), or"),
        Content("  3. copy out what can still be read: `threadline export --all > rescue.jsonl`."),
    ]
    return Content("\n").join(lines)


class DamagedScreen(Screen[None]):
    """A full screen in place of the app's panes: the damage, and the way out."""

    BINDINGS = [Binding("q,escape,ctrl+q", "app.quit", "Quit", priority=True)]

    DEFAULT_CSS = """
    DamagedScreen {
        align: center middle;
    }
    DamagedScreen #damaged-box {
        width: 90;
        max-width: 95%;
        height: auto;
        border: round $error;
        padding: 1 2;
    }
    """

    def __init__(self, db_path: Path, problem: str) -> None:
        super().__init__()
        self.db_path = db_path
        self.problem = problem

    def compose(self) -> ComposeResult:
        with Vertical(id="damaged-box") as box:
            box.border_title = "threadline"
            box.border_subtitle = "q quits"
            yield Static(damage_advice(self.db_path, self.problem), id="damaged-text")
