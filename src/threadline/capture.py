"""Live capture: follow coding agents' histories (Claude Code, Codex) as they grow.

No Textual, no argparse: `threadline capture` (once, for cron or a systemd timer) and the app
(at start-up, then whenever a file changes) share it. What is taken in goes through
threadline.importing.import_source, so a grown session file is read from where the last pass
stopped and an unchanged one is only stat'ed; what threadline has taken in stays when the tool
deletes its files.

The [sources] config section says which histories are followed (see config.SourcesConfig):
`claude_code = true`, `codex = false`; absent means undecided (the app asks once, when the
history exists). `claude_code_path` / `codex_path` override where they are looked for.

Change detection (`Watch`) is a stat of each session file and folder under the followed
roots, compared with the previous pass: cheap (no file is opened), works on every file system,
and its cost is a directory walk every few seconds, never a busy loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.config import Settings
    from threadline.importing import ImportProgress, ImportSummary
    from threadline.sources import Source
    from threadline.store import Store

# The app looks for changes this often (seconds).
POLL_SECONDS = 2.0


@dataclass
class Followed:
    """One agent history as the config has it."""

    name: str  # the source's name ("claude-code")
    label: str  # how people call it ("Claude Code")
    key: str  # its [sources] key ("claude_code")
    path: Path  # where its sessions are
    enabled: bool | None  # the config's answer (None: not decided)


@dataclass
class Found:
    """An agent history found on this machine."""

    followed: Followed
    sessions: int  # session files under its path
    projects: int  # working-directory folders (Claude Code) or day folders (Codex)

    def describe(self) -> str:
        from threadline.paths import home_short

        s = "" if self.sessions == 1 else "s"
        where = home_short(str(self.followed.path))
        return f"{self.followed.label}: {self.sessions:,} session{s} in {where}"


def followed(settings: Settings, names: list[str] | None = None) -> list[Followed]:
    """The live sources (or those named), with their paths and the config's answer."""
    from threadline import sources

    out = []
    cfg = settings.sources
    for tool in sources.TOOLS:
        key = tool.follow_key
        if key is None or (names is not None and tool.source not in names):
            continue
        custom = getattr(cfg, f"{key}_path")
        if custom:
            path = Path(os.path.expanduser(custom))
        else:
            default = sources.get(tool.source).default_path()
            assert default is not None
            path = default
        out.append(Followed(tool.source, tool.label, key, path, getattr(cfg, key)))
    return out


def look(f: Followed) -> Found | None:
    """What is at `f.path` (None: nothing there). Walks the tree: call it off the UI thread."""
    from threadline import sources

    if not f.path.is_dir():
        return None
    try:
        files = list(sources.get(f.name).discover(f.path))
    except OSError:
        return None
    if not files:
        return None
    return Found(f, len(files), len({p.parent for p in files}))


def undecided(settings: Settings) -> list[Found]:
    """Histories present on this machine that the config says nothing about yet."""
    out = []
    for f in followed(settings):
        if f.enabled is None:
            found = look(f)
            if found is not None:
                out.append(found)
    return out


def answer_changes(found: list[Found], follow: bool) -> dict[str, dict[str, Any]]:
    """The config change that remembers the person's answer for these histories."""
    return {"sources": {f.followed.key: follow for f in found}}


@dataclass
class PassResult:
    """One capture pass over the followed histories."""

    summaries: list[ImportSummary]

    @property
    def sessions(self) -> int:
        return sum(s.sessions for s in self.summaries)

    @property
    def updated(self) -> int:
        return sum(s.updated for s in self.summaries)

    @property
    def messages(self) -> int:
        return sum(s.messages for s in self.summaries)

    @property
    def errors(self) -> list[str]:
        return [e for s in self.summaries for e in s.errors]

    @property
    def changed(self) -> bool:
        return any(s.sessions or s.updated or s.titled or s.replaced for s in self.summaries)


class Capture:
    """Takes in the followed histories; keeps one reader per source between passes (the Claude
    Code reader keeps an index of each folder there)."""

    def __init__(self, histories: list[Followed]) -> None:
        self.histories = histories
        self._readers: dict[str, Source] = {}

    async def run(
        self,
        store: Store,
        *,
        dry_run: bool = False,
        progress: Callable[[Followed, ImportProgress], None] | None = None,
        on_file_error: Callable[[str, str], None] | None = None,
    ) -> PassResult:
        """One pass: each history whose folder exists is imported (what grew, what is new)."""
        from threadline import sources
        from threadline.importing import import_source

        out = []
        for f in self.histories:
            if not f.path.is_dir():
                continue
            reader = self._readers.get(f.name)
            if reader is None:
                reader = self._readers[f.name] = sources.get(f.name)

            def report(p: ImportProgress, f: Followed = f) -> None:
                if progress is not None:
                    progress(f, p)

            summary = await import_source(
                store,
                f.name,
                f.path,
                dry_run=dry_run,
                progress=report if progress is not None else None,
                on_file_error=on_file_error,
                source=reader,
            )
            out.append(summary)
        return PassResult(out)


class Watch:
    """Notices a change under the followed roots: a session file added, grown or touched, or
    removed. `changed()` stats the tree (call it off the UI thread); the first call says True."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self._last: dict[str, tuple[int, int]] | None = None

    def changed(self) -> bool:
        now: dict[str, tuple[int, int]] = {}
        for root in self.roots:
            _walk(root, now)
        different = now != self._last
        self._last = now
        return different


def _walk(folder: Path | str, out: dict[str, tuple[int, int]]) -> None:
    try:
        entries = os.scandir(folder)
    except OSError:
        return
    with entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    _walk(entry.path, out)
                elif entry.name.endswith((".jsonl", ".jsonl.gz")):  # .gz: read whole, once
                    st = entry.stat()
                    out[entry.path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue  # gone while we looked
