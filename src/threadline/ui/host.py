"""What the app gives its screens and helpers, as a type: nothing in ui/ imports the app module.

`ThreadlineApp` is the one `Host`. Screens and widgets reach it through `host(self)`; the
turn runner, the summary and memory helpers each say in a Protocol of their own what they use
of the screen they serve, so no module of ui/ imports one above it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from threadline.chat.turns import TurnEngine
    from threadline.config import Settings
    from threadline.store import Store
    from threadline.ui.memory_tasks import MemoryTasks


class Host(Protocol):
    """The app's state that screens read: settings, the directory, the clock, the store (None
    until it is open) and the turn engine (None until `engine_ready`, and without a provider)."""

    settings: Settings
    db_path: Path
    working_dir: str
    clock: Callable[[], datetime]
    store: Store | None
    engine: TurnEngine | None
    engine_error: str | None
    engine_ready: asyncio.Event
    memory_tasks: MemoryTasks

    def open_provider_setup(self) -> None:
        """Show the provider setup form (saving it makes the turn engine again)."""
        ...


def host(node: DOMNode) -> Host:
    """The app `node` belongs to, as a Host."""
    return cast("Host", node.app)
