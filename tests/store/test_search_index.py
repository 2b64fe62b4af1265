"""The version-7 search index: prefixes expanded from the term list, the build after an upgrade
in short resumable steps, and the title/preview index behind the sidebar filter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.store import SearchQueryError, Store
from threadline.store import search as search_ops
from threadline.store.migrate import load_migrations, open_and_migrate
from threadline.store.scope import dir_tokens
from threadline.store.search import EXPAND_MAX, TermList, fts_tokens, parse_query
from threadline.store.util import fmt_ts, uuid7


async def hit_ids(store: Store, query: str, rank: bool = False) -> list[int]:
    return [h.message_id for h in await store.search(query, rank=rank) if h.message_id is not None]


def term_list(path: Path) -> tuple[sqlite3.Connection, TermList]:
    conn = sqlite3.connect(path)
    return conn, TermList(conn, "search_messages_terms")


# ---------------------------------------------------------------------- prefix expansion


@pytest.fixture(params=["expanded", "native"])
def prefix_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every prefix expanded into exact terms, or every one left to FTS5 (a range of few pages
    is, on a real database): both must find the same."""
    monkeypatch.setattr(search_ops, "NATIVE_PAGES", -1 if request.param == "expanded" else 10**9)
    return str(request.param)


async def test_a_prefix_finds_every_word_it_starts(
    store: Store, clock: FakeClock, prefix_mode: str
) -> None:
    s = await store.create_session("/tmp")
    ids = {}
    for text in ("configure the parser", "a config file", "confirmed", "conflict", "unrelated"):
        clock.advance(seconds=1)
        ids[text] = (await store.add_message(s.id, "user", text)).id
    expected = [ids["conflict"], ids["confirmed"], ids["a config file"]]
    expected.append(ids["configure the parser"])
    assert await hit_ids(store, "conf*") == expected
    assert await hit_ids(store, "confi*") == expected[1:]
    assert await hit_ids(store, "config*") == expected[2:]
    assert await hit_ids(store, "configu*") == expected[3:]
    assert await hit_ids(store, "configurable*") == []
    assert await hit_ids(store, "zzz*") == []
    # A phrase whose last word is a prefix; a negated prefix.
    assert await hit_ids(store, '"the pars"*') == [ids["configure the parser"]]
    assert await hit_ids(store, '"a conf"*') == [ids["a config file"]]
    assert await hit_ids(store, "conf* -confirmed") == [
        ids["conflict"],
        ids["a config file"],
        ids["configure the parser"],
    ]
    assert await hit_ids(store, "conf* -confi*") == [ids["conflict"]]
    ranked = await hit_ids(store, "conf*", rank=True)
    assert sorted(ranked) == sorted(expected)


async def test_a_prefix_of_many_words_keeps_the_short_common_ones(
    store: Store, clock: FakeClock, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_ops, "NATIVE_PAGES", -1)
    s = await store.create_session("/tmp")
    # 300 long words starting "th" sort before and after "the"; "the" is in the oldest message.
    words = [f"th{chr(97 + i // 26)}{chr(97 + i % 26)}xyzzy" for i in range(300)]
    the = await store.add_message(s.id, "user", "the")
    for start in range(0, len(words), 50):
        clock.advance(seconds=1)
        await store.add_message(s.id, "assistant", " ".join(words[start : start + 50]))
    conn, terms = term_list(db_path)
    try:
        expanded = terms.expand("th")
        assert 20 <= len(expanded) <= EXPAND_MAX and not terms.complete
        assert "the" in expanded
        assert all(t.startswith("th") for t in expanded)
        assert terms.seeks <= 2 * search_ops.EXPAND_SEEKS
        # A prefix of few words is listed whole, in order.
        assert terms.expand("thaa") == ["thaaxyzzy"] and terms.complete
        assert terms.expand("thzz") == [] and terms.complete
        # A range of many pages is only sampled, never stepping past the bare word: still
        # the short word and words of the prefix only.
        terms.range_pages = search_ops.DENSE_PAGES + 1
        search_ops._cache.clear()
        dense = terms.expand("th")
        assert "the" in dense and 2 <= len(dense) <= EXPAND_MAX and not terms.complete
        assert all(t.startswith("th") for t in dense)
        assert terms.seeks <= 2 * search_ops.EXPAND_SEEKS
    finally:
        conn.close()
    assert the.id in await hit_ids(store, "th*")
    assert len(await store.search("th*", limit=500)) == 7
    monkeypatch.setattr(search_ops, "DENSE_PAGES", -1)
    search_ops._cache.clear()
    assert the.id in await hit_ids(store, "th*")


