"""With [sync] recipients, the remote holds only ciphertext; an identity file reads it back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyrage

from sync.helpers import machines
from threadline.sync.engine import SyncOptions


def _remote_files(remote: Path) -> dict[str, str]:
    git = ["git", "--git-dir", str(remote)]
    names = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        name: subprocess.run(
            [*git, "show", f"HEAD:{name}"], capture_output=True, text=True, check=True
        ).stdout
        for name in names
        if name.endswith(".jsonl")
    }


async def test_encrypted_journals(tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "identity.txt"
    key_file.write_text(f"# a test key\n{identity}\n")
    recipient = str(identity.to_public())
    a, b, c = await machines(tmp_path)
    a.options = SyncOptions(recipients=[recipient], identity=str(key_file))
    b.options = SyncOptions(recipients=[recipient], identity=str(key_file))
    c.options = SyncOptions()  # no identity: cannot read the others
    try:
        assert a.store is not None and b.store is not None and c.store is not None
        session = await a.store.create_session(a.project, title="secret title")
        await a.store.add_message(session.id, "user", "secret words")
        for m in (a, b):
            await m.init()
        files = _remote_files(a.remote_repo)
        assert files
        for text in files.values():
            assert "secret" not in text
            assert all(json.loads(line)["enc"] == "age" for line in text.splitlines())
        assert [s.title for s in await b.store.list_sessions("all")] == ["secret title"]
        assert [m.content for m in await b.store.get_messages(session.id)] == ["secret words"]
        report = await c.init()
        assert report.errors and all("no identity is configured" in e for e in report.errors)
        assert all(e.startswith("machines/") for e in report.errors)
        assert await c.store.list_sessions("all") == []
    finally:
        for m in (a, b, c):
            await m.close()
