"""The OpenAI-compatible provider against a real (fake) server: streaming, retries, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAIServer
from threadline.chat.openai_compat import OpenAICompatProvider, make_provider
from threadline.chat.provider import (
    ChatMessage,
    ProviderError,
    ProviderNotConfigured,
    StreamEnd,
    TextDelta,
    not_configured_message,
)
from threadline.config import ProviderSettings, Settings

HELLO = [ChatMessage("user", "hello there")]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


class Sleeps:
    """Records the waits between retries instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def settings(base_url: str | None, **kw: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "name": "openai-compatible",
        "base_url": base_url,
        "model": "fake",
        "api_key": None,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "max_retries": 3,
    }
    values.update(kw)
    return ProviderSettings(**values)


async def collect(provider: OpenAICompatProvider, model: str, messages=HELLO) -> list[Any]:
    events = []
    try:
        async for event in provider.stream(messages, model):
            events.append(event)
    finally:
        await provider.aclose()
    return events


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def failure(provider: OpenAICompatProvider, model: str) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(provider, model)
    return info.value


async def test_streams_deltas_then_usage_model_and_stop_reason(server: FakeOpenAIServer) -> None:
    events = await collect(OpenAICompatProvider(settings(server.base_url)), "gpt-fake")
    assert text_of(events) == "You said: hello there"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 4
    assert events[-1] == StreamEnd(
        model="gpt-fake", stop_reason="stop", input_tokens=6, output_tokens=4
    )
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    body = server.requests[0]
    assert body["model"] == "gpt-fake"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hello there"}]


async def test_finish_reason_is_passed_on(server: FakeOpenAIServer) -> None:
    events = await collect(OpenAICompatProvider(settings(server.base_url)), "x?finish=length")
    assert events[-1].stop_reason == "length"


async def test_sends_the_key_as_a_bearer_token_only_when_set(server: FakeOpenAIServer) -> None:
    await collect(OpenAICompatProvider(settings(server.base_url, api_key="sk-secret")), "m")
    await collect(OpenAICompatProvider(settings(server.base_url)), "m")
    assert server.headers[0]["authorization"] == "Bearer sk-secret"
    assert "authorization" not in server.headers[1]


async def test_server_ignoring_usage_gives_unknown_tokens(server: FakeOpenAIServer) -> None:
    events = await collect(OpenAICompatProvider(settings(server.base_url)), "ignore-usage")
    assert text_of(events) == "You said: hello there"
    assert events[-1].input_tokens is None and events[-1].output_tokens is None


async def test_rejected_stream_options_are_dropped_once_and_remembered(
    server: FakeOpenAIServer,
) -> None:
    provider = OpenAICompatProvider(settings(server.base_url))
    first = [e async for e in provider.stream(HELLO, "no-stream-options")]
    second = [e async for e in provider.stream(HELLO, "no-stream-options")]
    await provider.aclose()
    assert text_of(first) == text_of(second) == "You said: hello there"
    assert ["stream_options" in body for body in server.requests] == [True, False, False]


# ---------------------------------------------------------------------- retries


async def test_429_is_retried_honouring_retry_after(server: FakeOpenAIServer) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url), sleep=sleeps)
    events = await collect(provider, "ratelimit?retry_after=3")
    assert text_of(events) == "You said: hello there"
    assert sleeps.waits == [3.0]
    assert len(server.requests) == 2


async def test_500_is_retried_with_growing_backoff(server: FakeOpenAIServer) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url), sleep=sleeps, backoff_base=1.0)
    events = await collect(provider, "flaky?fail=3&status=503")
    assert text_of(events) == "You said: hello there"
    assert len(server.requests) == 4
    assert len(sleeps.waits) == 3
    for attempt, wait in enumerate(sleeps.waits):
        assert 0.8 * 2**attempt <= wait <= 1.2 * 2**attempt


async def test_429_after_retries_says_so(server: FakeOpenAIServer) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url, max_retries=2), sleep=sleeps)
    err = await failure(provider, "ratelimit?fail=99")
    assert err.kind == "rate_limited" and err.status == 429
    assert "rate limiting" in str(err) and "HTTP 429" in str(err)
    assert "gave up after 3 attempts" in str(err)
    assert len(server.requests) == 3


async def test_long_retry_after_is_reported_not_waited_for(server: FakeOpenAIServer) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url), sleep=sleeps)
    err = await failure(provider, "ratelimit?fail=99&retry_after=3600")
    assert sleeps.waits == []
    assert "retry after 3600 s" in str(err)


async def test_5xx_after_retries_says_so(server: FakeOpenAIServer) -> None:
    provider = OpenAICompatProvider(settings(server.base_url, max_retries=1), sleep=Sleeps())
    err = await failure(provider, "servererror?status=502")
    assert err.kind == "server"
    assert str(err).startswith(f"server error from {server.base_url} (HTTP 502)")
    assert "gave up after 2 attempts" in str(err)


async def test_connection_broken_before_the_first_token_is_retried(
    server: FakeOpenAIServer,
) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url, max_retries=2), sleep=sleeps)
    err = await failure(provider, "disconnect?after=0")
    assert len(server.requests) == 3
    assert err.kind == "connection"
    assert "was reset" in str(err)


