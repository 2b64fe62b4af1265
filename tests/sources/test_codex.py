"""Codex rollouts: the three envelope versions in the samples and a hand-written
pre-envelope file."""

from __future__ import annotations

import json
import shutil

import pytest

from threadline.records import SourceFormatError
from threadline.sources import get

from .helpers import HOSTILE, SAMPLES, line_ends, load_once, read_all, read_in_steps, sample

V039 = "codex/vibecodingtracker/codex.jsonl"
V058 = "codex/codex-session-view/rollout-2025-11-17T15-30-28-019a93b9-f380-7600-98ff-940e6b99603c.jsonl.gz"  # noqa: E501
V125 = (
    "codex/codemie-code/rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl.gz"  # noqa: E501
)


@pytest.fixture
def source():
    return get("codex")


def messages_of(batches):
    assert len({b.source_id for b in batches}) == 1
    return [m for b in batches for m in b.messages]


def test_v039_ide_prompt_calls_paired_and_tokens(source):
    batches = read_all(source, SAMPLES / V039)
    s = batches[-1]
    assert s.source_id == "01996135-afde-7911-97f0-d863511eca56"
    assert s.working_dir == "/proj/ds906659/gai/claude-code"
    assert s.model == "aide-gpt-5"
    assert s.metadata["cli_version"] == "0.39.0"
    ms = messages_of(batches)
    kinds = [m.payload["kind"] for m in ms]
    assert kinds[:3] == ["meta", "prompt", "reply"]
    assert kinds.count("prompt") == 1
    prompt = ms[1]
    # What the person typed, without the editor's context the IDE extension put ahead of it.
    assert prompt.content.startswith("幫我檢查一下 go.mod")
    assert "# Context from my IDE setup:" not in prompt.content
    assert prompt.payload["records"][0]["payload"]["content"][0]["text"].startswith(
        "# Context from my IDE setup:"
    )
    assert len(prompt.payload["records"]) == 2  # the item and the user_message event
    reply = ms[2]
    assert reply.model == "aide-gpt-5"
    assert (reply.input_tokens, reply.output_tokens) == (5645, 810)
    assert [p["type"] for p in reply.payload["parts"]] == ["thinking", "text", "tool_call"]
    assert reply.payload["parts"][2]["name"] == "update_plan"
    # Every call has its output, named after it; agent_message mirrors are not kept twice.
    calls = [p for m in ms for p in m.payload["parts"] if p["type"] == "tool_call"]
    results = [p for m in ms for p in m.payload["parts"] if p["type"] == "tool_result"]
    assert len(calls) == len(results) == 18
    assert {r["call_id"] for r in results} == {c["id"] for c in calls}
    assert all(r["name"] in ("shell", "update_plan") for r in results)
    texts = [
        p
        for m in ms
        for p in m.payload["parts"]
        if p["type"] == "text" and m.payload["kind"] == "reply"
    ]
    assert len(texts) == 9  # the 9 assistant message items, not also their 9 mirrors
    shell = next(m for m in ms if m.role == "tool" and m.payload["parts"][0]["name"] == "shell")
    assert shell.payload["parts"][0]["summary"] == "exit 0"
    assert not shell.content.startswith('{"output"')  # the JSON envelope is unwrapped


def test_v058_only_calls_no_assistant_text(tmp_path, source):
    ms = messages_of(read_all(source, sample(V058, tmp_path)))
    kinds = [m.payload["kind"] for m in ms]
    assert kinds[:2] == ["meta", "prompt"]
    assert kinds.count("tool_result") == 39
    replies = [m for m in ms if m.payload["kind"] == "reply"]
    assert all(m.model == "gpt-5.1-codex" for m in replies)
    # token_count events are written twice: each request counted once
    assert (replies[0].input_tokens, replies[0].output_tokens) == (10128, 37)
    assert (replies[1].input_tokens, replies[1].output_tokens) == (10334, 43)
    thinking = replies[0].payload["parts"][0]
    assert thinking == {"type": "thinking", "text": "**Planning repository inspection**"}
    assert "encrypted_content" in replies[0].payload["records"][0]["payload"]