async def test_prefix_of_words_with_diacritics_and_other_scripts(
    store: Store, clock: FakeClock, prefix_mode: str
) -> None:
    s = await store.create_session("/tmp")
    ids = {}
    for text in ("Übergrößenträger", "naïve café", "漢字テスト", "καλημέρα κόσμε", "ПРИВЕТ мир"):
        clock.advance(seconds=1)
        ids[text] = (await store.add_message(s.id, "user", text)).id
    assert await hit_ids(store, "über*") == [ids["Übergrößenträger"]]
    assert await hit_ids(store, "UBERGR*") == [ids["Übergrößenträger"]]  # folded like the index
    assert await hit_ids(store, "caf*") == [ids["naïve café"]]
    assert await hit_ids(store, "naï*") == [ids["naïve café"]]
    assert await hit_ids(store, "漢字*") == [ids["漢字テスト"]]
    assert await hit_ids(store, "καλη*") == [ids["καλημέρα κόσμε"]]
    assert await hit_ids(store, "прив*") == [ids["ПРИВЕТ мир"]]
    assert fts_tokens("Übergrößen-Träger_x") == ["ubergroßen", "trager", "x"]


@pytest.mark.parametrize(
    "query",
    ['"*', '"', "*", "**", "NEAR(*", "NEAR(q*", 'q"*', '"q" "*', "q**", "-q*", "\x00*", "\x01q*"]
    + ["e*", "a*", "ee*", "a1*", "OR*", "AND*", "q* OR", "(q*", "q*)", "🎉*", "\u0301*"],
)
async def test_hostile_prefixes_are_searched_or_refused(
    store: Store, clock: FakeClock, query: str, prefix_mode: str
) -> None:
    s = await store.create_session("/work/dir")
    quick = await store.add_message(s.id, "user", "quick NEAR(q) and OR AND content:quoted")
    try:
        hits = await store.search(query)
    except SearchQueryError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert {h.message_id for h in hits} <= {quick.id}
    # Directory tokens are never content: "e*" and "a*" find only the words.
    if query in ("e*", "ee*", "a1*"):
        assert hits == []


def test_parse_query_with_an_expander() -> None:
    expand = {"qu": ["quick", "quiet"], "zz": [], "one": ["one"]}.get
    assert parse_query("qu*", expand) == '(content : ("quick" OR "quiet"))'
    assert parse_query('"the qu"*', expand) == '(content : ("the quick" OR "the quiet"))'
    assert parse_query("zz*", expand) == '(content : "zz")'  # nothing starts with it
    assert parse_query("one*", expand) == '(content : "one")'
    assert parse_query("x -qu*", expand) == '(content : "x") NOT content : ("quick" OR "quiet")'
    # No expander (or the term list cannot be read): FTS5's own prefix query.
    assert parse_query("qu*") == '(content : "qu" *)'
    assert parse_query("qu*", lambda _p: None) == '(content : "qu" *)'


# ---------------------------------------------------------------------- the upgrade and build