async def test_nothing_is_retried_after_the_first_token(server: FakeOpenAIServer) -> None:
    provider = OpenAICompatProvider(settings(server.base_url), sleep=Sleeps())
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(HELLO, "disconnect?after=2&tokens=10"):
            seen.append(event.text)
    await provider.aclose()
    assert seen == ["t0 ", "t1 "]
    assert len(server.requests) == 1
    assert info.value.kind == "truncated"
    assert "broke off mid-reply" in str(info.value)


# ---------------------------------------------------------------------- errors


async def test_connection_refused_names_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    sleeps = Sleeps()
    err = await failure(OpenAICompatProvider(settings(url, max_retries=2), sleep=sleeps), "m")
    assert err.kind == "connection"
    assert str(err).startswith(f"connection refused by {url}: is the server running?")
    assert len(sleeps.waits) == 2


async def test_401_says_the_key_was_rejected_and_never_prints_it(server: FakeOpenAIServer) -> None:
    server.api_key = "sk-right"
    key = "sk-wrong-0123456789"
    err = await failure(OpenAICompatProvider(settings(server.base_url, api_key=key)), "m")
    assert err.kind == "auth" and err.status == 401
    assert "rejected the API key" in str(err)
    assert key not in str(err) and "0123456789" not in str(err)


async def test_401_without_a_key_says_how_to_set_one(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "unauthorized")
    assert "needs an API key" in str(err) and "THREADLINE_API_KEY" in str(err)


async def test_403_is_an_auth_error(server: FakeOpenAIServer) -> None:
    key = "sk-abcdef"
    err = await failure(OpenAICompatProvider(settings(server.base_url, api_key=key)), "forbidden")
    assert err.kind == "auth" and err.status == 403
    assert key not in str(err)


async def test_404_names_the_unknown_model(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "missing")
    assert err.kind == "not_found"
    assert str(err).startswith(f"unknown model 'missing' at {server.base_url} (HTTP 404)")


async def test_404_of_the_endpoint_points_at_base_url(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "notfound-plain")
    assert "check [provider] base_url" in str(err)


async def test_malformed_chunk(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "malformed")
    assert err.kind == "malformed"
    assert "malformed chunk" in str(err) and "{this is not json" in str(err)


async def test_stream_ending_without_done_or_finish_reason_is_truncated(
    server: FakeOpenAIServer,
) -> None:
    provider = OpenAICompatProvider(settings(server.base_url), sleep=Sleeps())
    err = await failure(provider, "truncate?after=2")
    assert err.kind == "truncated"
    assert "without [DONE] or a finish reason (truncated)" in str(err)


async def test_error_chunk_in_the_stream(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "streamerror")
    assert "reported an error in the stream: the model crashed" in str(err)


async def test_json_instead_of_an_event_stream(server: FakeOpenAIServer) -> None:
    err = await failure(OpenAICompatProvider(settings(server.base_url)), "plain")
    assert err.kind == "malformed" and "did not answer with an event stream" in str(err)


async def test_read_timeout_before_the_first_token_is_not_retried(
    server: FakeOpenAIServer,
) -> None:
    sleeps = Sleeps()
    provider = OpenAICompatProvider(settings(server.base_url, read_timeout=0.2), sleep=sleeps)
    err = await failure(provider, "x?first_delay=1.5")
    assert err.kind == "timeout"
    assert "no data from" in str(err) and "read_timeout" in str(err)
    assert sleeps.waits == []


async def test_server_text_in_errors_is_one_safe_line(server: FakeOpenAIServer) -> None:
    # The fake echoes the model name in its 404 message, escapes and all.
    err = await failure(
        OpenAICompatProvider(settings(server.base_url)), "missing?\x1b]0;pwned\x07\nx"
    )
    assert "The model" in str(err)
    assert not any(c in str(err) for c in "\x1b\x07\n")


# ---------------------------------------------------------------------- configuration


def test_not_configured_says_how_to_configure(tmp_path: Any) -> None:
    ps = Settings().effective_provider()
    message = not_configured_message(ps, tmp_path / "config.toml")
    assert message is not None
    for needle in (
        "no model provider configured",
        str(tmp_path / "config.toml"),
        "base_url",
        "model",
        "THREADLINE_BASE_URL",
        "THREADLINE_MODEL",
        "THREADLINE_API_KEY",
        "api_key_env",
    ):
        assert needle in message
    with pytest.raises(ProviderNotConfigured) as info:
        make_provider(ps, tmp_path / "config.toml")
    assert str(info.value) == message


def test_missing_model_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_BASE_URL", "http://localhost:11434/v1")
    ps = Settings().effective_provider()
    assert "no model configured" in (not_configured_message(ps, None) or "")
    assert not_configured_message(ps, None, model="llama3") is None
    assert isinstance(make_provider(ps), OpenAICompatProvider)


def test_key_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-named")
    cfg = Settings.model_validate(
        {"provider": {"base_url": "http://h/v1", "model": "m", "api_key_env": "MY_KEY"}}
    )
    ps = cfg.effective_provider()
    assert ps.api_key == "sk-named"
    assert "sk-named" not in repr(ps)
