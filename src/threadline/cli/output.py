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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


# ---------------------------------------------------------------------------- pager


def pager_command() -> list[str] | None:
    """The pager to show long output through: `$PAGER`, else `less`; None for none.

    PAGER set to "" or "cat" means no pager, as for git; so does a pager that is not installed.
    """
    import shlex

    value = os.environ.get("PAGER")
    if value is None:
        value = "less"
    try:
        argv = shlex.split(value)
    except ValueError:
        return None
    if not argv or argv[0] == "cat" or shutil.which(argv[0]) is None:
        return None
    return argv


@contextmanager
def paged(enabled: bool = True) -> Iterator[TextIO]:
    """A stream for long output: a pager's input on a terminal, else stdout itself.

    Like git: only when stdout is a terminal (never when piped) and `enabled` (`--no-pager`),
    with `LESS=FRX` unless LESS is set (quit if it fits on one screen, colours and the text
    left on screen when less ends). Quitting the pager early ends the output quietly.
    """
    import subprocess

    argv = pager_command() if enabled and stdout_is_tty() else None
    if argv is None:
        yield sys.stdout
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
    except OSError:
        yield sys.stdout
        return
    assert process.stdin is not None
    import io

    stream = io.TextIOWrapper(process.stdin, encoding="utf-8", errors="replace")
    try:
        yield stream
        stream.close()
    except BrokenPipeError:  # the person quit the pager before the end: not an error
        pass
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            pass
        while True:
            try:
                process.wait()
                break
            except KeyboardInterrupt:  # ctrl-c belongs to the pager while it runs
                continue


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


GAP = 2  # spaces between table columns


def fit_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> tuple[list[int], list[int]]:
    """Which columns fit in `width` (their indexes) and the width each gets.

    Columns give up width by `shrink` (highest first, down to their minimum); when even the
    minimums do not fit, columns are dropped by `drop` (highest first) one at a time, and the
    width a dropped column leaves goes back to those that shrank. `width` None: all in full.
    """
    natural = [display_width(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            natural[i] = max(natural[i], display_width(cell))
    keep = list(range(len(columns)))
    if width is None:
        return keep, natural
    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    while True:
        widths = {i: natural[i] for i in keep}
        excess = sum(widths.values()) + GAP * (len(keep) - 1) - width
        for level in sorted({columns[i].shrink for i in keep if columns[i].shrink}, reverse=True):
            for i in keep:
                column = columns[i]
                if excess > 0 and column.shrink == level:
                    floor = max(column.minimum, display_width(column.header))
                    give = min(max(0, widths[i] - floor), excess)
                    widths[i] -= give
                    excess -= give
        if excess <= 0 or not droppable:
            return keep, [widths[i] for i in keep]
        keep.remove(droppable.pop(0))


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> list[str]:
    """Lines of an aligned table; cells must already be sanitised one-line text."""
    keep, widths = fit_widths(columns, rows, width)
    columns = [columns[i] for i in keep]
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
        line = (" " * GAP).join(parts).rstrip()
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


def compact_date(when: datetime, now: datetime | None = None) -> str:
    """The local date in at most 8 cells: `Nov 23` this year, `Nov 2024` before."""
    local = to_utc(when).astimezone()
    current = to_utc(now or datetime.now(UTC)).astimezone()
    return local.strftime("%b %d" if local.year == current.year else "%b %Y")


def compact_age(when: datetime, now: datetime | None = None) -> str:
    """How long ago, in at most 8 cells, for narrow tables: `now`, `5m`, `3h`, `12d`, then
    the date (compact_date)."""
    now = to_utc(now or datetime.now(UTC))
    seconds = (now - to_utc(when)).total_seconds()
    if seconds < 0 or seconds >= 30 * 86400:
        return compact_date(when, now)
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


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


def ask(question: str, default: str | None = None) -> str:
    """Ask for a line of text on the terminal (stderr), `default` when the answer is blank.

    Raises:
        EOFError: stdin ended (the person pressed ctrl-d) before an answer.
    """
    shown = f" [{default}]" if default else ""
    sys.stderr.write(f"{question}{shown}: ")
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        raise EOFError
    answer = line.strip()
    return answer or (default or "")