def test_v125_injected_context_is_meta_and_system_prompt_kept(tmp_path, source):
    batches = read_all(source, sample(V125, tmp_path))
    s = batches[-1]
    assert s.system_prompt.startswith("You are Codex, a coding agent")
    assert s.model == "gpt-5.5"
    ms = messages_of(batches)
    prompts = [m.content for m in ms if m.payload["kind"] == "prompt"]
    assert prompts == ["show tools", "let's update the defailt context compart to 90 in env var"]
    meta = [m for m in ms if m.payload["kind"] == "meta"]
    assert meta[0].role == "system" and meta[0].content.startswith("<permissions instructions>")
    assert meta[1].content.startswith("# AGENTS.md instructions")
    names = {p["name"] for m in ms for p in m.payload["parts"] if p["type"] == "tool_call"}
    assert {"exec_command", "write_stdin", "apply_patch", "update_plan", "web_search"} <= names
    patch = next(
        m for m in ms if m.role == "tool" and m.payload["parts"][0]["name"] == "apply_patch"
    )
    assert patch.payload["parts"][0]["summary"] == "exit 0"
    assert any(r["payload"]["type"] == "patch_apply_end" for r in patch.payload["records"])
    final = [m for m in ms if m.payload["kind"] == "reply"][-1]
    assert final.content.startswith("Implemented the default context compaction setting")


@pytest.mark.parametrize("rel", [V039, V058, V125])
def test_reading_line_by_line_equals_one_read(tmp_path, source, rel):
    path = sample(rel, tmp_path)
    if path.parent != tmp_path:
        path = shutil.copyfile(path, tmp_path / path.name)
    whole = load_once(source, path).state()
    ends = line_ends(path)
    cuts = []
    for i, end in enumerate(ends):
        if i % 7 == 3:
            cuts.append(end - 5)  # half a line
        cuts.append(end)
    assert read_in_steps(source, path, cuts).state() == whole


def test_two_steps_equal_one_read_at_every_line_boundary(tmp_path, source):
    path = shutil.copyfile(SAMPLES / V039, tmp_path / "codex.jsonl")
    whole = load_once(source, path).state()
    for cut in [0, *line_ends(path)]:
        assert read_in_steps(source, path, [cut]).state() == whole, cut


def _pre_envelope(tmp_path):
    """A rollout as Codex wrote them before the envelope (mid-2025), by hand."""
    lines = [
        {
            "id": "0b1c2d3e-0000-4000-8000-000000000001",
            "timestamp": "2025-06-01T08:00:00.000Z",
            "instructions": "Be brief.",
            "git": {"branch": "main"},
        },
        {"record_type": "state"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "<environment_context>\n  <cwd>/srv/app</cwd>\n</environment_context>",
                }
            ],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": HOSTILE}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Looking"}]},
        {
            "type": "function_call",
            "name": "shell",
            "call_id": "c1",
            "arguments": json.dumps({"command": ["bash", "-lc", "ls -la"]}),
        },
        {"record_type": "state"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": json.dumps({"output": "total 0\n", "metadata": {"exit_code": 2}}),
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Nothing here."}],
        },
    ]
    path = tmp_path / "rollout-2025-06-01T08-00-00-0b1c2d3e-0000-4000-8000-000000000001.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_pre_envelope_rollout(tmp_path, source):
    path = _pre_envelope(tmp_path)
    batches = read_all(source, path, working_dir="/somewhere")
    s = batches[-1]
    assert s.source_id == "0b1c2d3e-0000-4000-8000-000000000001"
    assert s.system_prompt == "Be brief."
    assert s.working_dir == "/somewhere"  # no cwd field in this format
    ms = messages_of(batches)
    assert [(m.role, m.payload["kind"]) for m in ms] == [
        ("user", "meta"),
        ("user", "prompt"),
        ("assistant", "reply"),
        ("tool", "tool_result"),
        ("assistant", "reply"),
    ]
    assert ms[1].content == HOSTILE  # kept exactly
    assert ms[1].key.startswith("2025-06-01T08-00-00@")  # the rollout's time and an offset
    assert ms[2].payload["parts"][1]["summary"] == "ls -la"
    assert ms[3].content == "total 0\n"
    assert ms[3].payload["parts"][0] | {} == {
        "type": "tool_result",
        "call_id": "c1",
        "name": "shell",
        "summary": "exit 2",
        "is_error": True,
    }
    assert all(m.created_at.isoformat() == "2025-06-01T08:00:00+00:00" for m in ms)


