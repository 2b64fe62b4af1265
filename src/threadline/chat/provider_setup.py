"""The app's provider setup, without Textual: checking the form's answers, the key the test
sends, narrowing the server's model list, and writing [provider] into config.toml.

The form (ui/screens/setup.py) only draws and collects; what it means lives here so it is
tested in milliseconds, and `threadline config init` and the form agree (both use
chat/connect.py for presets and the connection test, config_write for the write).

    answers = check_answers(url_text, key_env_text, model_text)   # SetupProblem: field + why
    path = save_provider(answers, config_file)                      # 0600, rest of file kept
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# At most this many of the server's models are offered at once (OpenRouter lists hundreds);
# typing part of a name narrows them.
MODELS_OFFERED = 200


@dataclass(frozen=True, slots=True)
class ProviderAnswers:
    """What the setup form chose, checked: written to [provider] as it is."""

    base_url: str
    api_key_env: str | None  # the NAME of the variable holding the key; None: no key
    model: str


class SetupProblem(ValueError):
    """An answer that cannot be saved: `field` ("base_url", "api_key_env", "model") and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_base_url_answer(text: str) -> str:
    """The base URL tidied (see connect.check_base_url); SetupProblem("base_url") otherwise."""
    from threadline.chat.connect import check_base_url

    try:
        return check_base_url(text)
    except ValueError as exc:
        raise SetupProblem("base_url", str(exc)) from None


def check_key_env_answer(text: str) -> str | None:
    """The key variable's name (None when left empty: no key); SetupProblem otherwise."""
    from threadline.config import check_env_name

    name = text.strip()
    if not name or name == "-":
        return None
    try:
        return check_env_name(name)
    except ValueError as exc:
        raise SetupProblem("api_key_env", f"The API key variable {exc}") from None


def check_answers(base_url: str, api_key_env: str, model: str) -> ProviderAnswers:
    """The form's three answers checked, first problem first.

    Raises:
        SetupProblem: naming the field to fix, with a one-line reason.
    """
    url = check_base_url_answer(base_url)
    key_env = check_key_env_answer(api_key_env)
    name = model.strip()
    if not name:
        raise SetupProblem(
            "model", "Choose a model: one of the server's (test the connection) or its name"
        )
    if any(c in name for c in "\n\r\t"):
        raise SetupProblem("model", "The model name has a line break or tab in it")
    return ProviderAnswers(url, key_env, name)


def key_for(api_key_env: str | None) -> str | None:
    """The key threadline itself would send with these settings: THREADLINE_API_KEY first,
    then the variable named (as config.ProviderSettings.from_config reads them)."""
    from threadline.config import ProviderConfig, ProviderSettings

    return ProviderSettings.from_config(ProviderConfig(api_key_env=api_key_env)).api_key


def key_note(api_key_env: str | None) -> str:
    """One line about the key, for under the field: is the variable set here?"""
    from threadline.config import API_KEY_ENV

    if os.environ.get(API_KEY_ENV):
        return f"{API_KEY_ENV} is set here and is sent instead"
    if api_key_env is None:
        return "no key is sent (local servers need none)"
    if os.environ.get(api_key_env):
        return f"{api_key_env} is set here; only its name is saved"
    return f"{api_key_env} is not set here: export {api_key_env}=… where you run threadline"


def matching_models(models: list[str], text: str, limit: int = MODELS_OFFERED) -> list[str]:
    """The models whose name contains `text` (case ignored; all when empty), those starting
    with it first, at most `limit`."""
    wanted = text.strip().casefold()
    if not wanted:
        return models[:limit]
    starts = [m for m in models if m.casefold().startswith(wanted)]
    inside = [m for m in models if wanted in m.casefold() and not m.casefold().startswith(wanted)]
    return (starts + inside)[:limit]


def config_file(source: Path | None) -> Path:
    """The file the app's settings came from, else where config.toml would be read from."""
    from threadline import paths

    return source if source is not None else paths.config_path()


def save_provider(answers: ProviderAnswers, path: Path) -> Path:
    """Write [provider] base_url, model and api_key_env (removed when None) into `path`,
    keeping every other key and comment; mode 0600. Returns the file written.

    Raises:
        ConfigError: the file cannot be read, parsed or written (one line).
    """
    from threadline.config_write import update_config

    changes = {
        "provider": {
            "base_url": answers.base_url,
            "model": answers.model,
            "api_key_env": answers.api_key_env,
        }
    }
    return update_config(changes, path)
