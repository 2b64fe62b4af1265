"""The OpenAI-compatible chat completions provider, on httpx + httpx-sse.

Why not the `openai` SDK: it is a large import (pydantic models for the whole API) that would
cost every start of the app, and it wraps timeouts, retries and errors in its own policy. Here
the whole policy is a page of code: a connect and a read timeout from config, retries with
backoff (honouring Retry-After) only before the first token, and one specific message per
failure. httpx is imported only when the first request is made.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from threadline.chat.provider import (
    ERROR_TEXT_WIDTH,
    ChatMessage,
    ProviderError,
    ProviderNotConfigured,
    StreamEnd,
    StreamEvent,
    TextDelta,
    not_configured_message,
)
from threadline.text import one_line

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from threadline.config import ProviderSettings

# `import httpx` also imports httpx's own command-line tool (httpx._main: click, pygments and
# rich's progress and syntax modules) wherever click is installed: ~90 ms before a first
# request, for a tool threadline never runs. Marked missing (before httpx is first imported),
# httpx falls back to its stub `main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# The longest Retry-After we wait for; beyond it the error is reported at once.
MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 20.0
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class OpenAICompatProvider:
    """Streams `POST {base_url}/chat/completions` with `stream: true`.

    Args:
        settings: base_url, model, api_key and the timeouts and retry count.
        backoff_base: the first retry waits about this long, doubling each time.
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        backoff_base: float = 0.5,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not settings.base_url:
            raise ValueError("OpenAICompatProvider needs a base_url")
        from threadline.redact import split_credentials

        self._settings = settings
        # Credentials in the URL go in a header, never into a URL that an error could show.
        base_url, self._url_credentials = split_credentials(settings.base_url)
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + "/chat/completions"
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        # Cleared for good when the server rejects stream_options (some older servers do).
        self._usage_option = True

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def default_model(self) -> str | None:
        return self._settings.model

    @property
    def base_url(self) -> str:
        return self._base_url

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            s = self._settings
            timeout = httpx.Timeout(
                connect=s.connect_timeout,
                read=s.read_timeout,
                write=s.read_timeout,
                pool=s.connect_timeout,
            )
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            if s.api_key:
                headers["Authorization"] = f"Bearer {s.api_key}"
            options: dict[str, Any] = {}
            if self._base_url.lower().startswith("http://"):
                # Plain HTTP (a local Ollama, llama.cpp...): this client never speaks TLS (it
                # follows no redirects), so skip loading the CA bundle, ~40 ms of start-up.
                # The bare context still fails closed if TLS were ever attempted.
                import ssl

                options["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if self._url_credentials is not None:
                options["auth"] = httpx.BasicAuth(*self._url_credentials)
            self._client = httpx.AsyncClient(timeout=timeout, headers=headers, **options)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _body(self, messages: Sequence[ChatMessage], model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
        }
        if self._usage_option:
            body["stream_options"] = {"include_usage": True}
        return body

    async def stream(
        self, messages: Sequence[ChatMessage], model: str
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream one completion (see Provider.stream); retries only before the first token."""
        import httpx

        client = self._get_client()
        attempts = 0
        started = False
        while True:
            body = self._body(messages, model)
            try:
                async with client.stream("POST", self._url, json=body) as response:
                    if response.status_code != 200:
                        await response.aread()
                        if self._usage_option and _rejects_usage_option(response):
                            self._usage_option = False
                            continue
                        raise self._status_error(response, model)
                    async for event in self._events(response, model):
                        started = True
                        yield event
                    return
            except ProviderError as err:
                if started:
                    raise
                if not err.retryable or attempts >= self._settings.max_retries:
                    raise self._final(err, attempts) from None
                if err.retry_after is not None and err.retry_after > MAX_RETRY_AFTER:
                    raise ProviderError(
                        f"{err.message} (the server asks to retry after {err.retry_after:.0f} s)",
                        err.kind,
                        status=err.status,
                        retry_after=err.retry_after,
                    ) from None
                await self._sleep(self._backoff(attempts, err.retry_after))
                attempts += 1
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, started)
                if started:
                    raise failure from None
                if not failure.retryable or attempts >= self._settings.max_retries:
                    raise self._final(failure, attempts) from None
                await self._sleep(self._backoff(attempts, None))
                attempts += 1

    async def list_models(self) -> list[str]:
        """The model ids the server lists at `GET {base_url}/models`, sorted: the connection
        test of `config init` and the app's setup form (no retries: it answers or it does not).

        Raises:
            ProviderError: one line saying what went wrong (refused, a rejected key, not an
                OpenAI-compatible URL...), as for a chat request.
        """
        import httpx

        url = self._base_url + "/models"
        try:
            response = await self._get_client().get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, False) from None
        if response.status_code == 404:
            raise ProviderError(
                f"{url} not found (HTTP 404): is {self._base_url} an OpenAI-compatible API? "
                "(its URL usually ends in /v1)",
                "not_found",
                status=404,
            )
        if response.status_code != 200:
            raise self._status_error(response, "")
        try:
            data = response.json()
        except ValueError:
            kind = one_line(response.headers.get("content-type", "no content type"), 80)
            raise ProviderError(
                f"{url} did not answer with a model list (content type {kind})", "malformed"
            ) from None
        items = data.get("data", data.get("models")) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ProviderError(f"{url} did not answer with a model list", "malformed")
        names = set()
        for item in items:
            name = item.get("id") or item.get("name") if isinstance(item, dict) else item
            if isinstance(name, str) and name.strip():
                names.add(name.strip())
        return sorted(names, key=lambda name: (name.casefold(), name))

    # ------------------------------------------------------------------ the stream

    async def _events(
        self, response: httpx.Response, model: str
    ) -> AsyncGenerator[StreamEvent, None]:
        from httpx_sse import EventSource, SSEError

        source = EventSource(response)
        finish: str | None = None
        reported_model: str | None = None
        usage: dict[str, Any] | None = None
        done = False
        try:
            async for sse in source.aiter_sse():
                data = sse.data
                if data == "[DONE]":
                    done = True
                    break
                if not data:
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise self._malformed(data) from None
                if not isinstance(chunk, dict):
                    raise self._malformed(data)
                if sse.event == "error" or "error" in chunk:
                    raise self._stream_error(chunk)
                if chunk.get("model"):
                    reported_model = str(chunk["model"])
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                choices = chunk.get("choices")
                if not choices:
                    continue
                choice = choices[0] if isinstance(choices, list) else None
                if not isinstance(choice, dict):
                    raise self._malformed(data)
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    text = delta.get("content")
                    if text:
                        if not isinstance(text, str):
                            raise self._malformed(data)
                        yield TextDelta(text)
                elif delta is not None:
                    raise self._malformed(data)
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
        except SSEError:
            kind = one_line(response.headers.get("content-type", "no content type"), 80)
            raise ProviderError(
                f"{self._url} did not answer with an event stream (content type {kind})",
                "malformed",
            ) from None
        if not done and finish is None:
            raise ProviderError(
                f"the reply from {self._base_url} was cut off: the stream ended without "
                "[DONE] or a finish reason (truncated)",
                "truncated",
                retryable=True,
            )
        yield StreamEnd(
            model=reported_model or model,
            stop_reason=finish or "stop",
            input_tokens=_int(usage, "prompt_tokens"),
            output_tokens=_int(usage, "completion_tokens"),
        )

    def _malformed(self, data: str) -> ProviderError:
        return ProviderError(
            f"malformed chunk in the stream from {self._base_url}: {one_line(data, 80)!r}",
            "malformed",
        )

    def _stream_error(self, chunk: dict[str, Any]) -> ProviderError:
        detail = _error_text(chunk) or "no details"
        return ProviderError(
            f"{self._base_url} reported an error in the stream: {self._scrub(detail)}",
            "server",
        )

    # ------------------------------------------------------------------ failures

    def _status_error(self, response: httpx.Response, model: str) -> ProviderError:
        status = response.status_code
        detail = self._scrub(_response_detail(response))
        base = self._base_url
        if status in (401, 403):
            if self._settings.api_key:
                what = "rejected the API key" if status == 401 else "refused access with this key"
                msg = f"{base} {what} (HTTP {status}); check THREADLINE_API_KEY or api_key_env"
            else:
                msg = (
                    f"{base} needs an API key (HTTP {status}): set THREADLINE_API_KEY, or name "
                    "the variable holding it in [provider] api_key_env"
                )
            return ProviderError(msg, "auth", status=status)
        if status == 404:
            if "model" in detail.lower() or not detail:
                msg = f"unknown model {model!r} at {base} (HTTP 404)"
                if detail:
                    msg += f": {detail}"
            else:
                msg = (
                    f"{self._url} not found (HTTP 404): check [provider] base_url "
                    f"(it usually ends in /v1): {detail}"
                )
            return ProviderError(msg, "not_found", status=status)
        if status == 429:
            return ProviderError(
                f"{base} is rate limiting requests (HTTP 429)" + (f": {detail}" if detail else ""),
                "rate_limited",
                status=status,
                retryable=True,
                retry_after=_retry_after(response),
            )
        if status >= 500 or status in _RETRYABLE_STATUS:
            return ProviderError(
                f"server error from {base} (HTTP {status})" + (f": {detail}" if detail else ""),
                "server",
                status=status,
                retryable=True,
                retry_after=_retry_after(response),
            )
        return ProviderError(
            f"{base} refused the request (HTTP {status})" + (f": {detail}" if detail else ""),
            "bad_request",
            status=status,
        )

    def _transport_error(self, exc: Exception, started: bool) -> ProviderError:
        import httpx

        base = self._base_url
        s = self._settings
        detail = one_line(str(exc), ERROR_TEXT_WIDTH)
        name = type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return ProviderError(
                f"timed out connecting to {base} after {s.connect_timeout:g} s (connect_timeout)",
                "timeout",
                retryable=True,
            )
        if isinstance(exc, httpx.ConnectError):
            causes = _causes(exc)
            if any(isinstance(c, ConnectionRefusedError) for c in causes):
                msg = f"connection refused by {base}: is the server running?"
            elif any(isinstance(c, socket.gaierror) for c in causes) or "not known" in str(exc):
                msg = f"cannot resolve the host of {base}: {detail}"
            else:
                msg = f"cannot connect to {base}: {detail or name}"
            return ProviderError(msg, "connection", retryable=True)
        if isinstance(exc, httpx.ReadTimeout):
            return ProviderError(
                f"no data from {base} for {s.read_timeout:g} s (read_timeout)"
                + ("; the reply was cut off" if started else ""),
                "timeout",
            )
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(f"timed out talking to {base}", "timeout")
        if isinstance(exc, httpx.TransportError):
            # Connection reset, or the peer closed the connection mid-response.
            if started:
                return ProviderError(
                    f"the connection to {base} broke off mid-reply (truncated): {detail or name}",
                    "truncated",
                )
            return ProviderError(
                f"the connection to {base} was reset: {detail or name}",
                "connection",
                retryable=True,
            )
        return ProviderError(f"request to {base} failed: {detail}", "connection")

    def _final(self, err: ProviderError, attempts: int) -> ProviderError:
        """The error to report, saying how many tries it took when it was retried."""
        if attempts == 0 or not err.retryable:
            return err
        return ProviderError(
            f"{err.message} (gave up after {attempts + 1} attempts)",
            err.kind,
            status=err.status,
            retryable=err.retryable,
            retry_after=err.retry_after,
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        delay = min(self._backoff_base * (2**attempt), MAX_BACKOFF)
        return delay * random.uniform(0.8, 1.2)

    def _scrub(self, text: str) -> str:
        key = self._settings.api_key
        if key and len(key) >= 4:
            text = text.replace(key, "***")
        if self._url_credentials is not None:
            for secret in self._url_credentials:
                if len(secret) >= 4:
                    text = text.replace(secret, "***")
        return text


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and the chain of causes behind it (httpx wraps the OS error twice)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _rejects_usage_option(response: httpx.Response) -> bool:
    if response.status_code not in (400, 422):
        return False
    body = response.text.lower()
    return "stream_options" in body or "include_usage" in body


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait per `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "error"):
                if isinstance(err.get(key), str):
                    return str(err[key])
        if isinstance(err, str):
            return err
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return ""


def _response_detail(response: httpx.Response) -> str:
    text = response.text
    try:
        detail = _error_text(json.loads(text))
    except ValueError:
        detail = text
    return one_line(detail, ERROR_TEXT_WIDTH)


def _int(usage: dict[str, Any] | None, key: str) -> int | None:
    if not usage:
        return None
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else None


def make_provider(
    settings: ProviderSettings, config_path: Path | str | None = None, **options: Any
) -> OpenAICompatProvider:
    """The provider for these settings (every `[provider] name` speaks the OpenAI API).

    Raises:
        ProviderNotConfigured: no base URL (the model may still come from a session or a flag).
    """
    problem = not_configured_message(settings, config_path, model_required=False)
    if problem is not None:
        raise ProviderNotConfigured(problem)
    return OpenAICompatProvider(settings, **options)
