"""Sessions: create, get, ids and prefixes, continuity, listing by scope with keyset paging."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.models import Scope, SessionSummary
from threadline.store import AmbiguousIdError, NotFoundError, Store, StoreError


async def test_create_and_get_session(store: Store, workdir: str, clock: FakeClock) -> None:
    s = await store.create_session(
        workdir,
        title="  Fix   the\nparser ",
        provider="openai-compatible",
        model="gpt-x",
        system_prompt="be brief",
        metadata={"source": "test", "n": [1, 2]},
    )
    got = await store.get_session(s.id)
    assert got == s
    assert got.working_dir == workdir
    assert got.title == "Fix the parser"  # one line, as update_session makes it
    assert (got.provider, got.model, got.system_prompt) == (
        "openai-compatible",
        "gpt-x",
        "be brief",
    )
    assert got.metadata == {"source": "test", "n": [1, 2]}
    assert got.status == "active" and not got.pinned and got.deleted_at is None
    assert got.created_at == got.updated_at == clock()
    assert (got.message_count, got.total_input_tokens, got.total_output_tokens) == (0, 0, 0)
    assert await store.get_session("01234567-89ab-7def-8123-456789abcdef") is None


async def test_session_id_is_uuid7_from_the_clock(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    compact = s.id.replace("-", "")
    assert len(compact) == 32 and s.id.count("-") == 4
    assert compact[12] == "7"  # version
    assert int(compact[:12], 16) == int(clock().timestamp() * 1000)
    clock.advance(minutes=1)
    later = await store.create_session("/tmp")
    assert later.id > s.id  # time-ordered


async def test_working_dir_is_resolved(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    os.symlink(tmp_path / "a" / "b", tmp_path / "link")
    s = await store.create_session(str(tmp_path / "a" / "b" / ".." / "b"))
    assert s.working_dir == str((tmp_path / "a" / "b").resolve())
    s2 = await store.create_session(str(tmp_path / "link"))
    assert s2.working_dir == s.working_dir


async def test_resolve_session_id(store: Store, clock: FakeClock) -> None:
    a = await store.create_session("/tmp")
    clock.advance(minutes=10)
    b = await store.create_session("/tmp")
    compact = a.id.replace("-", "")
    assert await store.resolve_session_id(a.id) == a.id
    assert await store.resolve_session_id(compact) == a.id  # without dashes
    assert await store.resolve_session_id(a.id.upper()) == a.id  # uppercase
    assert await store.resolve_session_id(compact[:12].upper()) == a.id
    assert await store.resolve_session_id(f"  {b.id[:13]} ") == b.id  # dashes kept, spaces
    with pytest.raises(AmbiguousIdError) as info:
        await store.resolve_session_id(compact[:4])
    assert info.value.candidates == sorted([a.id.replace("-", ""), b.id.replace("-", "")])
    with pytest.raises(NotFoundError, match="no session matches"):
        await store.resolve_session_id("ffffffff")
    with pytest.raises(NotFoundError, match="hexadecimal"):
        await store.resolve_session_id("not-an-id")
    with pytest.raises(NotFoundError):
        await store.resolve_session_id("")
    with pytest.raises(NotFoundError, match="too long"):
        await store.resolve_session_id(compact + "0")
    # The trash is included: a trashed session can still be named (to restore it).
    await store.delete_session(a.id)
    assert await store.resolve_session_id(compact[:12]) == a.id


def tail(session_id: str) -> str:
    """The id's last group: the random digits short ids are drawn from."""
    return session_id.rsplit("-", 1)[1]


async def test_short_ids_come_from_the_random_part(store: Store, clock: FakeClock) -> None:
    ids = []
    for _ in range(12):
        ids.append((await store.create_session("/tmp")).id)
        clock.advance(timedelta(seconds=4))  # twelve sessions inside one minute
    # They share their leading (timestamp) digits: a prefix would need 9 or more of them ...
    assert len({i[:8] for i in ids}) == 1
    shorts = await store.short_ids(ids)
    assert len(set(shorts.values())) == len(ids)
    for session_id, short in shorts.items():
        # ... the short id is the start of the random last group instead, and resolves.
        assert len(short) == 8 and tail(session_id).startswith(short)
        assert await store.resolve_session_id(short) == session_id
        assert await store.resolve_session_id(short.upper()) == session_id
        # A prefix of it resolves while nothing else starts so (like git's abbreviations).
        assert await store.resolve_session_id(tail(session_id)) == session_id


