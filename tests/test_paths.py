"""paths.py: platform locations and their overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from threadline import paths
from threadline.cli import build_parser


def test_platform_dirs_follow_xdg(private_env: Path) -> None:
    assert paths.data_dir() == private_env / "xdg_data_home" / "threadline"
    assert paths.config_dir() == private_env / "xdg_config_home" / "threadline"
    assert paths.db_path() == private_env / "xdg_data_home" / "threadline" / "threadline.db"
    assert paths.config_path() == private_env / "xdg_config_home" / "threadline" / "config.toml"


def test_db_override_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DB", str(tmp_path / "env.db"))
    assert paths.db_path() == tmp_path / "env.db"
    assert paths.db_path(tmp_path / "flag.db") == tmp_path / "flag.db"  # --db beats the env
    assert paths.db_path("~/x.db") == Path.home() / "x.db"


def test_config_override_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_CONFIG", str(tmp_path / "env.toml"))
    assert paths.config_path() == tmp_path / "env.toml"
    assert paths.config_path(str(tmp_path / "flag.toml")) == tmp_path / "flag.toml"


def test_cli_flags_reach_the_parser(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--db", "a.db", "--config", "c.toml"])
    assert (args.db, args.config) == ("a.db", "c.toml")
    assert paths.db_path(args.db) == Path("a.db")
    defaults = build_parser().parse_args([])
    assert (defaults.db, defaults.config) == (None, None)


def test_resolve_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    os.symlink(tmp_path / "a", tmp_path / "l")
    assert paths.resolve_dir(tmp_path / "l") == str((tmp_path / "a").resolve())
    monkeypatch.chdir(tmp_path / "a")
    assert paths.resolve_dir() == str((tmp_path / "a").resolve())
    assert paths.resolve_dir("..") == str(tmp_path.resolve())


def test_workspace_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    assert paths.workspace_root(deep) == str(repo.resolve())
    assert paths.workspace_root(repo) == str(repo.resolve())
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere\n")  # a git worktree has a .git file
    assert paths.workspace_root(worktree) == str(worktree.resolve())
    plain = tmp_path / "plain"
    plain.mkdir()
    assert paths.workspace_root(plain) == str(plain.resolve())


def test_home_short(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.home_short(str(tmp_path / "code")) == "~/code"
    assert paths.home_short(str(tmp_path)) == "~"
    assert paths.home_short(str(tmp_path) + "x/code") == str(tmp_path) + "x/code"
    assert paths.home_short("/etc") == "/etc"
