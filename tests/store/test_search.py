"""Full-text search: query syntax, scopes, ordering, ranking and hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.clock import FakeClock
from threadline.models import HIGHLIGHT_END, HIGHLIGHT_START, split_highlights
from threadline.store import SearchQueryError, Store
from threadline.store import scope as scopes
from threadline.store.search import parse_query


@pytest.fixture
async def corpus(store: Store, tmp_path: Path, clock: FakeClock) -> dict[str, object]:
    """Two directories with known messages; returns their paths and the message ids by text."""
    a, b = tmp_path / "alpha", tmp_path / "beta"
    a.mkdir(), b.mkdir()
    sa = await store.create_session(str(a), title="alpha session")
    sb = await store.create_session(str(b))
    ids: dict[str, int] = {}
    texts = [
        (sa.id, "the quick brown fox jumps"),
        (sa.id, "a brown dog sleeps"),
        (sa.id, "quick thinking saves the day"),
        (sa.id, "configuration of the parser: see content:foo and NEAR(x y)"),
        (sb.id, "secret plans in beta with the quick fox"),
        (sb.id, "prefixed words: quickly, quicksand"),
    ]
    for session_id, text in texts:
        clock.advance(seconds=1)
        m = await store.add_message(session_id, "user", text)
        ids[text] = m.id
    return {"a": str(a), "b": str(b), "ids": ids, "sa": sa.id, "sb": sb.id}


async def hit_ids(store: Store, query: str, scope: str = "all", d: str | None = None) -> list[int]:
    return [h.message_id for h in await store.search(query, scope, d) if h.message_id is not None]


async def test_words_phrases_prefix_negation_or(store: Store, corpus: dict) -> None:
    ids = corpus["ids"]
    fox = ids["the quick brown fox jumps"]
    dog = ids["a brown dog sleeps"]
    day = ids["quick thinking saves the day"]
    beta_fox = ids["secret plans in beta with the quick fox"]
    quickly = ids["prefixed words: quickly, quicksand"]
    # Newest first.
    assert await hit_ids(store, "quick") == [beta_fox, day, fox]
    assert await hit_ids(store, "quick fox") == [beta_fox, fox]  # both words, anywhere
    assert await hit_ids(store, '"quick brown"') == [fox]  # a phrase
    assert await hit_ids(store, '"brown quick"') == []
    assert await hit_ids(store, "quick*") == [quickly, beta_fox, day, fox]  # a prefix
    assert await hit_ids(store, "quick -fox") == [day]  # exclusion
    assert await hit_ids(store, 'brown -"quick brown"') == [dog]
    assert await hit_ids(store, "dog OR day") == [day, dog]
    assert await hit_ids(store, "QUICK Fox") == [beta_fox, fox]  # case-insensitive


async def test_hit_fields_and_snippet(store: Store, corpus: dict) -> None:
    hits = await store.search("sleeps")
    assert len(hits) == 1
    hit = hits[0]
    assert hit.kind == "message" and hit.role == "user"
    assert hit.session_id == corpus["sa"] and hit.session_title == "alpha session"
    assert hit.working_dir == corpus["a"]
    assert f"{HIGHLIGHT_START}sleeps{HIGHLIGHT_END}" in hit.snippet
    assert ("sleeps", True) in split_highlights(hit.snippet)
    untitled = (await store.search("secret"))[0]
    assert untitled.session_title == "secret plans in beta with the quick fox"  # the preview


async def test_scopes(store: Store, corpus: dict, tmp_path: Path) -> None:
    a, b = corpus["a"], corpus["b"]
    assert len(await hit_ids(store, "quick", "directory", a)) == 2
    assert len(await hit_ids(store, "quick", "directory", b)) == 1
    assert len(await hit_ids(store, "quick", "all")) == 3
    # Workspace: a git repository with nested directories.
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    s1 = await store.create_session(str(repo))
    s2 = await store.create_session(str(repo / "src" / "deep"))
    m1 = await store.add_message(s1.id, "user", "workspaceword at the root")
    m2 = await store.add_message(s2.id, "user", "workspaceword deep inside")
    outside = tmp_path / "repo2"
    outside.mkdir()
    s3 = await store.create_session(str(outside))
    await store.add_message(s3.id, "user", "workspaceword next door")
    ws = await hit_ids(store, "workspaceword", "workspace", str(repo / "src"))
    assert ws == [m2.id, m1.id]
    assert await hit_ids(store, "workspaceword", "directory", str(repo / "src")) == []
    assert len(await hit_ids(store, "workspaceword")) == 3


async def test_rank_orders_by_relevance(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    weak = await store.add_message(s.id, "user", "rankword once among many other words here " * 3)
    clock.advance(seconds=1)
    strong = await store.add_message(s.id, "user", "rankword rankword rankword")
    clock.advance(seconds=1)
    newest = await store.add_message(s.id, "user", "rankword and " + "filler " * 50)
    newest_first = await store.search("rankword")
    assert [h.message_id for h in newest_first] == [newest.id, strong.id, weak.id]
    assert all(h.rank is None for h in newest_first)
    ranked = await store.search("rankword", rank=True)
    assert ranked[0].message_id == strong.id
    assert all(h.rank is not None for h in ranked)
    assert [h.rank for h in ranked] == sorted(h.rank for h in ranked if h.rank is not None)
    assert f"{HIGHLIGHT_START}rankword{HIGHLIGHT_END}" in ranked[0].snippet


async def test_rank_counts_words_as_the_index_cuts_them(store: Store, clock: FakeClock) -> None:
    """Relevance counts a word where the index has it as a token: after punctuation, an
    underscore or a newline, in any case and with its accents; not inside another word."""
    s = await store.create_session("/tmp")
    inside = await store.add_message(s.id, "user", "xtokword tokword")
    clock.advance(seconds=1)
    cut = await store.add_message(s.id, "user", "(TOKWORD) a_Tokword\ntökword")
    clock.advance(seconds=1)
    once = await store.add_message(s.id, "user", "tokword and five other words")
    ranked = await store.search("tokword", rank=True)
    # Counted right: three times in `cut`; once in the other two, the shorter one first.
    assert [h.message_id for h in ranked] == [cut.id, inside.id, once.id]
    assert ranked[0].rank is not None and ranked[0].rank < ranked[1].rank


async def test_rank_weighs_a_rare_word_over_a_common_one(store: Store, clock: FakeClock) -> None:
    """With either word enough, a message holding the rarer one comes first (its IDF)."""
    s = await store.create_session("/tmp")
    for i in range(30):
        await store.add_message(s.id, "user", f"commonword filler number {i}")
        clock.advance(seconds=1)
    rare = await store.add_message(s.id, "user", "rareword filler number x")
    clock.advance(seconds=1)
    common = await store.add_message(s.id, "user", "commonword filler number y")
    ranked = await store.search("commonword OR rareword", rank=True)
    assert ranked[0].message_id == rare.id
    assert common.id in [h.message_id for h in ranked]


async def test_rank_counts_a_prefix_as_one_term(store: Store, clock: FakeClock) -> None:
    """`pre*` scores each message by how many of its words start with `pre`, as FTS5 counts a
    prefix; every hit gets its snippet."""
    s = await store.create_session("/tmp")
    few = await store.add_message(s.id, "user", "prefixa words")
    clock.advance(seconds=1)
    many = await store.add_message(s.id, "user", "prefixb prefixc prefixd words")
    clock.advance(seconds=1)
    none_inside = await store.add_message(s.id, "user", "prefixe words xprefixf xprefixg")
    ranked = await store.search("prefix*", rank=True)
    assert [h.message_id for h in ranked] == [many.id, few.id, none_inside.id]
    assert all(HIGHLIGHT_START in h.snippet for h in ranked)


async def test_rank_merges_summaries_and_messages(store: Store, clock: FakeClock) -> None:
    s = await store.create_session("/tmp")
    first = await store.add_message(s.id, "user", "mergeword once in a long message " * 4)
    clock.advance(seconds=1)
    last = await store.add_message(s.id, "assistant", "nothing here")
    clock.advance(seconds=1)
    await store.save_summary(s.id, "mergeword mergeword mergeword", first.id, last.id, 10, "m")
    ranked = await store.search("mergeword", rank=True)
    assert [h.kind for h in ranked] == ["summary", "message"]
    assert f"{HIGHLIGHT_START}mergeword{HIGHLIGHT_END}" in ranked[0].snippet
    newest = await store.search("mergeword")
    assert [h.kind for h in newest] == ["summary", "message"]
    assert all(HIGHLIGHT_START in h.snippet for h in newest)


async def test_newest_first_takes_a_summary_newer_than_a_full_page(
    store: Store, clock: FakeClock
) -> None:
    """A page filled with messages still takes in a summary newer than its last message, and
    one older than every message shown stays out of it."""
    s = await store.create_session("/tmp")
    old_first = await store.add_message(s.id, "user", "pageword old")
    clock.advance(seconds=1)
    await store.save_summary(s.id, "pageword old summary", old_first.id, old_first.id)
    messages = []
    for i in range(4):
        clock.advance(seconds=1)
        messages.append(await store.add_message(s.id, "user", f"pageword {i}"))
    clock.advance(seconds=1)
    await store.save_summary(s.id, "pageword new summary", messages[0].id, messages[-1].id)
    hits = await store.search("pagew*", limit=3)
    assert [h.kind for h in hits] == ["summary", "message", "message"]
    assert hits[0].snippet == f"{HIGHLIGHT_START}pageword{HIGHLIGHT_END} new summary"
    assert [h.message_id for h in hits[1:]] == [messages[3].id, messages[2].id]
    everything = await store.search("pageword", limit=50)
    assert [h.kind for h in everything].count("summary") == 2


async def test_limit(store: Store) -> None:
    s = await store.create_session("/tmp")
    for i in range(12):
        await store.add_message(s.id, "user", f"limitword {i}")
    assert len(await store.search("limitword", limit=5)) == 5
    assert len(await store.search("limitword", limit=5, rank=True)) == 5
    assert await store.search("limitword", limit=0) == []
    assert await store.search("limitword", limit=-1) == []


HOSTILE = [
    '"',
    '""',
    '"unbalanced quote',
    'foo"bar',
    "'single' quotes",
    "*",
    "**",
    "quick*",
    "*quick",
    "-",
    "--",
    "-quick",
    "- -",
    "NEAR(",
    "NEAR(quick fox",
    "NEAR(quick fox, 2)",
    "AND",
    "OR",
    "NOT",
    "quick AND",
    "OR quick",
    "quick OR",
    "quick OR OR fox",
    "quick NOT fox",
    "(",
    ")",
    "((quick)",
    "quick) OR (fox",
    "content:foo",
    "content : foo",
    "{content}: quick",
    "dirs:quick",
    "dirs : quick",
    "^quick",
    "quick + fox",
    ":",
    "\x00",
    "quick\x00fox",
    "\x1b[31mquick\x1b[0m",
    "\x07\x08\x7f",
    "\t\n\r",
    "   ",
    "",
    "\u202equick",
    "🎉",
    "quick 🎉",
    "; DROP TABLE messages; --",
    "' OR 1=1 --",
    "%_%",
    "_",
    "__init__",
    "\\",
    "rowid:1",
    "messages_fts:quick",
    "quick fox " * 40,
    "x" * 999,
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_crash(store: Store, corpus: dict, query: str) -> None:
    for scope, d in (("all", None), ("directory", corpus["a"]), ("workspace", corpus["a"])):
        for rank in (False, True):
            try:
                hits = await store.search(query, scope, d, rank=rank)
            except SearchQueryError as exc:
                assert "\n" not in str(exc) and str(exc)
                continue
            assert isinstance(hits, list)
            if scope != "all":
                assert all(h.working_dir == corpus["a"] for h in hits)
    # The database is unharmed.
    assert await store.count_sessions("all") == 2
    assert len(await store.search("quick")) == 3


@pytest.mark.parametrize(
    "query",
    ["", "   ", "*", "-", "-quick", '""', "\x00", ":", "!!!", "_", "___", "x" * 1001, "w " * 40]
    + ["a\udc80"],
)
async def test_unsearchable_queries_are_refused_clearly(store: Store, query: str) -> None:
    with pytest.raises(SearchQueryError) as info:
        await store.search(query)
    assert "\n" not in str(info.value)


async def test_operators_are_searched_as_words(store: Store, corpus: dict) -> None:
    near = corpus["ids"]["configuration of the parser: see content:foo and NEAR(x y)"]
    assert await hit_ids(store, "NEAR(") == [near]
    assert await hit_ids(store, "content:foo") == [near]
    assert await hit_ids(store, "AND") == [near]  # the word "and"


async def test_scope_cannot_be_escaped(store: Store, corpus: dict) -> None:
    """No query text reaches the `dirs` column: a directory search never sees another's hits."""
    a, b = corpus["a"], corpus["b"]
    token_b = scopes.exact_token(b)
    ancestor_b = scopes.ancestor_token(b)
    attempts = [
        "secret",
        f"dirs:{token_b}",
        f'dirs : "{token_b}"',
        f"secret OR dirs:{token_b}",
        f"quick OR {token_b}",
        f"{{dirs}}: {token_b}",
        f'") OR dirs : "{token_b}',
        f'"secret" OR dirs : "{ancestor_b}"',
        f"- dirs:{token_b} quick",
        f"quick) OR (dirs:{token_b}",
        f"{token_b}*",
        "e*",
        "a*",
    ]
    for query in attempts:
        try:
            hits = await store.search(query, "directory", a)
        except SearchQueryError:
            continue
        assert all(h.session_id == corpus["sa"] for h in hits), query
        # And the tokens themselves are not searchable content anywhere.
        if token_b in query and "OR" not in query and "quick" not in query:
            assert await store.search(query) == [], query


def test_parse_query_quotes_everything() -> None:
    assert parse_query("foo") == '(content : "foo")'
    assert parse_query('say "hi there"') == '(content : "say" AND content : "hi there")'
    assert parse_query("ab*") == '(content : "ab" *)'
    assert parse_query('x -y -"z w"') == '(content : "x") NOT content : "y" NOT content : "z w"'
    assert parse_query("a OR b c") == '((content : "a" OR content : "b") AND content : "c")'
    assert parse_query('q"uote') == '(content : "q""uote")'
