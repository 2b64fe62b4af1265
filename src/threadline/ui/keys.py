"""Every key of a screen, gathered from the bindings, for the help screen and the command palette.

Built from the BINDINGS of the screen and its views (each screen says which, in order), so
what help shows, what the palette offers and what the keys do cannot drift apart. This module
imports no screen: screens call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.binding import Binding

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget


@dataclass(frozen=True)
class KeyEntry:
    keys: str  # as displayed: "↑ k"
    description: str
    run: Callable[[], object] | None = None  # for the command palette


@dataclass(frozen=True)
class KeySection:
    title: str
    entries: list[KeyEntry] = field(default_factory=list)


@dataclass(frozen=True)
class KeyGroup:
    """A section to list: the class whose BINDINGS it shows, and (for the palette) the live
    node its actions run on (focused first, unless it is the screen itself)."""

    title: str
    owner: type
    target: Widget | None = None
    only: tuple[str, ...] | None = None  # just these actions (None: all)


GLOBAL_KEYS = [
    KeyEntry("tab ⇧tab", "Move focus: the list, the conversation, the composer"),
    KeyEntry("^p", "Command palette: every action by name, and themes"),
    KeyEntry("^q", "Quit (like q)"),
    KeyEntry(
        "mouse", "Click a session to open it, a summary or a tool call to expand it; wheel scrolls"
    ),
]


def _display(app: App, binding: Binding) -> str:
    return " ".join(
        app.get_key_display(Binding(key.strip(), binding.action, binding.description))
        for key in binding.key.split(",")
    )


def _bindings(owner: type) -> list[Binding]:
    return [b for b in getattr(owner, "BINDINGS", []) if isinstance(b, Binding)]


def _runner(target: Widget | None, action: str) -> Callable[[], object] | None:
    if target is None:
        return None

    async def run() -> None:
        from textual.screen import Screen

        if not isinstance(target, Screen):
            target.focus()
        await target.run_action(action)

    return run


def key_sections(app: App, groups: Sequence[KeyGroup], also: bool = True) -> list[KeySection]:
    """The sections of these groups' keys (and, with `also`, the keys that work anywhere)."""
    sections = [
        KeySection(
            group.title,
            [
                KeyEntry(
                    _display(app, b), b.tooltip or b.description, _runner(group.target, b.action)
                )
                for b in _bindings(group.owner)
                if group.only is None or b.action in group.only
            ],
        )
        for group in groups
    ]
    if also:
        sections.append(KeySection("Also", list(GLOBAL_KEYS)))
    return sections


def merged(title: str, sections: Iterable[KeySection]) -> KeySection:
    """Several sections as one."""
    return KeySection(title, [entry for section in sections for entry in section.entries])
