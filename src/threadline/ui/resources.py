"""Where the app's stylesheets are: inside the package (wheel) or the repository's tcss/ (editable).

A wheel carries the top-level `tcss/` as `threadline/tcss` (pyproject's force-include). An
editable install imports the package from `src/threadline`, which has no `tcss/`, so the
repository's own `tcss/` is used, and edits to it show at once. (Hatchling's editable install
also copies the files to site-packages/threadline/tcss, a stale copy nothing imports from.)
"""

from __future__ import annotations

from pathlib import Path

import threadline

STYLESHEETS = ("app.tcss",)


def tcss_dir() -> Path:
    """The directory holding the app's .tcss files."""
    package = Path(threadline.__file__).resolve().parent
    candidates = [package / "tcss", package.parent.parent / "tcss"]
    for candidate in candidates:
        if (candidate / STYLESHEETS[0]).is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"threadline's stylesheets are missing (looked in {searched})")


def stylesheets() -> list[Path]:
    directory = tcss_dir()
    return [directory / name for name in STYLESHEETS]