async def test_a_printed_short_id_survives_the_next_session(store: Store, clock: FakeClock) -> None:
    """The case from the field: `chat --new` printed a short id, and a session made a minute
    later made it ambiguous (both ids start with the same 8 timestamp digits)."""
    a = await store.create_session("/tmp")
    printed = (await store.short_ids([a.id]))[a.id]
    clock.advance(timedelta(seconds=20))
    b = await store.create_session("/tmp")
    assert a.id[:8] == b.id[:8]
    assert await store.resolve_session_id(printed) == a.id
    assert (await store.short_ids([a.id]))[a.id] == printed  # and it is printed the same


async def test_short_ids_keep_resolving_as_history_grows(store: Store) -> None:
    """Hundreds of sessions made in the same second: every short id printed for the first ones
    still names its session after hundreds more were made (which a prefix of the time-ordered
    id cannot do: those all share their first 12 digits)."""
    first = [(await store.create_session("/tmp")).id for _ in range(300)]  # the clock never moves
    printed = await store.short_ids(first)
    assert len(set(printed.values())) == len(first)
    later = [(await store.create_session("/tmp")).id for _ in range(300)]
    assert len({i.replace("-", "")[:12] for i in first + later}) == 1  # one millisecond
    everyone = first + later
    for session_id, short in printed.items():
        clashes = [
            other
            for other in everyone
            if other != session_id
            and (tail(other).startswith(short) or other.replace("-", "").startswith(short))
        ]
        if clashes:  # only if a later random id really starts with those 8 digits (~1 in 10^5)
            with pytest.raises(AmbiguousIdError):
                await store.resolve_session_id(short)
        else:
            assert await store.resolve_session_id(short) == session_id
    # Nearly all of them are still printed with 8 digits, and all are still unique.
    again = await store.short_ids(everyone)
    assert len(set(again.values())) == len(everyone)
    assert sum(len(s) == 8 for s in again.values()) >= len(everyone) - 2
    for session_id, short in again.items():
        assert await store.resolve_session_id(short) == session_id


async def test_whole_ids_and_their_prefixes_still_resolve(store: Store, clock: FakeClock) -> None:
    a = await store.create_session("/tmp")
    clock.advance(timedelta(days=3))
    b = await store.create_session("/tmp")
    for session in (a, b):
        compact = session.id.replace("-", "")
        assert await store.resolve_session_id(session.id) == session.id
        assert await store.resolve_session_id(compact[:12]) == session.id
        assert await store.resolve_session_id(session.id[:13]) == session.id


async def test_a_short_id_that_would_clash_gets_longer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids chosen so that two last groups share 9 digits and a third id starts with the digits
    of another's short id: the printed short ids grow until they name one session."""
    from threadline.store import sessions as session_ops

    chosen = iter(
        [
            "0190aaaa-0000-7000-8000-abcdef123456",
            "0190aaaa-0001-7000-8000-abcdef123999",  # shares 9 digits of its last group
            "0190bbbb-0000-7000-8000-777777770000",
            "77777777-1000-7000-8000-111111111111",  # starts with the digits of the one above
        ]
    )
    monkeypatch.setattr(session_ops, "uuid7", lambda now: next(chosen))
    ids = [(await store.create_session("/tmp")).id for _ in range(4)]
    shorts = await store.short_ids(ids)
    assert shorts[ids[0]] == "abcdef1234" and shorts[ids[1]] == "abcdef1239"
    assert shorts[ids[2]] == "777777770"
    assert shorts[ids[3]] == "11111111"
    for session_id, short in shorts.items():
        assert await store.resolve_session_id(short) == session_id
    with pytest.raises(AmbiguousIdError):
        await store.resolve_session_id("abcdef123")
    with pytest.raises(AmbiguousIdError):
        await store.resolve_session_id("77777777")  # a prefix of one, a short id of the other
    assert await store.resolve_session_id("777777770") == ids[2]
    assert await store.resolve_session_id("77777777-1") == ids[3]


