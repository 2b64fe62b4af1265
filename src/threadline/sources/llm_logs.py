"""simonw's llm: its `logs.db` (SQLite), opened read-only and left byte-identical.

Every schema from llm 0.12 on is read:

- before 0.32, `conversations` and `responses` (with, from 0.17, `attachments`, from 0.24
  fragments, from 0.26 `tool_calls` / `tool_results`): each conversation is a session and each
  response a user message (`<response id>:prompt`, its typed prompt with attachment and fragment
  placeholders; tool results sent back become `tool` messages `<id>:tool<n>`) and an
  assistant message (`<response id>:response`, with tool calls, reasoning, model and tokens);
- from 0.32, the message store (`threads`, `turns`, `messages`, `parts`): each thread is a
  session, walked from its tip; each turn contributes the inputs after the previous turn
  (`<turn id>:prompt`, `<turn id>:in<n>`) and its outputs (`<turn id>:response`, `:out<n>`),
  the turn's model and tokens on its first output; `system` messages give the session's system
  prompt.
- A database upgraded from the old schema to the new has both: a thread with a conversation's
  id continues that conversation (one session), and the history the thread replayed from the
  legacy rows is not counted again; a legacy row written alongside a turn with the same id
  (dual writes) is skipped for the turn.

Each message's records are the rows it came from (`{"table": ..., column: value}`; BLOBs as
`{"base64": ...}`). The database records no working directory: the batch takes the one given.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from threadline.records import FileMark, IncomingSession

from ._common import (
    EPOCH,
    Msg,
    as_dict,
    call_summary,
    default_dir,
    format_error,
    parse_time,
    placeholder,
    result_summary,
)

NAME = "llm"


def make_source() -> LlmSource:
    return LlmSource()


class LlmSource:
    name = NAME
    live = False

    def default_path(self) -> Path | None:
        """Where llm keeps logs.db: LLM_USER_PATH, else click's app dir, as llm resolves it."""
        user = os.environ.get("LLM_USER_PATH")
        if user:
            return Path(user) / "logs.db"
        if sys.platform == "darwin":
            base = Path.home() / "Library" / "Application Support"
        elif sys.platform.startswith("win"):
            base = Path(os.environ.get("APPDATA") or Path.home())
        else:
            base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return base / "io.datasette.llm" / "logs.db"

    def discover(self, path: Path) -> Iterator[Path]:
        if path.is_dir():
            if (path / "logs.db").is_file():
                yield path / "logs.db"
            return
        yield path

    def read(
        self,
        path: Path,
        *,
        mark: FileMark | None = None,
        working_dir: str | None = None,
    ) -> Iterator[IncomingSession]:
        import sqlite3

        path = Path(path)
        if not path.is_file():
            raise format_error(path, None, "no such file")
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise format_error(path, None, f"cannot open ({exc})") from None
        db.row_factory = sqlite3.Row
        try:
            try:
                tables = {r[0] for r in db.execute("select name from sqlite_master")}
            except sqlite3.DatabaseError as exc:
                raise format_error(path, None, f"not an llm logs database ({exc})") from None
            if "responses" not in tables and "threads" not in tables:
                raise format_error(path, None, "not an llm logs database (no responses table)")
            try:
                yield from _Reader(db, tables, path, default_dir(working_dir)).sessions()
            except sqlite3.DatabaseError as exc:
                raise format_error(path, None, f"corrupt llm logs database ({exc})") from None
        finally:
            db.close()


def _row(table: str, row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"table": table}
    for key in row.keys():
        if key in skip:
            continue
        value = row[key]
        if isinstance(value, bytes | bytearray | memoryview):
            value = {"base64": base64.b64encode(bytes(value)).decode()}
        out[key] = value
    return out


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


