"""Claude Code sessions, read from the real samples and from small hand-written files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from threadline.records import SourceFormatError
from threadline.sources import get

from .helpers import (
    HOSTILE,
    SAMPLES,
    line_ends,
    load_once,
    read_all,
    read_in_steps,
    sample,
    sample_tree,
)

CC = "claude-code"


@pytest.fixture
def source():
    return get(CC)


def kinds(batch):
    return [m.payload["kind"] for m in batch.messages]


def one_session(batches):
    sessions = [b for b in batches if not b.title_only]
    assert len({b.source_id for b in sessions}) == 1
    messages = [m for b in sessions for m in b.messages]
    return sessions[-1], messages


def test_short_session_one_reply_per_api_message(source):
    batches = read_all(source, SAMPLES / "claude-code/spotter/short.jsonl")
    session, messages = one_session(batches)
    assert session.source_id == "55604662-cf2a-4331-851a-ec234028f8ca"
    assert session.working_dir == "/home/marco/projects/spotter"
    assert session.model == "claude-opus-4-6"
    assert [m.payload["kind"] for m in messages] == [
        "prompt",
        "reply",
        "tool_result",
        "tool_result",
        "info",
        "command",
    ]
    prompt, reply, bash, glob, interrupted, command = messages
    assert prompt.role == "user" and prompt.content == "mix phx.server doesnt seem to start"
    assert reply.key == "msg_01MKH1ccEGrZGNPvu8pYiiQa"
    assert len(reply.payload["records"]) == 5  # the five lines of that API message
    assert [p["type"] for p in reply.payload["parts"]] == [
        "thinking",
        "text",
        "tool_call",
        "tool_call",
    ]
    assert reply.payload["parts"][2]["summary"] == "mix phx.server 2>&1 | head -80"
    assert reply.input_tokens == 3 + 13835 + 11515 and reply.output_tokens == 13
    assert reply.created_at.isoformat() == "2026-02-10T21:11:59.186000+00:00"
    # Tool results are never words the user typed.
    assert bash.role == glob.role == "tool"
    assert bash.payload["parts"][0]["name"] == "Bash"
    assert glob.payload["parts"][0]["name"] == "Glob"
    assert bash.payload["parts"][0]["is_error"] is True
    assert interrupted.role == "system"
    # /model and its output, the SGR escape kept exactly (sanitising is the display's job).
    part = command.payload["parts"][0]
    assert (part["name"], part["output"]) == (
        "/model",
        "Kept model as \x1b[1mDefault (recommended)\x1b[22m",
    )
    assert len(command.payload["records"]) == 2


def test_bookkeeping_lines_are_not_messages(source):
    path = SAMPLES / "claude-code/spotter/tool_heavy.jsonl"
    _, messages = one_session(read_all(source, path))
    records = [r for m in messages for r in m.payload["records"]]
    assert {r["type"] for r in records} <= {"user", "assistant", "system"}
    by_kind = {}
    for m in messages:
        by_kind.setdefault(m.payload["kind"], []).append(m)
    assert [m.payload["parts"][0]["name"] for m in by_kind["command"]] == ["/mcp", "/mcp"]
    assert by_kind["meta"][0].content.startswith("<local-command-caveat>")
    # every user/assistant/system line with something to show is in exactly one message
    wanted = [
        json.loads(line)["uuid"]
        for line in path.read_text().splitlines()
        if json.loads(line)["type"] in ("user", "assistant")
    ]
    kept = [r["uuid"] for r in records]
    assert sorted(kept) == sorted(set(kept))
    assert set(wanted) <= set(kept)


def test_compaction_subagents_and_notifications(source, tmp_path):
    tree = sample_tree("claude-code/spotter", tmp_path)
    path = tree / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
    batches = read_all(source, path)
    session, messages = one_session(batches)
    keys = [m.key for m in messages]
    summaries = [s for b in batches for s in b.summaries]
    assert len(summaries) == 1
    boundary = next(m for m in messages if m.key == "dd3cc2e6-a191-4331-a0f0-2473e6d7692d")
    assert boundary.payload["kind"] == "info"
    assert summaries[0].first_key == keys[0]
    assert summaries[0].last_key == keys[keys.index(boundary.key) - 1]
    assert summaries[0].content.startswith("This session is being continued")
    # The compaction agent's transcript is kept with the compaction.
    agents = [p for p in boundary.payload["parts"] if p["type"] == "subagent"]
    assert [a["records"][0]["agentId"] for a in agents] == ["acompact-e1f845"]
    # The Explore agent's 2.x transcript file is kept with the Task call that started it.
    holder = next(
        m
        for m in messages
        if any(p.get("id") == "toolu_017pLRuPHYTX5t99EnLyV53m" for p in m.payload["parts"])
    )
    sub = [p for p in holder.payload["parts"] if p["type"] == "subagent"]
    assert len(sub) == 1 and sub[0]["agent"] == "Explore"
    assert sub[0]["call_id"] == "toolu_017pLRuPHYTX5t99EnLyV53m"
    assert len(sub[0]["records"]) == 74  # its user and assistant lines (progress lines dropped)
    assert sub[0]["messages"][-1]["text"].startswith("Perfect! Now I have all the information")
    # No subagent line became a message of its own, and the notification is not a prompt.
    assert all(not r.get("isSidechain") for m in messages for r in m.payload["records"])
    note = next(m for m in messages if m.content.startswith("<task-notification>"))
    assert note.payload["kind"] == "meta"
    prompts = [m.content for m in messages if m.payload["kind"] == "prompt"]
    assert prompts == [
        "Work on bead spotter-dov. Run bd show spotter-dov to see the issue details and bd "
        "ready to find available subtasks. Start with the first ready task.",
        "continue",
    ]


def test_inline_sidechains_stay_with_their_task_call(source):
    path = SAMPLES / "claude-code/claude-code-viewer/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
    _, messages = one_session(read_all(source, path))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    side = [x["uuid"] for x in lines if x.get("isSidechain")]
    parts = [p for m in messages for p in m.payload["parts"] if p["type"] == "subagent"]
    kept = [r["uuid"] for p in parts for r in p["records"]]
    assert sorted(kept) == sorted(side)  # all 22 sidechain lines, each once
    assert {p["call_id"] for p in parts} == {
        "toolu_014YF9TXhDRR7BnpasNJ7gjC",
        "toolu_01LKfUwrsnof18CpWZQcJH44",
    }
    assert all(
        m.payload["kind"] != "prompt" or not m.content.startswith("Examine") for m in messages
    )
    first = messages[0]
    assert first.payload["kind"] == "command"
    assert first.payload["parts"][0]["name"] == "/orchestrator"
    assert messages[1].payload["kind"] == "meta"  # the command's isMeta expansion


def test_summary_line_titles_the_session_its_leaf_belongs_to(source, tmp_path):
    tree = sample_tree("claude-code/claude-code-viewer", tmp_path)
    (tree / "broken.jsonl").write_text('{"uuid": "549b3502-6e30-4fa5-869f-c998df26c3f0", \n')
    batches = read_all(source, tree / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    titled = [b for b in batches if b.title_only]
    assert [(b.source_id, b.title) for b in titled] == [
        ("1af7fc5e-8455-4414-9ccd-011d40f70b2a", "Empty Repo Setup: CLAUDE.md Foundation Created")
    ]
    own = [b for b in batches if not b.title_only]
    assert own[-1].source_id == "fe5e1c67-53e7-4862-81ae-d0e013e3270b"
    assert own[-1].title is None
    sessions = {b.source_id for b in own}
    assert sessions == {"fe5e1c67-53e7-4862-81ae-d0e013e3270b"}


def test_discover_skips_subagent_files(source, tmp_path):
    tree = sample_tree("claude-code/spotter", tmp_path)
    found = [p.name for p in source.discover(tree)]
    assert found == [
        "4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
        "short.jsonl",
        "tool_heavy.jsonl",
    ]
    assert list(source.read(next(tree.rglob("agent-a2898e3.jsonl")))) == []


SMALL = [
    "claude-code/spotter/short.jsonl",
    "claude-code/spotter/tool_heavy.jsonl",
    "claude-code/claude-code-viewer/1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl",
    "claude-code/claude-code-viewer/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl",
]


def _own(loader, path_sid=None):
    return {k: v for k, v in loader.state().items() if k[0] != "pending-title"}


@pytest.mark.parametrize("rel", SMALL)
def test_two_steps_equal_one_read_at_every_line_boundary(source, tmp_path, rel):
    path = tmp_path / Path(rel).name
    shutil.copyfile(SAMPLES / rel, path)
    whole = _own(load_once(source, path))
    ends = line_ends(path)
    for cut in [0, *ends]:
        stepped = read_in_steps(source, path, [cut])
        assert _own(stepped) == whole, f"cut after byte {cut}"


@pytest.mark.parametrize(
    "rel",
    [
        "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl.gz",
        "claude-code/claude-code-viewer/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl.gz",
        *SMALL,
    ],
)
def test_reading_line_by_line_equals_one_read(source, tmp_path, rel):
    """Live capture at its worst: a read after every line, and after half of every tenth."""
    if "4d5611e5" in rel:
        path = sample_tree("claude-code/spotter", tmp_path) / Path(rel).with_suffix("").name
    else:
        path = sample(rel, tmp_path)
        if path.parent != tmp_path:
            path = Path(shutil.copyfile(path, tmp_path / path.name))
    whole = _own(load_once(source, path))
    ends = line_ends(path)
    cuts = []
    prev = 0
    for i, end in enumerate(ends):
        if i % 10 == 0:
            cuts.append((prev + end) // 2)  # a half-written line: not an error, read later
        cuts.append(end)
        prev = end
    assert _own(read_in_steps(source, path, cuts)) == whole


def test_changed_prefix_starts_again(source, tmp_path):
    path = tmp_path / "s.jsonl"
    shutil.copyfile(SAMPLES / "claude-code/spotter/short.jsonl", path)
    first = read_all(source, path)
    mark = first[-1].mark
    text = path.read_text().replace("mix phx.server doesnt seem", "mix phx.server does not seem")
    path.write_text(text)
    again = read_all(source, path, mark=mark)
    assert again[-1].messages[0].content == "mix phx.server does not seem to start"
    assert [m.key for m in again[-1].messages] == [m.key for m in first[-1].messages]


def test_unchanged_file_adds_nothing_new(source, tmp_path):
    path = tmp_path / "s.jsonl"
    shutil.copyfile(SAMPLES / "claude-code/spotter/tool_heavy.jsonl", path)
    first = read_all(source, path)
    again = read_all(source, path, mark=first[-1].mark)
    # Only the open tail (the last reply, which a later line could still extend) comes again.
    assert len(again[-1].messages) < 3
    assert again[-1].mark.offset == path.stat().st_size


def _line(**kw):
    base = {
        "sessionId": "s-1",
        "cwd": "/work/demo",
        "isSidechain": False,
        "timestamp": "2026-01-05T10:00:00.000Z",
        "parentUuid": None,
    }
    base.update(kw)
    return json.dumps(base)


def test_corrupt_line_names_file_and_line(source, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = _line(type="user", uuid="u1", message={"role": "user", "content": "hi"})
    path.write_text(good + "\n" + '{"type": "user", "uuid": \n' + good + "\n")
    with pytest.raises(SourceFormatError) as err:
        list(source.read(path))
    assert str(path) in str(err.value) and "line 2" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_a_transcript_is_refused(source, tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("[1, 2, 3]\n")
    with pytest.raises(SourceFormatError, match="line 1"):
        list(source.read(path))


def test_half_written_last_line_waits(source, tmp_path):
    path = tmp_path / "s-1.jsonl"
    one = _line(type="user", uuid="u1", message={"role": "user", "content": "first"})
    two = _line(type="user", uuid="u2", message={"role": "user", "content": "second"})
    path.write_text(one + "\n" + two[:30])
    batches = read_all(source, path)
    assert [m.content for b in batches for m in b.messages] == ["first"]
    with open(path, "a") as fh:
        fh.write(two[30:] + "\n")
    more = read_all(source, path, mark=batches[-1].mark)
    assert [m.content for b in more for m in b.messages] == ["second"]


def test_hostile_text_is_kept_exactly(source, tmp_path):
    path = tmp_path / "s-1.jsonl"
    lines = [
        _line(type="user", uuid="u1", message={"role": "user", "content": HOSTILE}),
        _line(
            type="assistant",
            uuid="a1",
            message={
                "id": "msg_1",
                "role": "assistant",
                "model": "claude-x",
                "content": [
                    {"type": "text", "text": HOSTILE},
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": HOSTILE}},
                ],
                "usage": {"input_tokens": 5, "output_tokens": 7},
            },
        ),
        _line(
            type="user",
            uuid="u2",
            message={
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": HOSTILE}],
            },
        ),
    ]
    path.write_text("\n".join(lines) + "\n")
    _, messages = one_session(read_all(source, path))
    assert [m.content for m in messages] == [HOSTILE, HOSTILE, HOSTILE]
    assert messages[1].payload["parts"][1]["input"]["command"] == HOSTILE
    assert messages[1].payload["parts"][1]["summary"] == HOSTILE.splitlines()[0].strip()
    assert messages[1].input_tokens == 5 and messages[1].output_tokens == 7


def test_default_path_follows_claude_config_dir(source, monkeypatch, tmp_path):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    assert source.default_path() == tmp_path / "projects"
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert source.default_path() == tmp_path / ".claude" / "projects"


def test_api_errors_and_unreadable_files(source, tmp_path):
    path = tmp_path / "s-1.jsonl"
    path.write_text(
        _line(type="user", uuid="u1", message={"role": "user", "content": "go"})
        + "\n"
        + _line(
            type="system",
            subtype="api_error",
            uuid="e1",
            level="error",
            error={"error": {"message": "Overloaded"}},
        )
        + "\n"
        + _line(type="system", subtype="turn_duration", uuid="d1", durationMs=5)
        + "\n"
    )
    _, messages = one_session(read_all(source, path))
    assert [(m.role, m.payload["kind"], m.content) for m in messages] == [
        ("user", "prompt", "go"),
        ("system", "info", "API error: Overloaded"),
    ]
    with pytest.raises(SourceFormatError, match="missing.jsonl: cannot read it"):
        list(source.read(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize(
    "rel",
    [
        "claude-code/spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl.gz",
        "claude-code/claude-code-viewer/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl",
    ],
)
def test_long_files_come_in_batches_each_a_safe_place_to_stop(source, tmp_path, rel, monkeypatch):
    """A long file is yielded in batches; each batch's mark is where a read interrupted after
    it (a crash, a quit) goes on from, and that loses nothing and adds nothing twice."""
    from threadline.sources import _common

    if "4d5611e5" in rel:
        path = sample_tree("claude-code/spotter", tmp_path) / Path(rel).with_suffix("").name
    else:
        path = Path(shutil.copyfile(SAMPLES / rel, tmp_path / Path(rel).name))
    whole = _own(load_once(source, path))
    monkeypatch.setattr(_common.LiveReader, "batch_size", 4)
    batches = read_all(source, path)
    assert len(batches) > 5
    for i in range(0, len(batches) - 1, max(1, len(batches) // 12)):
        from .helpers import FakeLoader

        loader = FakeLoader()
        loader.load(batches[: i + 1])
        loader.load(read_all(source, path, mark=batches[i].mark))
        assert _own(loader) == whole, f"stopped after batch {i}"


def test_title_for_a_session_written_after_the_folder_was_indexed(source, tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text(
        json.dumps({"type": "summary", "summary": "Fixing the build", "leafUuid": "leaf-b"})
        + "\n"
        + _line(sessionId="a", type="user", uuid="ua", message={"role": "user", "content": "hello"})
        + "\n"
    )
    assert [b.title_only for b in read_all(source, a)] == [False]
    b = tmp_path / "b.jsonl"
    b.write_text(
        _line(
            sessionId="b", type="user", uuid="leaf-b", message={"role": "user", "content": "make"}
        )
        + "\n"
    )
    titled = [x for x in read_all(source, a) if x.title_only]  # the same reader, a new read
    assert [(x.source_id, x.title, x.working_dir) for x in titled] == [
        ("b", "Fixing the build", "/work/demo")
    ]
