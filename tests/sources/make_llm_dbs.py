"""Make the llm logs.db fixtures with real llm releases from PyPI.

Each version gets a throwaway venv (llm from PyPI and, from 0.36 on, its llm-echo plugin; older
releases get the tiny offline echo model registered below), then the same short script of
prompts runs through llm's own command line with LLM_USER_PATH pointing at a temp dir, so the
database is exactly what that release writes. "upgraded" is a 0.31 database continued and added
to by 0.36 (its migrations turn it into the message-store schema with the legacy rows kept).

    python tests/sources/make_llm_dbs.py [--out tests/sources/data/llm] [VERSION ...]

Installing eight releases takes minutes and needs PyPI, so the tests read the small .db files
this wrote (committed under tests/sources/data/llm/) instead of running it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
    "DwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
VERSIONS = ["0.12", "0.17", "0.23", "0.26", "0.31", "0.32", "0.36"]
HERE = Path(__file__).resolve().parent

# Runs inside each throwaway venv: registers an offline "echo" model when llm-echo is not there,
# then hands the arguments to llm's own CLI.
DRIVER = r"""
import json, sys
import llm
from llm.plugins import pm

try:
    import llm_echo  # noqa: F401  (llm >= 0.36: the real plugin, loaded by its entry point)
    HAVE_ECHO = True
except ImportError:
    HAVE_ECHO = False

if not HAVE_ECHO:
    class Echo(llm.Model):
        model_id = "echo"
        can_stream = True
        attachment_types = {"image/png", "text/plain"}
        supports_tools = True

        def execute(self, prompt, stream, response, conversation=None):
            text = prompt.prompt or ""
            if text.strip().startswith("{"):
                data = json.loads(text)
                for call in data.get("tool_calls", []):
                    response.add_tool_call(
                        llm.ToolCall(name=call["name"], arguments=call.get("arguments") or {})
                    )
                text = data.get("prompt", "")
            results = [str(r.output) for r in getattr(prompt, "tool_results", None) or []]
            out = "echo: " + text + ("".join(" result: " + r for r in results))
            if hasattr(response, "set_usage"):
                response.set_usage(input=len(text.split()), output=len(out.split()))
            yield out

    class Plugin:
        @llm.hookimpl
        def register_models(self, register):
            register(Echo())

    pm.register(Plugin(), name="threadline-echo")

from llm.cli import cli

cli(sys.argv[1:])
"""

HOSTILE = "[bold red]not markup[/] \x1b[2J\x1b]0;pwned\x07 [@click=app.quit]x[/]"


def _steps(version: str) -> list[list[str]]:
    major, minor = (int(p) for p in version.split(".")[:2])
    v = (major, minor)
    steps = [
        ["-m", "echo", "-s", "You answer in one line.", "What is a thread?"],
        ["-c", "And a needle?"],
        ["-m", "echo", HOSTILE],
        ["-c", "second turn of the hostile one"],
    ]
    if v >= (0, 17):
        steps.append(["-m", "echo", "Describe the attachment", "-a", "{attach}"])
    if v >= (0, 26):
        steps.append(
            [
                "-m",
                "echo",
                "-T",
                "llm_version",
                json.dumps({"prompt": "use the tool", "tool_calls": [{"name": "llm_version"}]}),
            ]
        )
    if v >= (0, 36):
        steps.append(["-m", "echo", "-o", "thinking", "1", "Think first, then answer."])
    return steps


def _venv(root: Path, version: str) -> Path:
    venv = root / f"venv-{version}"
    py = venv / "bin" / "python"
    if py.exists():
        return py
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pkgs = [f"llm=={version}", "httpx"]  # llm 0.17 imports httpx without requiring it
    if tuple(int(p) for p in version.split(".")[:2]) >= (0, 36):
        pkgs.append("llm-echo")
    subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
    return py


def _run(py: Path, user_dir: Path, driver: Path, steps: list[list[str]], attach: Path) -> None:
    env = {**os.environ, "LLM_USER_PATH": str(user_dir), "PYTHONUTF8": "1"}
    for step in steps:
        args = [a.replace("{attach}", str(attach)) for a in step]
        done = subprocess.run([str(py), str(driver), *args], env=env, capture_output=True)
        if done.returncode:
            sys.exit(f"llm {' '.join(args)} failed:\n{done.stderr.decode(errors='replace')}")


def make(out: Path, versions: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(os.environ.get("MAKE_LLM_DBS_WORK", tmp))
        driver = root / "driver.py"
        driver.write_text(DRIVER)
        attach = root / "dot.png"  # a 1x1 PNG: every release and llm-echo take image/png
        attach.write_bytes(base64.b64decode(PNG))
        pythons: dict[str, Path] = {}
        for version in versions:
            pythons[version] = _venv(root, version)
            user_dir = root / f"user-{version}"
            shutil.rmtree(user_dir, ignore_errors=True)
            user_dir.mkdir()
            _run(pythons[version], user_dir, driver, _steps(version), attach)
            shutil.copyfile(user_dir / "logs.db", out / f"llm-{version}.db")
            print(f"llm {version}: {(out / f'llm-{version}.db').stat().st_size} bytes")
        if "0.31" in pythons and "0.36" in pythons:
            user_dir = root / "user-upgraded"
            shutil.rmtree(user_dir, ignore_errors=True)
            user_dir.mkdir()
            _run(pythons["0.31"], user_dir, driver, _steps("0.31")[:2], attach)
            _run(
                pythons["0.36"],
                user_dir,
                driver,
                [["-c", "continued after the upgrade"], ["-m", "echo", "a new thread"]],
                attach,
            )
            shutil.copyfile(user_dir / "logs.db", out / "llm-upgraded.db")
            print(f"upgraded: {(out / 'llm-upgraded.db').stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data" / "llm")
    parser.add_argument("versions", nargs="*", default=VERSIONS)
    args = parser.parse_args()
    make(args.out, args.versions)


if __name__ == "__main__":
    main()
