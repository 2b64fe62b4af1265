"""chat/connect.py: presets, checking a typed base URL, and the connection test (GET /models)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fakes.openai_server import FakeOpenAIServer
from threadline.chat.connect import (
    PRESETS,
    check_base_url,
    check_connection,
    find_preset,
    list_models,
    preset_for_url,
)
from threadline.chat.provider import ProviderError


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_presets_cover_the_usual_servers() -> None:
    labels = {p.label for p in PRESETS}
    assert {"OpenAI", "Ollama", "LM Studio", "llama.cpp server", "vLLM", "OpenRouter"} <= labels
    for preset in PRESETS:
        assert check_base_url(preset.base_url) == preset.base_url
        assert find_preset(preset.name) is preset and find_preset(preset.label) is preset
        assert preset_for_url(preset.base_url + "/") is preset
    assert find_preset("LM studio").name == "lmstudio"  # type: ignore[union-attr]
    assert find_preset("llama.cpp").name == "llamacpp"  # type: ignore[union-attr]
    assert find_preset("nothing") is None
    keyed = {p.name: p.api_key_env for p in PRESETS}
    assert keyed["openai"] == "OPENAI_API_KEY" and keyed["openrouter"] == "OPENROUTER_API_KEY"
    assert keyed["ollama"] is None


@pytest.mark.parametrize(
    ("typed", "tidied"),
    [
        (" http://localhost:11434/v1/ ", "http://localhost:11434/v1"),
        ("HTTPS://api.openai.com/v1/chat/completions", "https://api.openai.com/v1"),
        ("http://127.0.0.1:8080/v1/models", "http://127.0.0.1:8080/v1"),
        (
            "https://gw.example/openai/v1?api-version=2",
            "https://gw.example/openai/v1?api-version=2",
        ),
    ],
)
def test_a_base_url_is_tidied(typed: str, tidied: str) -> None:
    assert check_base_url(typed) == tidied


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "empty"),
        ("localhost:11434/v1", "give the scheme too, such as http://localhost:11434/v1"),
        ("ftp://example.com/v1", "must start with http:// or https://"),
        ("http:///v1", "no host"),
        ("http://local host/v1", "spaces"),
        ("http://localhost:port/v1", "port is not a number"),
    ],
)
def test_a_bad_base_url_says_why(typed: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_base_url(typed)


def test_credentials_in_a_bad_url_are_not_repeated() -> None:
    with pytest.raises(ValueError) as info:
        check_base_url("ftp://me:hunter2@example.com/v1")
    assert "hunter2" not in str(info.value) and "me:***@example.com" in str(info.value)


async def test_the_connection_test_lists_the_models_sorted(server: FakeOpenAIServer) -> None:
    server.models = ["qwen2.5-coder:7b", "Llama3.2", "gemma3", "llama3.2"]
    check = await check_connection(server.base_url)
    assert check.ok and check.error is None
    assert check.models == ["gemma3", "Llama3.2", "llama3.2", "qwen2.5-coder:7b"]


async def test_a_key_is_sent_and_a_wrong_one_reported_without_echoing_it(
    server: FakeOpenAIServer,
) -> None:
    server.api_key = "sk-right"
    assert await list_models(server.base_url, "sk-right") == ["fake"]
    for key in (None, "sk-wrong-key"):
        check = await check_connection(server.base_url, key)
        assert not check.ok and check.kind == "auth" and check.models == []
        assert check.error is not None and "HTTP 401" in check.error
        assert "sk-wrong-key" not in check.error and "\n" not in check.error


async def test_a_base_url_without_v1_is_explained(server: FakeOpenAIServer) -> None:
    check = await check_connection(server.base_url.removesuffix("/v1"))
    assert not check.ok and check.kind == "not_found"
    assert check.error is not None and "usually ends in /v1" in check.error


async def test_nothing_listening_and_credentials_in_the_url(server: FakeOpenAIServer) -> None:
    port = closed_port()
    check = await check_connection(f"http://127.0.0.1:{port}/v1")
    assert not check.ok and check.kind == "connection"
    assert (
        check.error == f"connection refused by http://127.0.0.1:{port}/v1: is the server running?"
    )
    check = await check_connection(f"http://me:hunter2@127.0.0.1:{port}/v1")
    assert check.error is not None and "hunter2" not in check.error
    # The provider sends URL credentials as a header and never shows them (issue 13).
    assert "me:" not in check.error and f"127.0.0.1:{port}" in check.error
    with pytest.raises(ProviderError):
        await list_models(f"http://127.0.0.1:{port}/v1")