class _Reader:
    def __init__(self, db: Any, tables: set[str], path: Path, working_dir: str) -> None:
        self.db = db
        self.tables = tables
        self.path = path
        self.working_dir = working_dir
        self.turn_ids: set[str] = set()
        if "turns" in tables:
            self.turn_ids = {r[0] for r in db.execute("select id from turns")}

    def by_response(self, table: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        if table in self.tables:
            for r in self.db.execute(f"select * from {table} order by rowid"):  # noqa: S608
                out.setdefault(r["response_id"], []).append(r)
        return out

    # -- sessions ------------------------------------------------------------------------------

    def sessions(self) -> Iterator[IncomingSession]:
        threads: dict[str, Any] = {}
        if "threads" in self.tables:
            threads = {r["id"]: r for r in self.db.execute("select * from threads order by rowid")}
        if "responses" in self.tables:
            conversations = {}
            if "conversations" in self.tables:
                conversations = {r["id"]: r for r in self.db.execute("select * from conversations")}
            self.attachments = self._attachments()
            self.fragments = self._fragments()
            self.tool_calls = self.by_response("tool_calls")
            self.tool_results = self.by_response("tool_results")
            group: list[Any] = []
            current: object = object()
            rows = self.db.execute(
                "select * from responses order by conversation_id is null, conversation_id, rowid"
            )
            for r in rows:
                cid = r["conversation_id"]
                if cid is None:  # a response outside any conversation: a session of its own
                    session = self.legacy(f"response:{r['id']}", None, [r], None)
                    if session is not None:
                        yield session
                    continue
                if cid != current and group:
                    yield from self._emit_legacy(current, conversations, threads, group)
                    group = []
                current = cid
                group.append(r)
            if group:
                yield from self._emit_legacy(current, conversations, threads, group)
        for thread in threads.values():
            session = self.thread(thread, None, skip_history=False)
            if session is not None:
                yield session

    def _emit_legacy(
        self, cid: Any, conversations: dict[str, Any], threads: dict[str, Any], rows: list[Any]
    ) -> Iterator[IncomingSession]:
        thread = threads.pop(cid, None)
        session = self.legacy(str(cid), conversations.get(cid), rows, thread)
        if session is not None:
            yield session

    def _base(self, source_id: str, created: datetime, **kw: Any) -> IncomingSession:
        return IncomingSession(
            source=NAME,
            source_id=source_id,
            working_dir=self.working_dir,
            created_at=created,
            metadata={"source": NAME, "source_id": source_id, "database": str(self.path)},
            **kw,
        )

    # -- before 0.32 ---------------------------------------------------------------------------

    def legacy(
        self, source_id: str, conv: Any, rows: list[Any], thread: Any
    ) -> IncomingSession | None:
        messages: list[Msg] = []
        system = None
        counted = 0
        for r in rows:
            if r["id"] in self.turn_ids:
                continue  # written twice (dual-write era): the turn stands for it
            counted += 1
            if system is None and r["system"]:
                system = r["system"]
            messages.extend(self.response(r))
        session = self._base(
            source_id,
            parse_time(rows[0]["datetime_utc"]) or EPOCH,
            title=(conv["name"] if conv is not None else None) or None,
            model=(conv["model"] if conv is not None else None) or rows[-1]["model"],
            system_prompt=system,
        )
        session.messages = [m.to_incoming(NAME) for m in messages]
        if thread is not None:
            extra = self.thread(thread, session, skip_history=counted > 0)
            if extra is not None and extra is not session:
                session.messages.extend(extra.messages)
        return session if session.messages else None

    def response(self, r: Any) -> list[Msg]:
        rid = r["id"]
        when = parse_time(r["datetime_utc"]) or EPOCH
        keys = r.keys()
        prompt_cols = ("id", "prompt", "system", "prompt_json", "datetime_utc", "conversation_id")
        out: list[Msg] = []
        prompt = Msg(
            key=f"{rid}:prompt",
            role="user",
            kind="prompt",
            created_at=when,
            records=[_row("responses", r, tuple(k for k in keys if k not in prompt_cols))],
        )
        if r["prompt"]:
            prompt.parts.append({"type": "text", "text": r["prompt"]})
        for a in self.attachments.get(rid, []):
            prompt.parts.append(a["part"])
            prompt.records.append(a["record"])
        for f in self.fragments.get(rid, []):
            prompt.parts.append(f["part"])
            prompt.records.append(f["record"])
        if prompt.parts:
            texts = [p["text"] for p in prompt.parts if p["type"] == "text"]
            holders = [
                placeholder(p["kind"], p["name"], p["size"])
                for p in prompt.parts
                if p["type"] == "attachment"
            ]
            prompt.text = "\n\n".join(texts + holders)
            out.append(prompt)
        for n, t in enumerate(self.tool_results.get(rid, []), 1):
            tool = Msg(
                key=f"{rid}:tool{n}",
                role="tool",
                kind="tool_result",
                created_at=when,
                records=[_row("tool_results", t)],
            )
            output = t["output"] or ""
            error = t["exception"] if "exception" in t.keys() else None
            tool.parts.append(
                {
                    "type": "tool_result",
                    "call_id": t["tool_call_id"] or "",
                    "name": t["name"] or "",
                    "summary": result_summary(error or output, bool(error)),
                    "is_error": bool(error),
                }
            )
            tool.text = output or error or "(no output)"
            out.append(tool)
        reply = Msg(
            key=f"{rid}:response",
            role="assistant",
            kind="reply",
            created_at=when,
            records=[_row("responses", r, tuple(k for k in prompt_cols if k != "id"))],
        )
        reasoning = r["reasoning"] if "reasoning" in keys else None
        if reasoning:
            reply.parts.append({"type": "thinking", "text": reasoning})
        if r["response"]:
            reply.parts.append({"type": "text", "text": r["response"]})
        for c in self.tool_calls.get(rid, []):
            args = _json(c["arguments"])
            name = c["name"] or "tool"
            reply.parts.append(
                {
                    "type": "tool_call",
                    "id": c["tool_call_id"] or "",
                    "name": name,
                    "input": args,
                    "summary": call_summary(name, args),
                }
            )
            reply.records.append(_row("tool_calls", c))
        reply.model = (r["resolved_model"] if "resolved_model" in keys else None) or r["model"]
        if "input_tokens" in keys:
            reply.input_tokens, reply.output_tokens = r["input_tokens"], r["output_tokens"]
        out.append(reply)
        return out

    def _attachments(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        if "prompt_attachments" not in self.tables:
            return out
        for r in self.db.execute(
            'select pa.response_id, pa."order", a.* from prompt_attachments pa'
            ' join attachments a on a.id = pa.attachment_id order by pa.response_id, pa."order"'
        ):
            out.setdefault(r["response_id"], []).append(_attachment(r))
        return out

    def _fragments(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for table, kind in (("prompt_fragments", "fragment"), ("system_fragments", "system")):
            if table not in self.tables or "fragments" not in self.tables:
                continue
            for r in self.db.execute(
                f'select pf.response_id, pf."order", f.id, f.hash, f.source, length(f.content)'  # noqa: S608
                f" as size from {table} pf join fragments f on f.id = pf.fragment_id"
                ' order by pf.response_id, pf."order"'
            ):
                name = r["source"] or r["hash"]
                out.setdefault(r["response_id"], []).append(
                    {
                        "part": {
                            "type": "attachment",
                            "name": str(name),
                            "kind": kind,
                            "size": r["size"],
                        },
                        "record": {
                            "table": table,
                            "response_id": r["response_id"],
                            "fragment_id": r["id"],
                            "hash": r["hash"],
                            "source": r["source"],
                            "order": r["order"],
                        },
                    }
                )
        return out

    # -- 0.32 and later --------------------------------------------------------------------------

    def thread(
        self, thread: Any, into: IncomingSession | None, *, skip_history: bool
    ) -> IncomingSession | None:
        tid = thread["id"]
        chain = self.chain(thread["tip_message_hash"])
        turns = (
            list(
                self.db.execute(
                    "select * from turns where thread_id = ? order by datetime_utc, rowid", (tid,)
                )
            )
            if "turns" in self.tables
            else []
        )
        pos = {m["hash"]: i for i, m in enumerate(chain)}
        turns = [t for t in turns if t["tip_message_hash"] in pos]
        messages: list[Msg] = []
        system = None
        done = -1  # chain index up to which messages are placed
        for n, turn in enumerate(turns):
            when = parse_time(turn["datetime_utc"]) or EPOCH
            parent = pos.get(turn["parent_message_hash"], done)
            tip = pos[turn["tip_message_hash"]]
            start = done + 1
            if n == 0 and skip_history:
                # the history a continued legacy conversation replayed into its first turn:
                # the legacy rows already gave it; keep only what followed the last reply
                last_reply = max(
                    (i for i in range(start, parent + 1) if chain[i]["role"] == "assistant"),
                    default=start - 1,
                )
                start = last_reply + 1
            k = 0
            for i in range(start, parent + 1):
                if chain[i]["role"] == "system":
                    system = system or _text_of(chain[i]["parts"])
                    continue
                key = (
                    f"{turn['id']}:prompt"
                    if k == 0 and chain[i]["role"] == "user"
                    else f"{turn['id']}:in{k}"
                )
                k += 1
                messages.append(self.chain_message(chain[i], key, when))
            for j, i in enumerate(range(parent + 1, tip + 1)):
                key = f"{turn['id']}:response" if j == 0 else f"{turn['id']}:out{j}"
                msg = self.chain_message(chain[i], key, when)
                if j == 0:
                    msg.model = turn["resolved_model"] or turn["model"]
                    msg.input_tokens, msg.output_tokens = (
                        turn["input_tokens"],
                        turn["output_tokens"],
                    )
                    msg.records.append(_row("turns", turn))
                messages.append(msg)
            done = max(done, tip)
        # messages after the last turn (or a thread with no turns): keyed by their hash
        messages.extend(
            self.loose(chain, done + 1, len(chain), parse_time(thread["datetime_utc"]) or EPOCH)
        )
        for m in list(messages):
            if m.role == "system" and m.kind == "meta" and system is None:
                system = m.text
        created = parse_time(thread["datetime_utc"]) or (
            messages[0].created_at if messages else EPOCH
        )
        model = None
        if turns:
            model = turns[-1]["resolved_model"] or turns[-1]["model"]
        session = self._base(
            tid, created, title=thread["name"] or None, model=model, system_prompt=system
        )
        session.messages = [m.to_incoming(NAME) for m in messages]
        if into is not None:
            if into.system_prompt is None:
                into.system_prompt = system
            if model:
                into.model = model
        return session if session.messages else None

    def loose(self, chain: list[dict[str, Any]], start: int, end: int, when: datetime) -> list[Msg]:
        out = []
        for i in range(start, end):
            if chain[i]["role"] == "system":
                continue
            out.append(self.chain_message(chain[i], f"m:{chain[i]['hash']}", when))
        return out

    def chain(self, tip: str | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        node = tip
        while node is not None and node not in seen:
            seen.add(node)
            found = self.db.execute("select * from messages where hash = ?", (node,)).fetchone()
            if found is None:
                break
            rows.append({"hash": found["hash"], "role": found["role"], "row": found})
            node = found["parent_hash"]
        rows.reverse()
        for m in rows:
            m["parts"] = self.parts(m["hash"])
        return rows

    def parts(self, message_hash: str) -> list[dict[str, Any]]:
        out = []
        for p in self.db.execute(
            "select * from parts where message_hash = ? order by position", (message_hash,)
        ):
            payload = _json(p["payload"]) if p["payload"] else {}
            if not isinstance(payload, dict):
                payload = {"value": payload}
            text = p["text"]
            refs = payload.get("text_ref")
            if text is None and isinstance(refs, list):
                text = self.resolve_refs(refs)
            out.append(
                {
                    "type": p["type"],
                    "tool_name": p["tool_name"],
                    "text": text,
                    "payload": payload,
                    "row": p,
                }
            )
        return out

    def resolve_refs(self, refs: list[Any]) -> str:
        pieces = []
        for piece in refs:
            if isinstance(piece, dict) and "literal" in piece:
                pieces.append(str(piece["literal"]))
            elif isinstance(piece, dict) and "fragment" in piece:
                found = self.db.execute(
                    "select content from fragments where id = ?", (piece["fragment"],)
                ).fetchone()
                pieces.append(found[0] if found else "")
        return "".join(pieces)

    def chain_message(self, m: dict[str, Any], key: str, when: datetime) -> Msg:
        role = m["role"]
        records = [_row("messages", m["row"])] + [_row("parts", p["row"]) for p in m["parts"]]
        if role == "tool":
            msg = Msg(key=key, role="tool", kind="tool_result", created_at=when, records=records)
        elif role == "assistant":
            msg = Msg(key=key, role="assistant", kind="reply", created_at=when, records=records)
        elif role == "system":
            msg = Msg(key=key, role="system", kind="meta", created_at=when, records=records)
        else:
            msg = Msg(key=key, role="user", kind="prompt", created_at=when, records=records)
        texts = []
        for p in m["parts"]:
            ptype, payload = p["type"], p["payload"]
            if ptype == "text":
                msg.parts.append({"type": "text", "text": p["text"] or ""})
                texts.append(p["text"] or "")
            elif ptype == "reasoning":
                msg.parts.append({"type": "thinking", "text": p["text"] or ""})
            elif ptype == "tool_call":
                name = payload.get("name") or p["tool_name"] or "tool"
                args = payload.get("arguments")
                msg.parts.append(
                    {
                        "type": "tool_call",
                        "id": payload.get("tool_call_id") or "",
                        "name": name,
                        "input": args,
                        "summary": call_summary(name, args),
                    }
                )
            elif ptype == "tool_result":
                output = payload.get("output")
                output = output if isinstance(output, str) else json.dumps(output)
                error = payload.get("exception")
                msg.parts.append(
                    {
                        "type": "tool_result",
                        "call_id": payload.get("tool_call_id") or "",
                        "name": payload.get("name") or p["tool_name"] or "",
                        "summary": result_summary(error or output, bool(error)),
                        "is_error": bool(error),
                    }
                )
                texts.append(output or str(error or ""))
            elif ptype == "attachment":
                ref = as_dict(payload.get("attachment"))
                part = self.attachment_part(ref.get("id"))
                msg.parts.append(part)
                texts.append(placeholder(part["kind"], part["name"], part["size"]))
        msg.text = "\n\n".join(t for t in texts if t) or None
        return msg

    def attachment_part(self, attachment_id: Any) -> dict[str, Any]:
        row = None
        if attachment_id is not None and "attachments" in self.tables:
            row = self.db.execute(
                "select id, type, path, url, length(content) as size from attachments where id = ?",
                (attachment_id,),
            ).fetchone()
        if row is None:
            return {
                "type": "attachment",
                "name": str(attachment_id or "attachment"),
                "kind": "file",
                "size": None,
            }
        return _attachment_part(row)


def _attachment_part(r: Any) -> dict[str, Any]:
    mime = r["type"] or ""
    kind = (
        "image" if mime.startswith("image/") else ("audio" if mime.startswith("audio/") else "file")
    )
    name = r["path"] or r["url"] or mime or r["id"]
    size = r["size"] if "size" in r.keys() else None
    return {"type": "attachment", "name": str(name), "kind": kind, "size": size}


def _attachment(r: Any) -> dict[str, Any]:
    content = r["content"]
    part = _attachment_part(
        {
            "type": r["type"],
            "path": r["path"],
            "url": r["url"],
            "id": r["id"],
            "size": len(content) if content else None,
        }
    )
    return {"part": part, "record": _row("attachments", r)}


def _text_of(parts: list[dict[str, Any]]) -> str | None:
    texts = [p["text"] for p in parts if p["type"] == "text" and p["text"]]
    return "\n\n".join(texts) if texts else None
