"""Benchmark: what the app adds to a turn over the raw stream, its writes, and keys while streaming.

Starts the fake OpenAI-compatible server (tests/fakes/openai_server.py) in its own process and
runs the app headless (120x36) on a fresh database, with the server as its provider. Medians of:

- raw stream: httpx + httpx-sse alone on the app's event loop (the floor for any client), a
  2,000-token reply streamed as fast as the server can;
- engine turn: the same turn through chat.TurnEngine with no UI (what `threadline chat` runs);
- app turn: the composer's send to the paint that shows the finished reply (user message and
  reply saved, streamed into the pane, drawn in its final form), each in a session of ten
  earlier turns (open, filling the pane), as when a conversation is continued;
  the app's overhead over the raw stream (target <= 50 ms of CPU per 2,000-token reply), and
  over the engine alone (the UI's share). Overheads are medians of paired differences: each
  run streams raw, through the engine and through the app back to back, and the difference is
  taken within the run (a busy moment then weighs on both sides of it);
- database writes per reply (target <= 2 + one per second of streaming) and per turn;
- live repaints per reply and the cost of each;
- key press to paint while a reply streams (target <= 100 ms): `j`/`k` in the sidebar (its
  cursor moves: a visible change) every 120 ms during a paced reply (600 tokens at 200
  tokens a second) and during the fast 2,000-token replies.

Run: python bench/bench_app_turn.py [--runs 15] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_chat import BODY, WriteCounter, fake_server  # noqa: E402
from bench_ui import PaintClock  # noqa: E402

EARLIER_TURNS = 10
EARLIER_ANSWER = "An earlier answer with `code`.\n\n- one point\n- another point"


def markdown_document(words: int = 2000) -> str:
    """A reply-like Markdown text of about `words` words: paragraphs with inline code and bold,
    lists and highlighted code blocks (the fake server echoes it back word by word)."""
    blocks: list[str] = []
    count, i = 0, 0
    while count < words:
        i += 1
        if i % 4 == 0:
            lines = [f"def step_{i}(value, limit={i}):"]
            lines += [f"    value = value * {j} + {i}  # keep it under the limit" for j in range(6)]
            lines.append("    return min(value, limit)")
            block = "```python\n" + "\n".join(lines) + "\n```"
        elif i % 6 == 0:
            block = "\n".join(f"- item {j} of list {i}, with `code` in it" for j in range(4))
        else:
            block = " ".join(
                f"**word{k}**" if k % 17 == 0 else (f"`w{k}`" if k % 11 == 0 else f"word{k}")
                for k in range(60)
            )
        blocks.append(block)
        count += len(block.split())
    return "\n\n".join(blocks)


async def raw_stream(client: Any, base_url: str, model: str, text: str = "go") -> int:
    """httpx + httpx-sse alone (as in bench_chat), on the app's loop."""
    from httpx_sse import EventSource

    body = {
        **BODY,
        "messages": [{"role": "user", "content": text}],
        "model": model,
        "stream_options": {"include_usage": True},
    }
    n = 0
    async with client.stream("POST", base_url + "/chat/completions", json=body) as response:
        async for sse in EventSource(response).aiter_sse():
            if sse.data == "[DONE]":
                break
            chunk = json.loads(sse.data)
            for choice in chunk.get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    n += 1
    return n


