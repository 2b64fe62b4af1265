"""OpenAI Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl` (or
`.jsonl.gz`: an archived one is read the same way, unpacked into a temporary file).

What becomes what:

- `response_item` user messages → `prompt` when the person typed them (the `event_msg`
  `user_message` that mirrors one is folded into the same message), `meta` when Codex injected
  them (`<environment_context>`, `# AGENTS.md instructions`, `<user_instructions>`, …, or, once
  the file has shown `user_message` events, any user item that none mirrors); `developer`
  messages → `meta` (role system). A prompt from the IDE extension shows what follows its
  `## My request for Codex:` line; the editor's context before it stays in the record.
- The model side of one request — `reasoning` (a `thinking` part with its summary headings;
  the encrypted content stays in the record), assistant `message`s and the calls
  (`function_call`, `custom_tool_call`, `local_shell_call`, `web_search_call`) → one `reply`,
  with the model from the latest `turn_context` and the tokens of its `token_count` event
  (`last_token_usage`; repeated events with an unchanged total are ignored).
- `function_call_output` / `custom_tool_call_output` → a `tool` message paired with its call
  by `call_id`; an `exec_command_end` / `patch_apply_end` for that call is folded in (exit code).
- `compacted` → an `info` message and an `IncomingSummary` of what came before.
- `turn_aborted` and `error` events → `info`. Other events (`agent_message`,
  `agent_reasoning`: mirrors of items already kept; `token_count`, `task_*`) are not messages.

The pre-envelope format (a bare `{id, timestamp, instructions}` first line, `record_type`
lines, response items without `payload`) is read the same way. Keys are `<rollout time>@<byte
offset>` of a message's first record: stable because the file only grows, and apart across the
files of one session.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from threadline.records import FileMark, IncomingMessage, IncomingSession, IncomingSummary

from ._common import (
    EPOCH,
    JsonlCursor,
    LineSnap,
    LiveReader,
    Msg,
    as_dict,
    call_summary,
    default_dir,
    format_error,
    glob_files,
    parse_time,
    plain_path,
    result_summary,
)

NAME = "codex"
INJECTED = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<permissions instructions>",
    "<INSTRUCTIONS>",
    "<turn_aborted>",
    "<user_shell_command>",
    "<collaboration_mode>",
    "<developer_instructions>",
)
REPLY_ITEMS = {
    "reasoning",
    "function_call",
    "custom_tool_call",
    "local_shell_call",
    "web_search_call",
    "tool_search_call",
    "image_generation_call",
}
OUTPUT_ITEMS = {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}
END_EVENTS = {"exec_command_end", "patch_apply_end", "mcp_tool_call_end"}
_EXIT = re.compile(r"(?:Process exited with code|Exit code:)\s*(-?\d+)")
# Codex's IDE extension sends the editor's context (active file, open tabs, selection) ahead of
# what the person typed, in one user message; Codex's own views show only the part after this.
IDE_CONTEXT = "# Context from my IDE setup:"
IDE_REQUEST = "## My request for Codex:"


def make_source() -> CodexSource:
    return CodexSource()


class CodexSource:
    name = NAME
    live = True

    def default_path(self) -> Path | None:
        base = os.environ.get("CODEX_HOME")
        root = Path(base).expanduser() if base else Path.home() / ".codex"
        return root / "sessions"

    def discover(self, path: Path) -> Iterator[Path]:
        if path.is_file():
            yield path
            return
        for found in glob_files(path, "rollout-*.jsonl", recursive=True):
            if found.is_file():
                yield found

    def read(
        self,
        path: Path,
        *,
        mark: FileMark | None = None,
        working_dir: str | None = None,
    ) -> Iterator[IncomingSession]:
        path = Path(path)
        cursor = JsonlCursor(path, NAME, mark)
        try:
            yield from _Reader(path, cursor, mark, working_dir).run()
        finally:
            cursor.close()


_TIME_IN_NAME = re.compile(r"rollout-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)")
_ID_IN_NAME = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


class _Reader(LiveReader):
    source = NAME
    mutable = ("meta", "calls", "ends")

    def __init__(
        self, path: Path, cursor: JsonlCursor, mark: FileMark | None, working_dir: str | None
    ) -> None:
        super().__init__(path, cursor, mark)
        self.fallback_dir = working_dir
        self.reply: Msg | None = None  # the request whose items are still coming
        self.prompt: Msg | None = None  # the prompt its mirror may still fold into
        # Keys are byte offsets, prefixed with the rollout's own time so that two files of one
        # session (a resumed rollout) never share a key.
        found = _TIME_IN_NAME.match(path.name)
        self.prefix = found.group(1) if found else ""
        self.outputs: dict[str, Msg] = {}  # tool outputs their *_end events may still fold into

    def initial_context(self) -> dict[str, Any]:
        stem = plain_path(self.path).stem  # rollout-….jsonl.gz: the id is before the .jsonl
        found = _ID_IN_NAME.search(stem)
        return {
            "sid": found.group(1) if found else stem,
            "cwd": None,
            "created": None,
            "last_ts": None,
            "model": None,
            "system": None,
            "meta": {},
            "calls": {},  # call_id -> [name, summary] until its output
            "ends": {},  # call_id -> *_end event seen before its output
            "tok_total": None,
            "tokens": None,  # [input, output] waiting for the reply they belong to
            "typed_events": False,  # the file marks typed prompts with user_message events
            "first": None,
            "prev": None,
            "emitted": False,
        }

    def session(self, messages: list[IncomingMessage]) -> IncomingSession:
        ctx = self.ctx
        metadata = {"source": NAME, "source_id": ctx["sid"], "file": str(self.path)}
        metadata.update(ctx["meta"])
        return IncomingSession(
            source=NAME,
            source_id=ctx["sid"],
            working_dir=ctx["cwd"] or default_dir(self.fallback_dir),
            created_at=parse_time(ctx["created"]) or EPOCH,
            model=ctx["model"],
            system_prompt=ctx["system"],
            metadata=metadata,
            messages=messages,
        )

    # -- lines -------------------------------------------------------------------------------

    def feed(self, obj: dict[str, Any], start: int, line: int) -> None:
        ctx = self.ctx
        self.snap = LineSnap(self)
        kind = obj.get("type")
        payload = obj.get("payload")
        if "record_type" in obj:
            return  # pre-envelope state lines
        if kind is None and "id" in obj and "timestamp" in obj and line == 0:
            self.on_meta(obj, obj)  # pre-envelope first line: the session itself
            return
        if not isinstance(payload, dict):
            if isinstance(kind, str) and kind in REPLY_ITEMS | OUTPUT_ITEMS | {"message"}:
                payload, kind = obj, "response_item"  # a pre-envelope response item
            elif kind in (
                "session_meta",
                "turn_context",
                "response_item",
                "event_msg",
                "compacted",
            ):
                raise format_error(self.path, f"line {line + 1}", f"{kind} without payload")
            else:
                return  # a record type this reader does not know: not a message
        ts = obj.get("timestamp") if isinstance(obj.get("timestamp"), str) else None
        if ts:
            ctx["last_ts"] = ts
            if ctx["created"] is None:
                ctx["created"] = ts
        if kind == "session_meta":
            self.on_meta(payload, obj)
        elif kind == "turn_context":
            if isinstance(payload.get("model"), str):
                ctx["model"] = payload["model"]
            if isinstance(payload.get("cwd"), str) and not ctx["cwd"]:
                ctx["cwd"] = payload["cwd"]
        elif kind == "response_item":
            self.on_item(payload, obj, start, line)
        elif kind == "event_msg":
            self.on_event(payload, obj, start, line)
        elif kind == "compacted":
            self.on_compacted(payload, obj, start, line)

    def on_meta(self, payload: dict[str, Any], obj: dict[str, Any]) -> None:
        ctx = self.ctx
        if isinstance(payload.get("id"), str) and payload["id"]:
            ctx["sid"] = payload["id"]
        if isinstance(payload.get("timestamp"), str):
            ctx["created"] = payload["timestamp"]
            ctx["last_ts"] = ctx["last_ts"] or payload["timestamp"]
        if isinstance(payload.get("cwd"), str) and payload["cwd"]:
            ctx["cwd"] = payload["cwd"]
        base = payload.get("base_instructions")
        if isinstance(base, dict) and isinstance(base.get("text"), str):
            ctx["system"] = base["text"]
        elif isinstance(payload.get("instructions"), str) and payload["instructions"]:
            ctx["system"] = payload["instructions"]
        for key in ("cli_version", "originator", "source", "model_provider", "git"):
            if payload.get(key) is not None:
                ctx["meta"][key] = payload[key]

    def when(self, obj: dict[str, Any]) -> Any:
        return parse_time(obj.get("timestamp")) or parse_time(self.ctx["last_ts"]) or EPOCH

    def key(self, start: int) -> str:
        return f"{self.prefix}@{start}"

    def new(
        self,
        role: str,
        kind: str,
        obj: dict[str, Any],
        start: int,
        line: int,
        snap: LineSnap,
        *,
        open_: bool = False,
    ) -> Msg:
        key = self.key(start)
        msg = Msg(
            key=key,
            role=role,
            kind=kind,
            created_at=self.when(obj),
            records=[obj],
            start=start,
            line=line,
            snapshot=snap.take() if open_ else None,  # only an open message is resumed at
            open=open_,
        )
        self.pending.append(msg)
        if self.ctx["first"] is None:
            self.ctx["first"] = key
        self.ctx["prev"] = key
        return msg

    def close(self) -> None:
        """A record that ends whatever was still gathering (request, prompt, output)."""
        self.close_request()
        for msg in self.outputs.values():
            msg.open = False
        self.outputs.clear()

    def close_request(self) -> None:
        for attr in ("reply", "prompt"):
            msg = getattr(self, attr)
            if msg is not None:
                msg.open = False
                setattr(self, attr, None)
                if (
                    attr == "prompt"
                    and msg.kind == "prompt"
                    and self.ctx["typed_events"]
                    and not msg.extra.get("mirrored")
                ):
                    msg.kind = "meta"  # no user_message mirrors it: Codex injected it

    # -- response items ------------------------------------------------------------------------

    def on_item(self, item: dict[str, Any], obj: dict[str, Any], start: int, line: int) -> None:
        itype = item.get("type")
        if itype == "message":
            role = item.get("role")
            text = _item_text(item.get("content"))
            if role == "assistant":
                self.reply_part(obj, start, line).parts.extend(_text_parts(item.get("content")))
                return
            parts = _text_parts(item.get("content"))
            if role == "user":
                typed = _typed(text)
                if typed != text:
                    text = typed
                    parts = [{"type": "text", "text": typed}] + [
                        p for p in parts if p["type"] != "text"
                    ]
            if (
                role == "user"
                and self.prompt is not None
                and self.prompt.kind == "prompt"
                and not self.prompt.extra.get("item")
                and self.prompt.text == text
            ):
                self.prompt.records.append(obj)  # the item an earlier user_message mirrored
                self.prompt.extra["item"] = True
                return
            snap = self.snap
            self.close()
            if role == "user":
                injected = text.lstrip().startswith(INJECTED)
                msg = self.new(
                    "user",
                    "meta" if injected else "prompt",
                    obj,
                    start,
                    line,
                    snap,
                    open_=not injected,
                )
                msg.extra["item"] = True
                if not injected:
                    self.prompt = msg
            else:  # developer / system
                msg = self.new("system", "meta", obj, start, line, snap)
            msg.text = text or "(empty)"
            msg.parts.extend(parts)
            return
        if itype in REPLY_ITEMS:
            msg = self.reply_part(obj, start, line)
            if itype == "reasoning":
                summary = item.get("summary")
                heads = (
                    [s.get("text", "") for s in summary if isinstance(s, dict)]
                    if isinstance(summary, list)
                    else []
                )
                content = item.get("content")
                texts = (
                    [c.get("text", "") for c in content if isinstance(c, dict)]
                    if isinstance(content, list)
                    else []
                )
                msg.parts.append(
                    {"type": "thinking", "text": "\n\n".join(t for t in heads + texts if t)}
                )
                return
            call_id = str(item.get("call_id") or item.get("id") or "")
            name, args = _call(item)
            summary = call_summary(name, args)
            msg.parts.append(
                {
                    "type": "tool_call",
                    "id": call_id,
                    "name": name,
                    "input": args,
                    "summary": summary,
                }
            )
            if call_id and item.get("call_id"):
                self.ctx["calls"][call_id] = [name, summary]
            return
        if itype in OUTPUT_ITEMS:
            snap = self.snap
            self.close_request()  # outputs of one request stay open together
            call_id = str(item.get("call_id") or "")
            msg = self.new("tool", "tool_result", obj, start, line, snap, open_=True)
            name, _ = self.ctx["calls"].pop(call_id, None) or ["", ""]
            text, exit_code = _output(item.get("output"))
            is_error = exit_code not in (None, 0)
            msg.parts.append(
                {
                    "type": "tool_result",
                    "call_id": call_id,
                    "name": name,
                    "summary": _exit_summary(text, exit_code),
                    "is_error": is_error,
                }
            )
            msg.text = text or "(no output)"
            self.outputs[call_id] = msg
            early = self.ctx["ends"].pop(call_id, None)  # after new(): see LineSnap
            if early is not None:
                self.fold_end(msg, early)
            return
        # ghost_snapshot and item types this reader does not know: not messages

    def reply_part(self, obj: dict[str, Any], start: int, line: int) -> Msg:
        """The reply gathering this request's items (a new one if none is)."""
        if self.reply is not None:
            self.reply.records.append(obj)
            return self.reply
        snap = self.snap
        self.close()
        msg = self.new("assistant", "reply", obj, start, line, snap, open_=True)
        msg.model = self.ctx["model"]
        tokens = self.ctx["tokens"]
        if tokens is not None:
            msg.input_tokens, msg.output_tokens = tokens
            self.ctx["tokens"] = None
        self.reply = msg
        return msg

    # -- events --------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any], obj: dict[str, Any], start: int, line: int) -> None:
        etype = event.get("type")
        if etype == "user_message":
            self.ctx["typed_events"] = True
            message = event.get("message")
            text = _typed(message) if isinstance(message, str) else ""
            prompt = self.prompt
            if (
                prompt is not None
                and prompt.kind == "prompt"
                and prompt.text == text
                and not prompt.extra.get("mirrored")
            ):
                prompt.records.append(obj)
                prompt.extra["mirrored"] = True
                _add_images(prompt, event)
                return
            snap = self.snap
            self.close()
            msg = self.new("user", "prompt", obj, start, line, snap, open_=True)
            msg.text = text or "(empty)"
            msg.parts.append({"type": "text", "text": text})
            msg.extra["mirrored"] = True
            _add_images(msg, event)
            self.prompt = msg
        elif etype == "token_count":
            info = event.get("info")
            if not isinstance(info, dict):
                return
            total = info.get("total_token_usage")
            total_n = total.get("total_tokens") if isinstance(total, dict) else None
            if total_n is not None and total_n == self.ctx["tok_total"]:
                return  # the same count written again
            self.ctx["tok_total"] = total_n
            last = info.get("last_token_usage")
            if not isinstance(last, dict):
                return
            pair = [_int(last.get("input_tokens")), _int(last.get("output_tokens"))]
            if self.reply is not None and self.reply.input_tokens is None:
                self.reply.input_tokens, self.reply.output_tokens = pair
            else:
                self.ctx["tokens"] = pair
        elif etype in END_EVENTS:
            call_id = str(event.get("call_id") or "")
            if call_id in self.outputs:
                self.fold_end(self.outputs[call_id], obj)
            elif call_id and call_id in self.ctx["calls"]:
                ends = self.ctx["ends"]
                if len(ends) < 64:
                    ends[call_id] = obj
        elif etype in ("turn_aborted", "error", "stream_error"):
            snap = self.snap
            self.close()
            msg = self.new("system", "info", obj, start, line, snap)
            if etype == "turn_aborted":
                msg.text = f"Turn aborted ({event.get('reason') or 'interrupted'})"
            else:
                msg.text = str(event.get("message") or etype)

    def fold_end(self, msg: Msg, obj: dict[str, Any]) -> None:
        event = as_dict(obj.get("payload"))
        msg.records.append(obj)
        code = event.get("exit_code")
        if isinstance(code, int):
            part = msg.parts[0]
            part["summary"] = f"exit {code}"
            part["is_error"] = code != 0
        elif event.get("success") is False:
            msg.parts[0]["is_error"] = True

    def on_compacted(
        self, payload: dict[str, Any], obj: dict[str, Any], start: int, line: int
    ) -> None:
        snap = self.snap
        self.close()
        text = payload.get("message") if isinstance(payload.get("message"), str) else ""
        msg = self.new("system", "info", obj, start, line, snap)
        msg.text = "Conversation compacted"
        first, last = snap.get("first"), snap.get("prev")
        if first and last and text:
            msg.extra["summary"] = IncomingSummary(
                content=text, first_key=first, last_key=last, created_at=msg.created_at
            )
        elif text:
            msg.kind, msg.text = "meta", text


