"""`threadline config init|show`: set up a provider at a prompt; show the settings in effect.

`init` asks for the server (a preset or a base URL), the name of the environment variable that
holds the API key (never the key), tests the connection by listing the server's models, offers
them to pick from, and writes [provider] into config.toml (0600), keeping everything else the
file holds. Every answer can be given as a flag instead, which is how scripts run it. The parts
the app's setup form shares are in chat/connect.py (presets, the connection test) and
config_write.py (the write).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from threadline.cli.common import CommandFailed, add_subcommands

if TYPE_CHECKING:
    from pathlib import Path

    from threadline.chat.connect import ConnectionCheck, Preset
    from threadline.config import Settings

# At most this many of the server's models are listed at once (OpenRouter has hundreds).
MODELS_SHOWN = 30
PROVIDER_KEYS = ("base_url", "model", "api_key_env")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "config",
        parents=[common],
        help="set up a provider (init) and show the settings in effect (show)",
        description="Set up the model provider at a prompt, or show the settings in effect and "
        "where each comes from.",
    )
    actions = add_subcommands(parser, "config_action")

    p = actions.add_parser(
        "init",
        parents=[common],
        help="set up the model provider: server, API key variable, model",
        description="Choose a server (a preset or any OpenAI-compatible base URL), the name "
        "of the environment variable that holds its API key (the key itself is never written), "
        "test the connection, pick one of the server's models, and write [provider] into "
        "config.toml (mode 0600; the rest of the file is kept). Asks before replacing a "
        "[provider] the file already sets. Without a terminal, give the answers as flags.",
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="openai, ollama, lmstudio, llamacpp, vllm or openrouter (their usual URL and key)",
    )
    p.add_argument("--base-url", metavar="URL", help="the server's base URL (ends in /v1)")
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="the environment variable that holds the API key (its name, not the key)",
    )
    key.add_argument("--no-key", action="store_true", help="the server needs no key")
    p.add_argument("--model", metavar="MODEL", help="the model to use (any name the server knows)")
    p.add_argument(
        "--no-test", action="store_true", help="do not contact the server (no model list)"
    )
    p.add_argument(
        "-y", "--yes", action="store_true", help="replace [provider] settings without asking"
    )
    p.set_defaults(handler=cmd_init)

    p = actions.add_parser(
        "show",
        parents=[common],
        help="the settings in effect and where each comes from",
        description="Print every setting in effect as TOML, each with where it comes from: "
        "the default, the config file, or the environment (THREADLINE_BASE_URL, "
        "THREADLINE_MODEL, THREADLINE_API_KEY). API keys are never printed, only whether one "
        "is set; credentials in URLs are shown as ***.",
    )
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.set_defaults(handler=cmd_show)


# ---------------------------------------------------------------------------- init


class _Prompter:
    """The questions of `config init`, asked on the terminal; ctrl-d cancels."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def ask(self, question: str, default: str | None = None) -> str:
        from threadline.cli.output import ask

        try:
            return ask(question, default)
        except EOFError:
            raise CommandFailed("cancelled: config.toml was not changed") from None

    def confirm(self, question: str) -> bool:
        from threadline.cli.output import confirm

        return confirm(question)

    def say(self, text: str = "") -> None:
        print(text, file=sys.stderr)


def cmd_init(args: argparse.Namespace) -> int:
    from threadline import paths
    from threadline.cli.output import stdin_is_tty
    from threadline.config_write import read_config_data
    from threadline.errors import UsageError

    path = paths.config_path(getattr(args, "config", None))
    current = _provider_table(read_config_data(getattr(args, "config", None)), path)
    ui = _Prompter(stdin_is_tty())
    if not ui.interactive and args.base_url is None and args.preset is None:
        raise UsageError(
            "stdin is not a terminal, so nobody can answer: give --preset or --base-url "
            "(and --model), or run `threadline config init` in a terminal"
        )
    _refuse_to_clobber(current, path, args.yes, ui)

    base_url, preset = _choose_server(args, current, ui)
    key_env = _choose_key_env(args, base_url, preset, current, ui)
    check = None if args.no_test else _test_connection(base_url, key_env, ui)
    if check is not None and not check.ok:
        assert check.error is not None
        if not ui.interactive:
            raise CommandFailed(
                f"{check.error} (nothing was written; --no-test saves without testing)"
            )
        if not ui.confirm("Save these settings anyway?"):
            raise CommandFailed("cancelled: config.toml was not changed")
    models = check.models if check is not None else []
    model = _choose_model(args, models, current, ui)

    from threadline.config_write import update_config

    written = update_config(
        {"provider": {"base_url": base_url, "model": model, "api_key_env": key_env}},
        getattr(args, "config", None),
    )
    _report_written(written, base_url, model, key_env)
    return 0


