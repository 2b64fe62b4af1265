"""Benchmark: what the turn engine and `threadline chat` add on top of the raw stream.

Starts the fake OpenAI-compatible server (tests/fakes/openai_server.py) in its own process,
streaming a 2,000-token reply as fast as it can, and prints medians of:

- raw stream: httpx + httpx-sse alone, parsing each chunk's JSON (the floor for any client);
- provider: threadline's OpenAICompatProvider alone (no database);
- turn engine: a whole turn (user message, context, reply row, checkpoints, final write) on a
  fresh database; its overhead over the raw stream (target <= 50 ms per 2,000-token reply);
- database writes per reply (target <= 2 + one per second of streaming) and per turn;
- `threadline chat` in-process (main(), stdout to /dev/null): total and overhead over raw;
- `threadline chat` as a process: start-up (a 1-token reply) next to `python -c pass` and
  `threadline --version`, and a 2,000-token reply.

Run: python bench/bench_chat.py [--runs 15] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"


@contextlib.contextmanager
def fake_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise SystemExit("the fake server did not start")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms"


BODY = {"messages": [{"role": "user", "content": "go"}], "stream": True}


async def raw_stream(client: Any, base_url: str, model: str) -> int:
    """httpx + httpx-sse alone, on an open client: the floor for any streaming client."""
    from httpx_sse import EventSource

    body = {**BODY, "model": model, "stream_options": {"include_usage": True}}
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


def provider_settings(base_url: str, model: str) -> Any:
    from threadline.config import ProviderSettings

    return ProviderSettings(
        name="bench",
        base_url=base_url,
        model=model,
        connect_timeout=10,
        read_timeout=30,
        max_retries=0,
    )


async def provider_stream(provider: Any, model: str) -> int:
    from threadline.chat.provider import ChatMessage, TextDelta

    n = 0
    async for event in provider.stream([ChatMessage("user", "go")], model):
        n += isinstance(event, TextDelta)
    return n


class WriteCounter:
    """Counts the store's write transactions (Database.write), by function name."""

    def __init__(self) -> None:
        from threadline.store.connection import Database

        self.names: list[str] = []
        self._cls = Database
        self._real = Database.write
        counter = self

        async def write(db: Any, fn: Any, *args: Any) -> Any:
            counter.names.append(getattr(fn, "__name__", "?"))
            return await counter._real(db, fn, *args)

        Database.write = write  # type: ignore[method-assign]

    def close(self) -> None:
        self._cls.write = self._real  # type: ignore[method-assign]


async def engine_turn(engine: Any, model: str, counter: WriteCounter) -> dict[str, Any]:
    """One turn in a new session on an open store and engine (as the app runs them)."""
    from threadline.chat.turns import ReplyStarted, UserMessageSaved

    session = await engine.store.create_session(str(ROOT), model=model)
    counter.names.clear()
    started = time.perf_counter()
    reply_start = 0.0
    reply_writes_from = 0
    async for event in engine.start(session, "go"):
        if isinstance(event, UserMessageSaved):
            reply_writes_from = len(counter.names)
        elif isinstance(event, ReplyStarted):
            reply_start = time.perf_counter()
    ended = time.perf_counter()
    return {
        "total": ended - started,
        "streaming": ended - reply_start,
        "reply_writes": len(counter.names) - reply_writes_from,
        "turn_writes": len(counter.names),
    }


async def in_loop(base_url: str, model: str, runs: int, db: Path) -> dict[str, list[float]]:
    """Raw stream, provider and engine, interleaved run by run so load affects them alike."""
    import httpx

    from threadline.chat.openai_compat import OpenAICompatProvider
    from threadline.chat.turns import TurnEngine
    from threadline.store import Store

    keys = ("raw", "provider", "engine", "streaming", "reply_writes", "turn_writes")
    results: dict[str, list[float]] = {k: [] for k in (*keys, "raw_cpu", "engine_cpu")}
    counter = WriteCounter()
    async with httpx.AsyncClient(timeout=30) as client, await Store.open(db) as store:
        provider = OpenAICompatProvider(provider_settings(base_url, model))
        engine = TurnEngine(store, provider, owns_provider=True)
        try:
            # Warm up connections and code paths.
            assert await raw_stream(client, base_url, model) == int(model.split("=")[1])
            await provider_stream(provider, model)
            await engine_turn(engine, model, counter)
            for _ in range(runs):
                started, cpu = time.perf_counter(), time.process_time()
                await raw_stream(client, base_url, model)
                results["raw"].append(time.perf_counter() - started)
                results["raw_cpu"].append(time.process_time() - cpu)
                started = time.perf_counter()
                await provider_stream(provider, model)
                results["provider"].append(time.perf_counter() - started)
                cpu = time.process_time()
                turn = await engine_turn(engine, model, counter)
                results["engine_cpu"].append(time.process_time() - cpu)
                results["engine"].append(turn["total"])
                for key in ("streaming", "reply_writes", "turn_writes"):
                    results[key].append(turn[key])
        finally:
            counter.close()
            await engine.aclose()
    return results


