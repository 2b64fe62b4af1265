"""`sync init`, `sync` and `sync status`: the journal, git and the store, in that order.

A sync: (1) turn captured changes into records and append them to this machine's file, (2)
commit, (3) pull --rebase and push, retrying when the push is rejected, (4) apply the other
machines' new records. Each step can be killed at any point: the store keeps what was rendered
until it is in the file, the file is cut back to its last whole line, a rebase left behind is
aborted, and records are applied in transactions that move their progress marks with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import heapq
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadline.sync import files as journal_files
from threadline.sync.errors import JournalFileError, SyncError
from threadline.sync.git import Git, git_path, redact

if TYPE_CHECKING:
    from threadline.store import Store

# phase ("writing", "applying" records, INDEXING messages), done, total (None when unknown)
Progress = Callable[[str, int, int | None], None]
INDEXING = "indexing for search"

PUSH_ATTEMPTS = 5
APPLY_BATCH = 5000  # records per transaction: about half a second of work on a busy machine
APPLY_BATCH_BYTES = 8 << 20


@dataclass
class SyncOptions:
    """What the [sync] settings say, for one run."""

    recipients: list[str] = field(default_factory=list)
    identity: str | None = None
    interactive: bool = True  # False in the app: git never prompts
    here: str | None = None  # the directory whose project re-attaches (default: the cwd)


@dataclass
class SyncReport:
    written: int = 0
    applied: int = 0
    pushed: bool = False
    machines: int = 0
    errors: list[str] = field(default_factory=list)
    attached: int = 0


def clone_dir(store: Store) -> Path:
    """Where a database keeps its clone of the sync repository (beside the database)."""
    return Path(f"{store.path}.sync")


def _noop(phase: str, done: int, total: int | None) -> None:
    pass


def _checkpoint(name: str) -> None:
    """A named point of a sync (tests and the chaos bench stop the process at one)."""


# ---------------------------------------------------------------------- init


def _is_url(text: str) -> bool:
    if "://" in text:
        return True
    head = text.split("/", 1)[0]
    return ":" in head and not Path(text).expanduser().exists()


async def init(
    store: Store, remote: str, options: SyncOptions, progress: Progress = _noop
) -> SyncReport:
    """Clone (or create) the repository, start journalling, and run a first sync."""
    git_path()
    journal = store.journal
    state = await journal.state()
    repo = clone_dir(store)
    shown = redact(remote)
    if state.repo_dir and Path(state.repo_dir, ".git").is_dir():
        if state.remote == shown:
            return await sync(store, options, progress)
        raise SyncError(
            f"this database already syncs with {state.remote} (clone in {state.repo_dir});"
            " remove that folder first to change repositories"
        )
    source = remote
    if not _is_url(remote):
        path = Path(remote).expanduser().resolve()
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            journal_files.make_private_dir(path)
            Git(path).run("init", "--quiet", "--bare", "--initial-branch=main", str(path))
        elif not path.is_dir():
            raise SyncError(f"{path}: not a directory or a git repository")
        elif not (path / "HEAD").is_file() and not (path / ".git").exists():
            raise SyncError(f"{path}: not a git repository (and not empty)")
        source = str(path)
        shown = str(path)
    if repo.exists():
        shutil.rmtree(repo)  # a clone left by an init that did not finish
    journal_files.make_private_dir(repo.parent)
    git = Git(repo.parent, interactive=options.interactive)
    git.run("clone", "--quiet", source, str(repo), cwd=repo.parent)
    os.chmod(repo, 0o700)
    git = Git(repo, interactive=options.interactive)
    if not git.ok("rev-parse", "--verify", "--quiet", "HEAD"):
        git.run("symbolic-ref", "HEAD", "refs/heads/main")
    me = state.machine_id
    about = {"machine": me, "format": 1, "joined_at": _now_text()}
    if not options.recipients:
        about["name"] = socket.gethostname()
    own = repo / journal_files.MACHINES / me
    journal_files.make_private_dir(own)
    info = own / "machine.json"
    if not info.exists():
        info.write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
        os.chmod(info, 0o600)
    await journal.enable(str(repo), shown)
    return await sync(store, options, progress)


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------- sync


class _Lock:
    """One sync of a database at a time (the app's background sync and the CLI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise SyncError("another sync of this database is running; try again later") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


async def _repo_of(store: Store) -> tuple[Path, str]:
    state = await store.journal.state()
    if not state.repo_dir:
        raise SyncError("sync is not set up for this database: run `threadline sync init REMOTE`")
    repo = Path(state.repo_dir)
    if not (repo / ".git").is_dir():
        raise SyncError(f"{repo}: the sync clone is missing; run `threadline sync init` again")
    return repo, state.machine_id


def _repair(git: Git) -> None:
    """Undo what a killed sync may have left: a stale index lock, a rebase in progress.

    The branch itself only moves when a rebase completes, so going back to it is safe: this
    machine's own records were committed before the rebase began.
    """
    gitdir = git.repo / ".git"
    lock = gitdir / "index.lock"
    if lock.exists():  # we hold the sync lock: no git of ours is running here
        lock.unlink(missing_ok=True)
    leftovers = [gitdir / name for name in ("rebase-merge", "rebase-apply")]
    if any(p.exists() for p in leftovers):
        branch = "main"
        for p in leftovers:
            try:
                branch = (p / "head-name").read_text().strip().removeprefix("refs/heads/")
                break
            except OSError:
                continue
        if not git.ok("rebase", "--abort"):
            for p in leftovers:
                shutil.rmtree(p, ignore_errors=True)
            git.run("checkout", "--quiet", "--force", branch)
    head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref: "):  # detached by an interrupted checkout
        git.run("checkout", "--quiet", "--force", "main")


async def sync(store: Store, options: SyncOptions, progress: Progress = _noop) -> SyncReport:
    """Write, commit, pull --rebase, push, apply. Raises SyncError when it cannot go on;
    bad files of other machines are reported in `errors` and the rest is still done."""
    repo, me = await _repo_of(store)
    git = Git(repo, interactive=options.interactive)
    report = SyncReport()
    from threadline.sync import crypto

    recipients = crypto.parse_recipients(options.recipients) if options.recipients else []
    identities = crypto.load_identities(options.identity) if options.identity else None
    journal = store.journal
    try:
        with _Lock(repo / ".git" / "threadline-sync.lock"):
            _repair(git)
            _checkpoint("start")
            with _collector_paused():
                early = await _Early.start(store, repo, me, identities)
                try:
                    report.written = await _write(store, repo, me, recipients, progress)
                    _checkpoint("written")
                    _commit(git, me)
                    _checkpoint("committed")
                    report.pushed = _exchange(git)
                    _checkpoint("pushed")
                    checked = await early.result()
                finally:
                    early.stop()
                await _apply_others(
                    store, repo, me, identities, progress, report, checked, early.budget
                )
            _checkpoint("applied")
            report.attached = await _attach(store, options.here, everywhere=report.applied > 0)
            _tighten(repo)
    except SyncError as exc:
        await journal.record_result(str(exc))
        raise
    await journal.record_result("; ".join(report.errors) or None)
    return report


async def _write(
    store: Store, repo: Path, me: str, recipients: list[Any], progress: Progress
) -> int:
    journal = store.journal
    own = journal_files.OwnJournal(repo, me)
    last = own.last_seq()
    state = await journal.state()
    if last > state.next_seq - 1:
        raise SyncError(
            f"{own.dir.relative_to(repo)}: holds records this database did not write (up to"
            f" {last}, this database has written {state.next_seq - 1}): it was copied from"
            " another machine's; give this database its own repository clone"
        )
    await journal.drop_pending(last)
    state = await journal.state()
    first_pending = await journal.pending(last, 1)
    if state.next_seq - 1 > last and (not first_pending or first_pending[0][0] > last + 1):
        # Records written before were lost with the files (a new clone): publish all again.
        await journal.restart_snapshot()
    written = 0
    while True:
        lines = await journal.pending(last, 5000)
        if lines:
            last = own.append(lines, datetime.now(UTC), recipients)
            _checkpoint("appended")
            await journal.drop_pending(last)
            written += len(lines)
            progress("writing", written, None)
            continue
        made, more = await journal.render()
        if not made and not more:
            break
    return written


def _commit(git: Git, me: str) -> None:
    path = f"{journal_files.MACHINES}/{me}"
    if not (git.repo / path).exists():
        return
    if not git.out("status", "--porcelain", "--", path):
        return  # nothing new (one git call when there is nothing to send)
    git.run("add", "--", path)
    git.run("commit", "--quiet", "-m", f"threadline: journal of {me}")


def _branch(git: Git) -> str:
    """The checked-out branch, read from .git/HEAD (no process to start)."""
    head = (git.repo / ".git" / "HEAD").read_text(encoding="utf-8").strip()
    if head.startswith("ref: refs/heads/"):
        return head.removeprefix("ref: refs/heads/")
    return git.out("symbolic-ref", "--short", "HEAD")  # not on a branch: git says why


def _exchange(git: Git) -> bool:
    """Pull --rebase and push, retrying a rejected push. True when something was pushed."""
    from threadline.sync.git import describe

    branch = _branch(git)
    remote_ref = f"refs/remotes/origin/{branch}"
    for _attempt in range(PUSH_ATTEMPTS):
        fetched = git.run("fetch", "--quiet", "origin", check=False)
        if fetched.returncode != 0:
            raise SyncError(f"cannot fetch from the sync repository: {describe(fetched.stderr)}")
        heads = git.run("rev-parse", "--verify", "--quiet", "HEAD", remote_ref, check=False)
        found = heads.stdout.split()
        if heads.returncode == 0 and len(found) == 2 and found[0] == found[1]:
            return False  # in step with the remote: nothing to pull or push
        has_remote = git.ok("rev-parse", "--verify", "--quiet", remote_ref)
        has_head = git.ok("rev-parse", "--verify", "--quiet", "HEAD")
        if has_remote and not has_head:
            git.run("reset", "--quiet", "--hard", remote_ref)
            return False
        if has_remote:
            git.run("rebase", "--quiet", remote_ref)
            _checkpoint("rebased")
            ahead = int(git.out("rev-list", "--count", f"{remote_ref}..HEAD"))
        else:
            ahead = 1 if has_head else 0
        if not ahead:
            return False
        pushed = git.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            git.run("fetch", "--quiet", "origin", check=False)
            return True
        text = pushed.stderr
        if not any(s in text for s in ("rejected", "fetch first", "non-fast-forward", "stale")):
            raise SyncError(f"cannot push to the sync repository: {describe(text)}")
    raise SyncError(f"the push was rejected {PUSH_ATTEMPTS} times (others kept pushing); try again")


# A record on its way to be applied: (its time, its machine, the record, its file, where its
# line ends, whether it is its line's last). Merged by time, then machine: two streams are two
# machines, so the comparison never reaches the record.
_Head = tuple[str, str, dict[str, Any], journal_files.PeerFile, int, bool]


def _stream(
    machine: str,
    peer_files: list[tuple[journal_files.PeerFile, list[journal_files.Item] | None]],
    identities: list[Any] | None,
) -> Iterator[_Head]:
    for file, kept in peer_files:
        if kept is None:
            kept_size = file.size
            items: Any = journal_files.read_items(file, identities, check=False)
            if file.path.stat().st_size < kept_size:
                raise SyncError(f"{file.rel}: changed while it was applied; sync again")
        else:
            items = kept
        for item in items:
            record = item.record
            yield (record["at"], machine, record, file, item.end, item.whole)
        if kept is not None:
            kept.clear()  # applied: its memory goes


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while records are read and applied.

    A catch-up holds hundreds of thousands of parsed records at once, and each full collection
    walks them all (measured: a third more time to read them); what is read and applied makes
    no reference cycles to speak of. Back on afterwards (if it was on).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Checked:
    """A file checked before git's exchange, with what it was then."""

    file: journal_files.PeerFile
    offset: int  # where its new part began
    stat: tuple[int, int, int]  # inode, size, mtime (ns) when read
    after: int  # the machine's last seq before it
    result: tuple[int, int, list[journal_files.Item] | None] | None  # see validate()
    error: str | None


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class _Early:
    """Other machines' files checked on a thread while git commits, pulls and pushes (other
    processes, so the two run side by side). A file git leaves as it was (same inode, size and
    time) is not read again; the rest, new or changed, is checked after the exchange."""

    def __init__(self) -> None:
        self.task: asyncio.Future[dict[str, _Checked]] | None = None
        self.stopping = threading.Event()
        # Shared with the checks after the exchange: what is kept, all in all, stays bounded.
        self.budget = journal_files.KeepBudget()

    @classmethod
    async def start(cls, store: Store, repo: Path, me: str, identities: list[Any] | None) -> _Early:
        early = cls()
        marks = await store.journal.file_marks()
        pending = journal_files.peer_files(repo, me, marks)
        if pending:
            seqs = await store.journal.peer_seqs()
            early.task = asyncio.ensure_future(
                asyncio.to_thread(early._check, pending, seqs, identities)
            )
        return early

    def _check(
        self,
        pending: dict[str, list[journal_files.PeerFile]],
        seqs: dict[str, int],
        identities: list[Any] | None,
    ) -> dict[str, _Checked]:
        out: dict[str, _Checked] = {}
        budget = self.budget
        try:
            for machine, files in pending.items():
                after = seqs.get(machine, 0)
                for file in files:
                    stat = _stat_key(file.path)
                    if self.stopping.is_set() or stat is None or stat[1] != file.size:
                        break
                    offset = file.offset
                    try:
                        result = journal_files.validate(file, identities, after, budget)
                    except JournalFileError as exc:
                        out[file.rel] = _Checked(file, offset, stat, after, None, str(exc))
                        break
                    out[file.rel] = _Checked(file, offset, stat, after, result, None)
                    after = result[1]
        except Exception:  # whatever went wrong is met again, and reported, after the exchange
            pass
        return out

    async def result(self) -> dict[str, _Checked]:
        return await self.task if self.task is not None else {}

    def stop(self) -> None:
        self.stopping.set()


async def _apply_others(
    store: Store,
    repo: Path,
    me: str,
    identities: list[Any] | None,
    progress: Progress,
    report: SyncReport,
    checked: dict[str, _Checked] | None = None,
    budget: journal_files.KeepBudget | None = None,
) -> None:
    journal = store.journal
    marks = await journal.file_marks()
    seqs = await journal.peer_seqs()
    pending = journal_files.peer_files(repo, me, marks)
    report.machines = (
        len([p for p in (repo / journal_files.MACHINES).iterdir() if p.is_dir() and p.name != me])
        if (repo / journal_files.MACHINES).is_dir()
        else 0
    )
    streams = []
    total = 0
    failed: list[tuple[str, str]] = []
    if budget is None:
        budget = journal_files.KeepBudget()  # files read once (kept parsed) up to KEEP_BYTES
    for machine, peer_files in pending.items():
        good = []
        after = seqs.get(machine, 0)
        for file in peer_files:
            early = (checked or {}).get(file.rel)
            if (
                early is not None
                and early.offset == file.offset
                and early.stat[1] == file.size
                and early.after == after
                and _stat_key(file.path) == early.stat
            ):
                file = early.file
                if early.result is None:
                    failed.append((machine, str(early.error)))
                    break
                count, after, kept = early.result
            else:
                try:
                    count, after, kept = journal_files.validate(file, identities, after, budget)
                except JournalFileError as exc:
                    failed.append((machine, str(exc)))
                    break
            good.append((file, kept))
            total += count
        if good:
            streams.append(_stream(machine, good, identities))
    merged = heapq.merge(*streams)
    state = _BatchState(seqs, total)
    # A catch-up (a new machine's above all) leaves its messages to one search index build
    # at the end; stopped before it, the next sync (or the app) builds what is left.
    state.defer_index = total > APPLY_BATCH and await journal.may_defer_index(total)
    if total > APPLY_BATCH:
        await journal.catching_up(True)
    try:
        await _apply_merged(journal, merged, state, progress)
        if await journal.index_deferred():

            def indexing(done: int, total: int) -> None:
                progress(INDEXING, done, total)

            _checkpoint("indexing")
            await journal.build_index(indexing)
    finally:
        if total > APPLY_BATCH:
            await journal.catching_up(False)
    done = state.done
    for machine, message in failed:
        await journal.set_peer_error(machine, message)
        report.errors.append(message)
    report.applied = done


class _BatchState:
    def __init__(self, seqs: dict[str, int], total: int) -> None:
        self.applied_seq = dict(seqs)
        self.total = total
        self.done = 0
        self.defer_index = False
        self.rootless: set[str] = set()  # see Batch.rootless


async def _apply_merged(
    journal: Any, merged: Iterator[_Head], state: _BatchState, progress: Progress
) -> None:
    from threadline.store import Batch, JournalMark

    batch = Batch(
        records=[], retry_waiting=True, defer_index=state.defer_index, rootless=state.rootless
    )
    # Where each file's applied part ends so far in this batch: rel -> (file, machine, offset).
    marks_now: dict[str, tuple[journal_files.PeerFile, str, int]] = {}
    size = 0
    applied_seq = state.applied_seq

    # One batch is applied on the store's thread while the next is read here: reading is
    # Python, applying mostly SQLite (which lets go of the GIL), so the two overlap.
    running: asyncio.Future[int] | None = None

    async def wait() -> None:
        nonlocal running
        if running is not None:
            state.done += await running
            running = None
            _checkpoint("batch")
            progress("applying", state.done, state.total)

    async def flush() -> None:
        nonlocal batch, marks_now, size, running
        if not batch.records and not marks_now:
            return
        batch.marks = [
            JournalMark(file.rel, machine, end, file.size)
            for file, machine, end in marks_now.values()
        ]
        await wait()
        running = asyncio.ensure_future(journal.apply(batch))
        batch = Batch(records=[], defer_index=state.defer_index, rootless=state.rootless)
        marks_now, size = {}, 0

    try:
        records = batch.records
        for _at, machine, record, file, end, whole in merged:
            seq = record["seq"]
            if seq > applied_seq.get(machine, 0):
                records.append((machine, record))
                applied_seq[machine] = seq
                size += len(record.get("content") or "") + 200
            if whole:
                marks_now[file.rel] = (file, machine, end)
            if len(records) >= APPLY_BATCH or size >= APPLY_BATCH_BYTES:
                await flush()
                records = batch.records
        await flush()
    finally:
        await wait()


async def _attach(store: Store, here_dir: str | None, *, everywhere: bool) -> int:
    """Re-attach sessions of projects whose folder moved (or that came from elsewhere)."""
    from threadline.store import project_of, strip_root

    journal = store.journal
    moved = 0
    roots: dict[str, str] = {}
    try:
        here = project_of(here_dir or os.getcwd())
    except OSError:
        here = None
    if here is not None:
        roots[here.remote] = here.root
    for remote in await journal.remotes() if everywhere else []:
        if remote in roots:
            continue
        for working_dir, inner in await journal.project_roots(remote):
            root = strip_root(working_dir, inner)
            if root is not None and os.path.isdir(root):
                roots[remote] = root
                break
    for remote, root in roots.items():
        moved += await journal.attach_project(remote, root)
    return moved


def _tighten(repo: Path) -> None:
    os.chmod(repo, 0o700)
    os.chmod(repo / ".git", 0o700)
    machines = repo / journal_files.MACHINES
    if machines.is_dir():
        journal_files.tighten(machines)


# ---------------------------------------------------------------------- status


@dataclass
class MachineStatus:
    machine: str
    name: str | None
    this: bool
    records_applied: int
    last_record_at: str | None
    pending: int  # records in its files not yet applied here
    error: str | None


@dataclass
class StatusReport:
    machine_id: str
    remote: str | None
    repo_dir: str | None
    last_sync_at: str | None
    last_error: str | None
    outgoing: int  # changes not yet in a pushed commit (captured, rendered, committed)
    snapshot_pending: bool
    machines: list[MachineStatus]
    parked: int


async def status(store: Store) -> StatusReport:
    journal = store.journal
    state = await journal.state()
    peers = {p["machine"]: p for p in await journal.peers()}
    machines: list[MachineStatus] = []
    outgoing = state.outbox + state.pending
    repo = Path(state.repo_dir) if state.repo_dir else None
    if repo is not None and (repo / ".git").is_dir():
        git = Git(repo, interactive=False)
        branch = git.run("symbolic-ref", "--short", "HEAD", check=False).stdout.strip()
        ref = f"refs/remotes/origin/{branch}"
        own = journal_files.OwnJournal(repo, state.machine_id)
        if git.ok("rev-parse", "--verify", "--quiet", ref):
            count = git.run("rev-list", "--count", f"{ref}..HEAD", check=False).stdout.strip()
            if count.isdigit() and int(count):
                outgoing += max(0, own.last_seq() - _last_pushed(git, ref, own, repo))
        elif own.files():
            outgoing += own.last_seq()
        marks = await journal.file_marks()
        waiting = journal_files.peer_files(repo, state.machine_id, marks)
        root = repo / journal_files.MACHINES
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for name in names:
            peer = peers.get(name, {})
            to_apply = 0
            for file in waiting.get(name, []):
                to_apply += _count_after(file, peer.get("seq", 0))
            machines.append(
                MachineStatus(
                    machine=name,
                    name=_machine_name(root / name),
                    this=name == state.machine_id,
                    records_applied=int(peer.get("records", 0)),
                    last_record_at=peer.get("last_at"),
                    pending=to_apply,
                    error=peer.get("error"),
                )
            )
    return StatusReport(
        machine_id=state.machine_id,
        remote=state.remote,
        repo_dir=state.repo_dir,
        last_sync_at=state.last_sync_at,
        last_error=state.last_error,
        outgoing=outgoing,
        snapshot_pending=state.snapshot is not None,
        machines=machines,
        parked=await journal.parked(),
    )


def _last_pushed(git: Git, ref: str, own: journal_files.OwnJournal, repo: Path) -> int:
    """The last seq of this machine's journal in the remote branch as last fetched."""
    rel = own.dir.relative_to(repo).as_posix()
    listing = git.run("ls-tree", "--name-only", f"{ref}:{rel}", check=False).stdout.split()
    months = sorted(n for n in listing if n.endswith(".jsonl"))
    if not months:
        return 0
    text = git.run("show", f"{ref}:{rel}/{months[-1]}", check=False).stdout
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return 0
    try:
        obj = json.loads(lines[-1])
    except ValueError:
        return 0
    if not isinstance(obj, dict):
        return 0
    return int((obj.get("last") if "enc" in obj else obj.get("seq")) or 0)


def _count_after(file: journal_files.PeerFile, seq: int) -> int:
    """Records of a file beyond `seq` (encrypted blocks are counted from their envelopes)."""
    count = 0
    try:
        with open(file.path, "rb") as fh:
            fh.seek(file.offset)
            for raw in fh:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(obj, dict):
                    continue
                if "enc" in obj:
                    first, last = int(obj.get("first", 0)), int(obj.get("last", 0))
                    count += max(0, last - max(first, seq + 1) + 1)
                elif int(obj.get("seq", 0)) > seq:
                    count += 1
    except OSError:
        pass
    return count


def _machine_name(path: Path) -> str | None:
    try:
        about = json.loads((path / "machine.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = about.get("name") if isinstance(about, dict) else None
    return str(name)[:64] if name else None
