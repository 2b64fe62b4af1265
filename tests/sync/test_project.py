"""A session's place follows its project: the same repository at different paths on two
machines is one scope, and a moved project folder takes its sessions along."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sync.helpers import machines, make_project
from threadline.store.project import normalise_remote, project_of


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:Me/api.git", "github.com/Me/api"),
        ("https://github.com/Me/api", "github.com/Me/api"),
        ("https://user:s3cret@GitHub.com/Me/api.git/", "github.com/Me/api"),
        ("ssh://git@github.com:22/Me/api.git", "github.com/Me/api"),
        ("git+ssh://git@example.org/team/api", "example.org/team/api"),
        ("/srv/git/api.git", "/srv/git/api"),
        ("file:///srv/git/api.git", "/srv/git/api"),
        ("", None),
    ],
)
def test_remotes_are_normalised_without_credentials(url: str, expected: str | None) -> None:
    assert normalise_remote(url) == expected


def test_project_of_a_directory_inside_a_checkout(tmp_path: Path) -> None:
    root = make_project(tmp_path / "api", "https://tok@example.org/me/api.git")
    inner = Path(root) / "src" / "pkg"
    inner.mkdir(parents=True)
    project = project_of(str(inner))
    assert project is not None
    assert (project.remote, project.path, project.root) == ("example.org/me/api", "src/pkg", root)
    assert project_of(str(tmp_path)) is None  # not in a repository


async def test_sessions_show_in_the_same_project_at_another_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await machines(tmp_path, 2)
    try:
        assert a.project != b.project
        inner_a = Path(a.project) / "docs"
        inner_a.mkdir()
        assert a.store is not None and b.store is not None
        top = await a.store.create_session(a.project, title="at the root")
        deep = await a.store.create_session(str(inner_a), title="in docs")
        await a.store.add_message(top.id, "user", "rootword here")
        await a.init()
        # The machines share one disk here: hide a's checkout, as b's disk would not have it.
        os.rename(a.project, a.project + "-elsewhere")
        monkeypatch.chdir(b.project)  # b syncs from its checkout (as the app started there does)
        await b.init()
        here = {s.id for s in await b.store.list_sessions("directory", b.project)}
        assert here == {top.id}
        workspace = {s.id for s in await b.store.list_sessions("workspace", b.project)}
        assert workspace == {top.id, deep.id}
        hits = await b.store.search("rootword", "directory", b.project)
        assert [h.session_id for h in hits] == [top.id]
    finally:
        for m in (a, b):
            await m.close()


async def test_a_moved_project_folder_takes_its_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (a,) = await machines(tmp_path, 1)
    try:
        assert a.store is not None
        session = await a.store.create_session(a.project, title="before the move")
        await a.store.add_message(session.id, "user", "findable words")
        await a.init()
        moved = Path(a.project).parent / "api-renamed"
        os.rename(a.project, moved)
        monkeypatch.chdir(moved)
        report = await a.sync()
        assert report.attached == 1
        rows = await a.store.list_sessions("directory", str(moved))
        assert [r.id for r in rows] == [session.id]
        hits = await a.store.search("findable", "directory", str(moved))
        assert [h.session_id for h in hits] == [session.id]
    finally:
        await a.close()
