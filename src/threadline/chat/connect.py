"""Setting up a provider: the known servers, checking a base URL, and the connection test.

Shared by `threadline config init` and the app's setup form: both offer PRESETS, check what was
typed with check_base_url (and config.check_env_name for the key's variable), then call
check_connection, which lists the server's models (`GET /models`) to pick from. Nothing here
reads the environment or writes config (config.api_key_from_env and config_write do).

    check = await check_connection("http://localhost:11434/v1", api_key=None)
    if check.ok:
        check.models          # ["llama3.2", "qwen2.5-coder:7b", ...]
    else:
        check.error           # "connection refused by http://localhost:11434/v1: is the ..."
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from threadline.chat.provider import ErrorKind, ProviderError
from threadline.text import redact_url


@dataclass(frozen=True, slots=True)
class Preset:
    """A server people commonly use, with its usual base URL and key variable."""

    name: str  # what `config init --preset` takes
    label: str
    base_url: str
    api_key_env: str | None  # None: no key needed (local servers)
    note: str = ""


PRESETS: tuple[Preset, ...] = (
    Preset("openai", "OpenAI", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    Preset("ollama", "Ollama", "http://localhost:11434/v1", None, "on this machine, no key"),
    Preset("lmstudio", "LM Studio", "http://localhost:1234/v1", None, "its local server"),
    Preset("llamacpp", "llama.cpp server", "http://localhost:8080/v1", None, "llama-server"),
    Preset("vllm", "vLLM", "http://localhost:8000/v1", None, "vllm serve"),
    Preset("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
)


def find_preset(name: str) -> Preset | None:
    """The preset called `name` (case and spaces, dots and dashes ignored), or None."""
    wanted = "".join(c for c in name.casefold() if c.isalnum())
    for preset in PRESETS:
        if wanted in (preset.name, "".join(c for c in preset.label.casefold() if c.isalnum())):
            return preset
    return None


def preset_for_url(base_url: str | None) -> Preset | None:
    """The preset whose base URL this is (to suggest its key variable), or None."""
    if not base_url:
        return None
    wanted = base_url.rstrip("/").casefold()
    return next((p for p in PRESETS if p.base_url.casefold() == wanted), None)


def check_base_url(text: str) -> str:
    """A base URL as typed, tidied (spaces and a trailing slash or /chat/completions removed).

    Raises:
        ValueError: not an http(s) URL with a host, with a one-line reason.
    """
    url = text.strip()
    if not url:
        raise ValueError("the base URL is empty")
    if "://" not in url:
        raise ValueError(
            f"{redact_url(url)!r} is not a URL: give the scheme too, such as http://{url}"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{redact_url(url)!r}: the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{redact_url(url)!r}: the URL has no host")
    if any(c.isspace() for c in url):
        raise ValueError(f"{redact_url(url)!r}: the URL has spaces in it")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"{redact_url(url)!r}: the port is not a number") from None
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/models"):
        if path.endswith(tail):  # the endpoint's URL pasted instead of the base
            path = path[: -len(tail)]
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What the connection test found: the server's models, or why it could not be reached."""

    ok: bool
    models: list[str] = field(default_factory=list)
    error: str | None = None  # one line, fit to show (no key in it)
    kind: ErrorKind | None = None  # "auth", "connection", "not_found", ...


async def list_models(
    base_url: str, api_key: str | None = None, *, timeout: float = 10.0
) -> list[str]:
    """The models the server at `base_url` lists (`GET {base_url}/models`), sorted.

    Raises:
        ProviderError: the server could not be reached or refused, in one line.
    """
    from threadline.chat.openai_compat import OpenAICompatProvider
    from threadline.config import ProviderSettings

    settings = ProviderSettings(
        name="openai-compatible",
        base_url=base_url,
        model=None,
        api_key=api_key,
        connect_timeout=timeout,
        read_timeout=timeout,
        max_retries=0,
    )
    provider = OpenAICompatProvider(settings)
    try:
        return await provider.list_models()
    finally:
        await provider.aclose()


async def check_connection(
    base_url: str, api_key: str | None = None, *, timeout: float = 10.0
) -> ConnectionCheck:
    """The connection test: list the server's models; never raises for a server's failure."""
    try:
        models = await list_models(base_url, api_key, timeout=timeout)
    except ProviderError as exc:
        return ConnectionCheck(False, error=redact_url_in(str(exc), base_url), kind=exc.kind)
    return ConnectionCheck(True, models)


def redact_url_in(message: str, url: str) -> str:
    """`message` with `url` (and the base it was given as) shown without credentials."""
    safe = redact_url(url)
    if safe == url:
        return message
    return message.replace(url.rstrip("/"), safe.rstrip("/"))
