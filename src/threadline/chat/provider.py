"""The provider protocol: stream one chat completion as text deltas, then how it ended.

A provider turns a list of `ChatMessage` into an async iterator of `TextDelta`s followed by
exactly one `StreamEnd` (usage, model, stop reason), or raises `ProviderError` with a one-line
message fit to show a user. The only implementation is the OpenAI-compatible one
(`openai_compat.py`), which serves OpenAI, Ollama (`/v1`), llama.cpp server, vLLM, LM Studio
and OpenRouter alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

# (Re-exported: they live apart so that the app's first frame does not import this module.)
from threadline.chat.hints import missing_model_message as missing_model_message
from threadline.chat.hints import not_configured_message as not_configured_message
from threadline.errors import ThreadlineError

ChatRole = Literal["system", "user", "assistant"]
# Server-supplied text in an error message is cut to this many cells (threadline.text.one_line).
ERROR_TEXT_WIDTH = 200


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a request, in the shape every chat completions API accepts."""

    role: ChatRole
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply's text, as it arrived."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last item of a stream: how the reply ended and what it cost (None: not reported)."""

    model: str | None
    stop_reason: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None


StreamEvent = TextDelta | StreamEnd

ErrorKind = Literal[
    "not_configured",
    "connection",
    "timeout",
    "auth",
    "not_found",
    "rate_limited",
    "server",
    "bad_request",
    "malformed",
    "truncated",
]


class ProviderError(ThreadlineError):
    """A request to the model failed; `str(err)` is one line for the user, never the API key.

    `retryable` says whether sending the same request again may succeed (the provider retries
    those itself before the first token); `retry_after` is the server's advice in seconds.
    """

    def __init__(
        self,
        message: str,
        kind: ErrorKind,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        from threadline.redact import redact_urls

        message = redact_urls(message)  # no URL credentials in anything stored or shown
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderNotConfigured(ProviderError):
    """No base URL or no model: nothing can be sent. The message says how to configure one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "not_configured")


@runtime_checkable
class Provider(Protocol):
    """Something that streams chat completions. Implementations must not import textual."""

    @property
    def name(self) -> str:
        """A label recorded on sessions (`[provider] name`)."""
        ...

    @property
    def default_model(self) -> str | None:
        """The configured model, used when neither the caller nor the session names one."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], model: str
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream one completion: TextDelta items, then one StreamEnd; or raise ProviderError.

        Closing the iterator early (aclose, or the consuming task cancelled) closes the request.
        """
        ...

    async def aclose(self) -> None:
        """Release connections (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole reply, collected from a stream."""

    text: str
    end: StreamEnd


async def complete(provider: Provider, messages: Sequence[ChatMessage], model: str) -> Completion:
    """Run one request to its end and return the whole text (for summaries and extraction).

    Nothing is returned, and so nothing can be saved, unless the stream ended properly.

    Raises:
        ProviderError: the request failed, or the stream ended without a result.
    """
    from contextlib import aclosing

    parts: list[str] = []
    end: StreamEnd | None = None
    async with aclosing(provider.stream(messages, model)) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                end = event
    if end is None:
        raise ProviderError("the provider ended the stream without a result", "truncated")
    return Completion("".join(parts), end)
