"""ChatGPT and Claude.ai exports: the real samples, zips and split files, hand-written edge
cases and bad input."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from threadline.records import SourceFormatError
from threadline.sources import get

from .helpers import HOSTILE, SAMPLES, read_all, sample

GPT = "chatgpt/conversations.json.gz"


@pytest.fixture
def chatgpt():
    return get("chatgpt")


@pytest.fixture
def claude_ai():
    return get("claude-ai")


def by_title(batches, title):
    found = [b for b in batches if b.title == title]
    assert len(found) == 1, title
    return found[0]


def test_chatgpt_follows_current_node_not_the_last_child(tmp_path, chatgpt):
    path = sample(GPT, tmp_path)
    raw = {c["id"]: c for c in json.loads(path.read_text())}
    batches = read_all(chatgpt, path, working_dir="/home/me/project")
    assert len(batches) == 20
    assert all(b.working_dir == "/home/me/project" for b in batches)
    for b in batches:
        conv = raw[b.source_id]
        keys = [m.key for m in b.messages]
        mapping = conv["mapping"]
        # every kept node lies on the path from the root to current_node
        on_path, node = set(), conv["current_node"]
        while node:
            on_path.add(node)
            node = mapping[node]["parent"]
        assert set(keys) <= on_path, b.title
        # and in that order
        assert keys == [k for k in _path(mapping, conv["current_node"]) if k in set(keys)]
    logo = by_title(batches, "Logo design for Pieterkuppens.net.")
    conv = raw[logo.source_id]
    parent = conv["mapping"][conv["current_node"]]["parent"]
    assert conv["mapping"][parent]["children"][0] == conv["current_node"]  # the first child
    assert logo.messages[-1].key == conv["current_node"]


def _path(mapping, node):
    out = []
    while node:
        out.append(node)
        node = mapping[node]["parent"]
    return out[::-1]


def test_chatgpt_browsing_and_plugins_kept_as_text(tmp_path, chatgpt):
    batches = read_all(chatgpt, sample(GPT, tmp_path))
    oscar = by_title(batches, "Oscar for Rental Webshop")
    assert oscar.model == "gpt-4-browsing"
    calls = [
        m
        for m in oscar.messages
        if m.payload["kind"] == "reply" and m.payload["parts"][0]["type"] == "tool_call"
    ]
    results = [m for m in oscar.messages if m.role == "tool"]
    assert calls and len(results) == len(calls) - 1  # the last call got no answer
    assert calls[0].payload["parts"][0]["name"] == "browser"
    assert calls[0].content.startswith("# I'll start by opening the provided URL")
    assert {r.payload["parts"][0]["call_id"] for r in results} <= {c.key for c in calls}
    quote = next(
        r for r in results if r.payload["records"][0]["content"]["content_type"] == "tether_quote"
    )
    assert "https://django-oscar.readthedocs.io" in quote.content
    everything = [m for b in batches for m in b.messages]
    errors = [m for m in everything if m.payload["parts"][0].get("is_error")]
    assert errors and errors[0].content.startswith("tool_error: Error when executing command")
    plugin = by_title(batches, "GitHub Wikis & Source Code")
    tools = [m for m in plugin.messages if m.role == "tool"]
    assert tools[0].payload["parts"][0]["name"] == "show_me.get_MermaidRoute"
    # empty root system nodes are not messages; a prompt with no reply is kept alone
    assert not [m for m in everything if m.role == "system" and not m.content.strip()]
    assert [m.payload["kind"] for m in by_title(batches, "New chat").messages] == ["prompt"]
    assert len(by_title(batches, "PHP to Python Conversion").messages) == 97
    assert by_title(batches, "Tetraëder met 4 bollen").created_at.year == 2023


def test_chatgpt_zip_and_split_files(tmp_path, chatgpt):
    path = sample(GPT, tmp_path)
    plain = read_all(chatgpt, path)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, "conversations.json")
        zf.writestr("chat.html", "<html></html>")
    assert [(b.source_id, len(b.messages)) for b in read_all(chatgpt, archive)] == [
        (b.source_id, len(b.messages)) for b in plain
    ]
    split = tmp_path / "split"
    split.mkdir()
    convs = json.loads(path.read_text())
    (split / "conversations-000.json").write_text(json.dumps(convs[:12]))
    (split / "conversations-001.json").write_text(json.dumps(convs[12:]))
    (split / "user.json").write_text("{}")
    files = list(chatgpt.discover(split))
    assert [f.name for f in files] == ["conversations-000.json", "conversations-001.json"]
    assert [b.source_id for f in files for b in read_all(chatgpt, f)] == [
        b.source_id for b in plain
    ]


def _gpt_node(nid, parent, children, role, content, **extra):
    message = {
        "id": nid,
        "author": {"role": role, "name": extra.pop("name", None)},
        "create_time": extra.pop("t", 1700000000.0),
        "content": content,
        "status": "finished_successfully",
        "metadata": extra.pop("metadata", {}),
        "recipient": extra.pop("recipient", "all"),
    }
    return nid, {"id": nid, "message": message, "parent": parent, "children": children}


def test_chatgpt_images_hidden_nodes_and_hostile_text(tmp_path, chatgpt):
    nodes = dict(
        [
            ("root", {"id": "root", "message": None, "parent": None, "children": ["sys"]}),
            _gpt_node("sys", "root", ["ctx"], "system", {"content_type": "text", "parts": [""]}),
            _gpt_node(
                "ctx",
                "sys",
                ["u1"],
                "user",
                {
                    "content_type": "user_editable_context",
                    "user_profile": "",
                    "user_instructions": "",
                },
                metadata={"is_visually_hidden_from_conversation": True},
            ),
            _gpt_node(
                "u1",
                "ctx",
                ["a1"],
                "user",
                {
                    "content_type": "multimodal_text",
                    "parts": [
                        {
                            "content_type": "image_asset_pointer",
                            "asset_pointer": "file-service://file-abc",
                            "size_bytes": 204800,
                            "width": 10,
                            "height": 10,
                        },
                        HOSTILE,
                    ],
                },
                metadata={
                    "attachments": [
                        {
                            "id": "file-xyz",
                            "name": "notes.pdf",
                            "size": 2048,
                            "mime_type": "application/pdf",
                        }
                    ]
                },
            ),
            _gpt_node(
                "a1",
                "u1",
                ["a2"],
                "assistant",
                {"content_type": "text", "parts": [HOSTILE]},
                metadata={"model_slug": "gpt-4o"},
            ),
            _gpt_node("a2", "a1", [], "assistant", {"content_type": "text", "parts": [""]}),
        ]
    )
    conv = {
        "id": "c-1",
        "title": HOSTILE,
        "create_time": 1700000000.5,
        "mapping": nodes,
        "current_node": "a2",
        "default_model_slug": "gpt-4o",
    }
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conv]))
    [b] = read_all(chatgpt, path, working_dir="/w")
    assert b.title == HOSTILE and b.model == "gpt-4o"
    assert [m.key for m in b.messages] == ["u1", "a1"]  # hidden and empty nodes skipped
    prompt, reply = b.messages
    atts = [p for p in prompt.payload["parts"] if p["type"] == "attachment"]
    assert [(a["name"], a["kind"], a["size"]) for a in atts] == [
        ("file-service://file-abc", "image", 204800),
        ("notes.pdf", "file", 2048),
    ]
    assert "[image: file-service://file-abc, 200.0 KB]" in prompt.content
    assert "[file: notes.pdf, 2.0 KB]" in prompt.content
    assert HOSTILE in prompt.content
    assert reply.content == HOSTILE and reply.model == "gpt-4o"
    assert reply.created_at.isoformat() == "2023-11-14T22:13:20+00:00"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ('{"conversations": []}', "not a ChatGPT export"),
        ('[{"title": "x"}]', "conversation 1"),
        ('[{"id": "a", "mapping": {}, "title": "t"}, {"id": "b", "mapp', "after conversation 1"),
        ("", "not a ChatGPT export"),
    ],
)
def test_chatgpt_bad_input(tmp_path, chatgpt, data, where):
    path = tmp_path / "conversations.json"
    path.write_text(data)
    with pytest.raises(SourceFormatError) as err:
        list(chatgpt.read(path))
    assert str(path) in str(err.value) and where in str(err.value)
    assert "\n" not in str(err.value)


# -- Claude.ai ----------------------------------------------------------------------------------


def test_claude_ai_old_text_shape_order_and_files(claude_ai):
    [b] = read_all(
        claude_ai, SAMPLES / "claude-ai/claude-to-sqlite/artifacts.json", working_dir="/w"
    )
    assert b.title == "LLM Pricing Calculator" and b.model is None
    ms = b.messages
    assert len(ms) == 20
    assert [m.payload["kind"] for m in ms] == ["prompt", "reply"] * 10
    assert ms[0].content.startswith("Built me an artifact with no react")
    assert ms[1].content.startswith(" Certainly!")  # kept as written, leading space and all
    assert "<antArtifact" in ms[1].content
    times = [m.created_at for m in ms]
    assert times == sorted(times)
    shots = [m for m in ms if any(p["type"] == "attachment" for p in m.payload["parts"])]
    assert len(shots) == 1
    names = [p["name"] for p in shots[0].payload["parts"] if p["type"] == "attachment"]
    assert names[0] == "CleanShot 20241016 at 20.34.122x.png" and len(names) == 5
    assert "[image: CleanShot 20241016 at 20.34.122x.png]" in shots[0].content
    assert b.metadata["account"] == "2a0434bc-651f-407a-bc74-bdc295dc009b"


def test_claude_ai_attachments_and_ties(tmp_path, claude_ai):
    path = sample("claude-ai/nexus-ai-chat-importer/conversations.json.gz", tmp_path)
    batches = read_all(claude_ai, path, working_dir="/w")
    raw = json.loads(path.read_text())
    assert len(raw) == 6 and len(batches) == 5  # the conversation with no messages is skipped
    for b in batches:
        ms = b.messages
        assert [m.created_at for m in ms] == sorted(m.created_at for m in ms)
        for a, c in zip(ms, ms[1:], strict=False):  # a reply never before its prompt's time-twin
            if a.created_at == c.created_at:
                assert (a.role, c.role) != ("assistant", "user")
    everything = [m for b in batches for m in b.messages]
    pasted = [m for m in everything if m.payload["records"][0]["text"] == "" and m.role == "user"]
    assert pasted and all(m.content.startswith("[file: ") for m in pasted)
    sized = [
        p for m in everything for p in m.payload["parts"] if p["type"] == "attachment" and p["size"]
    ]
    assert any(p["name"] == "main.ts" for p in sized)
    assert [b.title for b in batches].count(None) == 0


def test_claude_ai_content_blocks_split_at_tool_results(claude_ai):
    batches = read_all(claude_ai, SAMPLES / "claude-ai/now2ai/conversations.json")
    assert len(batches) == 1  # the December 2023 conversation has only empty messages
    ms = batches[0].messages
    keys = [m.key for m in ms]
    first = next(m for m in ms if m.key.endswith("#r1"))
    base = first.key[:-3]
    assert keys[keys.index(base) : keys.index(base) + 3] == [base, f"{base}#r1", f"{base}#2"]
    reply, result, after = ms[keys.index(base) : keys.index(base) + 3]
    assert [p["type"] for p in reply.payload["parts"]] == ["text", "tool_call"]
    assert reply.payload["parts"][1]["name"] == "artifacts"
    assert result.role == "tool" and result.content == "OK"
    assert after.payload["kind"] == "reply"
    raw = json.loads((SAMPLES / "claude-ai/now2ai/conversations.json").read_text())
    assert base in {m["uuid"] for m in raw["conversations"][0]["chat_messages"]}
    pdf = ms[0]
    assert [p["name"] for p in pdf.payload["parts"] if p["type"] == "attachment"] == [
        "PDF document.pdf",
        "PDF document.pdf",
    ]


def test_claude_ai_zip_with_projects(tmp_path, claude_ai):
    conv = {
        "uuid": "c-9",
        "name": "",
        "created_at": "2025-03-01T10:00:00Z",
        "updated_at": "2025-03-01T10:05:00Z",
        "project_uuid": "p-1",
        "chat_messages": [
            {
                "uuid": "m2",
                "sender": "assistant",
                "text": HOSTILE,
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "text", "text": HOSTILE},
                ],
                "created_at": "2025-03-01T10:01:00Z",
                "attachments": [],
                "files": [],
            },
            {
                "uuid": "m1",
                "sender": "human",
                "text": HOSTILE,
                "created_at": "2025-03-01T10:00:30+00:00",
                "attachments": [],
                "files": [],
            },
        ],
    }
    archive = tmp_path / "data-2025.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("conversations.json", json.dumps([conv]))
        zf.writestr("projects.json", json.dumps([{"uuid": "p-1", "name": "Garden"}]))
        zf.writestr("users.json", "[]")
    [b] = read_all(claude_ai, archive, working_dir="/w")
    assert b.title is None and b.metadata["project"] == "Garden"
    assert [(m.key, m.role) for m in b.messages] == [("m1", "user"), ("m2", "assistant")]
    assert [m.content for m in b.messages] == [HOSTILE, HOSTILE]
    assert b.messages[1].payload["parts"][0] == {"type": "thinking", "text": "hmm"}


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ('"hello"', "not a Claude.ai export"),
        ('[{"uuid": "x"}]', "conversation 1"),
        ('[{"uuid": "x", "chat_messages": [{"sender": "human"}]}]', "message 1"),
        ('[{"uuid": "x", "chat_messages": []}, {"uu', "after conversation 1"),
    ],
)
def test_claude_ai_bad_input(tmp_path, claude_ai, data, where):
    path = tmp_path / "conversations.json"
    path.write_text(data)
    with pytest.raises(SourceFormatError) as err:
        list(claude_ai.read(path))
    assert str(path) in str(err.value) and where in str(err.value)


def test_zip_without_conversations_is_refused(tmp_path, chatgpt, claude_ai):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hi")
    for source in (chatgpt, claude_ai):
        with pytest.raises(SourceFormatError, match="no conversations.json"):
            list(source.read(archive))


def test_gz_samples_are_untouched(tmp_path):
    """The tests unpack samples into tmp, never next to the originals."""
    assert not (SAMPLES / "chatgpt" / "conversations.json").exists()
    assert gzip.open(SAMPLES / GPT).read(1) == b"["
    assert Path(tmp_path).is_dir()
