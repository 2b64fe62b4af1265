"""Where summaries sit in their session (positions for the app's labels), and session rows by id."""

from __future__ import annotations

from threadline.store import Store


async def test_spans_count_positions_among_the_stored_messages(store: Store) -> None:
    s = await store.create_session("/tmp")
    other = await store.create_session("/tmp/other")
    ms = []
    for i in range(10):
        ms.append(await store.add_message(s.id, "user", f"m{i}"))
        await store.add_message(other.id, "user", f"o{i}")  # ids of another session interleave
    first = await store.save_summary(s.id, "1-4", ms[0].id, ms[3].id)
    second = await store.save_summary(s.id, "1-8", ms[0].id, ms[7].id)
    middle = await store.save_summary(s.id, "5-6", ms[4].id, ms[5].id)
    spans = await store.summary_spans(s.id, [first, second, middle])
    assert (spans[first.id].first_position, spans[first.id].last_position) == (1, 4)
    assert (spans[second.id].first_position, spans[second.id].last_position) == (1, 8)
    assert (spans[middle.id].first_position, spans[middle.id].last_position) == (5, 6)
    assert not any(span.compacted for span in spans.values())
    assert await store.summary_spans(s.id, []) == {}


async def test_spans_after_compacting(store: Store) -> None:
    s = await store.create_session("/tmp")
    ms = [await store.add_message(s.id, "user", f"m{i}") for i in range(6)]
    summary = await store.save_summary(s.id, "1-4", ms[0].id, ms[3].id)
    await store.delete_messages_before(s.id, ms[3].id + 1)
    span = (await store.summary_spans(s.id, [summary]))[summary.id]
    assert span.compacted and span.covered == 0 and span.before == 0
    # A later summary over the compacted range and the messages left counts what is left.
    later = await store.save_summary(s.id, "all", ms[0].id, ms[4].id)
    span = (await store.summary_spans(s.id, [later]))[later.id]
    assert (span.first_position, span.last_position, span.compacted) == (1, 1, False)


async def test_session_rows_by_id(store: Store) -> None:
    a = await store.create_session("/tmp/a", title="A")
    b = await store.create_session("/tmp/b")
    await store.add_message(b.id, "user", "first words of b")
    await store.delete_session(b.id)
    rows = await store.get_session_summaries([a.id, b.id, a.id, "nope"])
    assert set(rows) == {a.id, b.id}
    assert rows[a.id].display_title == "A"
    assert rows[b.id].display_title == "first words of b" and rows[b.id].deleted_at is not None
    assert await store.get_session_summaries([]) == {}
    many = [a.id] + [f"missing-{i}" for i in range(1200)]
    assert set(await store.get_session_summaries(many)) == {a.id}
