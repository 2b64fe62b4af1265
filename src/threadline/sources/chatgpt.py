"""ChatGPT data export: `conversations.json`, the split `conversations-000.json`, … files (or
their `.gz`), or the export `.zip` holding them. Streamed one conversation at a time (ijson,
decompressing as it goes): a 500 MB export is never loaded whole.

A conversation is a tree of nodes; what was shown is the branch that ends at `current_node`
(not the last child: edits and regenerations leave siblings). Along it:

- hidden nodes (`is_visually_hidden_from_conversation`) and empty system nodes or placeholders
  are skipped; a system node with text, and `user_editable_context` (custom instructions),
  → `meta`;
- user nodes → `prompt`; images and files → `attachment` parts and a placeholder naming them;
- assistant nodes → `reply`; one addressed to a tool (`recipient` other than "all": the
  browser, a plugin, python) holds a `tool_call` part whose input is its text or code;
  `thoughts` → `thinking` parts;
- tool nodes → `tool` messages: `tether_browsing_display`, `tether_quote`, `system_error`,
  `execution_output` and plugin replies kept as text.

Keys are node ids; the model is each node's `model_slug`. The export records no working
directory: the batch takes the one given.
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
    as_dict,
    call_summary,
    default_dir,
    format_error,
    open_source,
    parse_time,
    peek,
    placeholder,
    plain_path,
    result_summary,
)

NAME = "chatgpt"


def make_source() -> ChatGPTSource:
    return ChatGPTSource()


def _is_conversations_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if base == "conversations.json":
        return True
    stem = base.removesuffix(".json")
    return base.endswith(".json") and stem.startswith("conversations-") and stem[14:].isdigit()


class ChatGPTSource:
    name = NAME
    live = False

    def default_path(self) -> Path | None:
        return None  # an export is wherever the person saved it

    def discover(self, path: Path) -> Iterator[Path]:
        if not path.is_dir():
            yield path
            return
        found = sorted(
            p for p in path.iterdir() if p.is_file() and _is_conversations_name(plain_path(p).name)
        )
        if not found:
            found = sorted(p for p in path.glob("*.zip") if p.is_file())
        yield from found

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
                names = sorted(n for n in zf.namelist() if _is_conversations_name(n))
                if not names:
                    raise format_error(path, None, "no conversations.json in this zip")
                for name in names:
                    with zf.open(name) as fh:
                        yield from _read_stream(fh, f"{path}:{name}", wd)
            return
        with open_source(path) as fh:
            yield from _read_stream(fh, str(path), wd)


def _read_stream(fh: IO[bytes], label: str, working_dir: str) -> Iterator[IncomingSession]:
    import ijson

    index = 0
    try:
        head, stream = peek(fh)
        if head != b"[":
            raise format_error(label, None, "not a ChatGPT export (expected a JSON array)")
        for index, conv in enumerate(ijson.items(stream, "item", use_float=True), 1):
            if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
                raise format_error(
                    label, f"conversation {index}", "not a ChatGPT conversation (no mapping)"
                )
            session = _conversation(conv, label, index, working_dir)
            if session is not None:
                yield session
    except ijson.JSONError as exc:
        raise format_error(label, f"after conversation {index}", f"bad JSON ({exc})") from None


def _branch(mapping: dict[str, Any], current: Any) -> list[dict[str, Any]]:
    """The nodes from the root to `current_node`, in order."""
    if not isinstance(current, str) or current not in mapping:
        leaves = [n for n in mapping.values() if isinstance(n, dict) and not n.get("children")]
        if not leaves:
            return []

        def when(n: dict[str, Any]) -> float:
            m = n.get("message") or {}
            t = m.get("create_time") if isinstance(m, dict) else None
            return float(t) if isinstance(t, int | float) else 0.0

        current = max(leaves, key=when).get("id")
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    node_id = current
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        path.append(node)
        node_id = node.get("parent")
    path.reverse()
    return path


def _conversation(
    conv: dict[str, Any], label: str, index: int, working_dir: str
) -> IncomingSession | None:
    cid = conv.get("conversation_id") or conv.get("id")
    if not isinstance(cid, str) or not cid:
        raise format_error(label, f"conversation {index}", "conversation without an id")
    created = parse_time(conv.get("create_time")) or EPOCH
    last_time: datetime = created
    messages: list[Msg] = []
    last_call: dict[str, str] = {}  # tool name -> id of the call addressed to it
    models: list[str] = []
    for node in _branch(conv["mapping"], conv.get("current_node")):
        m = node.get("message")
        if not isinstance(m, dict):
            continue
        msg = _message(m, node, last_call)
        if msg is None:
            continue
        when = parse_time(m.get("create_time"))
        if when is None:
            when = last_time
        msg.created_at = when
        last_time = when
        if msg.model:
            models.append(msg.model)
        messages.append(msg)
    if not messages:
        return None
    title = conv.get("title") if isinstance(conv.get("title"), str) else None
    model = conv.get("default_model_slug") or (models[-1] if models else None)
    metadata: dict[str, Any] = {"source": NAME, "source_id": cid}
    for key in ("update_time", "gizmo_id", "is_archived", "plugin_ids", "conversation_template_id"):
        if conv.get(key) is not None:
            metadata[key] = conv[key]
    return IncomingSession(
        source=NAME,
        source_id=cid,
        working_dir=working_dir,
        created_at=created,
        title=title or None,
        model=model if isinstance(model, str) else None,
        metadata=metadata,
        messages=[x.to_incoming(NAME) for x in messages],
    )


def _message(m: dict[str, Any], node: dict[str, Any], last_call: dict[str, str]) -> Msg | None:
    meta = as_dict(m.get("metadata"))
    if meta.get("is_visually_hidden_from_conversation"):
        return None
    author = as_dict(m.get("author"))
    role = author.get("role")
    content = as_dict(m.get("content"))
    ctype = content.get("content_type")
    key = str(m.get("id") or node.get("id"))
    text, parts = _render(content, meta)
    model = meta.get("model_slug") if isinstance(meta.get("model_slug"), str) else None
    recipient = m.get("recipient")
    finish = meta.get("finish_details")
    stop = finish.get("type") if isinstance(finish, dict) else None

    def new(role_: str, kind: str) -> Msg:
        return Msg(
            key=key,
            role=role_,
            kind=kind,
            created_at=EPOCH,
            records=[m],
            model=model,
            stop_reason=stop if isinstance(stop, str) else None,
        )

    if ctype in ("user_editable_context", "model_editable_context"):
        if not text.strip():
            return None
        msg = new("system", "meta")
        msg.text, msg.parts = text, parts
        return msg
    if role == "system":
        if not text.strip():
            return None  # the empty root system node every conversation has
        msg = new("system", "meta")
        msg.text, msg.parts = text, parts
        return msg
    if role == "user":
        if not text.strip() and not parts:
            return None
        msg = new("user", "prompt")
        msg.parts = parts
        msg.text = text
        return msg
    if role == "assistant":
        if isinstance(recipient, str) and recipient not in ("all", ""):
            last_call[recipient] = key
            msg = new("assistant", "reply")
            args: Any = text
            msg.parts = [
                {
                    "type": "tool_call",
                    "id": key,
                    "name": recipient,
                    "input": args,
                    "summary": call_summary(recipient, text),
                }
            ]
            msg.text = text or recipient
            return msg
        if ctype == "thoughts":
            thoughts = content.get("thoughts")
            msg = new("assistant", "reply")
            msg.parts = (
                [
                    {"type": "thinking", "text": str(t.get("content") or t.get("summary") or "")}
                    for t in thoughts
                    if isinstance(t, dict)
                ]
                if isinstance(thoughts, list)
                else []
            )
            if not msg.parts:
                return None
            return msg
        if ctype == "reasoning_recap":
            if not text.strip():
                return None
            msg = new("system", "info")
            msg.text = text
            return msg
        if not text.strip() and not parts:
            return None  # an empty placeholder (a reply that never came)
        msg = new("assistant", "reply")
        msg.parts, msg.text = parts, text
        return msg
    if role == "tool":
        name = str(author.get("name") or "tool")
        is_error = ctype == "system_error"
        if not text.strip() and not parts:
            return None
        msg = new("tool", "tool_result")
        msg.parts = [
            {
                "type": "tool_result",
                "call_id": last_call.get(name, ""),
                "name": name,
                "summary": result_summary(text, is_error),
                "is_error": is_error,
            }
        ]
        msg.parts.extend(p for p in parts if p["type"] == "attachment")
        msg.text = text or placeholder("output", name)
        return msg
    return None


def _render(content: dict[str, Any], meta: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text of a node's content and its parts (text and attachment placeholders)."""
    ctype = content.get("content_type")
    parts: list[dict[str, Any]] = []
    texts: list[str] = []
    if ctype in ("text", "multimodal_text") or "parts" in content:
        for p in content.get("parts") or []:
            if isinstance(p, str):
                if p:
                    texts.append(p)
                    parts.append({"type": "text", "text": p})
            elif isinstance(p, dict):
                if isinstance(p.get("text"), str):  # text, audio_transcription
                    texts.append(p["text"])
                    parts.append({"type": "text", "text": p["text"]})
                else:
                    part = _asset_part(p)
                    parts.append(part)
                    texts.append(placeholder(part["kind"], part["name"], part["size"]))
    elif ctype == "code":
        code = str(content.get("text") or "")
        texts.append(code)
        parts.append({"type": "text", "text": code})
    elif ctype == "tether_quote":
        head = "\n".join(str(x) for x in (content.get("title"), content.get("url")) if x)
        body = str(content.get("text") or "")
        text = f"{head}\n\n{body}" if head else body
        texts.append(text)
        parts.append({"type": "text", "text": text})
    elif ctype == "tether_browsing_display":
        text = "\n".join(str(x) for x in (content.get("result"), content.get("summary")) if x)
        texts.append(text)
        parts.append({"type": "text", "text": text})
    elif ctype == "system_error":
        text = f"{content.get('name') or 'error'}: {content.get('text') or ''}"
        texts.append(text)
        parts.append({"type": "text", "text": text})
    elif isinstance(content.get("text"), str):  # execution_output, sonic_webpage, ...
        texts.append(content["text"])
        parts.append({"type": "text", "text": content["text"]})
    elif isinstance(content.get("result"), str):
        texts.append(content["result"])
        parts.append({"type": "text", "text": content["result"]})
    for att in meta.get("attachments") or []:
        if isinstance(att, dict):
            name = str(att.get("name") or att.get("id") or "file")
            kind = "image" if str(att.get("mime_type") or "").startswith("image/") else "file"
            size = att.get("size") if isinstance(att.get("size"), int) else None
            if not any(p["type"] == "attachment" and p["name"] == name for p in parts):
                parts.append({"type": "attachment", "name": name, "kind": kind, "size": size})
                texts.append(placeholder(kind, name, size))
    return "\n\n".join(texts), parts


def _asset_part(p: dict[str, Any]) -> dict[str, Any]:
    ctype = str(p.get("content_type") or "file")
    kind = "image" if "image" in ctype else ("audio" if "audio" in ctype else "file")
    name = p.get("name") or p.get("asset_pointer") or ctype
    size = p.get("size_bytes") if isinstance(p.get("size_bytes"), int) else None
    return {"type": "attachment", "name": str(name), "kind": kind, "size": size}
