"""The app's display formats: relative ages, token figures, durations, message times.

Counts (`plural`) are shared with the CLI and live in threadline.text.
"""

from __future__ import annotations

from datetime import datetime

from threadline.text import plural

__all__ = ["clock_time", "duration_ms", "plural", "relative_age", "tokens"]


def relative_age(when: datetime, now: datetime) -> str:
    """A compact age, rounded to the nearest unit: "now", "5 min", "3 h", "2 d", "3 w", "4 mo"."""
    seconds = (now - when).total_seconds()
    minutes = round(seconds / 60)
    if minutes < 1:
        return "now"
    if minutes < 60:
        return f"{minutes} min"
    hours = round(seconds / 3600)
    if hours < 24:
        return f"{hours} h"
    days = round(seconds / 86400)
    if days < 14:
        return f"{days} d"
    if days < 60:
        return f"{round(days / 7)} w"
    if days < 365:
        return f"{round(days / 30.4)} mo"
    return f"{round(days / 365.25)} y"


def tokens(count: int | None) -> str:
    if count is None:
        return "?"
    if count < 10_000:
        return f"{count:,}"
    return f"{count / 1000:.1f}k" if count < 100_000 else f"{count // 1000:,}k"


def duration_ms(ms: int | None) -> str:
    if ms is None:
        return "?"
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:.1f} s"


def clock_time(when: datetime, now: datetime) -> str:
    """Clock time for today, else date and time, in the local time zone (message headers)."""
    local = when.astimezone()
    if local.date() == now.astimezone().date():
        return local.strftime("%H:%M")
    if local.year == now.astimezone().year:
        return local.strftime("%d %b %H:%M")
    return local.strftime("%d %b %Y %H:%M")
