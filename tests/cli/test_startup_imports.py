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
)


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


def test_help_loads_neither_the_store_nor_pydantic() -> None:
    modules = _modules("--help")
    assert _loaded(modules, ("asyncio", "pydantic", "sqlite3", "aiosqlite", *HEAVY)) == []
