"""What to say when no request can be made: the one "is a provider configured" check.

Apart from chat/provider.py (which re-exports it) so that the app's first frame, whose composer
says how to set a provider up, does not import the provider's types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from threadline.config import ProviderSettings


def not_configured_message(
    settings: ProviderSettings,
    config_path: Path | str | None,
    *,
    model: str | None = None,
    model_required: bool = True,
) -> str | None:
    """Why no request can be made with these settings, with how to fix it; None when ready.

    The one "is a provider configured" check. `model` is a model chosen elsewhere (a flag, the
    session), which makes the settings' own model optional; with model_required=False only the
    provider's URL must be known (the session being continued will name the model).
    """
    from threadline.config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV

    has_model = bool(model or settings.model)
    if settings.configured and (has_model or not model_required):
        return None
    where = f"[provider] in {config_path}" if config_path else "[provider] in config.toml"
    key_hint = (
        f"an API key, if the server needs one, goes in {API_KEY_ENV} or in the variable "
        "named by [provider] api_key_env"
    )
    if not settings.configured and not has_model:
        return (
            f"no model provider configured: set base_url and model under {where}, or "
            f"{BASE_URL_ENV} and {MODEL_ENV} (for Ollama: http://localhost:11434/v1); {key_hint}"
        )
    if not settings.configured:
        return (
            f"no provider URL configured: set base_url under {where} or {BASE_URL_ENV} "
            f"(for Ollama: http://localhost:11434/v1); {key_hint}"
        )
    return missing_model_message(config_path)


def missing_model_message(config_path: Path | str | None) -> str:
    """What to say when a provider URL is known but no model is."""
    from threadline.config import MODEL_ENV

    where = f"[provider] in {config_path}" if config_path else "[provider] in config.toml"
    return f"no model configured: set model under {where} or {MODEL_ENV}"