def build_v6(path: Path, clock: FakeClock) -> dict[str, int]:
    """A database at schema version 6 with messages and a summary, as version 6 wrote them."""
    conn = sqlite3.connect(path, isolation_level=None)
    ids: dict[str, int] = {}
    try:
        open_and_migrate(conn, path, clock, migrations=load_migrations()[:6])
        conn.execute("BEGIN IMMEDIATE")
        for d in range(3):
            sid = uuid7(clock())
            stamp = fmt_ts(clock())
            wd = f"/proj/{d}"
            conn.execute(
                "INSERT INTO sessions (id, working_dir, dir_tokens, title, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sid, wd, dir_tokens(wd), f"session {d} about gardens", stamp, stamp),
            )
            for j in range(40):
                clock.advance(seconds=1)
                text = f"message {d}-{j} about {'tomatoes' if j % 3 else 'tomcat servers'} x{j}"
                cur = conn.execute(
                    "INSERT INTO messages (session_id, role, content, created_at)"
                    " VALUES (?, 'user', ?, ?)",
                    (sid, text, fmt_ts(clock())),
                )
                ids[f"{d}-{j}"] = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO summaries (session_id, content, first_message_id, last_message_id,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (sid, f"summary of tomatoes {d}", ids[f"{d}-0"], ids[f"{d}-9"], fmt_ts(clock())),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return ids


QUERIES = ["tomatoes", "tom*", "tomc*", '"about tomatoes"', "x1*", "message -tomatoes", "summ*"]


async def results(store: Store) -> dict[str, list[tuple[str, int | None, int | None]]]:
    out = {}
    for q in QUERIES:
        for scope, d in (("all", None), ("directory", "/proj/1")):
            hits = await store.search(q, scope, d, limit=500)
            out[f"{q}|{scope}"] = [(h.kind, h.message_id, h.summary_id) for h in hits]
    return out


def fts_check(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND sql LIKE '%USING fts5 %' AND name NOT LIKE '%_terms'"
            )
        ]
        for table in tables:
            if (
                conn.execute("SELECT 1 FROM search_build").fetchone()
                and table.startswith("search_")
                and table != "search_sessions"
            ):
                continue  # incomplete by design while the build runs
            conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        return tables
    finally:
        conn.close()


def names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


async def test_an_upgraded_database_searches_the_same_before_during_and_after_the_build(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "v6.db"
    build_v6(path, clock)
    # What version 6 finds: the same query code over the version-2 indexes (before 0007).
    conn = sqlite3.connect(path)
    v6 = {}
    for q in ("tomatoes", '"about tomatoes"'):
        match = search_ops.parse_query(q)
        v6[q] = [
            r[0]
            for r in conn.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC",
                (match,),
            )
        ]
    conn.close()

    store = await Store.open(path, clock=clock)
    try:
        assert 7 in store.migration.applied
        state = await store.search_build_state()
        assert state.total == 123 + 3 and not state.finished  # messages, summaries, sessions
        before = await results(store)
        assert [m for k, m, _s in before["tomatoes|all"] if k == "message"] == v6["tomatoes"]
        # The filter scans while its index is built.
        assert len(await store.list_sessions("all", query="garde")) == 3
        assert len(before["tom*|all"]) == 123
        # Writes while the build is pending: a new message, a changed and a deleted old one.
        s = (await store.list_sessions("all", limit=1))[0]
        added = await store.add_message(s.id, "user", "tomatoes arrived late")
        del_id = before["tomatoes|all"][-1][1]
        with sqlite3.connect(path) as raw:
            raw.execute("DELETE FROM messages WHERE id = ?", (del_id,))
            raw.execute(
                "UPDATE messages SET content = 'now about cucumbers' WHERE id = ?",
                (before["tomatoes|all"][-2][1],),
            )
            raw.execute(
                "UPDATE messages SET content = 'tomatoes again' WHERE id = ?",
                (before["tomatoes|all"][0][1],),
            )
        before = await results(store)
        assert before["tomatoes|all"][0][1] == added.id
    finally:
        await store.close()

    # A few short steps, then a "crash" (the process goes; the marker stays).
    raw = sqlite3.connect(path, isolation_level=None)
    steps = 0
    while steps < 3:
        raw.execute("BEGIN IMMEDIATE")
        rows, finished = search_ops.build_step(raw, 600)  # a few rows per step
        raw.execute("COMMIT")
        assert rows and not finished
        steps += 1
    done = raw.execute("SELECT done, upto FROM search_build WHERE name = 'messages'").fetchone()
    assert 0 < done[0] < done[1]
    raw.close()

    store = await Store.open(path, clock=clock)
    try:
        assert store.migration.applied == []
        assert await results(store) == before
        more = await store.add_message(s.id, "user", "tomatoes while building")
        expected = await results(store)
        assert expected["tomatoes|all"][0][1] == more.id
        seen: list[tuple[int, int]] = []
        await store.build_search_index(lambda done, total: seen.append((done, total)))
        assert seen and seen[-1][0] == seen[-1][1]
        assert (await store.search_build_state()).finished
        assert await results(store) == expected
        assert len(await store.list_sessions("all", query="garde")) == 3
        assert await store.count_sessions("all", query="session 1 about") == 1
        assert await store.integrity_check() == []
    finally:
        await store.close()
    left = names(path)
    assert "messages_fts" not in left and "messages_fts_ai" not in left
    assert "summaries_fts" not in left and "messages_fts_terms" not in left
    assert {"search_messages", "search_summaries", "search_sessions"} <= left
    fts_check(path)
    # The WAL was truncated after the build.
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


