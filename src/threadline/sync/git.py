"""The git command line, as the person has it (their credentials, their SSH agent)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from threadline.sync.errors import SyncError

_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact(text: str) -> str:
    """A URL's user and password removed (`https://user:token@host` -> `https://***@host`)."""
    return _CREDENTIALS.sub(r"\1***@", text)


def git_path() -> str:
    found = shutil.which("git")
    if found is None:
        raise SyncError("git is not installed (or not on PATH); sync needs the git command line")
    return found


class Git:
    """Runs git in one repository with fixed, hook-free settings."""

    def __init__(self, repo: Path, *, interactive: bool = True) -> None:
        self.repo = repo
        self.exe = git_path()
        env = dict(os.environ)
        env["GIT_TERMINAL_PROMPT"] = "1" if interactive else "0"
        if not interactive and "GIT_SSH_COMMAND" not in env:
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
        env.setdefault("LC_ALL", "C")
        self.env = env

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [
            self.exe,
            "-c", "core.hooksPath=/dev/null",
            "-c", "commit.gpgsign=false",
            "-c", "user.name=threadline",
            "-c", "user.email=threadline@localhost",
            "-c", "core.autocrlf=false",
            "-c", "gc.auto=0",
            *args,
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                cwd=cwd or self.repo,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                umask=0o077,  # what git creates in the clone is private
            )
        except OSError as exc:
            raise SyncError(f"cannot run git: {exc.strerror}") from None
        if check and done.returncode != 0:
            raise SyncError(f"git {args[0]} failed: {describe(done.stderr)}")
        return done

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


def describe(stderr: str) -> str:
    """The useful line of git's complaint, credentials removed."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return redact(line)
    return redact(lines[-1]) if lines else "no message"
