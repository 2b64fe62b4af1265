"""How fast the app paints on a large database, and how much memory it holds, next to a bare
Textual app as the yardstick (same run).

    python bench/bench_ui.py                          # on /work/benchdata/big.db, 5 runs each
    python bench/bench_ui.py --db /tmp/small.db --runs 3

The database comes from bench/make_db.py (its `<db>.json` sidecar says where the largest
directory and the long sessions are). The app may write (opening recovers stale replies), so it
runs on a copy, deleted at the end; auto-cleanup is off. Each figure is a median over `--runs`
fresh processes, run headless, each started through the CLI's entry point (`threadline --db
... --dir ...`, as the `threadline` script does: argument parsing and settings included), the
bare app's runs interleaved with the app's:

- start: process start to the first paint showing sidebar rows (the count and the first page
  of rows, as many as the app reads: its PAGE_SIZE); a bare Textual app with one Static,
  process start to first paint;
- switch: the key press cycling the scope to the workspace and then to all directories, to
  the paint of the new rows (the all scope is reached only by that key);
- open: opening a 5,000-message session (what enter on its row calls) to the paint of its
  last screen;
- scrolling back: the long session opens folded (its older messages stand behind a summary);
  `f` shows them, then page-up is pressed until --scroll-back messages were paged back in.
  Each page-up key to its paint (median and worst), and each older page from wanted to painted;
- RSS after opening, and after every 1,000 messages scrolled back (it must stay flat: the
  window and every cache are bounded), and the bare app's.

Each child prints its figures as it goes, so a failure at the end loses none of them.

Targets (issues 3 and 12): start <= 1.5 x bare; switch to all <= 1 s; last screen <= 300 ms;
each older page and each page-up <= 100 ms, worst included; RSS within ~10 MB of its size after
opening, however far one scrolls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DB = "/work/benchdata/big.db"
SCROLL_BACK = 3000
SIZE = (120, 36)


# ---------------------------------------------------------------------- the child processes


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def emit(**figures: Any) -> None:
    """Hand figures to the parent at once (a later crash cannot lose them): on stdout, or in a
    terminal run (stdout is the terminal) appended to the file the parent named."""
    line = json.dumps(figures)
    path = os.environ.get("BENCH_FIGURES")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")
    else:
        print(line, flush=True)


def terminal() -> bool:
    """This child runs in a real terminal (tmux), not headless."""
    return bool(os.environ.get("BENCH_FIGURES"))


def run_kwargs() -> dict[str, Any]:
    return {} if terminal() else {"headless": True, "size": SIZE}


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
        """The first frame at or after `moment` (None: not painted yet)."""
        found = None
        for frame in reversed(self.frames):
            if frame < moment:
                break
            found = frame
        return found


def child_bare() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("Hello from a bare Textual app")

    app = Bare()
    clock = PaintClock(app)

    async def pilot(p: Any) -> None:
        while not clock.frames:
            await asyncio.sleep(0.001)
        emit(first_paint=clock.frames[0], cpu=time.process_time(), rss_mb=rss_mb())
        app.exit()

    app.run(auto_pilot=pilot, **run_kwargs())


def when_imported(name: str, patch: Any) -> None:
    """Call `patch(module)` as soon as the module `name` is imported, when the code under test
    imports it: importing it here first would change the order start-up does things in (the
    CLI opens the database while it imports the app)."""
    # A meta path finder by duck typing: importlib.abc and importlib.util (which the app
    # does not import; importlib.abc imports importlib.resources) would count against the
    # app's start-up and not the bare app's.

    class Hook:
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = None
            for finder in sys.meta_path:
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            real_exec = loader.exec_module

            def exec_module(module: Any) -> None:
                real_exec(module)
                patch(module)

            loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Hook())


def run_through_cli(db: str, directory: str, pilot: Any) -> None:
    """`threadline --db DB --dir DIRECTORY`, its app run headless with `pilot(app, p)`."""

    def patch(module: Any) -> None:
        app_class = module.ThreadlineApp
        run = app_class.run

        def headless(self: Any, *args: Any, **kwargs: Any) -> Any:
            async def auto_pilot(p: Any) -> None:
                await pilot(self, p)

            return run(self, auto_pilot=auto_pilot, **run_kwargs())

        app_class.run = headless

    when_imported("threadline.ui.app", patch)
    from threadline.cli import main

    main(["--db", db, "--dir", directory])


async def wait_for(condition: Any, limit: float = 120.0) -> None:
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there")
        await asyncio.sleep(0.001)


def child_start(db: str, info: dict[str, Any]) -> None:
    loads: list[float] = []

    def patch(module: Any) -> None:
        real_load = module.SessionList.load

        async def timed_load(self: Any, *args: Any, **kwargs: Any) -> None:
            await real_load(self, *args, **kwargs)
            loads.append(time.monotonic())  # the rows are in: the next frame shows them

        module.SessionList.load = timed_load

    when_imported("threadline.ui.widgets.session_list", patch)

    async def pilot(app: Any, p: Any) -> None:
        clock = PaintClock(app)
        await wait_for(lambda: bool(loads))
        await wait_for(lambda: clock.after(loads[0]) is not None)
        screen = app.main_screen
        emit(
            cpu=time.process_time(),  # every thread's, up to here (not to the paint itself)
            first_sidebar_paint=clock.after(loads[0]),
            first_paint=clock.frames[0],
            rows_loaded=loads[0],
            sessions=screen.total,
        )
        await p.pause(0.3)
        for name in ("switch_to_workspace", "switch_to_all"):
            before = len(loads)
            t0 = time.monotonic()
            await p.press("s")
            await wait_for(lambda before=before: len(loads) > before)
            await wait_for(lambda before=before: clock.after(loads[before]) is not None)
            emit(**{name: (clock.after(loads[before]) or t0) - t0})
            await p.pause(0.2)
        emit(all_sessions=screen.total)
        app.exit()

    run_through_cli(db, info["largest_dir"], pilot)


def time_older_pages(older: list[tuple[float, int]]) -> None:
    """Record (wanted at, entries added) for each older page the conversation reads."""
    try:
        from threadline.ui.timeline import TimelineWindow
    except ImportError:  # the view before the window had a module of its own
        from threadline.ui.widgets.conversation import ConversationView

        real_load = ConversationView._load_older  # type: ignore[attr-defined]

        async def timed_load(self: Any) -> None:
            wanted, before = time.monotonic(), len(self._entries)
            await real_load(self)
            if len(self._entries) > before:
                older.append((wanted, len(self._entries) - before))

        ConversationView._load_older = timed_load  # type: ignore[attr-defined]
        return
    real_older = TimelineWindow.load_older

    def timed_older(self: TimelineWindow) -> Any:
        read = real_older(self)
        if read is None:
            return None
        wanted = time.monotonic()

        async def timed() -> int | None:
            added = await read
            if added:
                older.append((wanted, added))
            return added

        return timed()

    TimelineWindow.load_older = timed_older  # type: ignore[method-assign]


def child_open(db: str, info: dict[str, Any], scroll_back: int) -> None:
    from threadline.ui.widgets.conversation import ConversationView

    target = info["long_session"]
    older: list[tuple[float, int]] = []  # (wanted at, entries added) for each older page
    time_older_pages(older)

    async def pilot(app: Any, p: Any) -> None:
        clock = PaintClock(app)
        screen = app.main_screen
        await wait_for(lambda: screen.open_session_id is not None)
        await p.pause(0.2)
        await app.workers.wait_for_complete()
        view: ConversationView = screen.conversation
        loaded: list[float] = []
        view_loaded = view.post_message

        def post(message: Any) -> bool:
            if isinstance(message, ConversationView.Loaded) and view.session is not None:
                if view.session.id == target:
                    loaded.append(time.monotonic())
            return view_loaded(message)

        view.post_message = post  # type: ignore[method-assign]
        t0 = time.monotonic()
        screen.open_session(target)  # what enter on its row does
        await wait_for(lambda: bool(loaded) and clock.after(loaded[0]) is not None)
        emit(
            open_last_screen=(clock.after(loaded[0]) or t0) - t0,
            messages_in_session=view.session.message_count if view.session else 0,
            folded=view.folded,
        )
        await p.pause(0.3)
        await app.workers.wait_for_complete()
        emit(rss_after_open=rss_mb())

        view.focus()
        await p.pause(0.1)
        if view.folded:
            await p.press("f")  # show the summarised messages: they load as one scrolls
            await app.workers.wait_for_complete()
        presses: list[float] = []
        rss: list[tuple[int, float]] = []
        back = 0
        checkpoint = 1000
        for _ in range(100_000):
            t = time.monotonic()
            await p.press("pageup")
            await wait_for(lambda t=t: clock.after(t) is not None)
            presses.append((clock.after(t) or t) - t)
            back = sum(added for _, added in older)
            if back >= checkpoint:
                rss.append((back, rss_mb()))
                emit(rss_scrolled=rss, pageup_paints=presses)
                checkpoint += 1000
            if back >= scroll_back or (int(view.scroll_y) <= 0 and not view.has_older):
                break
        await app.workers.wait_for_complete()
        pages = []
        for wanted, _ in older:
            painted = clock.after(wanted)
            if painted is not None:
                pages.append(painted - wanted)
        emit(
            older_pages=pages,
            pageup_paints=presses,
            scrolled_back_messages=back,
            rss_scrolled=rss,
            rss_end=rss_mb(),
            window=len(view.items),
        )
        app.exit()

    run_through_cli(db, info["long_dir"], pilot)


# ---------------------------------------------------------------------- the parent


# Started in the tmux pane, this takes the time and replaces itself with the child: the child's
# process start (exec included) is then known to the microsecond, tmux's own delay left out.
LAUNCH = (
    "import os, sys, time; os.environ['BENCH_T0'] = repr(time.monotonic()); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
TMUX_SOCKET = f"bench_ui_{os.getpid()}"


def run_in_terminal(args: list[str]) -> tuple[float, dict[str, Any]]:
    """Run a child in a real terminal: a tmux session of SIZE on a private server."""
    with tempfile.NamedTemporaryFile(prefix="bench_ui_figures_", delete=False) as fh:
        figures_path = fh.name
    env = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "HOME", "THREADLINE_CONFIG", "LANG", "LC_ALL", "VIRTUAL_ENV")
        or name.startswith(("XDG_", "PYTHON"))
    }
    env.update(TEXTUAL_ANIMATIONS="none", BENCH_FIGURES=figures_path)
    variables = [f"{k}={v}" for k, v in env.items()]
    command = shlex.join(["env", *variables, sys.executable, "-c", LAUNCH, __file__, *args])
    tmux = ["tmux", "-L", TMUX_SOCKET]
    name = f"run{time.monotonic_ns()}"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", name, "-x", str(SIZE[0]), "-y", str(SIZE[1]), command],
        check=True,
    )
    end = time.monotonic() + 900
    while time.monotonic() < end:
        alive = subprocess.run([*tmux, "has-session", "-t", name], capture_output=True)
        if alive.returncode != 0:
            break
        time.sleep(0.2)
    else:
        subprocess.run([*tmux, "kill-session", "-t", name], capture_output=True)
    figures: dict[str, Any] = {}
    with open(figures_path) as fh:
        for line in fh:
            if line.startswith("{"):
                figures.update(json.loads(line))
    os.unlink(figures_path)
    if "started" not in figures:
        print(f"child {args[:2]} (terminal) printed no start: it failed early")
    return float(figures.get("started", float("nan"))), figures


def run_child(args: list[str], in_terminal: bool = False) -> tuple[float, dict[str, Any]]:
    """Run a child; returns its start time and every figure it printed (even if it failed)."""
    if in_terminal:
        return run_in_terminal(args)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TEXTUAL_ANIMATIONS": "none"},
    )
    figures: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            figures.update(json.loads(line))
    if proc.returncode != 0:
        print(f"child {args[:2]} failed (figures so far kept):\n{proc.stderr[-2000:]}")
    return started, figures


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
    parser.add_argument("--scroll-back", type=int, default=SCROLL_BACK)
    parser.add_argument(
        "--scratch", default=None, help="where to copy the db (default: a temp dir)"
    )
    parser.add_argument(
        "--no-copy", action="store_true", help="use the db in place (it may be written)"
    )
    parser.add_argument(
        "--terminal",
        action="store_true",
        help="run the start-up children (bare app and app) in a real terminal (tmux, "
        f"{SIZE[0]}x{SIZE[1]}) instead of headless",
    )
    parser.add_argument(
        "--skip-open", action="store_true", help="only the start-up figures (no long session)"
    )
    parser.add_argument("--json", default=None, help="also write the medians to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--info", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if "BENCH_T0" in os.environ:  # started by the tmux launcher: its time of exec
            emit(started=float(os.environ["BENCH_T0"]))
        info = json.loads(args.info) if args.info else {}
        if args.child == "bare":
            child_bare()
        elif args.child == "start":
            child_start(args.db, info)
        else:
            child_open(args.db, info, args.scroll_back)
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
    env_home = Path(tempfile.mkdtemp(prefix="bench_ui_home_"))
    os.environ.update(
        {
            "HOME": str(env_home),
            "XDG_CONFIG_HOME": str(env_home / "config"),
            "XDG_DATA_HOME": str(env_home / "data"),
            "XDG_STATE_HOME": str(env_home / "state"),
            "XDG_CACHE_HOME": str(env_home / "cache"),
        }
    )
    config = env_home / "config.toml"
    config.write_text("[session]\nauto_cleanup = false\n")
    os.environ["THREADLINE_CONFIG"] = str(config)
    loads = [os.getloadavg()[0]]
    try:
        if not args.skip_open:
            info["long_session"], info["long_dir"] = find_long_session(db, info)
        common = ["--db", db, "--info", json.dumps(info), "--scroll-back", str(args.scroll_back)]
        figures: dict[str, list[float]] = {}
        details: dict[str, Any] = {}

        def add(name: str, value: float | None) -> None:
            if value is not None:
                figures.setdefault(name, []).append(value)

        for run in range(args.runs):
            bare_started, bare = run_child(["--child", "bare"], args.terminal)
            if "first_paint" in bare:
                add("bare start", bare["first_paint"] - bare_started)
            add("bare rss", bare.get("rss_mb"))
            add("bare cpu", bare.get("cpu"))
            started, start = run_child(["--child", "start", *common], args.terminal)
            if "first_sidebar_paint" in start:
                add("start", start["first_sidebar_paint"] - started)
                add("start: first frame", start["first_paint"] - started)
                add("start: rows loaded", start["rows_loaded"] - started)
                add("start cpu", start.get("cpu"))
                if "cpu" in start and "cpu" in bare:
                    add("start cpu ratio", start["cpu"] / bare["cpu"])
                if "first_paint" in bare:
                    bare_start = bare["first_paint"] - bare_started
                    add("start ratio", (start["first_sidebar_paint"] - started) / bare_start)
            add("switch to all", start.get("switch_to_all"))
            add("switch to workspace", start.get("switch_to_workspace"))
            details.setdefault("sessions", start.get("sessions"))
            details.setdefault("all_sessions", start.get("all_sessions"))
            opened = {} if args.skip_open else run_child(["--child", "open", *common])[1]
            add("open last screen", opened.get("open_last_screen"))
            pages = opened.get("older_pages") or []
            presses = opened.get("pageup_paints") or []
            add("older page median", median(pages) if pages else None)
            add("older page max", max(pages) if pages else None)
            add("pageup median", median(presses) if presses else None)
            add("pageup max", max(presses) if presses else None)
            add("rss after open", opened.get("rss_after_open"))
            add("rss end", opened.get("rss_end"))
            for back, value in opened.get("rss_scrolled") or []:
                add(f"rss after {back // 1000 * 1000:,} back", value)
            details.update(
                pages=len(pages),
                presses=len(presses),
                scrolled_back=opened.get("scrolled_back_messages", 0),
                messages_in_session=opened.get("messages_in_session", 0),
                folded=opened.get("folded"),
                window=opened.get("window"),
            )
            loads.append(os.getloadavg()[0])
            print(f"run {run + 1}/{args.runs} done", flush=True)

        m = {name: median(values) for name, values in figures.items()}
        nan = float("nan")
        if args.json:
            Path(args.json).write_text(
                json.dumps({"medians": m, "details": details, "load": [min(loads), max(loads)]})
            )
        print()
        print(
            f"database: {source} · medians of {args.runs} runs · load (1 min) "
            f"{min(loads):.2f}–{max(loads):.2f} · start-up "
            f"{'in a real terminal (tmux)' if args.terminal else 'headless'}"
        )
        print(f"  sessions in the directory scope: {details.get('sessions') or 0:,}")
        print(f"  sessions in the all scope:       {details.get('all_sessions') or 0:,}")
        bare_start = m.get("bare start", nan)
        print(f"bare Textual app, start to first paint {ms(bare_start)}")
        print(
            f"start to painted sidebar            {ms(m.get('start', nan))}   "
            f"{m.get('start', nan) / bare_start:.2f} x bare (target <= 1.5)"
        )
        print(
            f"  (pair by pair: {m.get('start ratio', nan):.2f} x bare; CPU, every thread, "
            f"{ms(m.get('start cpu', nan)).strip()} vs the bare app's "
            f"{ms(m.get('bare cpu', nan)).strip()}: {m.get('start cpu ratio', nan):.2f} x)"
        )
        print(
            f"  (first frame {ms(m.get('start: first frame', nan)).strip()}, rows loaded "
            f"{ms(m.get('start: rows loaded', nan)).strip()})"
        )
        print(f"switch to all scope, key to paint   {ms(m.get('switch to all', nan))}   (<= 1 s)")
        print(f"(switch to workspace, key to paint  {ms(m.get('switch to workspace', nan))})")
        print(
            f"open {details.get('messages_in_session', 0):,}-message session "
            f"({'folded' if details.get('folded') else 'not folded'}), "
            f"enter to last screen {ms(m.get('open last screen', nan))}   (target <= 300 ms)"
        )
        print(
            f"older page, wanted to painted       {ms(m.get('older page median', nan))} median, "
            f"{ms(m.get('older page max', nan))} worst   (target <= 100 ms; "
            f"{details.get('pages', 0)} pages, {details.get('scrolled_back', 0):,} messages back)"
        )
        print(
            f"page-up key to paint                {ms(m.get('pageup median', nan))} median, "
            f"{ms(m.get('pageup max', nan))} worst   (target <= 100 ms; "
            f"{details.get('presses', 0):,} presses)"
        )
        print(f"RSS after opening                   {m.get('rss after open', nan):7.0f} MB")
        for name in sorted((n for n in m if n.startswith("rss after ") and "back" in n), key=len):
            print(f"RSS {name[4:]:<32}{m[name]:7.0f} MB")
        print(
            f"RSS at the end                      {m.get('rss end', nan):7.0f} MB   "
            f"(window: {details.get('window')} items; target: within ~10 MB of after opening)"
        )
        print(f"RSS of the bare app                 {m.get('bare rss', nan):7.0f} MB")
    finally:
        subprocess.run(["tmux", "-L", TMUX_SOCKET, "kill-server"], capture_output=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(env_home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
