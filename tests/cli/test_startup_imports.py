"""Start-up hygiene: the quick commands load only what they use (their start-up is a CLI's).

Each case runs threadline in a fresh interpreter and lists the modules it loaded, so a
top-level import that drags in the UI, the HTTP stack or the import/export models fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.store import Store

_RUN = r"""
import io, json, sys
from contextlib import redirect_stdout
from threadline.cli import main
with redirect_stdout(io.StringIO()):
    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:
        status = exc.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""

# Never needed to list or search history.
HEAVY = (
    "textual",
    "rich",
    "httpx",
    "httpx_sse",
    "h11",
    "anyio",
    "markdown_it",
    "threadline.ui",
    "threadline.chat",
    "threadline.config",  # read only when --config is given
    "threadline.store.transfer",  # the export/import format models
    "pydantic",  # the store's records are plain dataclasses, the settings plain classes
    "pydantic_core",
    "importlib.metadata",  # pydantic's plugin scan
)

from threadline.cli import COMMANDS, build_parser  # noqa: E402


def _command_modules(modules: set[str]) -> set[str]:
    """The subcommand modules loaded (threadline.cli.<module> for each COMMANDS entry)."""
    return {m for _, m, _ in COMMANDS if f"threadline.cli.{m}" in modules}


def _modules(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, timeout=60
    )
    data = json.loads(done.stdout.splitlines()[-1])
    assert data["status"] == 0, done.stderr
    return set(data["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def filled(with_db, db_path: Path) -> Path:
    async def fill(store: Store) -> None:
        s = await store.create_session("/work/project", title="start-up")
        await store.add_message(s.id, "user", "hello start-up")

    with_db(fill)
    return db_path


@pytest.mark.parametrize(
    "argv",
    [
        ("sessions", "list", "--all"),
        ("sessions", "list", "--all", "--json"),
        ("search", "hello"),
        ("search", "hello", "--json"),
    ],
)
def test_quick_commands_do_not_load_heavy_modules(filled: Path, argv: tuple[str, ...]) -> None:
    modules = _modules(*argv, "--db", str(filled))
    assert "threadline.store" in modules  # it did run against the store
    assert _loaded(modules, HEAVY) == []


def test_reading_the_config_loads_no_pydantic(filled: Path, tmp_path: Path) -> None:
    """Every command and the app read the settings first: that must stay cheap."""
    config = tmp_path / "config.toml"
    config.write_text("[session]\nretention_days = 7\n[ui]\ntheme = 'nord'\n")
    modules = _modules("--config", str(config), "--db", str(filled), "sessions", "list", "--all")
    assert "threadline.config" in modules
    assert _loaded(modules, ("pydantic", "pydantic_core", "importlib.metadata", "textual")) == []


@pytest.mark.parametrize(
    ("argv", "command_module"),
    [
        (("sessions", "list", "--all"), "sessions"),
        (("search", "hello"), "search"),
        (("db", "path"), "db"),
    ],
)
def test_a_command_loads_only_its_own_module(
    filled: Path, argv: tuple[str, ...], command_module: str
) -> None:
    modules = _modules("--db", str(filled), *argv)
    assert _command_modules(modules) == {command_module}


@pytest.mark.parametrize("argv", [("--help",), ("--version",)])
def test_help_and_version_load_no_command_nor_the_store(argv: tuple[str, ...]) -> None:
    modules = _modules(*argv)
    assert _command_modules(modules) == set()
    assert _loaded(modules, ("asyncio", "pydantic", "sqlite3", "aiosqlite", *HEAVY)) == []


def test_help_lists_every_command_with_its_own_help() -> None:
    """The stand-ins --help shows say what each module registers (the table cannot drift)."""
    full = build_parser()  # every module registered
    (action,) = [a for a in full._actions if a.dest == "command"]
    registered = {c.dest: c.help for c in action._choices_actions}
    assert registered == {name: help_text for name, _, help_text in COMMANDS}
    lazy = build_parser(["--help"])
    (lazy_action,) = [a for a in lazy._actions if a.dest == "command"]
    assert {c.dest: c.help for c in lazy_action._choices_actions} == registered
    assert list(lazy_action.choices) == list(action.choices)


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        (["sessions", "list"], "sessions"),
        (["--db", "sessions", "search", "x"], "search"),  # --db's value is not the command
        (["--db=x.db", "export", "a"], "export"),
        (["--conf", "c.toml", "--dir", "d", "config", "show"], "config"),
        (["--version"], None),
        (["nope"], None),
        ([], None),
    ],
)
def test_the_chosen_command_is_found_past_the_global_options(
    argv: list[str], chosen: str | None
) -> None:
    from threadline.cli import chosen_command

    assert chosen_command(argv) == chosen