def _provider_table(data: dict[str, Any], path: Path) -> dict[str, Any]:
    table = data.get("provider", {})
    if not isinstance(table, dict):
        raise CommandFailed(f"{path}: [provider] must be a table; fix it first")
    return table


def _refuse_to_clobber(current: dict[str, Any], path: Path, yes: bool, ui: _Prompter) -> None:
    """Ask (or, without a terminal, require --yes) before replacing [provider] settings."""
    from threadline import paths
    from threadline.text import one_line, redact_url

    existing = [k for k in PROVIDER_KEYS if current.get(k) is not None]
    if not existing or yes:
        return
    shown = ", ".join(
        f"{k} = {one_line(redact_url(str(current[k])) if k == 'base_url' else str(current[k]))}"
        for k in existing
    )
    where = paths.home_short(str(path))
    if not ui.interactive:
        raise CommandFailed(
            f"{where} already sets [provider] {shown}; pass --yes to replace them "
            "(the rest of the file is kept either way)"
        )
    ui.say(f"{where} already sets [provider] {shown}.")
    if not ui.confirm("Replace them? The rest of the file stays as it is."):
        raise CommandFailed("cancelled: config.toml was not changed")


def _choose_server(
    args: argparse.Namespace, current: dict[str, Any], ui: _Prompter
) -> tuple[str, Preset | None]:
    from threadline.chat.connect import PRESETS, check_base_url, find_preset, preset_for_url
    from threadline.errors import UsageError

    preset = None
    if args.preset is not None:
        preset = find_preset(args.preset)
        if preset is None:
            names = ", ".join(p.name for p in PRESETS)
            raise UsageError(f"unknown preset {args.preset!r} (presets: {names})")
    given = args.base_url or (preset.base_url if preset else None)
    if given is not None:
        try:
            url = check_base_url(given)
        except ValueError as exc:
            raise UsageError(f"--base-url: {exc}") from None
        return url, preset or preset_for_url(url)
    ui.say("Which server? An OpenAI-compatible chat completions API:")
    for number, p in enumerate(PRESETS, start=1):
        note = f"  ({p.note})" if p.note else ""
        ui.say(f"  {number}) {p.label:<17} {p.base_url}{note}")
    ui.say("  or type its base URL")
    default = str(current["base_url"]) if current.get("base_url") else None
    while True:
        answer = ui.ask("Server", default)
        chosen = _pick(answer, PRESETS) or find_preset(answer)
        text = chosen.base_url if chosen else answer
        try:
            url = check_base_url(text)
        except ValueError as exc:
            ui.say(f"  {exc}")
            continue
        return url, chosen or preset_for_url(url)


def _pick(answer: str, options: tuple[Preset, ...]) -> Preset | None:
    if answer.isdigit() and 1 <= int(answer) <= len(options):
        return options[int(answer) - 1]
    return None


