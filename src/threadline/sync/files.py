"""Journal files in the sync repository: this machine's (appended) and the others' (read).

`machines/<machine-id>/<yyyy-mm>.jsonl`, one per machine and month, written only by that machine
and only ever appended to. A line is a record, or (with encryption) a block of records.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from threadline.sync import crypto
from threadline.sync.errors import JournalFileError
from threadline.sync.records import RecordError, check_record, parse_object

MACHINES = "machines"
_FILE = re.compile(r"^\d{4}-\d{2}\.jsonl$")
_MACHINE = re.compile(r"^[0-9a-f]{16}$")
# Records per encrypted block (a line); plain files have one record per line.
BLOCK_RECORDS = 2000


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


class OwnJournal:
    """This machine's journal files: find where they end, append records."""

    def __init__(self, repo: Path, machine: str) -> None:
        self.repo = repo
        self.machine = machine
        self.dir = repo / MACHINES / machine

    def files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if _FILE.match(p.name))

    def last_seq(self) -> int:
        """The last sequence number written (0: none), cutting a line left half-written."""
        for path in reversed(self.files()):
            seq = _last_seq_of(path)
            if seq:
                return seq
        return 0

    def append(
        self, lines: list[tuple[int, str, str]], now: datetime, recipients: list[Any]
    ) -> int:
        """Append records (seq, at, line) to this month's file; durable when it returns."""
        if not lines:
            return 0
        make_private_dir(self.dir)
        month = now.strftime("%Y-%m")
        existing = self.files()
        if existing:  # a clock set back never writes into an older month than the newest
            month = max(month, existing[-1].name[:7])
        path = self.dir / f"{month}.jsonl"
        if recipients:
            out = []
            for start in range(0, len(lines), BLOCK_RECORDS):
                chunk = lines[start : start + BLOCK_RECORDS]
                data = "".join(line + "\n" for _seq, _at, line in chunk).encode("utf-8")
                envelope = {
                    "v": 1,
                    "enc": "age",
                    "first": chunk[0][0],
                    "last": chunk[-1][0],
                    "data": crypto.encrypt_block(data, recipients),
                }
                out.append(json.dumps(envelope, separators=(",", ":")) + "\n")
            payload = "".join(out).encode("utf-8")
        else:
            payload = "".join(line + "\n" for _seq, _at, line in lines).encode("utf-8")
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.dir)
        return lines[-1][0]


def _last_seq_of(path: Path) -> int:
    """The last record's seq in one of our files; a torn last line is cut off first."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return 0
        window = min(size, 1 << 16)
        while True:
            fh.seek(size - window)
            tail = fh.read(window)
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                if cut < 0 and window < size:
                    window = min(size, window * 4)
                    continue
                keep = size - window + cut + 1 if cut >= 0 else 0
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
                size = keep
                if size == 0:
                    return 0
                window = min(size, 1 << 16)
                continue
            body = tail[:-1]
            start = body.rfind(b"\n")
            if start < 0 and window < size:
                window = min(size, window * 4)
                continue
            last = body[start + 1 :]
            try:
                obj = json.loads(last)
            except ValueError:
                return 0
            if not isinstance(obj, dict):
                return 0
            return int((obj.get("last") if "enc" in obj else obj.get("seq")) or 0)


# ---------------------------------------------------------------------- others' files


@dataclass
class PeerFile:
    machine: str
    path: Path
    rel: str  # relative to the repository, the key of its progress mark
    size: int
    offset: int  # bytes already applied


def peer_files(repo: Path, me: str, marks: dict[str, Any]) -> dict[str, list[PeerFile]]:
    """Other machines' journal files with something not yet applied, by machine, in order."""
    root = repo / MACHINES
    out: dict[str, list[PeerFile]] = {}
    if not root.is_dir():
        return out
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name == me or not _MACHINE.match(entry.name) or not entry.is_dir():
            continue
        for file in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if not _FILE.match(file.name):
                continue
            rel = f"{MACHINES}/{entry.name}/{file.name}"
            size = file.stat().st_size
            mark = marks.get(rel)
            offset = mark.offset if mark is not None else 0
            if mark is not None and mark.size == size and offset == size:
                continue
            if (
                offset > size
            ):  # rewritten shorter: read it again (seq numbers skip what was applied)
                offset = 0
            out.setdefault(entry.name, []).append(
                PeerFile(entry.name, Path(file.path), rel, size, offset)
            )
    return out


@dataclass(slots=True)
class Item:
    """One record read from a file, with where its line ends (for the progress mark)."""

    record: dict[str, Any]
    end: int  # the offset after the line that holds it
    whole: bool  # the last record of its line (the mark may move past the line)


