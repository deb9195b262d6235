"""The job store (<data>/queue/jobs.sqlite) and safe access to job folders (<data>/jobs/<job_id>/).

The store is the record of every job: what was asked (kind, inputs, config), when, whether it was
cancelled, and what the worker made of it (final state, error, one row per run in `runs`). Celery's
result backend carries the live state (STARTED, PROGRESS meta); results there expire, the store's
final state does not. One short sqlite3 connection per operation (WAL mode), so web threads,
prefork children and the CLI can all use it at once.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import sqlite3
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from workers.errors import JobFileError

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
FINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED")
SCHEMA_VERSION = 2  # 2: runs.node, the workers table (heartbeats)
LOST = "lost"  # outcome of a run whose worker died under it (heartbeat stopped, or its process vanished)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id    TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    inputs    TEXT NOT NULL,
    config    TEXT NOT NULL,
    queue     TEXT NOT NULL,
    created   TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    state     TEXT,
    error     TEXT,
    attempts  INTEGER NOT NULL DEFAULT 0,
    started   TEXT,
    finished  TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    job_id   TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    worker   TEXT NOT NULL,
    started  REAL NOT NULL,
    finished REAL,
    outcome  TEXT,
    node     TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS workers (
    node    TEXT PRIMARY KEY,
    host    TEXT NOT NULL,
    pid     INTEGER NOT NULL,
    started REAL NOT NULL,
    beat    REAL NOT NULL,
    state   TEXT NOT NULL
);
"""
WORKER_STATES = ("alive", "stopped", "dead")  # dead: its supervisor saw the process die


