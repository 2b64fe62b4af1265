"""How the app says something went wrong: one call for every error notification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from threadline.ui.safe import clean, one_line

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel


class Notifier(Protocol):
    """Anything with Textual's `notify` (the app, a screen, a widget)."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...


def notify_error(
    target: Notifier,
    error: BaseException | str,
    prefix: str = "",
    *,
    title: str = "",
    timeout: float | None = None,
) -> None:
    """Show `error` (an exception's message, or text) as an error notification, literally.

    The text is sanitised and never parsed as markup. After a `prefix` ("Summarising failed: ")
    it continues a sentence, so it is put on one line; alone it keeps its lines (a "no provider
    configured" message names the config file and an example on lines of their own).
    """
    text = str(error)
    message = f"{prefix}{one_line(text)}" if prefix else clean(text)
    target.notify(message, title=title, severity="error", timeout=timeout, markup=False)
