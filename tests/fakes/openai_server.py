"""A fake OpenAI-compatible chat completions server on 127.0.0.1: real sockets, real SSE.

Use it from tests (`with FakeOpenAIServer() as server: server.base_url`) or run it for manual
tries and benchmarks: `python tests/fakes/openai_server.py --port 8765` (prints its base URL).

The requested model name chooses the behaviour: `MODE` or `MODE?key=value&key=value`.

Modes:
  (anything else)     a normal streamed reply, then a usage chunk (if asked for) and [DONE]
  slow                the same, with delay=0.05 s between tokens (tokens=40)
  unauthorized        401                     forbidden        403
  missing             404 model not found     notfound-plain   404 without a JSON body
  ratelimit           429 (Retry-After: retry_after, default 0) for the first `fail` (1)
                      requests of this model name, then a normal reply
  flaky               500 (or status=) for the first `fail` (1) requests, then a normal reply
  servererror         always 500 (or status=)
  disconnect          `after` (3) tokens, then the connection is cut mid-chunk
  truncate            `after` (3) tokens, then a clean end with no finish_reason or [DONE]
  malformed           `after` (1) tokens, then a chunk that is not JSON
  streamerror         `after` (1) tokens, then an `{"error": ...}` chunk
  no-stream-options   400 when the request has `stream_options` (as some servers do)
  ignore-usage        never sends a usage chunk
  plain               answers with application/json instead of an event stream

Parameters for replies: tokens=N (reply is "t0 t1 ... "; default: echo the last user
message), delay=S between tokens, first_delay=S before the first token, pause_after=K and
pause=S (a silence after token K), hold_after=K[,K2...] (after K tokens, 0 for before the first,
the stream waits until the test calls `server.release()`: a silence as long as the test needs,
with no clock involved), finish=REASON.

Summary and memory-extraction requests (recognised by the first words of threadline's
instructions in their system message) are answered from per-kind scripts after the model-name
error modes above: `server.script("summary", "the text", 500, ...)` queues replies (a string is
the reply's text, an int an HTTP error with that status); with the script empty, a summary
request gets "Summary of messages #FIRST-#LAST." (the numbers of its transcript's entries:
positions in the session, `[message 12, user]`) and an extraction
request gets "[]"; `Cut(text)` sends the text and then drops the connection.
`server.kinds` holds the kind of every request ("chat", "summary", "extraction");
`server.requests_of(kind)` their bodies.

`GET /v1/models` lists `server.models` (["fake"] unless a test sets it).

A server-wide `api_key` makes every request (the model list too) without
`Authorization: Bearer <key>` a 401.
`server.requests` holds every request body received (`on_request` sees each as it comes);
`server.sent` holds (monotonic time, text) for every token written, for tests that kill a
client mid-reply; `server.wait_until(lambda: len(server.sent) >= 5)` waits for what the server
has seen (from async code: `await asyncio.to_thread(server.wait_until, ...)`).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Cut:
    """A scripted reply that sends `text` and then loses the connection mid-stream."""

    text: str


Scripted = str | int | Cut


@dataclass
class Mode:
    name: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, model: str) -> Mode:
        name, _, query = model.partition("?")
        return cls(name, dict(parse_qsl(query)))

    def num(self, key: str, default: float) -> float:
        return float(self.params.get(key, default))

    def integer(self, key: str, default: int) -> int:
        return int(self.params.get(key, default))


def request_kind(body: dict[str, Any]) -> str:
    """ "summary", "extraction" or "chat", from the request's first system message."""
    from threadline.chat.memory import EXTRACTION_INSTRUCTIONS_HEAD
    from threadline.chat.summarise import SUMMARY_INSTRUCTIONS_HEAD

    messages = body.get("messages") or []
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    if first.get("role") == "system":
        text = str(first.get("content", ""))
        if text.startswith(SUMMARY_INSTRUCTIONS_HEAD):
            return "summary"
        if text.startswith(EXTRACTION_INSTRUCTIONS_HEAD):
            return "extraction"
    return "chat"


def default_reply(kind: str, body: dict[str, Any]) -> str:
    """What a summary or extraction request gets when its script is empty."""
    if kind == "extraction":
        return "[]"
    prompt = str((body.get("messages") or [{}])[-1].get("content", ""))
    entry = r"^\[(?:message (\d+), \w+|\w+ #(\d+))\]$"
    ids = [int(a or b) for a, b in re.findall(entry, prompt, re.MULTILINE)]
    if not ids:
        return "Summary of nothing."
    return f"Summary of messages #{min(ids)}-#{max(ids)}."