async def test_a_new_database_has_only_the_new_indexes(store: Store) -> None:
    left = names(store.path)
    assert "messages_fts" not in left and "search_messages" in left
    assert (await store.search_build_state()).finished
    s = await store.create_session("/tmp")
    m = await store.add_message(s.id, "user", "fresh words")
    assert await hit_ids(store, "fre*") == [m.id]
    await store.build_search_index()  # nothing to do
    fts_check(store.path)


async def test_rebuild_during_a_pending_build_completes_it(tmp_path: Path, clock) -> None:
    path = tmp_path / "v6.db"
    build_v6(path, clock)
    store = await Store.open(path, clock=clock)
    try:
        await store.rebuild_search_index()
        assert len(await store.search("tomatoes", limit=500)) == 81
        await store.build_search_index()
        assert (await store.search_build_state()).finished
        assert len(await store.search("tomatoes", limit=500)) == 81
    finally:
        await store.close()
    fts_check(path)


# ---------------------------------------------------------------------- the sidebar filter


async def test_the_filter_uses_the_title_and_preview_index(
    store: Store, workdir: str, clock: FakeClock
) -> None:
    a = await store.create_session(workdir, title="Kubernetes rollout plan")
    b = await store.create_session(workdir)
    await store.add_message(b.id, "user", "why does Kubectl hang on apply")
    c = await store.create_session(workdir, title="groceries")

    async def filtered(q: str) -> list[str]:
        return [r.id for r in await store.list_sessions("directory", workdir, query=q)]

    assert set(await filtered("kube")) == {a.id, b.id}
    assert await filtered("kubern") == [a.id]
    assert await filtered("rollout pl") == [a.id]  # a phrase, its last word a prefix
    assert await filtered("plan rollout") == []
    assert await filtered("does kubectl") == [b.id]
    assert await store.count_sessions("directory", workdir, query="kube") == 2
    # Renaming, trashing and deleting keep the index right.
    await store.update_session(c.id, title="kubelet notes")
    assert set(await filtered("kube")) == {a.id, b.id, c.id}
    await store.update_session(a.id, title="something else")
    assert set(await filtered("kube")) == {b.id, c.id}
    assert await store.purge_session(b.id)
    assert set(await filtered("kube")) == {c.id}
    conn = sqlite3.connect(store.path)
    try:
        keys = conn.execute("SELECT count(*) FROM search_session_keys").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM search_sessions").fetchone()[0]
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        assert keys == rows == sessions
    finally:
        conn.close()
    fts_check(store.path)


async def test_the_filter_with_many_words_of_a_prefix_drops_none(
    store: Store, workdir: str
) -> None:
    made = []
    for i in range(EXPAND_MAX + 20):
        s = await store.create_session(workdir, title=f"zeta{i:03d}x plan")
        made.append(s.id)
    found = await store.list_sessions("directory", workdir, query="zeta", limit=None)
    assert len(found) == len(made)
    assert await store.count_sessions("directory", workdir, query="zeta0") == len(made)
    assert await store.count_sessions("directory", workdir, query="zeta06") == 8


