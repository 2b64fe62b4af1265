"""Directory scopes: which sessions belong to a directory, a workspace, or everything.

Each session stores `dir_tokens`: one exact token for its directory and one ancestor token for
the directory and each of its parents. The search index carries them, so "this directory" is a
match on the exact token and "this workspace" (root and below) a match on the root's ancestor
token: both are FTS intersections rather than filters over every hit.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from threadline import paths
from threadline.models import Scope


def _digest(path: str) -> str:
    import hashlib  # (here: listing a directory's sessions, as the app starts, needs none)

    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def exact_token(directory: str) -> str:
    return "e" + _digest(directory)


def ancestor_token(directory: str) -> str:
    return "a" + _digest(directory)


def dir_tokens(directory: str) -> str:
    """The tokens stored for a session whose working directory is `directory`."""
    path = PurePosixPath(directory)
    tokens = [exact_token(directory)]
    tokens += [ancestor_token(str(p)) for p in (path, *path.parents)]
    return " ".join(tokens)


def scope_root(scope: Scope, working_dir: str | None) -> str | None:
    """The directory a scope is anchored at (None for all directories)."""
    if scope is Scope.ALL:
        return None
    if working_dir is None:
        raise ValueError(f"the {scope.value} scope needs a working directory")
    directory = paths.resolve_dir(working_dir)
    if scope is Scope.WORKSPACE:
        return paths.workspace_root(directory)
    return directory


def sql_filter(
    scope: Scope, root: str | None, column: str = "working_dir"
) -> tuple[str, list[str | int]]:
    """A WHERE fragment (and its parameters) selecting sessions in the scope."""
    if scope is Scope.ALL or root is None:
        return "1", []
    if scope is Scope.DIRECTORY:
        return f"{column} = ?", [root]
    if root == "/":
        return "1", []
    # Root and below: "/a/b" itself or "/a/b/...". Both lie in ["/a/b", "/a/b0") ("0" follows
    # "/"), a range an index on the column serves; the last test drops "/a/b-other" and the like.
    low, high = workspace_range(root)
    return (
        f"({column} >= ? AND {column} < ? AND ({column} = ? OR substr({column}, ?, 1) = '/'))",
        [low, high, root, len(root) + 1],
    )


def workspace_range(root: str) -> tuple[str, str]:
    """[low, high): every directory under `root` (and a few siblings such as `root-x`)."""
    return root, root + "0"


def in_workspace(directory: str, root: str) -> bool:
    return root == "/" or directory == root or directory.startswith(root + "/")


def fts_filter(scope: Scope, root: str | None) -> str | None:
    """An FTS5 expression on the `dirs` column selecting the scope, or None for all."""
    if scope is Scope.ALL or root is None:
        return None
    token = exact_token(root) if scope is Scope.DIRECTORY else ancestor_token(root)
    return f'dirs : "{token}"'