def cli_in_process(base_url: str, model: str, db: Path) -> float:
    from threadline.cli import main

    os.environ["THREADLINE_BASE_URL"] = base_url
    os.environ["THREADLINE_MODEL"] = model
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = devnull, devnull
    try:
        started = time.perf_counter()
        code = main(["chat", "--db", str(db), "--new", "go"])
        elapsed = time.perf_counter() - started
    finally:
        sys.stdout, sys.stderr = real_out, real_err
        devnull.close()
    if code != 0:
        raise SystemExit(f"threadline chat failed with {code}")
    return elapsed


def cli_process(base_url: str, model: str, db: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "threadline", "chat", "--db", str(db), "--new", "go"],
        env={**env, "THREADLINE_BASE_URL": base_url, "THREADLINE_MODEL": model},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"threadline chat failed: {done.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    model = f"bench?tokens={args.tokens}"
    tmp = Path(tempfile.mkdtemp(prefix="threadline-bench-chat-"))
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "THREADLINE_CONFIG": str(tmp / "none.toml"),
    }
    os.environ.update({k: env[k] for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")})
    os.environ.pop("THREADLINE_CONFIG", None)
    os.environ.pop("THREADLINE_API_KEY", None)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{args.runs} runs, {args.tokens}-token replies, medians\n")

    with fake_server() as base_url:
        r = asyncio.run(in_loop(base_url, model, args.runs, tmp / "engine.db"))
        cli = [cli_in_process(base_url, model, tmp / "cli.db") for _ in range(args.runs)]

        raw_ms = statistics.median(r["raw"])
        print(f"raw stream (httpx + httpx-sse + json)   {median_ms(r['raw'])}")
        print(f"provider.stream (no database)           {median_ms(r['provider'])}")
        print(f"turn engine, whole turn                 {median_ms(r['engine'])}")
        print(
            f"  overhead over raw stream              "
            f"{(statistics.median(r['engine']) - raw_ms) * 1000:8.1f} ms   (target <= 50 ms)"
        )
        cpu_overhead = statistics.median(r["engine_cpu"]) - statistics.median(r["raw_cpu"])
        print(
            f"  CPU time: raw {median_ms(r['raw_cpu']).strip()}, turn "
            f"{median_ms(r['engine_cpu']).strip()}: {cpu_overhead * 1000:.1f} ms more "
            "(this process, all threads; steadier than wall time on a busy machine)"
        )
        print(
            f"  database writes per reply             {statistics.median(r['reply_writes']):8.0f}"
            f"      (target <= 2 + {statistics.median(r['streaming']):.2f} s streaming)"
        )
        print(f"  database writes per turn              {statistics.median(r['turn_writes']):8.0f}")
        print(f"threadline chat, in-process main()      {median_ms(cli)}")
        print(
            f"  overhead over raw stream              "
            f"{(statistics.median(cli) - raw_ms) * 1000:8.1f} ms   (target <= 50 ms;"
            " includes opening the store and config)"
        )

        runs = max(5, args.runs // 2)
        python_only = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            python_only.append(time.perf_counter() - started)
        version = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "threadline", "--version"],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            version.append(time.perf_counter() - started)
        startup = [cli_process(base_url, "bench?tokens=1", tmp / "p.db", env) for _ in range(runs)]
        full = [cli_process(base_url, model, tmp / "p.db", env) for _ in range(runs)]
        print(f"`python -c pass`                        {median_ms(python_only)}")
        print(f"`threadline --version`                  {median_ms(version)}")
        print(f"`threadline chat` process, 1 token      {median_ms(startup)}")
        print(f"`threadline chat` process, {args.tokens} tokens {median_ms(full)}")
    for f in tmp.iterdir():
        if f.is_file():
            f.unlink()
    with contextlib.suppress(OSError):
        for d in sorted(tmp.rglob("*"), reverse=True):
            d.rmdir() if d.is_dir() else d.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