@pytest.mark.parametrize("query", ['"', "*", "NEAR(", "%", "_", "-", 'a"b', "(x", "🎉", "\x00"])
async def test_hostile_filters(store: Store, workdir: str, query: str) -> None:
    s = await store.create_session(workdir, title='a"b (x 100% 🎉 under_score - NEAR(')
    found = await store.list_sessions("directory", workdir, query=query)
    assert [r.id for r in found] in ([s.id], [])
    if query not in ("\x00", "*"):
        assert [r.id for r in found] == [s.id]


# ---------------------------------------------------------------------- scope counts


def scanned(path: Path, where: str, params: tuple = ()) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(
            conn.execute(f"SELECT count(*) FROM sessions WHERE {where}", params).fetchone()[0]
        )
    finally:
        conn.close()


async def assert_counts(store: Store, root: str, sub: str) -> None:
    path = store.path
    assert await store.count_sessions("all") == scanned(path, "deleted_at IS NULL")
    assert await store.count_sessions("all", trashed=True) == scanned(
        path, "deleted_at IS NOT NULL"
    )
    assert await store.count_sessions("directory", sub) == scanned(
        path, "deleted_at IS NULL AND working_dir = ?", (sub,)
    )
    assert await store.count_sessions("workspace", root) == scanned(
        path,
        "deleted_at IS NULL AND (working_dir = ? OR working_dir LIKE ?)",
        (root, root + "/%"),
    )


async def test_scope_counts_follow_every_change(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "sub").mkdir()
    (tmp_path / "repo-other").mkdir()
    sub = str(root / "sub")
    made = []
    for d in (root, root / "sub", root / "sub", tmp_path / "repo-other", tmp_path):
        made.append((await store.create_session(str(d))).id)
    await assert_counts(store, str(root), sub)
    assert await store.count_sessions("workspace", str(root)) == 3
    await store.delete_session(made[1])  # to the trash
    await assert_counts(store, str(root), sub)
    await store.restore_session(made[1])
    await assert_counts(store, str(root), sub)
    await store.delete_session(made[2])
    assert await store.purge_session(made[2])
    await assert_counts(store, str(root), sub)
    with sqlite3.connect(store.path) as conn:  # a session moved to another directory
        conn.execute("UPDATE sessions SET working_dir = ? WHERE id = ?", (sub, made[0]))
    await assert_counts(store, str(root), sub)
    assert await store.count_sessions("directory", sub) == 2
    await store.purge_trash(everything=True)
    await assert_counts(store, str(root), sub)


