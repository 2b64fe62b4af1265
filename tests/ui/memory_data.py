"""Memories, queued extractions and summarised sessions for the memory screens' tests.

Added to a sample database (sample_data.build) at fixed times from NOW, so the pictures are
the same on every run.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sample_data import (
    API,
    HOSTILE,
    NOW,
    Sample,
    _Clock,
    _fresh_ids,
    done_filling,
    fill_quickly,
)

from threadline.store import Store
from threadline.store.memories import WATERMARK_KEY

HOSTILE_FACT = "fact: " + HOSTILE


async def add_memories(sample: Sample, *, hostile: bool = False) -> dict[str, int]:
    """Memories of ~/src/api: from the design and fix sessions, one by hand, one superseded
    by a newer one (and with `hostile`, one whose fact holds every hostile string)."""
    clock = _Clock()
    store = await Store.open(sample.path, clock=clock)
    await fill_quickly(store)
    ids: dict[str, int] = {}
    try:
        design = await store.get_messages(sample.ids["design"])
        fix = await store.get_messages(sample.ids["fix"])
        clock.now = NOW - timedelta(days=3)
        old = await store.save_memory(
            API,
            "Replies are checkpointed every five seconds.",
            "fact",
            3,
            session_id=sample.ids["design"],
            source_message_id=design[2].id,
        )
        ids["old"] = old.id
        m = await store.save_memory(
            API,
            "The store uses one writer connection with BEGIN IMMEDIATE; readers use WAL.",
            "decision",
            5,
            session_id=sample.ids["design"],
            source_message_id=design[2].id,
        )
        ids["writer"] = m.id
        clock.now = NOW - timedelta(days=3) + timedelta(minutes=5)
        m = await store.save_memory(
            API,
            "Replies are checkpointed every second while they stream, not every five seconds.",
            "correction",
            4,
            session_id=sample.ids["design"],
            source_message_id=design[3].id,
            supersedes=old.id,
        )
        ids["correction"] = m.id
        clock.now = NOW - timedelta(hours=2)
        m = await store.save_memory(
            API,
            "Flaky tests are fixed with exponential backoff, never with longer fixed sleeps.",
            "preference",
            4,
            session_id=sample.ids["fix"],
            source_message_id=fix[1].id,
        )
        ids["backoff"] = m.id
        clock.now = NOW - timedelta(hours=1)
        m = await store.save_memory(
            API, "The service runs on Python 3.13 in production.", "context", 2, is_manual=True
        )
        ids["manual"] = m.id
        if hostile:
            m = await store.save_memory(
                API,
                HOSTILE_FACT,
                "fact",
                5,
                session_id=sample.ids["design"],
                source_message_id=design[1].id,
            )
            ids["hostile"] = m.id
    finally:
        await done_filling(store)
        await store.close()
    return ids


async def add_failed_extraction(sample: Sample, error: str) -> int:
    """A queued extraction of the fix session given up on after three attempts, and one of the
    design session waiting for its second attempt."""
    clock = _Clock()
    store = await Store.open(sample.path, clock=clock)
    await fill_quickly(store)
    try:
        clock.now = NOW - timedelta(minutes=20)
        failed = await store.save_pending_extraction(sample.ids["fix"])
        await store.update_pending_extraction(
            failed.id,
            attempt_count=3,
            last_attempt_at=NOW - timedelta(minutes=10),
            next_attempt_at=NOW - timedelta(minutes=10),
            error_message=error,
        )
        waiting = await store.save_pending_extraction(sample.ids["design"])
        await store.update_pending_extraction(
            waiting.id,
            attempt_count=1,
            last_attempt_at=NOW - timedelta(minutes=2),
            next_attempt_at=NOW + timedelta(minutes=3),
            error_message="the provider answered 500: internal error",
        )
        return failed.id
    finally:
        await done_filling(store)
        await store.close()


async def add_summarised_session(
    path: str | os.PathLike[str],
    messages: int,
    covered: int,
    *,
    directory: str = API,
    title: str | None = None,
    compact: bool = False,
    watermark: bool = False,
) -> str:
    """A session of `messages` numbered messages whose first `covered` are summarised
    (removed too, with `compact`). With `watermark`, it is marked as chatted in here."""
    _fresh_ids()
    clock = _Clock()
    store = await Store.open(path, clock=clock)
    await fill_quickly(store)
    try:
        clock.now = NOW - timedelta(minutes=30)
        s = await store.create_session(
            directory, title=title or f"Summarised session ({messages} messages)"
        )
        ids = []
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            ids.append((await store.add_message(s.id, role, f"Message {i + 1}")).id)
        if covered:
            await store.save_summary(
                s.id,
                f"The first {covered} messages counted from 1 to {covered}.\n\n"
                "- Nothing else happened.",
                ids[0],
                ids[covered - 1],
                token_count=64,
                model="fake",
            )
            if compact:
                await store.delete_messages_before(s.id, ids[covered - 1] + 1)
        if watermark:
            await store.patch_session_metadata(s.id, {WATERMARK_KEY: 0})
        return s.id
    finally:
        await done_filling(store)
        await store.close()


def record_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every notification the app shows in `app.said` (its toasts expire, and under load
    a test may read them after they have). Call it from an autouse fixture."""
    from threadline.ui.app import ThreadlineApp

    original = ThreadlineApp.notify

    def notify(self, message, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        said = self.__dict__.setdefault("said", [])
        said.append((str(message), kwargs.get("severity", "information")))
        return original(self, message, *args, **kwargs)

    monkeypatch.setattr(ThreadlineApp, "notify", notify)


async def said(pilot, severity: str | None = None) -> str:
    """The notifications shown so far (with `record_notifications`), one per line."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return "\n".join(
        text
        for text, level in pilot.app.__dict__.get("said", [])
        if severity is None or level == severity
    )