def _choose_key_env(
    args: argparse.Namespace,
    base_url: str,
    preset: Preset | None,
    current: dict[str, Any],
    ui: _Prompter,
) -> str | None:
    """The NAME of the variable holding the key (None: no key), never the key itself."""
    from threadline.config import api_key_from_env, check_env_name
    from threadline.errors import UsageError

    if args.no_key:
        return None
    name: str | None
    if args.api_key_env is not None:
        try:
            name = check_env_name(args.api_key_env.strip())
        except ValueError as exc:
            raise UsageError(f"--api-key-env {exc}") from None
    elif not ui.interactive:
        name = preset.api_key_env if preset else None
    else:
        suggested = preset.api_key_env if preset else None
        if current.get("base_url") == base_url and current.get("api_key_env"):
            suggested = str(current["api_key_env"])
        ui.say(
            "The API key is read from an environment variable when threadline runs; only the "
            "variable's name is written to config.toml."
        )
        while True:
            answer = ui.ask("Variable holding the API key (- for none)", suggested or "-")
            if answer in ("-", ""):
                return None
            try:
                name = check_env_name(answer)
                break
            except ValueError as exc:
                ui.say(f"  That {exc}.")
    if name and api_key_from_env(name) is None:
        ui.say(
            f"note: {name} is not set in this environment; set it (export {name}=...) where "
            "you run threadline."
        )
    return name


def _test_connection(base_url: str, key_env: str | None, ui: _Prompter) -> ConnectionCheck:
    import asyncio

    from threadline.chat.connect import check_connection
    from threadline.cli.output import plural
    from threadline.config import ProviderConfig, ProviderSettings
    from threadline.text import redact_url

    # The key threadline itself would send (THREADLINE_API_KEY first, then the named variable).
    key = ProviderSettings.from_config(ProviderConfig(api_key_env=key_env)).api_key
    ui.say(f"Testing {redact_url(base_url)} (listing its models)…")
    check = asyncio.run(check_connection(base_url, key))
    if check.ok:
        ui.say(f"  connected: the server lists {plural(len(check.models), 'model')}")
    else:
        ui.say(f"  failed: {check.error}")
    return check


def _choose_model(
    args: argparse.Namespace, models: list[str], current: dict[str, Any], ui: _Prompter
) -> str:
    from threadline.errors import UsageError
    from threadline.text import one_line

    if args.model is not None:
        model = args.model.strip()
        if not model:
            raise UsageError("--model is empty")
        if models and model not in models:
            ui.say(f"note: {one_line(model)!r} is not in the server's list; saved as given.")
        return model
    if not ui.interactive:
        listed = ", ".join(one_line(m) for m in models[:10])
        more = f" (the server lists {listed}{', …' if len(models) > 10 else ''})" if models else ""
        raise UsageError(f"give --model{more}")
    default = str(current["model"]) if current.get("model") else None
    if models:
        default = default if default in models else (models[0] if len(models) == 1 else default)
        _list_models(models, ui)
    shown = models
    while True:
        answer = ui.ask("Model (a number, a name, or part of one)" if models else "Model", default)
        if not answer:
            ui.say("  A model is needed: the name the server knows it by.")
            continue
        if answer.isdigit() and shown and 1 <= int(answer) <= min(len(shown), MODELS_SHOWN):
            return shown[int(answer) - 1]
        if not models or answer in models:
            return answer
        matches = [m for m in models if answer.casefold() in m.casefold()]
        if len(matches) == 1:
            ui.say(f"  {one_line(matches[0])}")
            return matches[0]
        if matches:
            shown = matches
            _list_models(matches, ui)
            continue
        if ui.confirm(f"{one_line(answer)!r} is not in the server's list. Use it anyway?"):
            return answer


def _list_models(models: list[str], ui: _Prompter) -> None:
    from threadline.text import one_line

    for number, name in enumerate(models[:MODELS_SHOWN], start=1):
        ui.say(f"  {number:>2}) {one_line(name)}")
    if len(models) > MODELS_SHOWN:
        ui.say(f"  … and {len(models) - MODELS_SHOWN} more: type part of a name to narrow them")


def _report_written(path: Path, base_url: str, model: str, key_env: str | None) -> None:
    from threadline import paths
    from threadline.config import ProviderConfig, provider_env_sources
    from threadline.text import one_line, redact_url

    print(f"wrote {paths.home_short(str(path))} (mode 0600):")
    print(f"  [provider] base_url = {redact_url(base_url)}")
    print(f"             model = {one_line(model)}")
    print(f"             api_key_env = {key_env or '(none: no key is sent)'}")
    overrides = provider_env_sources(ProviderConfig(api_key_env=key_env))
    for key in ("base_url", "model"):
        if key in overrides:
            print(f"note: {overrides[key]} is set in this environment and overrides {key}")
    print('Try it: threadline chat "Hello"')