def text_tokens(text: str) -> list[str]:
    """A text cut into word-sized tokens (joined, they give the text back)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def reply_tokens(mode: Mode, body: dict[str, Any], text: str | None = None) -> list[str]:
    """The tokens of a reply: `text` when given, `tokens=N` numbered words, else an echo of
    the last user message."""
    if text is not None:
        return text_tokens(text)
    if "tokens" in mode.params:
        return [f"t{i} " for i in range(mode.integer("tokens", 0))]
    if mode.name == "slow":
        return [f"t{i} " for i in range(40)]
    last = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            last = str(message.get("content", ""))
    words = f"You said: {last}".split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


class FakeOpenAIServer:
    """The server, on a thread. A context manager; `base_url` ends in /v1."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api_key = api_key
        # What `GET /models` lists (it checks the api_key as chat requests do).
        self.models: list[str] = ["fake"]
        # Called on the server's thread with each request body, before it is answered.
        self.on_request = on_request
        self.requests: list[dict[str, Any]] = []
        self.kinds: list[str] = []
        self.scripts: dict[str, list[Scripted]] = {"summary": [], "extraction": []}
        self.headers: list[dict[str, str]] = []
        self.sent: list[tuple[float, str]] = []
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a request or a token came or went
        self._holds = threading.Semaphore(0)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _QuietServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._holds.release(1000)  # no handler stays held past the test
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def script(self, kind: str, *replies: Scripted) -> None:
        """Queue replies for requests of a kind ("summary", "extraction"): text, a status,
        or Cut(text) (the text, then the connection drops)."""
        with self._lock:
            self.scripts[kind].extend(replies)

    def next_scripted(self, kind: str) -> Scripted | None:
        with self._lock:
            queue = self.scripts.get(kind)
            return queue.pop(0) if queue else None

    def requests_of(self, kind: str) -> list[dict[str, Any]]:
        """The bodies of the requests of one kind, in order."""
        with self._lock:
            return [b for b, k in zip(self.requests, self.kinds, strict=True) if k == kind]

    def should_fail(self, model: str, times: int) -> bool:
        """True for the first `times` requests naming `model` (per server)."""
        with self._lock:
            seen = self._failures.get(model, 0)
            self._failures[model] = seen + 1
            return seen < times

    def sent_text(self, before: float | None = None) -> str:
        """The reply text written so far (or before a monotonic time)."""
        with self._lock:
            return "".join(t for when, t in self.sent if before is None or when < before)

    def record_sent(self, text: str) -> None:
        with self._lock:
            self.sent.append((time.monotonic(), text))
            self._changed.notify_all()

    def release(self) -> None:
        """Let one held stream (`hold_after=`) go on."""
        self._holds.release()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 120) -> None:
        """Block until `condition()` holds (checked whenever a request or token arrives).

        The timeout only keeps a broken test from hanging the suite.
        """
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError("the fake server never saw what the test waited for")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (a cancelled reply, a closed keep-alive) are not errors here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    # ------------------------------------------------------------------ plumbing

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": "error"}}, headers)

    def _chunk(self, raw: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()

    def _event(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        self._chunk(f"data: {text}\n\n".encode())

    # ------------------------------------------------------------------ requests

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        fake = self.fake
        if not self.path.rstrip("/").endswith("/v1/models"):
            self._error(404, f"no route {self.path}")
            return
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if fake.api_key and given != fake.api_key:
            self._error(401, f"Incorrect API key provided: {given}")
            return
        data = [{"id": name, "object": "model"} for name in fake.models]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "request body is not JSON")
            return
        fake = self.fake
        kind = request_kind(body) if isinstance(body, dict) else "chat"
        with fake._lock:
            fake.requests.append(body)
            fake.kinds.append(kind)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            fake._changed.notify_all()
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        if fake.on_request is not None:
            fake.on_request(body)
        # Like OpenAI, a rejected key is echoed back: clients must not print it.
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if fake.api_key and given != fake.api_key:
            self._error(401, f"Incorrect API key provided: {given}")
            return
        model = str(body.get("model", ""))
        mode = Mode.parse(model)
        name = mode.name
        if name == "unauthorized":
            self._error(401, f"Incorrect API key provided: {given}")
        elif name == "forbidden":
            self._error(403, "You do not have access to this model")
        elif name == "missing":
            self._json(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        elif name == "notfound-plain":
            self._json(404, {"detail": "Not Found"})
        elif name == "ratelimit" and fake.should_fail(model, mode.integer("fail", 1)):
            after = mode.params.get("retry_after", "0")
            self._error(429, "Rate limit reached", {"Retry-After": after})
        elif name == "flaky" and fake.should_fail(model, mode.integer("fail", 1)):
            self._error(mode.integer("status", 500), "The server had an error")
        elif name == "servererror":
            self._error(mode.integer("status", 500), "The server had an error")
        elif name == "no-stream-options" and "stream_options" in body:
            self._error(400, "Unrecognized request argument supplied: stream_options")
        elif name == "plain":
            self._json(200, {"choices": [{"message": {"role": "assistant", "content": "hi"}}]})
        else:
            text: str | None = None
            if kind != "chat":
                scripted = fake.next_scripted(kind)
                if isinstance(scripted, int):
                    self._error(scripted, f"scripted {kind} failure")
                    return
                if isinstance(scripted, Cut):
                    mode = Mode("disconnect", {**mode.params, "after": "1000000"})
                    text = scripted.text
                else:
                    text = scripted if scripted is not None else default_reply(kind, body)
            if not body.get("stream"):
                self._complete(mode, body, text)
                return
            try:
                self._stream(mode, body, text)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    def _complete(self, mode: Mode, body: dict[str, Any], text: str | None = None) -> None:
        """A non-streamed completion (for summarisers and other one-shot callers)."""
        tokens = reply_tokens(mode, body, text)
        self._json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": str(body.get("model")),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(tokens)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(body, tokens),
            },
        )

    def _stream(self, mode: Mode, body: dict[str, Any], text: str | None = None) -> None:
        fake = self.fake
        model = str(body.get("model"))
        tokens = reply_tokens(mode, body, text)
        name = mode.name
        default_delay = 0.05 if name == "slow" else 0.0
        delay = mode.num("delay", default_delay)
        pause_after = mode.integer("pause_after", -1)
        pause = mode.num("pause", 0.0)
        holds = {int(k) for k in mode.params.get("hold_after", "").split(",") if k}
        cut = {"disconnect": 3, "truncate": 3, "malformed": 1, "streamerror": 1}
        stop_after = mode.integer("after", cut[name]) if name in cut else None

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        time.sleep(mode.num("first_delay", 0.0))
        for i, token in enumerate(tokens):
            if stop_after is not None and i == stop_after:
                self._break_off(name)
                return
            if i and delay:
                time.sleep(delay)
            if i == pause_after:
                time.sleep(pause)
            if i in holds:
                fake._holds.acquire()
            self._event(
                {**base, "choices": [{"index": 0, "delta": {"content": token}}]},
            )
            fake.record_sent(token)
        if stop_after is not None:
            self._break_off(name)
            return
        finish = mode.params.get("finish", "stop")
        self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and name != "ignore-usage":
            self._event({**base, "choices": [], "usage": _usage(body, tokens)})
        self._event("[DONE]")
        self._chunk(b"")

    def _break_off(self, name: str) -> None:
        if name == "disconnect":
            # Half a chunk, then the socket goes away: the client sees an incomplete body.
            self.wfile.write(b'40\r\ndata: {"choi')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif name == "truncate":
            self._chunk(b"")
        elif name == "malformed":
            self._event("{this is not json")
            self._chunk(b"")
        elif name == "streamerror":
            self._event({"error": {"message": "the model crashed", "type": "server_error"}})
            self._chunk(b"")


def _usage(body: dict[str, Any], tokens: list[str]) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", ""))) // 4 + 4 for m in body.get("messages", []))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(tokens),
        "total_tokens": prompt + len(tokens),
    }


def iter_models() -> Iterator[str]:
    """The mode names, for help texts."""
    yield from (
        "slow unauthorized forbidden missing notfound-plain ratelimit flaky servererror"
        " disconnect truncate malformed streamerror no-stream-options ignore-usage plain"
    ).split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server.")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(port=args.port, api_key=args.api_key)
    print(server.base_url, flush=True)
    print(f"modes (the model name): {' '.join(iter_models())}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