async def test_short_ids_minimum(store: Store) -> None:
    s = await store.create_session("/tmp")
    assert (await store.short_ids([s.id]))[s.id] == tail(s.id)[:8]
    assert (await store.short_ids([s.id], minimum=12))[s.id] == tail(s.id)


# ---------------------------------------------------------------------------- continuity


async def test_continuity_window_both_sides(store: Store, workdir: str, clock: FakeClock) -> None:
    first = await store.get_or_create_session(workdir)
    await store.add_message(first.id, "user", "hello")
    clock.advance(hours=3, minutes=59)
    again = await store.get_or_create_session(workdir)
    assert again.id == first.id  # last message 3h59 ago: continued
    await store.add_message(first.id, "assistant", "the last message")
    clock.advance(hours=4, minutes=1)
    fresh, created = await store.get_or_create_session_ex(workdir)
    assert created and fresh.id != first.id  # last message 4h01 ago: a new session
    # Exactly at the window's edge the session is no longer younger than the window.
    clock.advance(hours=4)
    edge, created = await store.get_or_create_session_ex(workdir)
    assert created and edge.id not in (first.id, fresh.id)


async def test_continuity_window_configurable(store: Store, workdir: str, clock: FakeClock) -> None:
    s = await store.get_or_create_session(workdir, continue_window_hours=1)
    clock.advance(minutes=59)
    assert (await store.get_or_create_session(workdir, continue_window_hours=1)).id == s.id
    clock.advance(minutes=2)
    assert (await store.get_or_create_session(workdir, continue_window_hours=1)).id != s.id