def test_ide_context_is_kept_in_the_record_and_not_shown_as_typed(tmp_path, source):
    def env(t, p, ts="2026-02-01T10:00:00Z"):
        return json.dumps({"timestamp": ts, "type": t, "payload": p}) + "\n"

    sent = (
        "# Context from my IDE setup:\n\n## Active file: src/app.py\n\n## Open tabs:\n"
        "- app.py: src/app.py\n\n## My request for Codex:\nWhy does the retry loop spin?\n"
    )
    plain = "# Context from my IDE setup: no request marker, kept as it is"
    lines = [env("session_meta", {"id": "s-ide", "timestamp": "2026-02-01T10:00:00Z", "cwd": "/w"})]
    for i, text in enumerate((sent, plain)):
        lines.append(
            env(
                "response_item",
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": text},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                    ],
                },
            )
        )
        lines.append(env("event_msg", {"type": "user_message", "message": text}))
        lines.append(
            env(
                "response_item",
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"answer {i}"}],
                },
            )
        )
    path = tmp_path / "rollout-ide.jsonl"
    path.write_text("".join(lines))
    ms = messages_of(read_all(source, path))
    prompts = [m for m in ms if m.payload["kind"] == "prompt"]
    assert [m.content for m in prompts] == ["Why does the retry loop spin?", plain]
    # The item and the user_message event that mirrors it are one message, as without context.
    assert [len(m.payload["records"]) for m in prompts] == [2, 2]
    assert prompts[0].payload["records"][1]["payload"]["message"] == sent
    assert [p["type"] for p in prompts[0].payload["parts"]] == ["text", "attachment"]
    assert prompts[0].payload["parts"][0]["text"] == "Why does the retry loop spin?"


def test_compacted_record_becomes_a_summary(tmp_path, source):
    def env(t, p, ts="2026-01-01T00:00:00Z"):
        return json.dumps({"timestamp": ts, "type": t, "payload": p}) + "\n"

    path = tmp_path / "rollout-x.jsonl"
    path.write_text(
        env("session_meta", {"id": "s-2", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"})
        + env(
            "response_item",
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            },
        )
        + env("event_msg", {"type": "user_message", "message": "hello"})
        + env(
            "response_item",
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hi"}],
            },
        )
        + env("compacted", {"message": "They said hello."})
        + env("event_msg", {"type": "turn_aborted", "reason": "interrupted"})
    )
    batches = read_all(source, path)
    ms = messages_of(batches)
    assert [m.payload["kind"] for m in ms] == ["prompt", "reply", "info", "info"]
    [summary] = [s for b in batches for s in b.summaries]
    assert (summary.first_key, summary.last_key) == (ms[0].key, ms[1].key)
    assert summary.content == "They said hello."
    assert ms[3].content == "Turn aborted (interrupted)"
    # read again from its own mark: the summary is not sent twice
    again = read_all(source, path, mark=batches[-1].mark)
    assert [s for b in again for s in b.summaries] == []


def test_corrupt_record_is_refused(tmp_path, source):
    path = tmp_path / "rollout-bad.jsonl"
    path.write_text('{"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta"}\n')
    with pytest.raises(SourceFormatError, match=r"rollout-bad.jsonl, line 1: session_meta"):
        list(source.read(path))


def test_default_path(source, monkeypatch, tmp_path):
    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    assert source.default_path() == tmp_path / "sessions"
    found = tmp_path / "sessions" / "2025" / "01" / "02"
    found.mkdir(parents=True)
    (found / "rollout-a.jsonl").write_text("")
    (found / "notes.txt").write_text("")
    assert list(source.discover(tmp_path / "sessions")) == [found / "rollout-a.jsonl"]


def test_long_rollouts_come_in_batches_each_a_safe_place_to_stop(tmp_path, source, monkeypatch):
    from threadline.sources import _common

    from .helpers import FakeLoader

    path = sample(V125, tmp_path)
    whole = load_once(source, path).state()
    monkeypatch.setattr(_common.LiveReader, "batch_size", 5)
    batches = read_all(source, path)
    assert len(batches) > 10
    for i in range(0, len(batches) - 1, 3):
        loader = FakeLoader()
        loader.load(batches[: i + 1])
        loader.load(read_all(source, path, mark=batches[i].mark))
        assert loader.state() == whole, f"stopped after batch {i}"