def read_items(
    file: PeerFile, identities: list[Any] | None, *, check: bool = True
) -> Iterator[Item]:
    """The records after the file's offset, checked (unless already checked: check=False).

    Raises JournalFileError naming the file."""
    checked = check_record if check else _as_is
    try:
        with open(file.path, "rb") as fh:
            fh.seek(file.offset)
            position = file.offset
            number = 0
            for raw in fh:
                number += 1
                position += len(raw)
                if position > file.size:  # grew while read: the rest waits for the next sync
                    return
                if not raw.endswith(b"\n"):
                    raise RecordError("its last line is cut short")
                if raw[0] != 0x7B and not raw.strip():  # a record's line starts with {
                    continue
                obj = parse_object(raw)
                if "enc" in obj:
                    block = _decrypt(obj, identities)
                    lines = block.splitlines()
                    for i, inner in enumerate(lines):
                        record = checked(parse_object(inner))
                        yield Item(record, position, i == len(lines) - 1)
                else:
                    yield Item(checked(obj), position, True)
    except RecordError as exc:
        where = f" (line {number} after the applied part)" if number else ""
        raise JournalFileError(
            file.rel,
            f"{'' if exc.newer else 'not a valid journal'}{'' if exc.newer else ': '}{exc}{where}",
        ) from None
    except OSError as exc:
        raise JournalFileError(file.rel, f"cannot be read ({exc.strerror})") from None


def _at_line_start(file: PeerFile) -> bool:
    """Whether the file's offset still falls just after a line that is a whole JSON object."""
    try:
        with open(file.path, "rb") as fh:
            start = max(0, file.offset - (1 << 16))
            fh.seek(start)
            before = fh.read(file.offset - start)
    except OSError:
        return False
    if not before.endswith(b"\n"):
        return False
    line = before[:-1].rsplit(b"\n", 1)[-1]
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _as_is(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _decrypt(obj: dict[str, Any], identities: list[Any] | None) -> bytes:
    if obj.get("enc") != "age" or not isinstance(obj.get("data"), str):
        raise RecordError("an encrypted block of an unknown kind")
    if not identities:
        raise RecordError(
            "it is encrypted and no identity is configured ([sync] identity = age key file)"
        )
    try:
        return crypto.decrypt_block(obj["data"], identities)
    except ValueError as exc:
        raise RecordError(str(exc)) from None


# What a sync keeps in memory, parsed, between checking other machines' files and applying
# them: about this many bytes of records (their text and 200 for the rest of each). A new
# machine catching up on 200,000 messages (about 120 MB of journal; 380 MB of memory at the
# peak) reads each file once. A file beyond it is read again when it is applied (parsed only:
# it was checked), so memory stays bounded however much a machine has to catch up.
KEEP_BYTES = 160 << 20
RECORD_BYTES = 200  # what a record costs kept, beyond its text


@dataclass
class KeepBudget:
    """What is left of KEEP_BYTES for one sync's checks (validate() takes what it keeps)."""

    left: int = field(default_factory=lambda: KEEP_BYTES)


def validate(
    file: PeerFile, identities: list[Any] | None, after_seq: int, budget: KeepBudget | None = None
) -> tuple[int, int, list[Item] | None]:
    """Read the file's new part to the end: (records to apply, last seq, the items when they
    fit in the budget). Raises JournalFileError on any fault, before anything is applied."""
    if file.offset and not _at_line_start(file):
        # The part already applied changed (history rewritten): read it all again; records
        # are recognised by their sequence numbers, so nothing is applied twice.
        file.offset = 0
    left = budget.left if budget is not None else KEEP_BYTES
    keep = left > 0
    count, last = 0, after_seq
    items: list[Item] = []
    for item in read_items(file, identities):
        record = item.record
        seq = record["seq"]
        if keep:
            items.append(item)
            content = record.get("content")
            left -= (len(content) if isinstance(content, str) else 0) + RECORD_BYTES
            if left < 0:  # too much (an encrypted file holds more than its bytes): read again
                keep = False
                items = []
        if seq <= after_seq:
            continue
        if seq <= last:
            raise JournalFileError(file.rel, f"not a valid journal: record {seq} is out of order")
        last = seq
        count += 1
    if keep and budget is not None:
        budget.left = left
    return count, last, items if keep else None


def tighten(repo: Path) -> None:
    """Directories 0700 and files 0600 in the clone (git creates them by its umask)."""
    for dirpath, dirnames, filenames in os.walk(repo):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.stat(path, follow_symlinks=False).st_mode & 0o077:
                os.chmod(path, 0o700)
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                mode = os.stat(path, follow_symlinks=False).st_mode
            except OSError:
                continue
            if mode & 0o077 and not os.path.islink(path):
                os.chmod(path, mode & 0o700)
    os.chmod(repo, 0o700)
