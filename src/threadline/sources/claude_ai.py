"""Claude.ai data export: `conversations.json` (a JSON array, streamed; or its `.gz`, with
`projects.json` or `projects.json.gz` beside it), or the export `.zip` holding both.

- `chat_messages` in `created_at` order; on a tie (an old export gives a reply the same time
  as its prompt, and may list the reply first) the person's message first, then array order.
  Edits and regenerations stay as the consecutive messages they are.
- A message's `content` blocks when present, else its flat `text` (lossy for tool use):
  `text` → text, `thinking` → thinking, `tool_use` (artifacts, web search…) → a `tool_call`
  part; a `tool_result` block splits the reply there into a `tool` message (keys `<uuid>#r1`…)
  and the text after it (`<uuid>#2`…).
- `attachments` (text the app extracted: kept in the record) and `files` (uploads whose bytes
  are not in the export) → `attachment` parts and a placeholder naming them.
- Messages with nothing in them are skipped. The project's name goes into the session's
  metadata when the conversation names its project (`project` / `project_uuid` with
  `projects.json`). No model, tokens or working directory exist in this format.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from threadline.records import FileMark, IncomingSession

from ._common import (
    EPOCH,
    Msg,
    call_summary,
    default_dir,
    format_error,
    loads,
    open_source,
    parse_time,
    peek,
    placeholder,
)
from ._common import result_summary as _result_summary

NAME = "claude-ai"
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic")


def make_source() -> ClaudeAISource:
    return ClaudeAISource()


class ClaudeAISource:
    name = NAME
    live = False

    def default_path(self) -> Path | None:
        return None

    def discover(self, path: Path) -> Iterator[Path]:
        if not path.is_dir():
            yield path
            return
        for name in ("conversations.json", "conversations.json.gz"):
            if (path / name).is_file():
                yield path / name
                return
        yield from sorted(p for p in path.glob("*.zip") if p.is_file())

    def read(
        self,
        path: Path,
        *,
        mark: FileMark | None = None,
        working_dir: str | None = None,
    ) -> Iterator[IncomingSession]:
        path = Path(path)
        wd = default_dir(working_dir)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                conv = next(
                    (n for n in names if n.rsplit("/", 1)[-1] == "conversations.json"), None
                )
                if conv is None:
                    raise format_error(path, None, "no conversations.json in this zip")
                proj = next((n for n in names if n.rsplit("/", 1)[-1] == "projects.json"), None)
                projects = _projects(zf.read(proj), f"{path}:{proj}") if proj else {}
                with zf.open(conv) as fh:
                    yield from _read_stream(fh, f"{path}:{conv}", wd, projects)
            return
        projects = {}
        for sibling in (path.with_name("projects.json"), path.with_name("projects.json.gz")):
            if sibling.is_file():
                with open_source(sibling) as fh:
                    projects = _projects(fh.read(), str(sibling))
                break
        with open_source(path) as fh:
            yield from _read_stream(fh, str(path), wd, projects)


def _projects(data: bytes, label: str) -> dict[str, str]:
    try:
        obj = loads(data)
    except ValueError:
        raise format_error(label, None, "not valid JSON") from None
    if isinstance(obj, dict):
        obj = obj.get("projects")
    out: dict[str, str] = {}
    for p in obj if isinstance(obj, list) else []:
        if isinstance(p, dict) and isinstance(p.get("uuid"), str):
            out[p["uuid"]] = str(p.get("name") or "")
    return out


def _read_stream(
    fh: IO[bytes], label: str, working_dir: str, projects: dict[str, str]
) -> Iterator[IncomingSession]:
    import ijson

    head, stream = peek(fh)
    if head == b"[":
        prefix = "item"
    elif head == b"{":  # an export another tool wrapped as {"conversations": [...]}
        prefix = "conversations.item"
    else:
        raise format_error(label, None, "not a Claude.ai export (expected a JSON array)")
    index = 0
    try:
        for index, conv in enumerate(ijson.items(stream, prefix, use_float=True), 1):
            if (
                not isinstance(conv, dict)
                or not isinstance(conv.get("chat_messages"), list)
                or not isinstance(conv.get("uuid"), str)
            ):
                raise format_error(
                    label,
                    f"conversation {index}",
                    "not a Claude.ai conversation (no uuid or chat_messages)",
                )
            session = _conversation(conv, label, index, working_dir, projects)
            if session is not None:
                yield session
    except ijson.JSONError as exc:
        raise format_error(label, f"after conversation {index}", f"bad JSON ({exc})") from None
    if index == 0 and prefix == "conversations.item":
        raise format_error(label, None, "not a Claude.ai export (no conversations)")


def _conversation(
    conv: dict[str, Any], label: str, index: int, working_dir: str, projects: dict[str, str]
) -> IncomingSession | None:
    created = parse_time(conv.get("created_at")) or EPOCH
    # created_at order; on a tie (old exports give a reply its prompt's time) the person's
    # message first, then array order.
    ordered = sorted(
        (
            (parse_time(m.get("created_at")) or created, i, m)
            for i, m in enumerate(conv["chat_messages"])
            if isinstance(m, dict)
        ),
        key=lambda t: (t[0], t[2].get("sender") != "human", t[1]),
    )
    messages: list[Msg] = []
    for when, i, m in ordered:
        if not isinstance(m.get("uuid"), str):
            raise format_error(
                label, f"conversation {index}, message {i + 1}", "message without a uuid"
            )
        messages.extend(_message(m, when))
    if not messages:
        return None
    metadata: dict[str, Any] = {"source": NAME, "source_id": conv["uuid"]}
    for key in ("updated_at", "summary"):
        if conv.get(key):
            metadata[key] = conv[key]
    account = conv.get("account")
    if isinstance(account, dict) and account.get("uuid"):
        metadata["account"] = account["uuid"]
    project = conv.get("project")
    project_id = conv.get("project_uuid")
    if isinstance(project, dict):
        project_id = project.get("uuid") or project_id
        if project.get("name"):
            metadata["project"] = project["name"]
    if "project" not in metadata and isinstance(project_id, str) and projects.get(project_id):
        metadata["project"] = projects[project_id]
    name = conv.get("name")
    return IncomingSession(
        source=NAME,
        source_id=conv["uuid"],
        working_dir=working_dir,
        created_at=created,
        title=name if isinstance(name, str) and name.strip() else None,
        metadata=metadata,
        messages=[x.to_incoming(NAME) for x in messages],
    )


def _message(m: dict[str, Any], when: datetime) -> list[Msg]:
    uuid = m["uuid"]
    human = m.get("sender") == "human"
    role, kind = ("user", "prompt") if human else ("assistant", "reply")
    out: list[Msg] = []
    first = current = Msg(key=uuid, role=role, kind=kind, created_at=when, records=[m])
    blocks = m.get("content")
    if isinstance(blocks, list) and blocks:
        results = 0
        for block in blocks:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result":
                results += 1
                if current.parts:
                    out.append(current)
                tool = Msg(
                    key=f"{uuid}#r{results}",
                    role="tool",
                    kind="tool_result",
                    created_at=parse_time(block.get("start_timestamp")) or when,
                    records=[m],
                )
                text = _block_text(block.get("content"))
                is_error = bool(block.get("is_error"))
                tool.parts.append(
                    {
                        "type": "tool_result",
                        "call_id": str(block.get("tool_use_id") or ""),
                        "name": str(block.get("name") or ""),
                        "summary": _result_summary(text, is_error),
                        "is_error": is_error,
                    }
                )
                tool.text = text or "(no output)"
                out.append(tool)
                current = Msg(
                    key=f"{uuid}#{results + 1}",
                    role=role,
                    kind=kind,
                    created_at=parse_time(block.get("stop_timestamp")) or when,
                    records=[m],
                )
            elif btype == "text":
                if isinstance(block.get("text"), str) and block["text"].strip():
                    current.parts.append({"type": "text", "text": block["text"]})
            elif btype == "thinking":
                current.parts.append({"type": "thinking", "text": str(block.get("thinking") or "")})
            elif btype in ("tool_use", "server_tool_use"):
                name = str(block.get("name") or "tool")
                args = block.get("input")
                current.parts.append(
                    {
                        "type": "tool_call",
                        "id": str(block.get("id") or ""),
                        "name": name,
                        "input": args,
                        "summary": call_summary(name, args),
                    }
                )
            elif btype in ("image", "document", "file"):
                current.parts.append(
                    {
                        "type": "attachment",
                        "name": str(block.get("file_name") or block.get("title") or btype),
                        "kind": "image" if btype == "image" else "file",
                        "size": None,
                    }
                )
    elif isinstance(m.get("text"), str) and m["text"].strip():
        current.parts.append({"type": "text", "text": m["text"]})
    attachments = []
    for a in m.get("attachments") or []:
        if isinstance(a, dict):
            size = a.get("file_size") if isinstance(a.get("file_size"), int) else None
            attachments.append(
                {
                    "type": "attachment",
                    "name": str(a.get("file_name") or "attachment"),
                    "kind": "file",
                    "size": size,
                }
            )
    for f in m.get("files") or m.get("files_v2") or []:
        if isinstance(f, dict):
            fname = str(f.get("file_name") or "file")
            attachments.append(
                {
                    "type": "attachment",
                    "name": fname,
                    "kind": "image" if fname.lower().endswith(IMAGE_EXT) else "file",
                    "size": None,
                }
            )
    if current.parts and current not in out:
        out.append(current)
    if attachments:  # they belong to the message as a whole: show them with its first part
        first.parts.extend(attachments)
        if first not in out:
            out.insert(0, first)
    for msg in out:
        texts = [p["text"] for p in msg.parts if p["type"] == "text"]
        holders = [
            placeholder(p["kind"], p["name"], p["size"])
            for p in msg.parts
            if p["type"] == "attachment"
        ]
        if msg.role != "tool" and (texts or holders):
            msg.text = "\n\n".join(texts + holders)
    return out


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for c in content if isinstance(content, list) else []:
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            out.append(c["text"])
        elif isinstance(c, str):
            out.append(c)
    return "\n".join(out)
