"""How fast the app paints on a large database, next to a bare Textual app as the yardstick.

    python bench/bench_ui.py                          # on /work/benchdata/big.db, 5 runs each
    python bench/bench_ui.py --db /tmp/small.db --runs 3

The database comes from bench/make_db.py (its `<db>.json` sidecar says where the largest
directory and the long sessions are). The app may write (opening recovers stale replies), so it
runs on a copy, deleted at the end; auto-cleanup is off. Every figure is a median of `--runs`
fresh processes, run headless:

- start: process start to the first paint showing sidebar rows (10,000 sessions in the
  directory scope), and a bare Textual app with one Static (process start to first paint);
- all: process start to the first paint of the "all directories" sidebar (100,000 sessions),
  and the in-app switch from the workspace to that scope (key press to paint);
- open: opening a 5,000-message session (what enter on its row calls) to the paint of its
  last screen;
- older pages: each older page while scrolling back 1,000 messages (page wanted to page
  painted), and each page-up key press to its paint;
- RSS after all that, and the bare app's.

Targets (issue 3): start <= 1.5 x bare; all scope <= 1 s; last screen <= 300 ms; each older
page <= 100 ms; RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DB = "/work/benchdata/big.db"
SCROLL_BACK = 1000


# ---------------------------------------------------------------------- the child processes


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PaintClock:
    """Records when the app hands a rendered frame to the (headless) driver."""

    def __init__(self, app: Any) -> None:
        self.frames: list[float] = []
        display = app._display

        def timed(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None:
                self.frames.append(time.monotonic())

        app._display = timed

    def after(self, moment: float) -> float | None:
        for frame in self.frames:
            if frame >= moment:
                return frame
        return None


def child_bare() -> dict[str, float]:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("Hello from a bare Textual app")

    app = Bare()
    clock = PaintClock(app)
    result: dict[str, float] = {}

    async def pilot(p: Any) -> None:
        while not clock.frames:
            await asyncio.sleep(0.001)
        result["first_paint"] = clock.frames[0]
        result["rss_mb"] = rss_mb()
        app.exit()

    app.run(headless=True, size=(120, 36), auto_pilot=pilot)
    return result


def child_app(db: str, info: dict[str, Any], mode: str) -> dict[str, Any]:
    from threadline.config import Settings
    from threadline.models import Scope
    from threadline.ui.app import ThreadlineApp
    from threadline.ui.widgets.conversation import ConversationView
    from threadline.ui.widgets.session_list import SessionList

    settings = Settings()
    settings.session.auto_cleanup = False
    directory = info["largest_dir"]
    scope = Scope.ALL if mode == "all" else Scope.DIRECTORY
    if mode == "open":
        directory = info["long_dir"]
    app = ThreadlineApp(db, settings, directory, scope=scope)
    clock = PaintClock(app)
    result: dict[str, Any] = {}

    # When the sidebar first draws a real row, and when the pane draws its last entry.
    rows_drawn: list[float] = []
    drawn_by_generation: dict[int, float] = {}
    list_render = SessionList.render_line

    def list_line(self: SessionList, y: int) -> Any:
        strip = list_render(self, y)
        if self.total and self._row(int(self.scroll_y) // 2, fetch=False) is not None:
            now = time.monotonic()
            if not rows_drawn:
                rows_drawn.append(now)
            drawn_by_generation.setdefault(self._generation, now)
        return strip

    SessionList.render_line = list_line  # type: ignore[method-assign]

    async def wait_for(condition: Any, limit: float = 60.0) -> None:
        end = time.monotonic() + limit
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there")
            await asyncio.sleep(0.001)

    async def painted_after(moment: float) -> float:
        await wait_for(lambda: clock.after(moment) is not None)
        return clock.after(moment) or moment

    async def pilot(p: Any) -> None:
        await wait_for(lambda: bool(rows_drawn))
        first = await painted_after(rows_drawn[0])
        result["first_sidebar_paint"] = first
        screen = app.main_screen
        result["sessions"] = screen.total
        if mode == "start":
            # The in-app switch to "all directories".
            await p.pause(0.3)
            # Each press reloads the list once: directory -> workspace -> all.
            for name in ("switch_to_workspace", "switch_to_all"):
                target = screen.sessions._generation + 1
                t0 = time.monotonic()
                await p.press("s")
                await wait_for(lambda target=target: target in drawn_by_generation)
                result[name] = (await painted_after(drawn_by_generation[target])) - t0
                await p.pause(0.2)
            result["all_sessions"] = screen.total
        if mode == "open":
            await run_open(p, screen, result)
        result["rss_mb"] = rss_mb()
        app.exit()

    async def run_open(p: Any, screen: Any, result: dict[str, Any]) -> None:
        view: ConversationView = screen.conversation
        await wait_for(lambda: screen.open_session_id is not None)
        await p.pause(0.2)
        await app.workers.wait_for_complete()
        # What enter on its row does (SessionList.Opened -> open_session), without hunting for
        # the row among 10,000: the timing starts at the same point.
        target = info["long_session"]
        drawn_last: list[float] = []
        pane_render = ConversationView.render_line

        def pane_line(self: ConversationView, y: int) -> Any:
            strip = pane_render(self, y)
            if self.session is not None and self.session.id == target and self._entries:
                self._recompute()
                line = int(self.scroll_y) + y
                if line >= self._tops[-2] and not drawn_last:
                    drawn_last.append(time.monotonic())
            return strip

        ConversationView.render_line = pane_line  # type: ignore[method-assign]
        t0 = time.monotonic()
        screen.open_session(target)
        await wait_for(lambda: bool(drawn_last))
        result["open_last_screen"] = (await painted_after(drawn_last[0])) - t0
        result["messages_in_session"] = view.session.message_count if view.session else 0

        # Scroll back SCROLL_BACK messages a page-up at a time; time each page-up's paint and
        # each older page from "wanted" to "painted".
        view.focus()
        await p.pause(0.1)
        page_loads: list[float] = []
        key_paints: list[float] = []
        wanted: list[float] = []
        load_older = ConversationView._load_older

        async def timed_load(self: ConversationView) -> None:
            wanted.append(time.monotonic())
            before = len(self._entries)
            await load_older(self)
            if len(self._entries) > before:
                page_loads.append((await painted_after(time.monotonic())) - wanted[-1])

        ConversationView._load_older = timed_load  # type: ignore[method-assign]
        newest = view.items[-1].position
        first_page = len(view.items)

        def scrolled_back() -> int:
            # Items above the first page's, counting from its top: what was loaded and shown.
            y = int(view.scroll_y)
            top = view._index_at(max(2, y)) if view._entries else 0
            return len(view.items) - first_page - top

        for _ in range(20000):
            t = time.monotonic()
            await p.press("pageup")
            key_paints.append((await painted_after(t)) - t)
            if scrolled_back() >= SCROLL_BACK or (int(view.scroll_y) <= 0 and not view.has_older):
                break
        await app.workers.wait_for_complete()
        assert view.items[-1].position == newest
        result["older_pages"] = page_loads
        result["pageup_paints"] = key_paints
        result["scrolled_back_messages"] = scrolled_back()

    app.run(headless=True, size=(120, 36), auto_pilot=pilot)
    return result


# ---------------------------------------------------------------------- the parent


def run_child(args: list[str]) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TEXTUAL_ANIMATIONS": "none"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    line = proc.stdout.strip().splitlines()[-1]
    return started, json.loads(line)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def find_long_session(db: str, info: dict[str, Any]) -> tuple[str, str]:
    """A long session (>= 5,000 messages) and its directory, from the sidecar and the store."""
    from threadline.store import Store

    async def look() -> tuple[str, str]:
        store = await Store.open(db)
        try:
            for session_id in info.get("long_sessions", []):
                session = await store.get_session(session_id)
                if session is not None and session.deleted_at is None:
                    return session_id, session.working_dir
        finally:
            await store.close()
        raise SystemExit("no long session found (build the db with --long-sessions)")

    return asyncio.run(look())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--scratch", default=None, help="where to copy the db (default: a temp dir)"
    )
    parser.add_argument(
        "--no-copy", action="store_true", help="use the db in place (it may be written)"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--info", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        info = json.loads(args.info) if args.info else {}
        if args.child == "bare":
            result = child_bare()
        else:
            result = child_app(args.db, info, args.child)
        print(json.dumps(result))
        return 0

    source = Path(args.db)
    sidecar = Path(f"{source}.json")
    if not source.exists() or not sidecar.exists():
        raise SystemExit(f"{source} (and {sidecar}) not found: run bench/make_db.py first")
    info = json.loads(sidecar.read_text())
    scratch = None
    db = str(source)
    if not args.no_copy:
        scratch = Path(tempfile.mkdtemp(prefix="bench_ui_", dir=args.scratch))
        db = str(scratch / source.name)
        print(f"copying {source} to {db} …", flush=True)
        shutil.copyfile(source, db)
    try:
        long_session, long_dir = find_long_session(db, info)
        info["long_session"], info["long_dir"] = long_session, long_dir
        child_info = json.dumps(info)
        common = ["--db", db, "--info", child_info]
        figures: dict[str, list[float]] = {}

        def add(name: str, value: float | None) -> None:
            if value is not None:
                figures.setdefault(name, []).append(value)

        details: dict[str, Any] = {}
        for run in range(args.runs):
            started, bare = run_child(["--child", "bare"])
            add("bare start", bare["first_paint"] - started)
            add("bare rss", bare["rss_mb"])
            started, start = run_child(["--child", "start", *common])
            add("start", start["first_sidebar_paint"] - started)
            add("switch to all", start.get("switch_to_all"))
            add("switch to workspace", start.get("switch_to_workspace"))
            details["sessions"] = start["sessions"]
            details["all_sessions"] = start.get("all_sessions")
            started, all_ = run_child(["--child", "all", *common])
            add("start in all", all_["first_sidebar_paint"] - started)
            started, opened = run_child(["--child", "open", *common])
            add("open last screen", opened["open_last_screen"])
            add("older page median", median(opened["older_pages"]))
            add("older page max", max(opened["older_pages"], default=float("nan")))
            add("pageup paint median", median(opened["pageup_paints"]))
            add("rss", opened["rss_mb"])
            details["pages"] = len(opened["older_pages"])
            details["scrolled_back"] = opened["scrolled_back_messages"]
            details["messages_in_session"] = opened["messages_in_session"]
            print(f"run {run + 1}/{args.runs} done", flush=True)

        m = {name: median(values) for name, values in figures.items()}
        ratio = m["start"] / m["bare start"]
        load = os.getloadavg()
        print()
        print(f"database: {source} · medians of {args.runs} runs · load {load[0]:.2f}")
        print(f"  sessions in the directory scope: {details['sessions']:,}")
        print(f"  sessions in the all scope:       {details.get('all_sessions') or 0:,}")
        print(f"bare Textual app, start to first paint {ms(m['bare start'])}")
        print(
            f"start to painted sidebar            {ms(m['start'])}   "
            f"{ratio:.2f} x bare (target <= 1.5)"
        )
        print(f"start in the all scope to sidebar   {ms(m['start in all'])}   (target <= 1 s)")
        print(f"switch to all scope, key to paint   {ms(m['switch to all'])}   (target <= 1 s)")
        print(f"(switch to workspace, key to paint  {ms(m['switch to workspace'])})")
        print(
            f"open {details['messages_in_session']:,}-message session, "
            f"enter to last screen {ms(m['open last screen'])}   (target <= 300 ms)"
        )
        print(
            f"older page, wanted to painted       {ms(m['older page median'])} median, "
            f"{ms(m['older page max'])} worst   (target <= 100 ms; "
            f"{details['pages']} pages, {details['scrolled_back']:,} messages back)"
        )
        print(f"page-up key to paint while scrolling {ms(m['pageup paint median'])}")
        print(f"RSS after all that                  {m['rss']:7.0f} MB   (target <= 120 MB)")
        print(f"RSS of the bare app                 {m['bare rss']:7.0f} MB")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
