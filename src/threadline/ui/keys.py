"""Every key of the app, gathered from the bindings, for the help screen and the command palette.

Built from the BINDINGS of the screen and the two views, so what help shows, what the palette
offers and what the keys do cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.binding import Binding

if TYPE_CHECKING:
    from textual.app import App

    from threadline.ui.screens.memories import MemoriesScreen


@dataclass(frozen=True)
class KeyEntry:
    keys: str  # as displayed: "↑ k"
    description: str
    run: Callable[[], object] | None = None  # for the command palette


@dataclass(frozen=True)
class KeySection:
    title: str
    entries: list[KeyEntry] = field(default_factory=list)


GLOBAL_KEYS = [
    KeyEntry("tab ⇧tab", "Move focus: the list, the conversation, the composer"),
    KeyEntry("^p", "Command palette: every action by name, and themes"),
    KeyEntry("^q", "Quit (like q)"),
    KeyEntry("mouse", "Click a session to open it, a summary to expand it; wheel scrolls"),
]


def _display(app: App, binding: Binding) -> str:
    return " ".join(
        app.get_key_display(Binding(key.strip(), binding.action, binding.description))
        for key in binding.key.split(",")
    )


def _bindings(owner: type) -> list[Binding]:
    return [b for b in getattr(owner, "BINDINGS", []) if isinstance(b, Binding)]


def key_sections(app: App) -> list[KeySection]:
    from threadline.ui.screens.main import MainScreen
    from threadline.ui.screens.memories import MemoriesScreen
    from threadline.ui.widgets.composer import ComposerInput
    from threadline.ui.widgets.conversation import ConversationView
    from threadline.ui.widgets.session_list import SessionList

    screen = getattr(app, "_main_screen", None)
    sections: list[KeySection] = []
    shown = _base_screen(app)
    if isinstance(shown, MemoriesScreen):
        # Help on the memories screen is about that screen.
        return [memory_section(app, shown), KeySection("Also", list(GLOBAL_KEYS))]

    def runner(target: object | None, action: str) -> Callable[[], object] | None:
        if target is None:
            return None

        async def run() -> None:
            if isinstance(target, MainScreen | SessionList | ConversationView | ComposerInput):
                if not isinstance(target, MainScreen):
                    target.focus()
            await target.run_action(action)  # type: ignore[attr-defined]

        return run

    main = screen if isinstance(screen, MainScreen) else None
    sessions = main.query_one(SessionList) if main else None
    conversation = main.query_one(ConversationView) if main else None
    composer = main.query_one(ComposerInput) if main else None
    for title, owner, target in (
        ("Anywhere", MainScreen, main),
        ("Session list", SessionList, sessions),
        ("Conversation", ConversationView, conversation),
        ("Composer", ComposerInput, composer),
    ):
        entries = [
            KeyEntry(_display(app, b), b.tooltip or b.description, runner(target, b.action))
            for b in _bindings(owner)
        ]
        sections.append(KeySection(title, entries))
    sections.append(KeySection("Also", list(GLOBAL_KEYS)))
    return sections


def _base_screen(app: App) -> object | None:
    """The screen under any dialogs (help, palette): whose keys are wanted."""
    from textual.screen import ModalScreen

    for screen in reversed(app.screen_stack):
        if not isinstance(screen, ModalScreen):
            return screen
    return None


def memory_section(app: App, screen: MemoriesScreen | None = None) -> KeySection:
    """The memories screen's keys (M); with `screen`, runnable from the palette."""
    from threadline.ui.screens.memories import MemoriesScreen
    from threadline.ui.widgets.memory_list import MemoryList

    def runner(action: str) -> Callable[[], object] | None:
        if screen is None:
            return None

        async def run() -> None:
            await screen.run_action(action)

        return run

    entries = [
        KeyEntry(_display(app, b), b.tooltip or b.description, runner(b.action))
        for b in _bindings(MemoriesScreen)
    ]
    entries += [
        KeyEntry(_display(app, b), b.tooltip or b.description)
        for b in _bindings(MemoryList)
        if b.action in ("cursor_up", "cursor_down")
    ]
    return KeySection("Memories screen (M)", entries)
