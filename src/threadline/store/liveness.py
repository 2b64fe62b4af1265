"""Who is writing a reply, and whether that writer is provably gone.

A session whose reply is streaming records its writer as an owner string: host, boot, pid
namespace, pid, the process's start time and the tag of the Store that writes. Anyone on the
same machine (same boot, same pid namespace) can then tell at once that the writer died: the pid
no longer runs, or now belongs to a process that started later, or (in the writer's own process)
that Store was closed. Anything that cannot be proved (another host, another boot, a platform
without /proc) counts as unknown, and the 30-second heartbeat decides instead.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
from functools import cache
from typing import Literal

WriterState = Literal["alive", "gone", "unknown"]

_VERSION = "p1"
_UNKNOWN = "-"

_lock = threading.Lock()
_live_tags: set[str] = set()  # the Stores open in this process
_owners: dict[int, str] = {}  # id(writer connection) -> owner string


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); None when the pid is free.

    Where there is no /proc: "-" for a pid in use (its start time is not known).
    """
    stat = _read(f"/proc/{pid}/stat")
    if stat is not None:
        # The command name (field 2) may hold spaces and parentheses: count from the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        return fields[19] if len(fields) > 19 else _UNKNOWN
    if os.path.isdir("/proc/self"):
        return None  # /proc works here and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        return _UNKNOWN  # it exists, owned by someone else
    return _UNKNOWN


@cache
def _machine() -> tuple[str, str, str]:
    """(host, boot id, pid namespace) of this process; "-" where the platform cannot say."""
    host = "".join(socket.gethostname().split()) or _UNKNOWN
    boot = (_read("/proc/sys/kernel/random/boot_id") or "").strip() or _UNKNOWN
    try:
        namespace = "".join(os.readlink("/proc/self/ns/pid").split())
    except OSError:
        namespace = _UNKNOWN
    return host, boot, namespace


_process: tuple[int, str] | None = None


def _process_token() -> str:
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:  # computed again after a fork
        host, boot, namespace = _machine()
        _process = (pid, f"{_VERSION} {host} {boot} {namespace} {pid} {_start_time(pid) or '-'}")
    return _process[1]


def new_tag() -> str:
    """A tag for one open Store; `register` it while the store is open."""
    return uuid.uuid4().hex[:12]


def register(tag: str, conn: sqlite3.Connection) -> None:
    """The store tagged `tag` is open and writes through `conn`."""
    with _lock:
        _live_tags.add(tag)
        _owners[id(conn)] = f"{_process_token()} {tag}"


def unregister(tag: str, conn: sqlite3.Connection) -> None:
    """The store closed: a reply it left streaming is provably dead from now on."""
    with _lock:
        _live_tags.discard(tag)
        _owners.pop(id(conn), None)


def owner_of(conn: sqlite3.Connection) -> str:
    """The owner string recorded for replies written through `conn`."""
    with _lock:
        owner = _owners.get(id(conn))
    return owner or f"{_process_token()} {_UNKNOWN}"


def writer_state(owner: str | None) -> WriterState:
    """Whether the writer recorded as `owner` is alive, provably gone, or cannot be known."""
    if not owner:
        return "unknown"
    parts = owner.split(" ")
    if len(parts) != 7 or parts[0] != _VERSION:
        return "unknown"
    _, host, boot, namespace, pid_text, started, tag = parts
    if host == _UNKNOWN or (host, boot, namespace) != _machine():
        return "unknown"
    try:
        pid = int(pid_text)
    except ValueError:
        return "unknown"
    if pid <= 0:
        return "unknown"
    if pid == os.getpid() and _process_token().split(" ")[5] == started:
        if tag == _UNKNOWN:
            return "alive"
        with _lock:
            return "alive" if tag in _live_tags else "gone"
    now = _start_time(pid)
    if now is None:
        return "gone"  # nothing runs with that pid
    if started == _UNKNOWN or now == _UNKNOWN:
        return "unknown"  # something runs with that pid; it may be the writer
    return "alive" if now == started else "gone"  # else the pid was reused by a later process


def sql_writer_gone(owner: str | None) -> int:
    """`threadline_writer_gone(owner)`, registered on every connection (see sessions._STATUS)."""
    return 1 if writer_state(owner) == "gone" else 0
