"""`threadline search` through the real entry point."""

from __future__ import annotations

import json

import pytest

from cli.helpers import fake_tty, no_controls
from threadline.store import Store

HIT_KEYS = [
    "kind",
    "session_id",
    "session_title",
    "working_dir",
    "message_id",
    "summary_id",
    "role",
    "created_at",
    "snippet",
    "highlights",
    "rank",
]

HOSTILE_QUERIES = [
    '"',
    '""',
    "'",
    "*",
    "**",
    "-",
    "--",
    "(",
    ")",
    "()",
    "NEAR(",
    "NEAR(a b",
    "a AND",
    "OR",
    "NOT",
    "AND OR NOT",
    "content:",
    "dirs : x",
    "^",
    'a"b',
    "\x00",
    "\x1b[31m",
    "{a b}",
    "a:b",
    '-"phrase',
    "ü*",
    "漢字",
    "'; DROP TABLE messages; --",
]


@pytest.fixture
def corpus(with_db, clock, workdir, tmp_path) -> dict[str, str]:
    other = tmp_path / "other"
    other.mkdir()

    async def fill(store: Store) -> dict[str, str]:
        a = await store.create_session(workdir, title="Database talk")
        m1 = await store.add_message(a.id, "user", "How does sqlite full text search work?")
        clock.advance(minutes=1)
        m2 = await store.add_message(a.id, "assistant", "sqlite uses FTS5 virtual tables")
        await store.save_summary(a.id, "A chat about sqlite and its search.", m1.id, m2.id)
        clock.advance(minutes=1)
        b = await store.create_session(str(other), title="Evil \x1b]0;pwned\x07")
        await store.add_message(b.id, "user", "sqlite \x1b]0;pwned\x07 injection\nnext line")
        clock.advance(minutes=1)
        c = await store.create_session(workdir, title="Snakes")
        await store.add_message(c.id, "user", "python python python sqlite")
        return {"a": a.id, "b": b.id, "c": c.id}

    return with_db(fill)


def test_search_newest_first_everywhere(cli, corpus, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    r = cli("search", "sqlite")
    assert r.status == 0
    headers = r.lines[0::2]
    snippets = r.lines[1::2]
    assert len(headers) == 5  # four messages and one summary, every directory
    assert "Snakes" in headers[0]  # newest first
    assert all(s.startswith("    ") for s in snippets)
    assert "**sqlite**" in r.out  # piped: matches marked with asterisks
    assert "\x1b[" not in r.out
    assert "other" in r.out  # the directory is shown when searching everywhere
    assert "summary" in r.out


def test_search_json_shape(cli, corpus):
    data = json.loads(cli("search", "full", "text", "--json").out)
    assert len(data) == 1
    hit = data[0]
    assert list(hit) == HIT_KEYS
    assert hit["session_id"] == corpus["a"] and hit["role"] == "user"
    assert hit["kind"] == "message" and hit["created_at"].endswith("Z")
    marked = [hit["snippet"][s:e] for s, e in hit["highlights"]]
    assert [m.lower() for m in marked] == ["full", "text"]


def test_search_scopes_and_limit(cli, corpus, workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)
    data = json.loads(cli("search", "sqlite", "--dir", str(tmp_path / "other"), "--json").out)
    assert {h["session_id"] for h in data} == {corpus["b"]}
    data = json.loads(cli("search", "sqlite", "--dir", workdir, "--json").out)
    assert corpus["b"] not in {h["session_id"] for h in data}
    (tmp_path / ".git").mkdir()
    data = json.loads(cli("search", "sqlite", "--workspace", "--json").out)
    assert len(data) == 5
    data = json.loads(cli("search", "sqlite", "--limit", "2", "--json").out)
    assert len(data) == 2
    assert cli("search", "sqlite", "--limit", "0").status == 2


def test_search_rank(cli, corpus):
    data = json.loads(cli("search", "python", "--rank", "--json").out)
    assert data[0]["session_id"] == corpus["c"] and data[0]["rank"] is not None
    plain = json.loads(cli("search", "sqlite", "--json").out)
    ranked = json.loads(cli("search", "sqlite", "--rank", "--json").out)
    assert {h["message_id"] for h in plain} == {h["message_id"] for h in ranked}


def test_search_sanitises_snippets_and_titles(cli, corpus):
    r = cli("search", "injection")
    assert no_controls(r.out)
    assert "^[]0;pwned^G" in r.out
    assert "next line" in r.lines[1]  # the snippet is one line


def test_search_highlights_on_a_terminal(cli, corpus, monkeypatch):
    fake_tty(monkeypatch, columns=50)
    r = cli("search", "injection")
    assert "\x1b[1;7minjection\x1b[0m" in r.out
    assert "^[]0;pwned^G" in r.out  # the hostile bytes still do not get through
    for line in r.lines:
        plain = line.replace("\x1b[1;7m", "").replace("\x1b[0m", "")
        assert len(plain) <= 50


@pytest.mark.parametrize("value", ["1", "yes"])
def test_no_color_turns_the_highlight_off(cli, corpus, monkeypatch, value):
    fake_tty(monkeypatch, columns=80)
    monkeypatch.setenv("NO_COLOR", value)
    r = cli("search", "injection")
    assert "\x1b" not in r.out
    assert "**injection**" in r.lines[1]
    monkeypatch.setenv("NO_COLOR", "")  # empty: as if unset (no-color.org)
    assert "\x1b[1;7minjection\x1b[0m" in cli("search", "injection").out


def test_no_matches(cli, corpus):
    r = cli("search", "zebra")
    assert r.status == 0 and r.out == "" and "No matches" in r.err
    assert json.loads(cli("search", "zebra", "--json").out) == []


def test_query_syntax(cli, corpus):
    phrase = json.loads(cli("search", '"virtual tables"', "--json").out)
    assert len(phrase) == 1
    prefix = json.loads(cli("search", "sqli*", "--json").out)
    assert len(prefix) == 5
    excluded = json.loads(cli("search", "--json", "--", "sqlite", "-python").out)
    assert corpus["c"] not in {h["session_id"] for h in excluded}


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_are_searched_or_rejected_cleanly(cli, corpus, query):
    r = cli("search", "--json", "--", query)
    assert r.status in (0, 2), r.err
    if r.status == 0:
        assert isinstance(json.loads(r.out), list)
    else:
        assert r.err.startswith("threadline: error:") and r.err.count("\n") == 1
        assert "Traceback" not in r.err
    r = cli("search", "--", query)  # the table path too
    assert r.status in (0, 2) and "Traceback" not in r.err


def test_piped_marks_do_not_double_the_texts_own_stars(cli, with_db, workdir):
    """A match the text already wraps in `**` (Markdown bold) shows as `**retry**`, not as
    `****retry****`; other matches in the same snippet are still marked."""

    async def fill(store: Store) -> None:
        s = await store.create_session(workdir, title="Bold")
        await store.add_message(s.id, "user", "Then **retry** it, and retry once more.")

    with_db(fill)
    r = cli("search", "retry")
    snippet = r.lines[1]
    assert "****" not in snippet
    assert "Then **retry** it, and **retry** once more." in snippet
