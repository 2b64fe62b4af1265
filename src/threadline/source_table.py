"""The outside tools threadline reads history from, in one table: how each is named, tagged,
found and followed. Nothing is imported here (the sidebar reads it at start-up); the readers
themselves are `threadline.sources`, which re-exports this table.
"""

from __future__ import annotations


class Tool:
    """An outside tool whose history threadline reads: the one place saying how it is named,
    tagged, found and followed. (A plain class: made at start-up, where a NamedTuple's or a
    dataclass's making costs more than the rest of this module.)"""

    __slots__ = ("follow_key", "label", "local", "module", "source", "tag")

    def __init__(
        self,
        source: str,
        module: str,
        label: str,
        tag: str,
        local: bool,
        follow_key: str | None = None,
    ) -> None:
        self.source = source  # the source's name: `threadline import NAME`, a session's `source`
        self.module = module  # its reader, a module under threadline.sources (`make_source()`)
        self.label = label  # how people call it ("Claude Code")
        self.tag = tag  # the small tag the sidebar and `sessions list` show
        self.local = local  # keeps its history in a usual place here (not an export)
        self.follow_key = follow_key  # its [sources] key when the app can follow it live

    def __repr__(self) -> str:
        return f"Tool({self.source!r})"


TOOLS: tuple[Tool, ...] = (
    Tool("claude-code", "claude_code", "Claude Code", "cc", True, "claude_code"),
    Tool("codex", "codex", "Codex", "codex", True, "codex"),
    Tool("chatgpt", "chatgpt", "ChatGPT", "gpt", False),
    Tool("claude-ai", "claude_ai", "Claude.ai", "claude", False),
    Tool("llm", "llm_logs", "llm", "llm", True),
    Tool("gemini-cli", "gemini_cli", "Gemini CLI", "gemini", True),
)
BY_SOURCE: dict[str, Tool] = {tool.source: tool for tool in TOOLS}