class _ForkGuard:
    """fork() waits until no other thread of this process has a store connection open.

    A child forked while another thread is inside SQLite inherits SQLite's mutexes and per-file
    lock bookkeeping half-taken and hangs or fails with "disk I/O error" on its first query. A
    worker forks job processes (the pool replaces a dead or terminated one at any time) while its
    heartbeat thread uses the store, so the fork waits for that (a few ms) here."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._forking = False
        self._mine = threading.local()

    def __enter__(self) -> None:
        with self._cond:
            if not getattr(self._mine, "n", 0):  # (a nested entry must not wait for a fork waiting for it)
                self._cond.wait_for(lambda: not self._forking)
            self._active += 1
        self._mine.n = getattr(self._mine, "n", 0) + 1

    def __exit__(self, *exc) -> None:
        self._mine.n -= 1
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def before_fork(self) -> None:
        self._cond.acquire()  # held across the fork: no thread opens a connection meanwhile
        self._forking = True
        own = getattr(self._mine, "n", 0)  # a fork from inside a store call must not wait for itself
        self._cond.wait_for(lambda: self._active <= own, timeout=60)

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_fork_in_child(self) -> None:
        self.__init__()  # the other threads (and their connections) do not exist in the child


_FORK_GUARD = _ForkGuard()
os.register_at_fork(before=_FORK_GUARD.before_fork, after_in_parent=_FORK_GUARD.after_fork_in_parent,
                    after_in_child=_FORK_GUARD.after_fork_in_child)


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    """Time-sortable and unique: 20261122-101502-3f9c0a1b2c3d (UTC)."""
    return f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}"


def check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        from workers.errors import UnknownJobError

        raise UnknownJobError(f"invalid job id {str(job_id)[:100]!r}")
    return job_id


@dataclass
class JobRecord:
    job_id: str
    kind: str
    inputs: dict
    config: dict
    queue: str
    created: str
    cancelled: bool
    state: str | None  # None until a worker starts it; STARTED while running; then a final state
    error: str | None
    attempts: int
    started: str | None
    finished: str | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _record(row: sqlite3.Row) -> JobRecord:
    d = dict(row)
    d["inputs"] = json.loads(d["inputs"])
    d["config"] = json.loads(d["config"])
    d["cancelled"] = bool(d["cancelled"])
    return JobRecord(**d)


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            if con.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                con.executescript(_SCHEMA)
                columns = {row["name"] for row in con.execute("PRAGMA table_info(runs)")}
                if "node" not in columns:  # a version 1 store
                    con.execute("ALTER TABLE runs ADD COLUMN node TEXT")
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with _FORK_GUARD:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.row_factory = sqlite3.Row
            try:
                con.execute("PRAGMA synchronous=NORMAL")
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- API side -------------------------------------------------------------------------------
    def create(self, job_id: str, kind: str, inputs: dict, config: dict, queue: str, created: str) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT INTO jobs (job_id, kind, inputs, config, queue, created) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, kind, json.dumps(inputs, sort_keys=True), json.dumps(config, sort_keys=True), queue, created))

    def get(self, job_id: str) -> JobRecord | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def list(self, limit: int = 50) -> list[JobRecord]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM jobs ORDER BY rowid DESC LIMIT ?", (max(0, int(limit)),)).fetchall()
        return [_record(r) for r in rows]

    def cancel(self, job_id: str) -> bool:
        """Mark a job cancelled unless it already finished; True when it is (now) cancelled."""
        with self._transaction() as con:
            row = con.execute("SELECT state, cancelled FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None or row["state"] in ("SUCCESS", "FAILURE"):
                return False
            con.execute("UPDATE jobs SET cancelled = 1 WHERE job_id = ?", (job_id,))
            return True

    def unfinished(self, created_before: str) -> list[JobRecord]:
        """Jobs not finished and not cancelled, created before an ISO time (oldest first)."""
        with self._connect() as con:
            rows = con.execute("SELECT * FROM jobs WHERE cancelled = 0 AND (state IS NULL OR state = 'STARTED') "
                               "AND created < ? ORDER BY rowid", (created_before,)).fetchall()
        return [_record(r) for r in rows]

    def finished_before(self, cutoff_iso: str) -> list[str]:
        """Ids of jobs finished (or cancelled) before an ISO time, oldest first: what prune removes."""
        with self._connect() as con:
            rows = con.execute("SELECT job_id FROM jobs WHERE (state IN ('SUCCESS', 'FAILURE', 'REVOKED') "
                               "OR cancelled = 1) AND COALESCE(finished, created) < ? ORDER BY rowid",
                               (cutoff_iso,)).fetchall()
        return [r["job_id"] for r in rows]

    def delete(self, job_ids: list[str]) -> None:
        """Forget jobs and their runs (their folders are the caller's)."""
        with self._transaction() as con:
            for job_id in job_ids:
                con.execute("DELETE FROM runs WHERE job_id = ?", (job_id,))
                con.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def inputs_mention(self, names: set[str], exclude: set[str] = frozenset()) -> set[str]:
        """Which of these names (e.g. stored upload names) appear in the inputs of jobs not in `exclude`."""
        found: set[str] = set()
        with self._connect() as con:
            for job_id, inputs in con.execute("SELECT job_id, inputs FROM jobs"):
                if job_id not in exclude:
                    found.update(n for n in names if n in inputs)
        return found

    def unfinished_counts(self) -> dict[str, int]:
        """Jobs waiting for a worker (queued) and being run (running), cancelled ones excluded."""
        with self._connect() as con:
            row = con.execute("SELECT SUM(state IS NULL), SUM(state = 'STARTED') FROM jobs WHERE cancelled = 0 "
                              "AND (state IS NULL OR state = 'STARTED')").fetchone()
        return {"queued": int(row[0] or 0), "running": int(row[1] or 0)}

    def is_cancelled(self, job_id: str) -> bool:
        with self._connect() as con:
            row = con.execute("SELECT cancelled FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return bool(row and row["cancelled"])

    # -- worker side ----------------------------------------------------------------------------
    def begin_run(self, job_id: str, worker: str, node: str | None = None) -> int:
        """Record that a worker (Celery node `node`, process `worker`) starts running the job; returns
        the attempt number (1, 2, ...). Earlier runs still open never reported back: their process
        died (a job process killed by the OOM killer is re-queued by Celery at once), so they are
        closed as lost here."""
        with self._transaction() as con:
            now = time.time()
            con.execute("UPDATE runs SET finished = ?, outcome = ? WHERE job_id = ? AND outcome IS NULL",
                        (now, LOST, job_id))
            attempt = con.execute(
                "SELECT COALESCE(MAX(attempt), 0) + 1 FROM runs WHERE job_id = ?", (job_id,)).fetchone()[0]
            con.execute("INSERT INTO runs (job_id, attempt, worker, started, node) VALUES (?, ?, ?, ?, ?)",
                        (job_id, attempt, worker, now, node))
            con.execute("UPDATE jobs SET attempts = ?, state = 'STARTED', started = COALESCE(started, ?) "
                        "WHERE job_id = ?", (attempt, utc_now_iso(), job_id))
        return attempt

    def end_run(self, job_id: str, attempt: int, outcome: str, state: str | None = None,
                error: str | None = None) -> None:
        """Close a run; with `state` (a final state) also record the job's outcome."""
        with self._transaction() as con:
            con.execute("UPDATE runs SET finished = ?, outcome = ? WHERE job_id = ? AND attempt = ?",
                        (time.time(), outcome, job_id, attempt))
            if state is not None:  # a finished SUCCESS stays (a stray duplicate run must not undo it)
                con.execute("UPDATE jobs SET state = ?, error = ?, finished = ? WHERE job_id = ? "
                            "AND (state IS NULL OR state != 'SUCCESS')", (state, error, utc_now_iso(), job_id))

    def close_open_runs(self, job_id: str, outcome: str, state: str, error: str | None = None) -> None:
        """End runs that never reported back (their process was killed) and record the job's state."""
        with self._transaction() as con:
            con.execute("UPDATE runs SET finished = ?, outcome = ? WHERE job_id = ? AND outcome IS NULL",
                        (time.time(), outcome, job_id))
            con.execute("UPDATE jobs SET state = ?, error = ?, finished = ? WHERE job_id = ? "
                        "AND (state IS NULL OR state NOT IN ('SUCCESS', 'FAILURE'))",
                        (state, error, utc_now_iso(), job_id))

    def finish(self, job_id: str, state: str, error: str | None = None) -> None:
        with self._connect() as con:
            con.execute("UPDATE jobs SET state = ?, error = ?, finished = ? WHERE job_id = ?",
                        (state, error, utc_now_iso(), job_id))

    def runs(self, job_id: str) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY attempt", (job_id,)).fetchall()
        return [dict(r) for r in rows]

    def last_run(self, job_id: str) -> dict | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY attempt DESC LIMIT 1",
                              (job_id,)).fetchone()
        return dict(row) if row else None

    # -- worker heartbeats ----------------------------------------------------------------------
    def heartbeat(self, node: str, host: str, pid: int) -> None:
        """A worker (Celery node name) is alive now."""
        now = time.time()
        with self._connect() as con:
            con.execute("INSERT INTO workers (node, host, pid, started, beat, state) VALUES (?, ?, ?, ?, ?, 'alive') "
                        "ON CONFLICT(node) DO UPDATE SET beat = excluded.beat, state = 'alive'",
                        (node, host, pid, now, now))

    def worker_gone(self, state: str, *, node: str | None = None, host: str | None = None,
                    pid: int | None = None) -> int:
        """Mark a worker 'stopped' (a clean shutdown) or 'dead' (seen dying), by node name or by
        host and pid; its open runs are then lost at the next close_lost_runs. Returns rows changed."""
        if state not in WORKER_STATES[1:]:
            raise ValueError(f"worker state must be stopped or dead, got {state!r}")
        where, args = ("node = ?", (node,)) if node is not None else ("host = ? AND pid = ?", (host, pid))
        with self._connect() as con:
            return con.execute(f"UPDATE workers SET state = ? WHERE {where}", (state, *args)).rowcount

    def workers(self) -> list[dict]:
        """Known workers, newest heartbeat first, with `age` (seconds since their last heartbeat)."""
        now = time.time()
        with self._connect() as con:
            rows = con.execute("SELECT * FROM workers ORDER BY beat DESC").fetchall()
        return [dict(r, age=round(now - r["beat"], 3)) for r in rows]

    def close_lost_runs(self, lost_after: float, forget_after: float = 7 * 24 * 3600.0) -> list[str]:
        """Close as lost the open runs of workers that stopped, were seen dead, or sent no heartbeat
        for `lost_after` seconds. Returns the ids of the unfinished jobs among them, each once and to
        one caller only (the update and the select share a transaction): that caller queues them
        again. Runs of workers that never sent a heartbeat are left to the visibility timeout.
        Workers silent for `forget_after` seconds with no open run are forgotten."""
        now = time.time()
        with self._transaction() as con:
            rows = con.execute(
                "SELECT r.job_id, r.attempt FROM runs r JOIN workers w ON w.node = r.node "
                "WHERE r.outcome IS NULL AND (w.state != 'alive' OR w.beat < ?)", (now - lost_after,)).fetchall()
            for row in rows:
                con.execute("UPDATE runs SET finished = ?, outcome = ? WHERE job_id = ? AND attempt = ?",
                            (now, LOST, row["job_id"], row["attempt"]))
            con.execute("DELETE FROM workers WHERE beat < ? AND node NOT IN "
                        "(SELECT node FROM runs WHERE outcome IS NULL AND node IS NOT NULL)", (now - forget_after,))
            ids = sorted({row["job_id"] for row in rows})
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            unfinished = con.execute(f"SELECT job_id FROM jobs WHERE job_id IN ({marks}) AND "
                                     "(state IS NULL OR state = 'STARTED')", ids).fetchall()
        return [row["job_id"] for row in unfinished]


# -- job folders ---------------------------------------------------------------------------------
def list_job_files(folder: Path) -> dict[str, Path]:
    """Regular files inside a job folder (recursively, posix relative names), never following symlinks."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return {}
    root = folder.resolve()
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                files[path.relative_to(root).as_posix()] = path
    return dict(sorted(files.items()))


def resolve_job_file(jobs_dir: Path, job_id: str, name: str) -> Path:
    """The file `name` inside jobs_dir/job_id, or JobFileError: no '..', no absolute names, no symlink
    anywhere on the way (a symlink could point outside the folder), only existing regular files."""
    check_job_id(job_id)
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name or len(name) > 255:
        raise JobFileError(f"invalid file name {str(name)[:100]!r}")
    rel = PurePosixPath(name)
    if rel.is_absolute() or any(part in ("..", ".", "") for part in name.split("/")):
        raise JobFileError(f"file name {name!r} must be a plain name inside the job folder")
    jobs_dir = Path(jobs_dir).resolve()
    path = jobs_dir / job_id
    for part in (None, *rel.parts):
        if part is not None:
            path = path / part
        try:
            st = path.lstat()
        except FileNotFoundError:
            if part is None:
                raise JobFileError(f"job {job_id} has no output folder") from None
            raise JobFileError(f"job {job_id} has no file {name!r}") from None
        if stat.S_ISLNK(st.st_mode):
            raise JobFileError(f"file {name!r} of job {job_id} is a symlink; refusing to follow it")
    if not stat.S_ISREG(path.lstat().st_mode):
        raise JobFileError(f"{name!r} in job {job_id} is not a file")
    resolved = path.resolve(strict=True)
    if not resolved.is_relative_to(jobs_dir / job_id):  # belt and braces after the checks above
        raise JobFileError(f"file {name!r} is outside the folder of job {job_id}")
    return resolved


def safe_job_file(job_id: str, name: str, settings=None) -> Path:
    """Absolute path of a downloadable file of a job, resolved only within <data>/jobs/<job_id>/."""
    from workers.settings import get_settings

    settings = settings or get_settings()
    return resolve_job_file(settings.jobs_dir, job_id, name)