async def test_an_upgraded_database_counts_its_scopes(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "v6.db"
    build_v6(path, clock)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET deleted_at = created_at WHERE working_dir = '/proj/2'")
    async with await Store.open(path, clock=clock) as store:
        assert await store.count_sessions("all") == 2
        assert await store.count_sessions("all", trashed=True) == 1
        assert await store.count_sessions("directory", "/proj/1") == 1
        assert await store.count_sessions("workspace", "/proj") == 2


# ---------------------------------------------------------------------- purging in steps


async def test_a_long_session_is_purged_in_short_steps_and_a_crash_resumes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.store import sessions as session_ops

    monkeypatch.setattr(session_ops, "PURGE_CHUNK", 4)
    long = await store.create_session("/tmp")
    for i in range(11):
        await store.add_message(long.id, "user", f"purgeable words {i}")
    keep = await store.create_session("/tmp")
    kept = await store.add_message(keep.id, "user", "purgeable but kept")
    # One step, then the process "dies": the session is in the trash, 4 messages fewer.
    raw = sqlite3.connect(store.path, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    purged, left = session_ops.purge_step(raw, [long.id], store._clock(), False)
    raw.execute("COMMIT")
    raw.close()
    assert purged == [] and left == [long.id]
    trashed = await store.list_sessions("all", trashed=True)
    assert [s.id for s in trashed] == [long.id] and trashed[0].message_count == 7
    assert [h.message_id for h in await store.search("purgeable")] == [kept.id]
    # The next purge of the trash finishes it, in several transactions.
    steps = []
    real = session_ops.purge_step

    def counting(*args):  # type: ignore[no-untyped-def]
        steps.append(1)
        return real(*args)

    monkeypatch.setattr(session_ops, "purge_step", counting)
    assert await store.purge_trash(everything=True) == [long.id]
    assert len(steps) == 2  # a chunk of 4, then the last 3 with the session
    assert await store.get_session(long.id) is None
    assert await store.count_sessions("all", trashed=True) == 0
    assert await store.integrity_check() == []
    fts_check(store.path)


async def test_a_session_restored_during_a_purge_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.store import sessions as session_ops

    monkeypatch.setattr(session_ops, "PURGE_CHUNK", 2)
    a = await store.create_session("/tmp")
    b = await store.create_session("/tmp")
    for s in (a, b):
        for i in range(5):
            await store.add_message(s.id, "user", f"message {i}")
        await store.delete_session(s.id)
    real = session_ops.purge_step
    restored = []

    def restoring(conn, ids, now, trashed_only):  # type: ignore[no-untyped-def]
        if not restored:  # b is restored by "another process" after the first step
            conn.execute("UPDATE sessions SET deleted_at = NULL WHERE id = ?", (b.id,))
            restored.append(b.id)
        return real(conn, ids, now, trashed_only)

    monkeypatch.setattr(session_ops, "purge_step", restoring)
    purged = await store.purge_trash(everything=True)
    assert purged == [a.id]
    got = await store.get_session(b.id)
    assert got is not None and got.deleted_at is None and got.message_count == 5


async def test_the_filter_finds_the_same_when_matches_are_dense(
    store: Store, workdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.store import sessions as session_ops

    for i in range(6):
        await store.create_session(workdir, title=f"densely matched {i}")
    await store.create_session(workdir, title="other")
    sparse = await store.list_sessions("directory", workdir, query="dense", limit=4)
    monkeypatch.setattr(session_ops, "FILTER_DENSE", 2)  # now walked in list order
    dense = await store.list_sessions("directory", workdir, query="dense", limit=4)
    assert [s.id for s in dense] == [s.id for s in sparse] and len(dense) == 4
    assert await store.count_sessions("directory", workdir, query="dense") == 6


async def test_the_build_in_many_steps_beside_another_writer_stays_exact(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build is many short transactions while another connection keeps writing: every
    row is indexed once, whichever side of a step it landed."""
    import asyncio
    import threading

    path = tmp_path / "v6.db"
    build_v6(path, clock)
    monkeypatch.setattr(search_ops, "BUILD_FIRST_BYTES", 400)
    monkeypatch.setattr(search_ops, "BUILD_MAX_BYTES", 400)
    store = await Store.open(path, clock=clock)
    steps: list[int] = []
    real = search_ops.build_step

    def counted(conn, budget):  # type: ignore[no-untyped-def]
        steps.append(budget)
        return real(conn, budget)

    monkeypatch.setattr(search_ops, "build_step", counted)
    written: list[int] = []
    stop = threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        sid = conn.execute("SELECT id FROM sessions LIMIT 1").fetchone()[0]
        while not stop.is_set() and len(written) < 20:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                "INSERT INTO messages (session_id, role, content, created_at)"
                " VALUES (?, 'user', 'written by another process about tomatoes', ?)",
                (sid, fmt_ts(clock())),
            )
            conn.execute("COMMIT")
            written.append(int(cur.lastrowid or 0))
        conn.close()

    thread = threading.Thread(target=other_process)
    try:
        thread.start()
        await store.build_search_index()
        stop.set()
        await asyncio.to_thread(thread.join)
        assert len(steps) > 10  # many steps, each its own transaction
        assert written
        hits = await store.search("written", limit=500)
        assert sorted(h.message_id for h in hits) == sorted(written)
        assert await store.integrity_check() == []
    finally:
        stop.set()
        thread.join()
        await store.close()
    fts_check(path)
