"""The installed package: version, entry points, and that the core never imports textual."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import resources
from pathlib import Path

import threadline

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)  # hang guard


def test_version_flag_console_script() -> None:
    exe = Path(sys.executable).parent / "threadline"
    result = run(str(exe), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"threadline {threadline.__version__}"


def test_version_flag_python_m() -> None:
    result = run(sys.executable, "-m", "threadline", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"threadline {threadline.__version__}"


def test_version_matches_pyproject() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["dynamic"] == ["version"]
    assert meta["project"]["scripts"]["threadline"] == "threadline.cli:main"
    assert threadline.__version__.count(".") == 2


def test_usage_error_is_one_line() -> None:
    result = run(sys.executable, "-m", "threadline", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.startswith("threadline: error: ")
    assert result.stderr.count("\n") == 1


def test_migrations_ship_inside_the_package() -> None:
    names = sorted(
        p.name
        for p in resources.files("threadline.store.migrations").iterdir()
        if p.name.endswith(".sql")
    )
    assert names[:2] == ["0001_initial.sql", "0002_search.sql"]


def test_core_never_imports_textual() -> None:
    modules = ["threadline.store", "threadline.config", "threadline.paths", "threadline.models"]
    if importlib.util.find_spec("threadline.chat") is not None:
        modules.append("threadline.chat")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from threadline.cli import build_parser\n"
        "build_parser()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(heavy))\n"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
