"""Store-level export/import (store/transfer.py) and timeline_around (search hits)."""

from __future__ import annotations

import io

import pytest

from threadline.store import Store
from threadline.store.transfer import ImportFormatError


async def test_timeline_around_centres_on_a_message(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    ids = [(await store.add_message(s.id, "user", f"m{i}")).id for i in range(20)]
    await store.save_summary(s.id, "first half", ids[0], ids[9])
    items = await store.timeline_around(s.id, ids[9], radius=3)
    kinds = [(i.kind, i.id) for i in items]
    assert kinds == [
        ("message", ids[6]),
        ("message", ids[7]),
        ("message", ids[8]),
        ("message", ids[9]),
        ("summary", 1),
        ("message", ids[10]),
        ("message", ids[11]),
    ]
    edge = await store.timeline_around(s.id, ids[0], radius=2)
    assert [i.id for i in edge][:1] == [ids[0]]


async def test_export_then_import_into_an_empty_store(store: Store, workdir: str, tmp_path):
    s = await store.create_session(workdir, title="t")
    await store.add_message(s.id, "user", "hi", payload={"a": [1, {"b": None}]})
    out = io.StringIO()
    stats = await store.export_jsonl(out)
    assert (stats.sessions, stats.messages) == (1, 1)
    other = await Store.open(tmp_path / "other.db")
    try:
        result = await other.import_export(io.BytesIO(out.getvalue().encode()), "mem")
        assert (result.sessions, result.messages) == (1, 1)
        again = io.StringIO()
        await other.export_jsonl(again)
        assert again.getvalue() == out.getvalue()
        message = (await other.get_messages(s.id))[0]
        assert message.payload == {"a": [1, {"b": None}]}
        assert (await other.search("hi"))[0].session_id == s.id  # indexed for search
    finally:
        await other.close()


async def test_a_bad_line_rolls_everything_back(store: Store, workdir: str) -> None:
    s = await store.create_session(workdir)
    await store.add_message(s.id, "user", "hi")
    out = io.StringIO()
    await store.export_jsonl(out)
    await store.purge_session(s.id)
    lines = out.getvalue().splitlines()
    broken = "\n".join([*lines, '{"type":"memory","id":1}']) + "\n"
    with pytest.raises(ImportFormatError, match="nothing was imported"):
        await store.import_export(io.BytesIO(broken.encode()), "broken")
    assert await store.get_session(s.id) is None
    assert (await store.info()).messages == 0