# -- helpers ---------------------------------------------------------------------------------


def _typed(text: str) -> str:
    """What the person typed: a message from the IDE extension without the editor's context
    ahead of it (that stays in the message's records)."""
    if not text.lstrip().startswith(IDE_CONTEXT):
        return text
    _, marker, request = text.partition(IDE_REQUEST)
    if not marker:
        return text
    return request.strip("\n")


def _item_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for c in content if isinstance(content, list) else []:
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            out.append(c["text"])
    return "\n".join(out)


def _text_parts(content: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    for c in content if isinstance(content, list) else []:
        if not isinstance(c, dict):
            continue
        if isinstance(c.get("text"), str) and c["text"].strip():
            parts.append({"type": "text", "text": c["text"]})
        elif c.get("type") in ("input_image", "image"):
            url = c.get("image_url")
            name = "image" if not isinstance(url, str) or url.startswith("data:") else url
            parts.append({"type": "attachment", "name": name, "kind": "image", "size": None})
    return parts


def _add_images(msg: Msg, event: dict[str, Any]) -> None:
    for key in ("images", "local_images"):
        for image in event.get(key) or []:
            name = image if isinstance(image, str) and not image.startswith("data:") else "image"
            if isinstance(image, dict):
                name = str(image.get("path") or image.get("name") or "image")
            msg.parts.append({"type": "attachment", "name": name, "kind": "image", "size": None})


def _call(item: dict[str, Any]) -> tuple[str, Any]:
    itype = item.get("type")
    if itype == "custom_tool_call":
        return str(item.get("name") or "tool"), item.get("input")
    if itype == "local_shell_call":
        return "shell", item.get("action")
    if itype == "web_search_call":
        return "web_search", item.get("action")
    if itype != "function_call":
        return str(item.get("name") or itype), {k: v for k, v in item.items() if k != "type"}
    raw = item.get("arguments")
    args: Any = raw
    if isinstance(raw, str):
        try:
            args = json.loads(raw)
        except ValueError:
            args = raw
    return str(item.get("name") or "tool"), args


def _output(output: Any) -> tuple[str, int | None]:
    """The text of a tool output and its exit code when it says one."""
    if isinstance(output, dict):
        content = output.get("content")
        text = content if isinstance(content, str) else json.dumps(output, ensure_ascii=False)
        return text, None
    if not isinstance(output, str):
        return ("" if output is None else json.dumps(output, ensure_ascii=False)), None
    if output.startswith("{") and '"output"' in output:
        try:
            data = json.loads(output)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("output"), str):
            meta = data.get("metadata")
            code = meta.get("exit_code") if isinstance(meta, dict) else None
            return data["output"], code if isinstance(code, int) else None
    found = _EXIT.search(output[:2000])
    return output, int(found.group(1)) if found else None


def _exit_summary(text: str, code: int | None) -> str:
    if code is not None:
        return f"exit {code}"
    return result_summary(text)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
