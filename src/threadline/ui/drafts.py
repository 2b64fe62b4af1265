"""Composer drafts: the text typed but not sent, one per session (and one for a new session).

Switching sessions swaps the composer's text: each session keeps its own draft, and the text
typed for a session not made yet (no session open, or after `n`) goes to the session its first
message makes. Drafts survive a restart: they are kept in a small JSON file beside the database
(`threadline.db-drafts.json`, mode 0600), not in it. A draft is not a message: writing it to the
shared database at every pause in typing would make every other program using the file re-read
it, and drafts are never synced or exported. The file is written whole (a temporary file
renamed over it) at most once a second while typing, when switching sessions and when quitting;
a crash loses at most the last second of typing. Without a file (a broken or read-only
directory) drafts still follow their sessions until the app quits.

No Textual here: the main screen decides when to save (on a thread).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

NEW = ""  # the key of the draft for a session not made yet
FORMAT = 1


def drafts_path(db_path: str | os.PathLike[str]) -> Path:
    """Where the drafts of the database at `db_path` are kept."""
    db = Path(db_path)
    return db.with_name(db.name + "-drafts.json")


class Drafts:
    """The drafts of one database, in memory, saved to `path` (None: kept in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._texts: dict[str, str] = {}
        self._touched: set[str] = set()  # changed since the last save

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> str:
        return self._texts.get(key, "")

    def keys(self) -> list[str]:
        return sorted(self._texts)

    @property
    def dirty(self) -> bool:
        """Changed since the last save."""
        return bool(self._touched)

    # ------------------------------------------------------------------ changing

    def set(self, key: str, text: str) -> None:
        """Keep `text` as the draft of `key` (blank text: no draft)."""
        old = self._texts.get(key, "")
        if not text.strip():
            text = ""
        if text == old:
            return
        if text:
            self._texts[key] = text
        else:
            self._texts.pop(key, None)
        self._touched.add(key)

    def move(self, old_key: str, new_key: str) -> None:
        """The draft of `old_key` becomes `new_key`'s (a new session was made): appended to
        what `new_key` had, if anything."""
        text = self._texts.pop(old_key, "")
        if not text:
            return
        kept = self._texts.get(new_key, "")
        self._texts[new_key] = f"{kept}\n{text}" if kept else text
        self._touched.update((old_key, new_key))

    def remove_prefix(self, key: str, sent: str) -> None:
        """`sent` (the start of `key`'s draft) was sent and saved: what was typed after stays."""
        text = self._texts.get(key, "")
        if text.startswith(sent):
            self.set(key, text[len(sent) :].lstrip("\n"))

    # ------------------------------------------------------------------ the file

    def load(self) -> str | None:
        """Read the file (missing: no drafts). Returns a problem to show, or None."""
        try:
            texts = self._read()
        except (OSError, ValueError) as exc:
            return f"drafts not read from {self.path}: {_why(exc)}"
        self._texts = texts
        self._touched.clear()
        return None

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        data = json.loads(raw)
        texts = data.get("drafts") if isinstance(data, dict) else None
        if not isinstance(texts, dict):
            raise ValueError("not a drafts file")
        return {str(k): v for k, v in texts.items() if isinstance(v, str) and v.strip()}

    def take_changes(self) -> dict[str, str]:
        """The drafts changed since the last call (blank: removed), to hand to `write` on
        another thread; give them back with `keep_changes` if writing fails."""
        changes = {key: self._texts.get(key, "") for key in self._touched}
        self._touched.clear()
        return changes

    def keep_changes(self, changes: dict[str, str]) -> None:
        """Writing `changes` failed: they are still to be written."""
        self._touched.update(changes)

    def write(self, changes: dict[str, str]) -> None:
        """Merge `changes` into the file (another app on the same database may have written
        drafts of its own sessions since) and write it whole, atomically, mode 0600. No drafts
        left removes the file.

        Raises:
            OSError: the file could not be read or written.
        """
        path = self.path
        if path is None or not changes:
            return
        try:
            texts = self._read()
        except ValueError:
            texts = {}  # not ours to keep: a damaged drafts file is replaced
        for key, text in changes.items():
            if text.strip():
                texts[key] = text
            else:
                texts.pop(key, None)
        if not texts:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return
        data = json.dumps({"format": FORMAT, "drafts": texts}, ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def save(self) -> None:
        """Write what changed now (raises OSError, keeping the changes)."""
        changes = self.take_changes()
        try:
            self.write(changes)
        except OSError:
            self.keep_changes(changes)
            raise


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
