"""A database for the pictures and pilots of imported sessions: the plain sample (~/src/api)
plus sessions imported from Claude Code (tools, thinking, a compaction summary), ChatGPT and
llm, all in ~/src/api. Hand-written records (tests/fakes/imported.py); ids are deterministic."""

from __future__ import annotations

import os
from datetime import timedelta

import sample_data
from sample_data import API, NOW

from fakes.imported import imported_session
from threadline.records import IncomingMessage, IncomingSession
from threadline.store import Store


def _chat(source: str, source_id: str, title: str, days: int) -> IncomingSession:
    at = NOW - timedelta(days=days)

    def m(key: str, role: str, text: str, kind: str, minutes: int) -> IncomingMessage:
        return IncomingMessage(
            key=key,
            role=role,  # type: ignore[arg-type]
            content=text,
            created_at=at + timedelta(minutes=minutes),
            payload={
                "source": source,
                "records": [],
                "kind": kind,
                "parts": [{"type": "text", "text": text}],
            },
        )

    return IncomingSession(
        source=source,
        source_id=source_id,
        working_dir=API,
        created_at=at,
        title=title,
        messages=[
            m("1", "user", "How do I read a CSV in Python?", "prompt", 0),
            m("2", "assistant", "Use the `csv` module: `csv.reader(open(path))`.", "reply", 1),
        ],
    )


async def build(
    path: str | os.PathLike[str], *, hostile: bool = False, compacted: bool = True
) -> sample_data.Sample:
    sample = await sample_data.build(path, hostile=False)
    store = await Store.open(path)
    try:
        await store.load_history(
            [
                imported_session(hostile=hostile, working_dir=API, compacted=compacted),
                _chat("chatgpt", "c-1", "CSV reading in Python", 40),
                _chat("llm", "l-1", "Quick question about csv", 300),
            ]
        )
        for row in await store.list_sessions("all"):
            if row.source == "claude-code":
                sample.ids["cc"] = row.id
    finally:
        await store.close()
    return sample