# ---------------------------------------------------------------------------- show


def cmd_show(args: argparse.Namespace) -> int:
    from threadline.cli.common import settings_of
    from threadline.config_write import read_config_data

    settings = settings_of(args)  # a bad file is refused here, naming the key
    raw = read_config_data(getattr(args, "config", None)) if settings.source else {}
    rows = effective_settings(settings, raw)
    files = _files(args, settings)
    if args.json:
        from threadline.cli.output import print_json

        print_json({**files, "settings": rows})
        return 0
    _print_toml(files, rows)
    return 0


def effective_settings(settings: Settings, raw: dict[str, Any]) -> dict[str, Any]:
    """{section: {key: {"value": ..., "source": "default" | "file" | "environment",
    "variable": NAME (environment only)}}}, plus provider.api_key (whether one is set and
    where from, never its value); credentials in URLs redacted."""
    from threadline.config import provider_env_sources
    from threadline.text import redact_url

    env = provider_env_sources(settings.provider)
    effective = settings.effective_provider()
    out: dict[str, Any] = {}
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        in_file = raw.get(section_name, {})
        rows: dict[str, Any] = {}
        for name, info in type(section).model_fields.items():
            key = info.alias or name
            value = getattr(section, name)
            source = "file" if isinstance(in_file, dict) and key in in_file else "default"
            row: dict[str, Any] = {"value": value, "source": source}
            if section_name == "provider" and name in env:
                row = {"value": getattr(effective, name), "source": "environment"}
                row["variable"] = env[name]
            if section_name == "provider" and name == "base_url" and row["value"]:
                row["value"] = redact_url(str(row["value"]))
            rows[key] = row
        if section_name == "provider":
            variable = env.get("api_key")
            rows["api_key"] = {
                "value": "set" if variable else None,
                "source": "environment" if variable else "default",
                **({"variable": variable} if variable else {}),
            }
        out[section_name] = rows
    return out


def _files(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from threadline import paths

    config = paths.config_path(getattr(args, "config", None))
    if getattr(args, "config", None):
        config_from = "--config"
    elif config != paths.config_dir() / "config.toml":
        config_from = f"environment ({paths.CONFIG_ENV})"
    else:
        config_from = "default"
    db = paths.db_path(getattr(args, "db", None))
    if getattr(args, "db", None):
        db_from = "--db"
    elif db != paths.data_dir() / "threadline.db":
        db_from = f"environment ({paths.DB_ENV})"
    else:
        db_from = "default"
    return {
        "config_file": str(config),
        "config_file_source": config_from,
        "config_file_exists": settings.source is not None,
        "database": str(db),
        "database_source": db_from,
    }


def _print_toml(files: dict[str, Any], rows: dict[str, Any]) -> None:
    """The settings as TOML (paste-able into config.toml), each line saying where it came from."""
    import json

    from threadline import paths
    from threadline.text import display_width, one_line

    exists = "" if files["config_file_exists"] else ", no such file: defaults"
    print(
        f"# config file: {one_line(paths.home_short(files['config_file']))} "
        f"({files['config_file_source']}{exists})"
    )
    print(
        f"# database:    {one_line(paths.home_short(files['database']))} "
        f"({files['database_source']})"
    )
    for section, keys in rows.items():
        lines = []
        for key, row in keys.items():
            where = row["source"] + (f": {row['variable']}" if "variable" in row else "")
            value = row["value"]
            if key == "api_key":
                text = f"# api key: {'set' if value else 'none'}"
                where = f"from {row['variable']}" if value else "no key is sent"
            elif value is None:
                text = f"# {key} = (not set)"
            elif isinstance(value, bool):
                text = f"{key} = {str(value).lower()}"
            elif isinstance(value, str):
                text = f"{key} = {one_line(json.dumps(value, ensure_ascii=False))}"
            else:
                text = f"{key} = {value!r}"
            lines.append((text, where))
        width = max(display_width(t) for t, _ in lines) + 2
        print(f"\n[{section}]")
        for text, where in lines:
            print(f"{text}{' ' * (width - display_width(text))}# {where}")
