"""Terminal output for the subcommands: tables that fit, times, safe JSON, progress, prompts.

Tables: on a terminal they fit its width (the title column is cut with an ellipsis, then the
directory, from the left). When stdout is not a terminal (a pipe, a file) rows are printed in
full so `grep` sees whole titles; use `--json` for machine-readable output.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from threadline.text import UNSAFE, display_width, pad, plural, truncate

__all__ = ["plural"]  # re-exported: the subcommands' counts are the app's (threadline.text)

# ---------------------------------------------------------------------------- terminal


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def styled() -> bool:
    """Whether stdout gets text attributes (highlights): a terminal, and NO_COLOR not set.

    NO_COLOR (https://no-color.org) set to anything but "" turns them off.
    """
    return stdout_is_tty() and not os.environ.get("NO_COLOR")


def terminal_width() -> int | None:
    """Columns to fit tables into: the terminal's width, or None (full rows) when piped."""
    if not stdout_is_tty():
        return None
    return max(40, shutil.get_terminal_size((100, 24)).columns)


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """One table column. `shrink` orders which columns give up width first (0: never)."""

    header: str
    right: bool = False
    shrink: int = 0
    minimum: int = 8
    cut_left: bool = False  # cut the start (paths) rather than the end (titles)
    drop: int = 0  # when even the minimum widths do not fit, higher numbers go first


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> list[str]:
    """Lines of an aligned table; cells must already be sanitised one-line text."""
    widths = [display_width(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    gap = 2
    if width is not None:
        excess = sum(widths) + gap * (len(columns) - 1) - width
        for level in sorted({c.shrink for c in columns if c.shrink}, reverse=True):
            if excess <= 0:
                break
            for i, column in enumerate(columns):
                if column.shrink == level and excess > 0:
                    can_give = max(0, widths[i] - max(column.minimum, display_width(column.header)))
                    give = min(can_give, excess)
                    widths[i] -= give
                    excess -= give
    if width is not None and excess > 0:
        keep = list(range(len(columns)))
        for level in sorted({c.drop for c in columns if c.drop}, reverse=True):
            for i in [i for i in keep if columns[i].drop == level]:
                if excess <= 0:
                    break
                keep.remove(i)
                excess -= widths[i] + gap
        columns = [columns[i] for i in keep]
        widths = [widths[i] for i in keep]
        rows = [[row[i] for i in keep] for row in rows]
    lines = []
    for cells in [[c.header for c in columns], *rows]:
        parts = []
        last = len(columns) - 1
        for i, (column, cell) in enumerate(zip(columns, cells, strict=True)):
            text = truncate(cell, widths[i], left=column.cut_left)
            # The last column is not padded: no trailing spaces.
            if i == last and not column.right:
                parts.append(text)
            else:
                parts.append(pad(text, widths[i], right=column.right))
        line = (" " * gap).join(parts).rstrip()
        if width is not None and display_width(line) > width:
            line = truncate(line, width)
        lines.append(line)
    return lines


def write_lines(lines: Sequence[str], out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    for line in lines:
        stream.write(line)
        stream.write("\n")


# ---------------------------------------------------------------------------- times


def to_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso(when: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds, as the store keeps it (JSON output)."""
    if when is None:
        return None
    when = to_utc(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def local_time(when: datetime, *, seconds: bool = False) -> str:
    """The time in the local zone, for tables and transcripts."""
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return to_utc(when).astimezone().strftime(fmt)


def short_time(when: datetime, now: datetime | None = None) -> str:
    """A compact local time for narrow columns: `Nov 23 09:15`, or `2025-11-23` in other years."""
    local = to_utc(when).astimezone()
    current = to_utc(now or datetime.now(UTC)).astimezone()
    if local.year == current.year:
        return local.strftime("%b %d %H:%M")
    return local.strftime("%Y-%m-%d")


def relative_time(when: datetime, now: datetime | None = None) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `yesterday`, `4 days ago`, else the local date."""
    now = to_utc(now or datetime.now(UTC))
    seconds = (now - to_utc(when)).total_seconds()
    if seconds < 0:
        return local_time(when)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days == 1:
        return "yesterday"
    if days < 30:
        return f"{days} days ago"
    return to_utc(when).astimezone().strftime("%Y-%m-%d")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ---------------------------------------------------------------------------- JSON


def _json_escape(match: Any) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def dumps_json(value: Any, *, indent: int | None = 2) -> str:
    """JSON with non-ASCII text kept readable but every unsafe character escaped.

    json.dumps escapes C0 controls itself; DEL, the C1 range (0x9b is a CSI on some terminals),
    bidi controls and zero-width characters (threadline.text.UNSAFE) are escaped here as
    `\\u202e` and the like: the same data, and safe (and visible) on a terminal.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    return UNSAFE.sub(_json_escape, text)


def print_json(value: Any) -> None:
    """Indented for a person on a terminal; compact (and several times faster) in a pipe."""
    sys.stdout.write(dumps_json(value, indent=2 if stdout_is_tty() else None))
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar (or a spinner when the total is unknown) on stderr.

    Drawn only when stderr is a terminal; otherwise every method does nothing, so output
    piped or captured stays clean.
    """

    _SPINNER = "|/-\\"

    def __init__(self, label: str, total: int | None = None, unit: str = "") -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = stderr_is_tty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._ticks = 0
        self.done = 0
        self.count = 0  # a second figure shown next to the bar (e.g. messages while bytes move)
        self.count_unit = ""

    def update(self, done: int, count: int | None = None, *, force: bool = False) -> None:
        self.done = done
        if count is not None:
            self.count = count
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        columns = shutil.get_terminal_size((80, 24)).columns
        extra = ""
        if self.count_unit:
            rate = self.count / elapsed
            extra = f"  {self.count:,} {self.count_unit} ({rate:,.0f}/s)"
        if self.total:
            fraction = min(1.0, self.done / self.total)
            bar_width = max(10, min(30, columns - len(self.label) - len(extra) - 12))
            filled = int(bar_width * fraction)
            bar = "#" * filled + "-" * (bar_width - filled)
            line = f"{self.label} [{bar}] {fraction * 100:3.0f}%{extra}"
        else:
            self._ticks += 1
            spin = self._SPINNER[self._ticks % len(self._SPINNER)]
            line = f"{self.label} {spin} {elapsed:.1f} s{extra}"
        sys.stderr.write("\r" + line[: columns - 1] + "\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        """Remove the bar so the summary that follows starts on a clean line."""
        if self.enabled and self._last_draw:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# ---------------------------------------------------------------------------- prompts


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal (default no)."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")
        return False
    return answer.strip().lower() in ("y", "yes")
