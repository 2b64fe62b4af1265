"""Gemini CLI chat recordings: `~/.gemini/tmp/<project hash>/chats/session-*.json` (one object,
rewritten as the chat goes on) and the newer append-only `session-*.jsonl`, or their `.gz`.

- `user` records → `prompt`; one whose `displayContent` shows a slash command (`/init`) →
  `command` (the expanded prompt it sent stays in the record); one whose `displayContent` is a
  function response ("System: Please continue.") → `meta`.
- `gemini` records (one per model call) → `reply`: `thoughts` as thinking, the text, and its
  `toolCalls` as tool_call parts; each call carries its own result, which follows as a `tool`
  message (`<id>#t<n>`); `delegate_to_agent` also keeps the agent's report as a `subagent` part.
  Model and tokens (`tokens.input` / `tokens.output`) per record.
- `info`, `error` and `warning` records → `info`.
- In JSONL, a record with an id seen before replaces it, `$set` updates the header (a
  `summary` becomes the title) and `$rewindTo` drops that message and what followed.

No working directory is recorded (only a hash of it): the batch takes the one given. Both
shapes are read whole each time (they are small and rewritten); keys make that idempotent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from threadline.records import FileMark, IncomingSession

from ._common import (
    EPOCH,
    Msg,
    call_summary,
    default_dir,
    format_error,
    glob_files,
    loads,
    open_source,
    parse_time,
    plain_path,
    result_summary,
)

NAME = "gemini-cli"


def make_source() -> GeminiSource:
    return GeminiSource()


class GeminiSource:
    name = NAME
    live = False

    def default_path(self) -> Path | None:
        base = os.environ.get("GEMINI_CLI_HOME")
        root = Path(base).expanduser() if base else Path.home()
        return root / ".gemini" / "tmp"

    def discover(self, path: Path) -> Iterator[Path]:
        if path.is_file():
            yield path
            return
        found = [
            *glob_files(path, "session-*.json", recursive=True),
            *glob_files(path, "session-*.jsonl", recursive=True),
        ]
        yield from sorted(p for p in found if p.is_file())

    def read(
        self,
        path: Path,
        *,
        mark: FileMark | None = None,
        working_dir: str | None = None,
    ) -> Iterator[IncomingSession]:
        path = Path(path)
        with open_source(path) as fh:
            data = fh.read()
        if plain_path(path).suffix == ".jsonl":
            header, records = _jsonl(path, data)
        else:
            try:
                obj = loads(data)
            except ValueError as exc:
                raise format_error(path, None, f"not valid JSON ({exc})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
                raise format_error(path, None, "not a Gemini CLI session (no messages)")
            header = {k: v for k, v in obj.items() if k != "messages"}
            records = [m for m in obj["messages"] if isinstance(m, dict)]
        sid = header.get("sessionId")
        if not isinstance(sid, str) or not sid:
            raise format_error(path, None, "not a Gemini CLI session (no sessionId)")
        messages: list[Msg] = []
        for i, rec in enumerate(records):
            messages.extend(_messages(rec, path, i))
        if not messages:
            return
        metadata = {"source": NAME, "source_id": sid, "file": str(path)}
        for key in ("projectHash", "lastUpdated", "kind"):
            if header.get(key) is not None:
                metadata[key] = header[key]
        models = [m.model for m in messages if m.model]
        summary = header.get("summary")
        yield IncomingSession(
            source=NAME,
            source_id=sid,
            working_dir=default_dir(working_dir),
            created_at=parse_time(header.get("startTime")) or messages[0].created_at,
            title=summary if isinstance(summary, str) and summary.strip() else None,
            model=models[-1] if models else None,
            metadata=metadata,
            messages=[m.to_incoming(NAME) for m in messages],
        )


def _jsonl(path: Path, data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header: dict[str, Any] = {}
    order: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = loads(raw)
        except ValueError as exc:
            if lineno == len(lines):  # a half-written last line: read next time
                break
            raise format_error(path, f"line {lineno}", f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise format_error(path, f"line {lineno}", "not a JSON object")
        if "$set" in obj:
            if isinstance(obj["$set"], dict):
                header.update(obj["$set"])
        elif "$rewindTo" in obj:
            target = obj["$rewindTo"]
            if target in by_id:
                cut = order.index(target)
                for gone in order[cut:]:
                    by_id.pop(gone, None)
                del order[cut:]
        elif "sessionId" in obj and "type" not in obj:
            header.update(obj)
        elif isinstance(obj.get("id"), str):
            if obj["id"] not in by_id:
                order.append(obj["id"])
            by_id[obj["id"]] = obj  # a record written again replaces the earlier one
        else:
            raise format_error(path, f"line {lineno}", "record without an id")
    return header, [by_id[i] for i in order]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif isinstance(part, str):
            out.append(part)
    return "\n".join(out)


def _messages(rec: dict[str, Any], path: Path, index: int) -> list[Msg]:
    kind = rec.get("type")
    key = str(rec.get("id") or f"#{index}")
    when = parse_time(rec.get("timestamp")) or EPOCH
    text = _text(rec.get("content"))
    if kind == "user":
        shown = rec.get("displayContent")
        msg = Msg(key=key, role="user", kind="prompt", created_at=when, records=[rec])
        if isinstance(shown, list) and shown and all(isinstance(p, dict) for p in shown):
            if any("functionResponse" in p for p in shown):
                msg.kind = "meta"
            else:
                typed = _text(shown)
                if typed.strip().startswith("/"):
                    name, _, args = typed.strip().partition(" ")
                    msg.kind = "command"
                    msg.parts.append({"type": "command", "name": name, "args": args, "output": ""})
                    msg.text = typed
                    return [msg]
        msg.parts.append({"type": "text", "text": text})
        msg.text = text or "(empty)"
        return [msg]
    if kind == "gemini":
        msg = Msg(key=key, role="assistant", kind="reply", created_at=when, records=[rec])
        msg.model = rec.get("model") if isinstance(rec.get("model"), str) else None
        tokens = rec.get("tokens")
        if isinstance(tokens, dict):
            msg.input_tokens = tokens.get("input") if isinstance(tokens.get("input"), int) else None
            msg.output_tokens = (
                tokens.get("output") if isinstance(tokens.get("output"), int) else None
            )
        for thought in rec.get("thoughts") or []:
            if isinstance(thought, dict):
                body = "\n\n".join(
                    str(x) for x in (thought.get("subject"), thought.get("description")) if x
                )
                msg.parts.append({"type": "thinking", "text": body})
        if text.strip():
            msg.parts.append({"type": "text", "text": text})
        out = [msg]
        for n, call in enumerate(rec.get("toolCalls") or [], 1):
            if not isinstance(call, dict):
                continue
            name = str(call.get("name") or "tool")
            call_args = call.get("args")
            call_id = str(call.get("id") or f"{key}#{n}")
            msg.parts.append(
                {
                    "type": "tool_call",
                    "id": call_id,
                    "name": name,
                    "input": call_args,
                    "summary": call_summary(name, call_args),
                }
            )
            output = _call_output(call)
            failed = call.get("status") not in (None, "success")
            if name == "delegate_to_agent":
                agent = call_args.get("agent_name") if isinstance(call_args, dict) else None
                task = call_summary(name, call_args)
                msg.parts.append(
                    {
                        "type": "subagent",
                        "agent": str(agent or "agent"),
                        "call_id": call_id,
                        "messages": [
                            {"role": "user", "text": task},
                            {"role": "assistant", "text": output},
                        ],
                    }
                )
            tool = Msg(
                key=f"{key}#t{n}",
                role="tool",
                kind="tool_result",
                created_at=parse_time(call.get("timestamp")) or when,
                records=[call],
            )
            tool.parts.append(
                {
                    "type": "tool_result",
                    "call_id": call_id,
                    "name": name,
                    "summary": result_summary(output, failed),
                    "is_error": failed,
                }
            )
            tool.text = output or "(no output)"
            out.append(tool)
        return out
    if kind in ("info", "error", "warning"):
        msg = Msg(key=key, role="system", kind="info", created_at=when, records=[rec])
        msg.text = text or kind
        return [msg]
    return []  # a record type this reader does not know


def _call_output(call: dict[str, Any]) -> str:
    out = []
    for r in call.get("result") or []:
        if not isinstance(r, dict):
            continue
        resp = r.get("functionResponse")
        if isinstance(resp, dict):
            body = resp.get("response")
            if isinstance(body, dict):
                value = body.get("output", body.get("error"))
                out.append(value if isinstance(value, str) else str(value or ""))
            elif body is not None:
                out.append(str(body))
        elif isinstance(r.get("text"), str):
            out.append(r["text"])
    if not out and isinstance(call.get("resultDisplay"), str):
        out.append(call["resultDisplay"])
    return "\n".join(out)
