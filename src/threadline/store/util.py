"""Small shared helpers for the store: clock, timestamps, UUIDv7 ids, JSON columns."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def fmt_ts(when: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, so timestamps sort as text."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# Where the random bits of new ids come from (the app's tests make it repeatable, so pictures
# of the screen show the same short ids on every run).
random_bytes: Callable[[int], bytes] = os.urandom

_uuid_lock = threading.Lock()
_uuid_last_ms = -1
_uuid_seq = 0
# Counter overflow moves an id a few milliseconds ahead of the clock; stay monotonic inside that.
_SAME_MS_SLACK = 16


def uuid7(when: datetime) -> str:
    """A UUIDv7 (RFC 9562) whose timestamp is `when`, ordered within one process.

    Written here rather than taken from a library because the timestamp must come from the
    store's injectable clock; the counter in rand_a keeps ids made in the same millisecond ordered.
    A clock that jumps back (a test's clock, an NTP step) gets ids with its own timestamp rather
    than ones pinned after the last id: the id follows the clock, and the random bits keep it
    unique.
    """
    global _uuid_last_ms, _uuid_seq
    ms = int(when.timestamp() * 1000)
    with _uuid_lock:
        if 0 <= _uuid_last_ms - ms <= _SAME_MS_SLACK:
            ms = _uuid_last_ms
            _uuid_seq += 1
            if _uuid_seq > 0xFFF:
                ms += 1
                _uuid_seq = 0
        else:
            _uuid_seq = int.from_bytes(random_bytes(2), "big") & 0x3FF
        _uuid_last_ms = ms
        seq = _uuid_seq
    rand_b = int.from_bytes(random_bytes(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand_b
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def uuid7_seeded(when: datetime, seed: bytes) -> str:
    """A UUIDv7 whose timestamp is `when` and whose other 74 bits are a hash of `seed`.

    The same inputs give the same id on every machine: an imported session gets the same id
    wherever the same history is imported (sync relies on ids being global), while its
    timestamp still orders it among the others by when it began.
    """
    import hashlib  # (here: the app's start makes no ids)

    ms = min(max(int(when.timestamp() * 1000), 0), (1 << 48) - 1)
    digest = hashlib.sha256(seed).digest()
    rand_a = int.from_bytes(digest[:2], "big") & 0xFFF
    rand_b = int.from_bytes(digest[2:10], "big") & ((1 << 62) - 1)
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


# json.dumps with these arguments builds a new encoder on every call; this one is reused (the
# same text: the same options).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dump_json(value: Any, what: str = "payload") -> str:
    """Compact JSON text; lone surrogates are kept as \\u escapes so they round-trip.

    Raises:
        StoreError: the value is not JSON (NaN, bytes, an object json cannot encode).
    """
    from threadline.store.errors import StoreError

    try:
        text = _COMPACT(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the {what} is not JSON-serialisable: {exc}") from None
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
