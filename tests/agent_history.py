"""Hand-written coding-agent histories for the capture tests: a fake home with Claude Code's
~/.claude/projects (session files grown a line at a time) and Codex's ~/.codex/sessions."""

from __future__ import annotations

import json
from pathlib import Path


class ClaudeHome:
    """A throwaway HOME holding Claude Code sessions under .claude/projects/<folder>/."""

    def __init__(self, home: Path, cwd: str) -> None:
        self.home = home
        self.cwd = cwd
        self.projects = home / ".claude" / "projects"
        self.folder = self.projects / cwd.replace("/", "-")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def path(self, session: str) -> Path:
        return self.folder / f"{session}.jsonl"

    def _line(self, session: str, **kw: object) -> str:
        self._n += 1
        base = {
            "sessionId": session,
            "cwd": self.cwd,
            "isSidechain": False,
            "timestamp": f"2026-11-20T10:{self._n // 60:02d}:{self._n % 60:02d}.000Z",
            "parentUuid": None,
        }
        base.update(kw)
        return json.dumps(base) + "\n"

    def prompt(self, session: str, text: str) -> None:
        """The person typed `text` (appended to the session's file, made if new)."""
        line = self._line(
            session, type="user", uuid=f"u{self._n}", message={"role": "user", "content": text}
        )
        with self.path(session).open("a") as fh:
            fh.write(line)

    def reply(self, session: str, text: str) -> None:
        line = self._line(
            session,
            type="assistant",
            uuid=f"a{self._n}",
            message={
                "id": f"msg_{self._n}",
                "role": "assistant",
                "model": "claude-test",
                "content": [{"type": "text", "text": text}],
            },
        )
        with self.path(session).open("a") as fh:
            fh.write(line)