async def test_continuity_is_per_directory_and_skips_trash(
    store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sa = await store.get_or_create_session(str(a), provider="p", model="m", system_prompt="sp")
    assert (sa.provider, sa.model, sa.system_prompt) == ("p", "m", "sp")
    sb = await store.get_or_create_session(str(b))
    assert sa.id != sb.id
    await store.delete_session(sa.id)
    again = await store.get_or_create_session(str(a))
    assert again.id != sa.id  # a trashed session is never continued


async def test_continuity_takes_newest_activity(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    old = await store.create_session(workdir)
    clock.advance(minutes=5)
    new = await store.create_session(workdir)
    clock.advance(minutes=5)
    await store.add_message(old.id, "user", "old one is active again")
    assert (await store.get_or_create_session(workdir)).id == old.id
    assert new.id != old.id


# ---------------------------------------------------------------------------- update


async def test_update_session_fields(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp", title="first")
    ended = clock.advance(minutes=3)
    u = await store.update_session(
        s.id,
        title=" Better \n title ",
        status="completed",
        ended_at=ended,
        pinned=True,
        model="m2",
        provider="p2",
        system_prompt="sp2",
        metadata={"k": "v"},
    )
    assert u.title == "Better title"  # one line
    assert u.status == "completed" and u.ended_at == ended and u.pinned
    assert (u.model, u.provider, u.system_prompt, u.metadata) == ("m2", "p2", "sp2", {"k": "v"})
    assert await store.get_session(s.id) == u
    # Only what is passed changes; title=None clears the title.
    u2 = await store.update_session(s.id, title=None)
    assert u2.title is None and u2.model == "m2" and u2.pinned
    assert (await store.update_session(s.id)) == u2
    with pytest.raises(StoreError, match="invalid session status"):
        await store.update_session(s.id, status="exploded")
    with pytest.raises(NotFoundError):
        await store.update_session("01234567-89ab-7def-8123-456789abcdef", title="x")


async def test_touch_session(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    later = clock.advance(minutes=30)
    await store.touch_session(s.id)
    got = await store.get_session(s.id)
    assert got is not None and got.updated_at == later
    with pytest.raises(NotFoundError):
        await store.touch_session("01234567-89ab-7def-8123-456789abcdef")


# ---------------------------------------------------------------------------- listing


async def make_sessions(
    store: Store, clock: FakeClock, directory: str, n: int, pinned: set[int] = frozenset()
) -> list[str]:
    ids = []
    for i in range(n):
        s = await store.create_session(directory, title=f"s{i}")
        await store.add_message(s.id, "user", f"question {i}")
        if i in pinned:
            await store.update_session(s.id, pinned=True)
        ids.append(s.id)
        clock.advance(minutes=1)
    return ids


def expected_order(rows: list[SessionSummary]) -> list[SessionSummary]:
    return sorted(rows, key=lambda r: (r.pinned, r.updated_at, r.id), reverse=True)


async def test_list_sessions_newest_first_with_preview_and_count(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    s1 = await store.create_session(workdir)
    await store.add_message(s1.id, "system", "you are terse")
    await store.add_message(s1.id, "user", "  first\nquestion\there  ")
    await store.add_message(s1.id, "assistant", "answer")
    await store.add_message(s1.id, "user", "second question")
    clock.advance(minutes=1)
    s2 = await store.create_session(workdir, title="titled")
    await store.add_message(s2.id, "user", "x" * 500)
    rows = await store.list_sessions("directory", workdir)
    assert [r.id for r in rows] == [s2.id, s1.id]
    assert rows[1].preview == "first question here"  # first user message, one line
    assert rows[1].message_count == 4
    assert rows[0].preview == "x" * 200  # truncated
    assert rows[0].display_title == "titled" and rows[1].display_title == "first question here"
    empty = await store.create_session(workdir)
    rows = await store.list_sessions("directory", workdir)
    assert rows[0].id == empty.id and rows[0].display_title == "(empty session)"


async def test_keyset_paging_no_duplicates_or_gaps(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    ids = await make_sessions(store, clock, workdir, 23, pinned={3, 11, 17})
    # Two sessions with the same updated_at: the id breaks the tie.
    a = await store.create_session(workdir)
    b = await store.create_session(workdir)
    ids += [a.id, b.id]
    everything = await store.list_sessions("directory", workdir, limit=None)
    assert len(everything) == 25
    assert everything == expected_order(everything)
    assert [r.pinned for r in everything[:3]] == [True] * 3  # pinned first
    for page_size in (1, 2, 3, 4, 7, 25, 30):
        seen: list[str] = []
        before = None
        while True:
            page = await store.list_sessions("directory", workdir, limit=page_size, before=before)
            seen += [r.id for r in page]
            if len(page) < page_size:
                break
            before = page[-1].cursor
        assert seen == [r.id for r in everything], page_size
    # A page boundary exactly at the last pinned session.
    first = await store.list_sessions("directory", workdir, limit=3)
    assert all(r.pinned for r in first)
    rest = await store.list_sessions("directory", workdir, limit=50, before=first[-1].cursor)
    assert not any(r.pinned for r in rest) and len(rest) == 22


async def test_list_offset_and_count(store: Store, workdir: str, clock: FakeClock) -> None:
    await make_sessions(store, clock, workdir, 10)
    everything = await store.list_sessions("directory", workdir, limit=None)
    assert await store.list_sessions("directory", workdir, limit=3, offset=4) == everything[4:7]
    assert await store.count_sessions("directory", workdir) == 10
    assert await store.count_sessions("directory", workdir, query="s1") == 1
    assert await store.count_sessions("all") == 10


async def test_list_query_filters_title_and_preview(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    s1 = await store.create_session(workdir, title="Deploy 100% of it")
    s2 = await store.create_session(workdir)
    await store.add_message(s2.id, "user", "why is my_var empty")
    await store.create_session(workdir, title="other")
    assert [r.id for r in await store.list_sessions("directory", workdir, query="100%")] == [s1.id]
    assert [r.id for r in await store.list_sessions("directory", workdir, query="my_v")] == [s2.id]
    assert await store.list_sessions("directory", workdir, query="my%var") == []
    assert await store.list_sessions("directory", workdir, query="DEPLOY") != []


async def test_scopes_directory_workspace_all(
    store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    sibling = tmp_path / "repo-other"  # shares the name prefix, not the workspace
    sibling.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    in_root = await make_sessions(store, clock, str(repo), 2)
    in_sub = await make_sessions(store, clock, str(sub), 2)
    in_sibling = await make_sessions(store, clock, str(sibling), 1)
    in_outside = await make_sessions(store, clock, str(outside), 1)

    async def ids(scope: str, directory: str | None) -> set[str]:
        return {r.id for r in await store.list_sessions(scope, directory, limit=None)}

    assert await ids("directory", str(sub)) == set(in_sub)
    assert await ids("directory", str(repo)) == set(in_root)
    # The workspace of any directory inside the repository is the repository and below.
    assert await ids("workspace", str(sub)) == set(in_root + in_sub)
    assert await ids("workspace", str(repo)) == set(in_root + in_sub)
    # Outside git, the workspace is the directory and below.
    assert await ids("workspace", str(outside)) == set(in_outside)
    assert await ids("all", None) == set(in_root + in_sub + in_sibling + in_outside)
    assert await store.count_sessions(Scope.WORKSPACE, str(sub)) == 4
    with pytest.raises(ValueError):
        await store.list_sessions("directory", None)
    with pytest.raises(ValueError):
        await store.list_sessions("galaxy", str(sub))


async def test_workspace_paging(store: Store, tmp_path: Path, clock: FakeClock) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "a").mkdir()
    await make_sessions(store, clock, str(repo), 4, pinned={1})
    await make_sessions(store, clock, str(repo / "a"), 5, pinned={2})
    everything = await store.list_sessions("workspace", str(repo / "a"), limit=None)
    assert len(everything) == 9 and everything == expected_order(everything)
    seen, before = [], None
    while page := await store.list_sessions("workspace", str(repo), limit=2, before=before):
        seen += page
        before = page[-1].cursor
    assert seen == everything


@pytest.mark.parametrize("max_dirs", [200, 2, 0])
async def test_workspace_listing_merged_or_scanned_agree(
    store: Store, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, max_dirs: int
) -> None:
    """Small workspaces merge per-directory index walks; big ones scan: the same rows either way."""
    from threadline.store import sessions as session_ops

    monkeypatch.setattr(session_ops, "MAX_WORKSPACE_DIRS", max_dirs)
    repo = tmp_path / "ws"
    (repo / ".git").mkdir(parents=True)
    subdirs = [repo, repo / "a", repo / "a" / "b", repo / "c"]
    for d in subdirs:
        d.mkdir(exist_ok=True)
    siblings = [tmp_path / "ws-other", tmp_path / "ws.bak", tmp_path / "ws0"]
    for d in siblings:
        d.mkdir()
    made: dict[str, list[str]] = {}
    for i, d in enumerate(subdirs + siblings):
        made[str(d)] = await make_sessions(store, clock, str(d), 3 + i % 2, pinned={i % 3})
    inside = {sid for d in subdirs for sid in made[str(d)]}
    everything = await store.list_sessions("all", limit=None)
    expected = [r for r in everything if r.id in inside]
    assert await store.list_sessions("workspace", str(repo / "a"), limit=None) == expected
    assert await store.count_sessions("workspace", str(repo / "a")) == len(expected)
    assert await store.list_sessions("workspace", str(repo), limit=4, offset=3) == expected[3:7]
    seen, before = [], None
    while page := await store.list_sessions("workspace", str(repo / "c"), limit=3, before=before):
        seen += page
        before = page[-1].cursor
    assert seen == expected
    titled = await store.list_sessions("workspace", str(repo), query="s1")
    assert titled == [r for r in expected if r.title == "s1"]
    # Trashed sessions leave the workspace list and appear in its trash.
    gone = expected[0].id
    await store.delete_session(gone)
    assert gone not in {r.id for r in await store.list_sessions("workspace", str(repo))}
    trash = await store.list_sessions("workspace", str(repo), trashed=True)
    assert [r.id for r in trash] == [gone]
    empty = tmp_path / "empty-ws"
    empty.mkdir()
    assert await store.list_sessions("workspace", str(empty)) == []
