"""A directory's project identity: its git repository's normalised remote and the path inside it.

The same project checked out at `~/src/api` on one machine and `/home/me/work/api` on another
has one identity, so synced sessions find their place on every machine. Read from the files of
the repository (`.git/config`), never by running git: this runs whenever a session is created.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Project:
    remote: str  # normalised, credentials removed: "github.com/me/api"
    path: str  # the directory inside the repository, POSIX, "" at its root
    root: str  # the repository's root on this machine

    def local_dir(self) -> str:
        return join(self.root, self.path)


def join(root: str, inner: str) -> str:
    return str(PurePosixPath(root) / inner) if inner else root


_SCP = re.compile(r"^(?:[^@/:]+@)?([^/:]+):(?!//)(.+)$")


def normalise_remote(url: str) -> str | None:
    """`git@github.com:Me/api.git`, `https://user:tok@github.com/Me/api` -> `github.com/Me/api`.

    Scheme, user, password, port of ssh, a trailing `.git` and slashes are dropped and the host
    is lower-cased; a local path stays a path (`/srv/git/api`). None for an empty URL.
    """
    text = url.strip()
    if not text:
        return None
    if "://" in text:
        scheme, rest = text.split("://", 1)
        host, _, path = rest.partition("/")
        host = host.rsplit("@", 1)[-1]  # drop user[:password]@
        if scheme.lower() in ("ssh", "git", "git+ssh", "ssh+git"):
            host = host.split(":", 1)[0]  # ssh port: same repository
        if scheme.lower() == "file":
            host, path = "", path
            text = "/" + path
        else:
            text = f"{host.lower()}/{path}" if host else path
    else:
        match = _SCP.match(text)
        if match and not text.startswith(("/", ".")):
            text = f"{match[1].lower()}/{match[2]}"
    text = re.sub(r"/+", "/", text).rstrip("/")
    if text.endswith(".git"):
        text = text[:-4].rstrip("/")
    return text or None


def _git_dir(root: Path) -> Path | None:
    """The repository's shared git directory (following a worktree's `.git` file)."""
    dot = root / ".git"
    if dot.is_dir():
        return dot
    try:
        line = dot.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not line.startswith("gitdir:"):
        return None
    gitdir = Path(line[len("gitdir:") :].strip())
    if not gitdir.is_absolute():
        gitdir = (root / gitdir).resolve()
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
        return (gitdir / common).resolve()
    except OSError:
        return gitdir


def remote_url(git_dir: Path) -> str | None:
    """The URL of `origin`, else of the first remote, from the repository's config."""
    import configparser  # (here: the app's start does not read git configs)

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(git_dir / "config", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    urls: dict[str, str] = {}
    for section in parser.sections():
        match = re.match(r'^remote\s+"(.+)"$', section.strip())
        if match and parser.has_option(section, "url"):
            urls[match[1]] = parser.get(section, "url")
    if not urls:
        return None
    return urls.get("origin") or urls[sorted(urls)[0]]


def project_of(directory: str) -> Project | None:
    """The project of an absolute directory, or None outside a repository with a remote."""
    start = Path(directory)
    for candidate in (start, *start.parents):
        try:
            if not (candidate / ".git").exists():
                continue
        except OSError:
            return None
        git_dir = _git_dir(candidate)
        url = remote_url(git_dir) if git_dir is not None else None
        remote = normalise_remote(url) if url else None
        if remote is None:
            return None
        inner = os.path.relpath(start, candidate)
        return Project(
            remote, "" if inner == "." else PurePosixPath(inner).as_posix(), str(candidate)
        )
    return None
