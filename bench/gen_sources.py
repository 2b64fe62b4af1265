"""Make synthetic outside histories for the import benchmarks.

    python bench/gen_sources.py claude  --out bench/data/claude-projects \
        [--sessions 2000] [--size-mb 1024]
    python bench/gen_sources.py chatgpt --out bench/data/chatgpt [--messages 200000] [--zip]

`claude` writes a `~/.claude/projects`-like tree: <out>/<encoded dir>/<session id>.jsonl, with
the line shapes Claude Code writes (prompts, an API message split over several lines with
thinking, text and tool_use, tool results, progress and file-history-snapshot lines, the odd
slash command and compaction), about size-mb in all. `chatgpt` writes conversations.json (or a
.zip holding it) with about that many messages in node trees, some with branches, written one
conversation at a time so the generator itself never holds the export. Both are deterministic
(--seed).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORDS = (
    "the session import reader file line message tool result model token cache index search "
    "database window sidebar summary project branch commit test error value function class "
    "module path directory thread stream batch offset mark fingerprint context prompt reply"
).split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class ClaudeSession:
    def __init__(self, rng: random.Random, sid: str, cwd: str, start: datetime) -> None:
        self.rng, self.sid, self.cwd, self.t = rng, sid, cwd, start
        self.parent: str | None = None
        self.lines: list[str] = []
        self.size = 0

    def emit(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        self.lines.append(line)
        self.size += len(line) + 1

    def base(self, kind: str) -> dict:
        self.t += timedelta(milliseconds=self.rng.randint(50, 4000))
        u = _uuid(self.rng)
        obj = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.sid,
            "version": "2.1.39",
            "gitBranch": "main",
            "type": kind,
            "uuid": u,
            "timestamp": _ts(self.t),
        }
        self.parent = u
        return obj

    def turn(self) -> None:
        rng = self.rng
        self.emit(
            {
                "type": "file-history-snapshot",
                "messageId": _uuid(rng),
                "snapshot": {"trackedFileBackups": {}, "timestamp": _ts(self.t)},
                "isSnapshotUpdate": False,
            }
        )
        if rng.random() < 0.05:
            cmd = self.base("user")
            cmd["message"] = {
                "role": "user",
                "content": "<command-name>/model</command-name>\n"
                "<command-message>model</command-message>\n<command-args></command-args>",
            }
            self.emit(cmd)
            out = self.base("user")
            out["message"] = {
                "role": "user",
                "content": "<local-command-stdout>Kept model</local-command-stdout>",
            }
            self.emit(out)
        prompt = self.base("user")
        prompt["message"] = {"role": "user", "content": _text(rng, rng.randint(8, 80))}
        self.emit(prompt)
        for _step in range(rng.randint(1, 6)):
            mid = "msg_" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(24))
            usage = {
                "input_tokens": rng.randint(1, 9),
                "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": rng.randint(1000, 90000),
                "output_tokens": rng.randint(5, 900),
            }
            blocks = [
                {
                    "type": "thinking",
                    "thinking": _text(rng, rng.randint(10, 120)),
                    "signature": "EsMC" + "x" * 200,
                }
            ]
            blocks.append({"type": "text", "text": _text(rng, rng.randint(10, 150))})
            calls = []
            for _ in range(rng.choice((0, 1, 1, 2))):
                cid = "toolu_" + "".join(rng.choice("abcdef0123456789") for _ in range(24))
                calls.append(cid)
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": cid,
                        "name": rng.choice(("Bash", "Read", "Edit", "Grep")),
                        "input": {"command": _text(rng, 6)},
                    }
                )
            for block in blocks:
                line = self.base("assistant")
                line["requestId"] = "req_1"
                line["message"] = {
                    "model": "claude-opus-4-6",
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "content": [block],
                    "stop_reason": None,
                    "usage": usage,
                }
                self.emit(line)
            for cid in calls:
                for _ in range(rng.randint(1, 4)):
                    progress = self.base("progress")
                    progress["data"] = {
                        "type": "hook_progress",
                        "hookEvent": "PostToolUse",
                        "command": "callback",
                    }
                    progress["toolUseID"] = progress["parentToolUseID"] = cid
                    self.emit(progress)
                output = "\n".join(_text(rng, 12) for _ in range(rng.randint(2, 60)))
                result = self.base("user")
                result["message"] = {
                    "role": "user",
                    "content": [{"tool_use_id": cid, "type": "tool_result", "content": output}],
                }
                result["toolUseResult"] = {"stdout": output, "stderr": "", "interrupted": False}
                self.emit(result)
            if not calls:
                break


def gen_claude(out: Path, sessions: int, size_mb: int, seed: int) -> None:
    rng = random.Random(seed)
    projects = max(1, sessions // 50)
    per_session = size_mb * 1024 * 1024 // sessions
    start = datetime(2025, 1, 1, tzinfo=UTC)
    total = 0
    for i in range(sessions):
        project = f"/home/dev/src/project-{i % projects:03d}"
        folder = out / project.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        sid = _uuid(rng)
        s = ClaudeSession(rng, sid, project, start + timedelta(hours=i * 3))
        target = int(per_session * rng.uniform(0.3, 1.7))
        while s.size < target:
            s.turn()
        (folder / f"{sid}.jsonl").write_text("\n".join(s.lines) + "\n")
        total += s.size
        if i % 200 == 199:
            print(f"  {i + 1} sessions, {total / 1e6:.0f} MB", flush=True)
    print(f"claude: {sessions} sessions, {total / 1e6:.0f} MB in {out}")


def _gpt_conversation(rng: random.Random, n_messages: int, when: float) -> dict:
    mapping: dict[str, dict] = {}
    root = _uuid(rng)
    mapping[root] = {"id": root, "message": None, "parent": None, "children": []}
    system = _uuid(rng)
    mapping[system] = {
        "id": system,
        "parent": root,
        "children": [],
        "message": {
            "id": system,
            "author": {"role": "system", "name": None, "metadata": {}},
            "create_time": when,
            "content": {"content_type": "text", "parts": [""]},
            "status": "finished_successfully",
            "metadata": {},
            "recipient": "all",
        },
    }
    mapping[root]["children"].append(system)
    parent = system
    t = when
    for i in range(n_messages):
        role = "user" if i % 2 == 0 else "assistant"
        t += rng.uniform(1, 90)
        nid = _uuid(rng)
        words = rng.randint(5, 60) if role == "user" else rng.randint(40, 400)
        msg = {
            "id": nid,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": t,
            "update_time": None,
            "content": {"content_type": "text", "parts": [_text(rng, words)]},
            "status": "finished_successfully",
            "end_turn": role == "assistant",
            "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
            "recipient": "all",
        }
        mapping[nid] = {"id": nid, "message": msg, "parent": parent, "children": []}
        mapping[parent]["children"].append(nid)
        if role == "assistant" and rng.random() < 0.05:  # a regenerated sibling left behind
            alt = _uuid(rng)
            mapping[alt] = {
                "id": alt,
                "message": dict(msg, id=alt),
                "parent": parent,
                "children": [],
            }
            mapping[parent]["children"].insert(0, alt)
        parent = nid
    return {
        "title": _text(rng, 4),
        "create_time": when,
        "update_time": t,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": parent,
        "plugin_ids": None,
        "id": _uuid(rng),
        "default_model_slug": "gpt-4o",
    }


def gen_chatgpt(out: Path, messages: int, seed: int, as_zip: bool) -> None:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "conversations.json"
    written = 0
    when = datetime(2023, 3, 1, tzinfo=UTC).timestamp()
    with open(path, "w") as fh:
        fh.write("[")
        first = True
        while written < messages:
            n = min(messages - written, rng.randint(2, 100))
            conv = _gpt_conversation(rng, n, when)
            when += 3600 * rng.uniform(1, 30)
            fh.write(("" if first else ", ") + json.dumps(conv))
            first = False
            written += n
        fh.write("]\n")
    print(f"chatgpt: {written} messages, {path.stat().st_size / 1e6:.0f} MB in {path}")
    if as_zip:
        archive = out / "export.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, "conversations.json")
        path.unlink()
        print(f"  zipped: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("claude")
    c.add_argument("--out", type=Path, default=Path("bench/data/claude-projects"))
    c.add_argument("--sessions", type=int, default=2000)
    c.add_argument("--size-mb", type=int, default=1024)
    g = sub.add_parser("chatgpt")
    g.add_argument("--out", type=Path, default=Path("bench/data/chatgpt"))
    g.add_argument("--messages", type=int, default=200_000)
    g.add_argument("--zip", action="store_true")
    for p in (c, g):
        p.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.what == "claude":
        gen_claude(args.out, args.sessions, args.size_mb, args.seed)
    else:
        gen_chatgpt(args.out, args.messages, args.seed, args.zip)


if __name__ == "__main__":
    main()
