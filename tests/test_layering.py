"""The layering and the types, checked by tools: import-linter contracts and mypy.

The contracts live in pyproject.toml ([tool.importlinter]): cli > ui > chat | sources | sync >
store, the store reached only through `threadline.store`, SQL and Textual each in one layer, and
no import cycles. A broken contract fails here with import-linter's report (which import, on
which line); so does any mypy error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = [
    "cli > ui > chat | sources | sync > store",
    "Outside store/, the store is threadline.store",
    "Only store/ speaks SQL",
    "Only ui/ draws",
    "No import cycles",
]


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert status == 0, report
    for name in CONTRACTS:
        assert f"{name}" in report  # every contract ran


# One import that each contract forbids, added to a copy of the package.
VIOLATIONS = {
    "store/util.py": "from threadline.chat import context\n",  # a layer imports one above it
    "chat/context.py": "from threadline.store.messages import message_from_row\n",
    "cli/search.py": "import sqlite3\n",
    "chat/provider.py": "import textual\n",
    "text.py": "from threadline import paths\n",  # paths imports nothing back: no cycle ...
    "paths.py": "from threadline import text\n",  # ... until it does
}


def test_each_contract_catches_its_violation(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "threadline", src / "threadline")
    for relative, line in VIOLATIONS.items():
        module = src / "threadline" / relative
        module.write_text(module.read_text() + "\n" + line)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(src)}
    run = subprocess.run(
        [sys.executable, "-c", "import sys, importlinter.cli as c; sys.exit(c.lint_imports())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    broken = [line for line in run.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == len(CONTRACTS), run.stdout
    for needle in (
        "threadline.store.util -> threadline.chat.context",
        "threadline.chat.context -> threadline.store.messages",
        "threadline.cli.search -> sqlite3",
        "threadline.chat.provider -> textual",
    ):
        assert needle in run.stdout, needle
    assert ".text -> .paths" in run.stdout or ".paths -> .text" in run.stdout


def test_mypy_finds_no_error() -> None:
    """mypy over src/ as pyproject.toml configures it (the app's modules included)."""
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