def run_app(base_url: str, model: str, paced_model: str, runs: int, db: Path) -> dict[str, Any]:
    import httpx
    from textual import events

    from threadline.config import Settings
    from threadline.ui.app import ThreadlineApp
    from threadline.ui.widgets.conversation import ConversationView
    from threadline.ui.widgets.session_list import SessionList

    settings = Settings()
    settings.session.auto_cleanup = False
    settings.provider.base_url = base_url
    settings.provider.model = model
    settings.provider.max_retries = 0
    settings.memory.enabled = False
    workdir = tempfile.mkdtemp(prefix="bench-app-turn-dir-")
    app = ThreadlineApp(db, settings, workdir)
    clock = PaintClock(app)
    counter = WriteCounter()
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "raw",
            "engine",
            "app",
            "reply_writes",
            "turn_writes",
            "streaming",
            "paints",
            "paint_ms",
            "keys_fast",
            "keys_paced",
            "raw_cpu",
            "engine_cpu",
            "app_cpu",
            "frames",
            "frames_cpu",
            "drawing_cpu",
            "md_raw",
            "md_engine",
            "md_app",
            "md_app_cpu",
            "md_raw_cpu",
            "md_engine_cpu",
            "md_drawing_cpu",
            "over_raw",
            "over_raw_cpu",
            "over_engine",
            "md_over_raw",
            "md_over_raw_cpu",
            "md_frames",
            "md_frames_cpu",
        )
    }
    # Where the app's own time goes: compositing frames, and drawing the reply (live repaints
    # and its final form).
    from textual.screen import Screen

    spent = {"frames": 0, "frames_cpu": 0.0, "drawing_cpu": 0.0}
    real_frame = Screen._compositor_refresh

    def timed_frame(self: Screen) -> None:
        cpu = time.process_time()
        real_frame(self)
        spent["frames"] += 1
        spent["frames_cpu"] += time.process_time() - cpu

    Screen._compositor_refresh = timed_frame  # type: ignore[method-assign]
    real_paint = ConversationView._paint_live

    def timed_paint(self: ConversationView) -> None:
        cpu = time.process_time()
        real_paint(self)
        spent["drawing_cpu"] += time.process_time() - cpu

    ConversationView._paint_live = timed_paint  # type: ignore[method-assign]

    ended: list[float] = []
    real_end = ConversationView.stream_end
    # Woken by the hooks, so that waiting does not poll the loop (which would cost the app
    # turn CPU time that the engine turn does not pay).
    wake = asyncio.Event()
    real_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        real_display(screen, renderable)
        wake.set()

    app._display = display

    async def timed_end(self: ConversationView, message: Any) -> None:
        # Its final form is drawn in the next frame (counted with the frames), as in use.
        cpu = time.process_time()
        await real_end(self, message)
        spent["drawing_cpu"] += time.process_time() - cpu
        ended.append(time.monotonic())
        wake.set()

    ConversationView.stream_end = timed_end  # type: ignore[method-assign]

    moved: list[float] = []
    real_watch = SessionList.watch_cursor

    def timed_watch(self: SessionList, old: int, new: int) -> None:
        real_watch(self, old, new)
        moved.append(time.monotonic())

    SessionList.watch_cursor = timed_watch  # type: ignore[method-assign]

    async def wait_for(condition: Any, limit: float = 60.0) -> None:
        end = time.monotonic() + limit
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there")
            await asyncio.sleep(0.001)

    async def woken_when(condition: Any, limit: float = 60.0) -> None:
        end = time.monotonic() + limit
        while not condition():
            wake.clear()
            if condition():
                break
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there")
            try:
                await asyncio.wait_for(wake.wait(), 0.5)
            except TimeoutError:
                pass

    async def painted_after(moment: float) -> float:
        await woken_when(lambda: clock.after(moment) is not None)
        return clock.after(moment) or moment

    async def press_during_turn(pilot: Any, samples: list[float]) -> None:
        """j/k in the sidebar every 120 ms while the turn runs; key to the paint showing it."""
        runner = app.main_screen.runner
        key = "j"
        await wait_for(lambda: runner.busy or runner.idle.is_set())
        while runner.busy:
            t0 = time.monotonic()
            before = len(moved)
            # As the driver delivers a key (Pilot.press also waits for the app to go idle).
            app.post_message(events.Key(key, key))
            try:
                await wait_for(lambda before=before: len(moved) > before, 2.0)
            except TimeoutError:
                break
            samples.append(await painted_after(moved[before]) - t0)
            key = "k" if key == "j" else "j"
            await asyncio.sleep(0.12)

    async def app_turn(
        pilot: Any, text: str, keys: list[float] | None, session_model: str | None = None
    ) -> dict[str, float]:
        screen = app.main_screen
        store = app.store
        assert store is not None
        # A conversation being continued: earlier turns fill more than the pane.
        session = await store.create_session(workdir, model=session_model)
        for i in range(EARLIER_TURNS):
            await store.add_message(session.id, "user", f"earlier question {i}")
            await store.add_message(session.id, "assistant", EARLIER_ANSWER)
        fresh = await store.get_session(session.id)
        assert fresh is not None
        await screen.reload_sessions(session.id)
        await screen.show_session(fresh)
        screen.sessions.focus()
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        view = screen.conversation
        captured: list[Any] = []
        real_begin = view.stream_begin
        marks: dict[str, int] = {}

        async def begin(message: Any, text: str = "") -> None:
            await real_begin(message, text)
            captured.append(view.live)
            marks["reply_from"] = len(counter.names) - 1  # the reply row's write

        view.stream_begin = begin  # type: ignore[method-assign]
        counter.names.clear()
        ended.clear()
        for name in spent:
            spent[name] = 0
        started, cpu = time.monotonic(), time.process_time()
        assert screen.runner.send(text)
        presser = (
            asyncio.ensure_future(press_during_turn(pilot, keys)) if keys is not None else None
        )
        await woken_when(lambda: bool(ended))
        done = await painted_after(ended[0])
        cpu = time.process_time() - cpu
        frames = dict(spent)
        await wait_for(lambda: screen.runner.idle.is_set())
        if presser is not None:
            await presser
        await app.workers.wait_for_complete()
        del view.stream_begin
        live = captured[0] if captured else None
        reply_from = marks.get("reply_from", 0)
        return {
            "app": done - started,
            "app_cpu": cpu,
            "frames": frames["frames"],
            "frames_cpu": frames["frames_cpu"],
            "drawing_cpu": frames["drawing_cpu"],
            "turn_writes": len(counter.names),
            "reply_writes": len(counter.names) - reply_from,
            "paints": live.renders if live else 0,
            "paint_ms": (live.render_seconds * 1000) if live else 0.0,
        }

    async def engine_turn(text: str = "go", model: str | None = None) -> tuple[float, float]:
        store, engine = app.store, app.engine
        assert store is not None and engine is not None
        session = await store.create_session(workdir, model=model)
        started, cpu = time.monotonic(), time.process_time()
        async for _ in engine.start(session, text):
            pass
        return time.monotonic() - started, time.process_time() - cpu

    async def pilot(p: Any) -> None:
        try:
            await wait_for(lambda: app.engine_ready.is_set() and app.main_screen.total is not None)
            await p.pause(0.3)
            async with httpx.AsyncClient(timeout=30) as client:
                # Warm up every path once.
                await raw_stream(client, base_url, model)
                await engine_turn()
                await app_turn(p, "go", None)
                for _ in range(runs):
                    t, cpu = time.monotonic(), time.process_time()
                    await raw_stream(client, base_url, model)
                    raw, raw_cpu = time.monotonic() - t, time.process_time() - cpu
                    results["raw"].append(raw)
                    results["raw_cpu"].append(raw_cpu)
                    wall, cpu = await engine_turn()
                    results["engine"].append(wall)
                    results["engine_cpu"].append(cpu)
                    turn = await app_turn(p, "go", None)
                    for name, value in turn.items():
                        results[name].append(value)
                    results["over_raw"].append(turn["app"] - raw)
                    results["over_raw_cpu"].append(turn["app_cpu"] - raw_cpu)
                    results["over_engine"].append(turn["app"] - wall)
                # A reply of paragraphs, lists and code blocks (the server echoes the message).
                document = markdown_document()
                await app_turn(p, document, None, session_model="echo")
                for _ in range(max(3, runs // 2)):
                    t, cpu = time.monotonic(), time.process_time()
                    await raw_stream(client, base_url, "echo", document)
                    raw, raw_cpu = time.monotonic() - t, time.process_time() - cpu
                    results["md_raw"].append(raw)
                    results["md_raw_cpu"].append(raw_cpu)
                    wall, cpu = await engine_turn(document, "echo")
                    results["md_engine"].append(wall)
                    results["md_engine_cpu"].append(cpu)
                    turn = await app_turn(p, document, None, session_model="echo")
                    results["md_app"].append(turn["app"])
                    results["md_app_cpu"].append(turn["app_cpu"])
                    results["md_drawing_cpu"].append(turn["drawing_cpu"])
                    results["md_frames"].append(turn["frames"])
                    results["md_frames_cpu"].append(turn["frames_cpu"])
                    results["md_over_raw"].append(turn["app"] - raw)
                    results["md_over_raw_cpu"].append(turn["app_cpu"] - raw_cpu)
                # Keys pressed all along a reply: fast ones, then paced ones (like a real
                # model's); these turns are not in the figures above.
                for _ in range(max(2, runs // 3)):
                    keys: list[float] = []
                    await app_turn(p, "go", keys)
                    results["keys_fast"] += keys
                for _ in range(max(1, runs // 5)):
                    keys = []
                    await app_turn(p, "go", keys, session_model=paced_model)
                    results["keys_paced"] += keys
        finally:
            counter.close()
            app.exit()

    app.run(headless=True, size=(120, 36), auto_pilot=pilot)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    model = f"bench?tokens={args.tokens}"
    paced = "bench?tokens=600&delay=0.005"
    tmp = Path(tempfile.mkdtemp(prefix="threadline-bench-app-turn-"))
    os.environ.update(
        {
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "TEXTUAL_ANIMATIONS": "none",
        }
    )
    for name in ("THREADLINE_CONFIG", "THREADLINE_API_KEY", "THREADLINE_BASE_URL"):
        os.environ.pop(name, None)
    load = os.getloadavg()
    print(f"load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{args.runs} runs, {args.tokens}-token replies, medians\n")
    with fake_server() as base_url:
        r = run_app(base_url, model, paced, args.runs, tmp / "app.db")

    def med(name: str) -> float:
        return statistics.median(r[name]) if r[name] else float("nan")

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:8.1f} ms"

    print(f"raw stream (httpx + httpx-sse + json)   {ms(med('raw'))}")
    print(f"engine turn, no UI                      {ms(med('engine'))}")
    print(f"app turn, send to final paint           {ms(med('app'))}")
    print(f"  over the raw stream, wall (paired)    {ms(med('over_raw'))}")
    print(f"  over the engine, wall (the UI; paired){ms(med('over_engine'))}")
    print(
        f"  CPU time: raw {ms(med('raw_cpu')).strip()}, engine {ms(med('engine_cpu')).strip()}, "
        f"app {ms(med('app_cpu')).strip()}: the app {ms(med('over_raw_cpu')).strip()} more "
        "than raw, paired   (target <= 50 ms; this process, all threads: steadier than wall "
        "time on a busy machine)"
    )
    print(
        f"  of which: {med('frames'):.0f} frames composited ({ms(med('frames_cpu')).strip()}), "
        f"drawing the reply ({ms(med('drawing_cpu')).strip()})"
    )
    print(
        f"  database writes per reply             {med('reply_writes'):8.0f}"
        f"      (target <= 2 + {med('app'):.2f} s of streaming)"
    )
    print(f"  database writes per turn              {med('turn_writes'):8.0f}")
    print(
        f"  live repaints per reply               {med('paints'):8.0f}"
        f"      (last one {med('paint_ms'):.1f} ms to draw)"
    )
    words = len(markdown_document().split())
    print(f"\na Markdown reply ({words:,} words echoed: paragraphs, lists, code blocks)")
    print(f"raw stream                              {ms(med('md_raw'))}")
    print(f"engine turn, no UI                      {ms(med('md_engine'))}")
    print(f"app turn, send to final paint           {ms(med('md_app'))}")
    print(f"  over the raw stream, wall (paired)    {ms(med('md_over_raw'))}")
    print(
        f"  CPU time: raw {ms(med('md_raw_cpu')).strip()}, engine "
        f"{ms(med('md_engine_cpu')).strip()}, app {ms(med('md_app_cpu')).strip()}: the app "
        f"{ms(med('md_over_raw_cpu')).strip()} more than raw, paired   (target <= 50 ms)"
    )
    print(
        f"  of which: {med('md_frames'):.0f} frames composited "
        f"({ms(med('md_frames_cpu')).strip()}), drawing the reply "
        f"({ms(med('md_drawing_cpu')).strip()})"
    )
    print()
    for name, label in (("keys_fast", "fast 2,000-token"), ("keys_paced", "paced 600-token")):
        values = r[name]
        if values:
            print(
                f"key to paint during a {label} reply: {ms(statistics.median(values))} median, "
                f"{ms(max(values))} worst, {len(values)} presses   (target <= 100 ms)"
            )
    load = os.getloadavg()
    print(f"\nload after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for path in sorted(tmp.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
