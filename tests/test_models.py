"""The records (models.py): a frozen, slotted, keyword-only dataclass's behaviour, made by
`record` without dataclasses.dataclass."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime

import pytest

from threadline.models import CleanupResult, Message, Session, SessionSummary


def summary(**changes: object) -> SessionSummary:
    fields: dict[str, object] = {
        "id": "s1",
        "working_dir": "/src/api",
        "title": None,
        "preview": "hello",
        "provider": None,
        "model": "m",
        "status": "active",
        "pinned": 1,
        "created_at": "2026-01-02T03:04:05.678+00:00",
        "updated_at": datetime(2026, 1, 2, tzinfo=UTC),
        "message_count": 3,
    }
    fields.update(changes)
    return SessionSummary(**fields)  # type: ignore[arg-type]


def test_fields_are_converted_and_defaults_filled():
    row = summary()
    assert row.pinned is True  # SQLite's 0/1
    assert row.created_at == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)  # ISO text
    assert (row.deleted_at, row.writing, row.source) == (None, False, None)
    assert list(SessionSummary.model_fields)[:3] == ["id", "working_dir", "title"]
    message = Message(id=1, session_id="s1", role="user", content="hi", created_at=row.updated_at)
    assert (message.kind, message.complete, message.payload) == ("message", True, None)


def test_records_compare_and_hash_by_value():
    assert summary() == summary()
    assert hash(summary()) == hash(summary())
    assert summary() != summary(title="other")
    assert summary() != summary().cursor  # another kind of record
    assert len({summary(), summary(), summary(id="s2")}) == 2
    session = Session(
        **summary().model_dump(),
        system_prompt=None,
        ended_at=None,
        total_input_tokens=0,
        total_output_tokens=0,
    )
    assert session != summary()  # a subclass with more fields is not equal to its base
    with pytest.raises(TypeError):
        hash(session)  # its metadata is a dict, as a dataclass's would be


def test_records_are_frozen_and_slotted():
    row = summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.title = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del row.title  # type: ignore[misc]
    assert not hasattr(row, "__dict__")


def test_a_default_factory_makes_one_value_per_record():
    one = CleanupResult(sessions_deleted=0, by_retention=0, by_max_limit=0, purged=0)
    two = CleanupResult(sessions_deleted=0, by_retention=0, by_max_limit=0, purged=0)
    assert one.trashed_ids == [] and one.trashed_ids is not two.trashed_ids
    given = CleanupResult(
        sessions_deleted=1, by_retention=1, by_max_limit=0, purged=0, trashed_ids=["a"]
    )
    assert given.trashed_ids == ["a"]


def test_missing_or_positional_arguments_are_refused():
    with pytest.raises(TypeError, match="session_id"):
        Message(id=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Message(1, "s1", "user", "hi", datetime.now(UTC))  # type: ignore[misc]


def test_copy_update_dump_repr_and_pickle():
    row = summary()
    renamed = row.model_copy(update={"title": "New", "pinned": 0})
    assert (renamed.title, renamed.pinned, renamed.id) == ("New", False, "s1")
    assert row.title is None  # the original is unchanged
    assert SessionSummary.model_validate(row.model_dump()) == row
    assert repr(row).startswith("SessionSummary(id='s1', working_dir='/src/api', title=None")
    assert copy.copy(row) == row and copy.deepcopy(row) == row
    assert pickle.loads(pickle.dumps(row)) == row
