"""The job store (an SQL database: SQLite by default, PostgreSQL for several machines) and safe
access to job folders (<data>/jobs/<job_id>/).

The store is the record of every job: what was asked (kind, inputs, config), when, whether it was
cancelled, and what the worker made of it (final state, error, one row per run in `runs`), plus the
workers' heartbeats. Celery's result backend carries the live state (STARTED, PROGRESS meta);
results there expire, the store's final state does not.

Where it lives is AVATAR_JOB_STORE_URL (SQLAlchemy Core, one engine per URL and process):
  * sqlite:///<data>/queue/jobs.sqlite (default): one short connection per operation, WAL mode, so
    web threads, prefork children and the CLI of ONE machine use it at once. Writes take the
    database's write lock up front (BEGIN IMMEDIATE), which serialises them.
  * postgresql+psycopg://user@host/db: web and workers on several machines (a SQLite file on a
    network folder is not safe). Pooled connections; READ COMMITTED, so every read-modify-write
    below is either one atomic UPDATE ... WHERE (RETURNING) or locks its job row first
    (SELECT ... FOR UPDATE).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import sqlite3
import stat
import threading
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Iterator

import sqlalchemy as sa

from avatarclip_core.config.limits import JOB_ID_RE
from workers.errors import JobFileError

FINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED")
SCHEMA_VERSION = 2  # 2: runs.node, the workers table (heartbeats)
LOST = "lost"  # outcome of a run whose worker died under it (heartbeat stopped, or its process vanished)
WORKER_STATES = ("alive", "stopped", "dead")  # dead: its supervisor saw the process die
_PG_SCHEMA_LOCK = 0x61766174  # pg_advisory_xact_lock key: one process at a time creates the tables


@dataclass(frozen=True)
class _Tables:
    """The store's tables for one SQL dialect. SQLite keeps insertion order in its rowid; PostgreSQL
    has none, so its jobs table gets an identity column `seq` for the same order (newest first)."""
    metadata: sa.MetaData
    jobs: sa.Table
    runs: sa.Table
    workers: sa.Table
    meta: sa.Table  # schema version on PostgreSQL (SQLite keeps it in PRAGMA user_version)
    order: sa.ColumnElement  # insertion order of jobs

    @classmethod
    def for_dialect(cls, dialect: str) -> "_Tables":
        md = sa.MetaData()
        seq = [sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False)] if dialect != "sqlite" else []
        jobs = sa.Table(
            "jobs", md,
            sa.Column("job_id", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("inputs", sa.Text, nullable=False),
            sa.Column("config", sa.Text, nullable=False),
            sa.Column("queue", sa.Text, nullable=False),
            sa.Column("created", sa.Text, nullable=False),
            sa.Column("cancelled", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("state", sa.Text),
            sa.Column("error", sa.Text),
            sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("started", sa.Text),
            sa.Column("finished", sa.Text),
            *seq)
        runs = sa.Table(
            "runs", md,
            sa.Column("job_id", sa.Text, primary_key=True),
            sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("worker", sa.Text, nullable=False),
            sa.Column("started", sa.Float, nullable=False),
            sa.Column("finished", sa.Float),
            sa.Column("outcome", sa.Text),
            sa.Column("node", sa.Text))
        workers = sa.Table(
            "workers", md,
            sa.Column("node", sa.Text, primary_key=True),
            sa.Column("host", sa.Text, nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("started", sa.Float, nullable=False),
            sa.Column("beat", sa.Float, nullable=False),
            sa.Column("state", sa.Text, nullable=False))
        meta = sa.Table("job_store_meta", sa.MetaData(),  # not in `md`: SQLite never creates it
                        sa.Column("name", sa.Text, primary_key=True),
                        sa.Column("value", sa.Text, nullable=False))
        order = jobs.c.seq if seq else sa.literal_column("rowid")
        return cls(md, jobs, runs, workers, meta, order)


class _ForkGuard:
    """fork() waits until no other thread of this process has a store connection open.

    A child forked while another thread is inside SQLite inherits SQLite's mutexes and per-file
    lock bookkeeping half-taken and hangs or fails with "disk I/O error" on its first query (a
    PostgreSQL socket or the engine pool's lock would be inherited mid-use the same way). A worker
    forks job processes (the pool replaces a dead or terminated one at any time) while its
    heartbeat thread uses the store, so the fork waits for that (a few ms) here. The child drops
    the pooled connections it inherited (they belong to the parent) without closing them."""

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
        for engine in _ENGINES.values():
            engine.dispose(close=False)  # the parent's pooled connections: forget, never close


_FORK_GUARD = _ForkGuard()
os.register_at_fork(before=_FORK_GUARD.before_fork, after_in_parent=_FORK_GUARD.after_fork_in_parent,
                    after_in_child=_FORK_GUARD.after_fork_in_child)
_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def store_url(target: str | os.PathLike) -> str:
    """A job-store URL from a URL or a SQLite file path; postgresql:// means psycopg 3 (the driver we
    install; SQLAlchemy's default for that scheme would be psycopg2)."""
    if isinstance(target, os.PathLike) or "://" not in str(target):
        return f"sqlite:///{Path(target).expanduser().resolve()}"
    url = str(target)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def use_wal(dbapi_con, attempts: int = 100) -> None:
    """Put a SQLite file in WAL journal mode (persistent per file) through a sqlite3 connection. The
    switch needs the file's exclusive lock, and SQLite answers "database is locked" at once, past the
    busy timeout, when two connections switch a new file together (each holds the shared lock the
    other waits on: 1 in ~150 openings of 8 job stores together). The loser finds WAL already set, or
    tries again after a short random pause."""
    for attempt in range(attempts):
        try:
            if str(dbapi_con.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                dbapi_con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 + 0.04 * random.random())  # apart, so the next try meets no twin


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database in (None, "", ":memory:"):
        raise ValueError("the job store needs a SQLite file (sqlite:///path/jobs.sqlite), not an in-memory database")
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # NullPool: one short connection per operation, as sqlite3 wants with several threads and forks
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_con, _record):
        dbapi_con.isolation_level = None  # sqlite3 must not issue its own (deferred) BEGIN: `_begin` does
        dbapi_con.execute("PRAGMA synchronous=NORMAL")  # (the busy timeout is connect_args' timeout)

    @sa.event.listens_for(engine, "begin")
    def _begin(con):
        # a write transaction takes the write lock up front: no two read-then-write transactions
        # interleave (what FOR UPDATE does on PostgreSQL); reads are single statements, no BEGIN
        if not con.get_execution_options().get("avatar_read"):
            con.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def store_engine(url: str) -> sa.Engine:
    """The process's engine for a job-store URL (created on first use)."""
    with _FORK_GUARD, _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            parsed = sa.make_url(url)
            if parsed.get_backend_name() == "sqlite":
                engine = _sqlite_engine(parsed)
            elif parsed.get_backend_name() == "postgresql":
                # pre_ping: a restarted server or a dropped connection is replaced, not reported
                engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                          connect_args={"connect_timeout": 10})
            else:
                raise ValueError(f"the job store must be SQLite or PostgreSQL, got {parsed.get_backend_name()!r}")
            _ENGINES[url] = engine
        return engine


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


_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))  # the jobs columns a record reads (not `seq`)


def _record(row) -> JobRecord:
    d = dict(row._mapping)
    d["inputs"] = json.loads(d["inputs"])
    d["config"] = json.loads(d["config"])
    d["cancelled"] = bool(d["cancelled"])
    return JobRecord(**d)


class JobStore:
    """The job store at a URL (sqlite:///..., postgresql+psycopg://...) or a SQLite file path."""

    def __init__(self, target: str | os.PathLike) -> None:
        self.url = store_url(target)
        self.engine = store_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.t = _Tables.for_dialect(self.dialect)
        self._jobs_columns = [self.t.jobs.c[name] for name in _JOB_FIELDS]
        self._create_schema()

    def __repr__(self) -> str:
        return f"JobStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- connections and schema ------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with _FORK_GUARD, self.engine.connect() as con:
            con.execution_options(avatar_read=True)
            yield con

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One transaction, committed on success, rolled back on any exception."""
        with _FORK_GUARD, self.engine.begin() as con:
            yield con

    def _create_schema(self) -> None:
        """Create the tables, or bring an older store to SCHEMA_VERSION; idempotent and safe when
        several processes open a new store at once."""
        if self.dialect == "sqlite":  # persistent per file: readers never block the writer
            self._use_wal()
        if self._version() >= SCHEMA_VERSION:
            return
        with self._write() as con:
            if self.dialect == "sqlite":  # BEGIN IMMEDIATE already excludes other writers
                found = con.exec_driver_sql("PRAGMA user_version").scalar_one()
            else:
                con.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                found = self._version(con)
            if found >= SCHEMA_VERSION:
                return
            self.t.metadata.create_all(con)  # missing tables only
            if "node" not in {c["name"] for c in sa.inspect(con).get_columns("runs")}:  # a version 1 store
                con.execute(sa.text("ALTER TABLE runs ADD COLUMN node TEXT"))
            if self.dialect == "sqlite":
                con.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
            else:
                self.t.meta.create(con, checkfirst=True)
                con.execute(sa.delete(self.t.meta).where(self.t.meta.c.name == "schema_version"))
                con.execute(sa.insert(self.t.meta).values(name="schema_version", value=str(SCHEMA_VERSION)))

    def _use_wal(self) -> None:
        with self._read() as con:
            use_wal(con.connection.driver_connection)

    def _version(self, con: sa.Connection | None = None) -> int:
        if con is None:
            with self._read() as con:
                return self._version(con)
        if self.dialect == "sqlite":
            return int(con.exec_driver_sql("PRAGMA user_version").scalar_one())
        if not sa.inspect(con).has_table(self.t.meta.name):
            return 0
        value = con.execute(sa.select(self.t.meta.c.value).where(self.t.meta.c.name == "schema_version")).scalar()
        return int(value or 0)

    def _unfinished(self):
        jobs = self.t.jobs
        return sa.or_(jobs.c.state.is_(None), jobs.c.state == "STARTED")

    # -- API side -------------------------------------------------------------------------------
    def create(self, job_id: str, kind: str, inputs: dict, config: dict, queue: str, created: str) -> None:
        with self._write() as con:
            con.execute(sa.insert(self.t.jobs).values(
                job_id=job_id, kind=kind, inputs=json.dumps(inputs, sort_keys=True),
                config=json.dumps(config, sort_keys=True), queue=queue, created=created))

    def get(self, job_id: str) -> JobRecord | None:
        with self._read() as con:
            row = con.execute(sa.select(*self._jobs_columns).where(self.t.jobs.c.job_id == job_id)).first()
        return _record(row) if row else None

    def list(self, limit: int = 50) -> list[JobRecord]:
        with self._read() as con:
            rows = con.execute(sa.select(*self._jobs_columns).order_by(self.t.order.desc())
                               .limit(max(0, int(limit)))).all()
        return [_record(r) for r in rows]

    def cancel(self, job_id: str) -> bool:
        """Mark a job cancelled unless it already finished; True when it is (now) cancelled."""
        jobs = self.t.jobs
        with self._write() as con:  # one UPDATE ... WHERE: atomic on both databases
            done = con.execute(sa.update(jobs).where(
                jobs.c.job_id == job_id,
                sa.or_(jobs.c.state.is_(None), jobs.c.state.not_in(("SUCCESS", "FAILURE")))).values(cancelled=1))
            return done.rowcount > 0

    def unfinished(self, created_before: str) -> list[JobRecord]:
        """Jobs not finished and not cancelled, created before an ISO time (oldest first)."""
        jobs = self.t.jobs
        with self._read() as con:
            rows = con.execute(sa.select(*self._jobs_columns).where(
                jobs.c.cancelled == 0, self._unfinished(), jobs.c.created < created_before)
                .order_by(self.t.order)).all()
        return [_record(r) for r in rows]

    def finished_before(self, cutoff_iso: str) -> list[str]:
        """Ids of jobs finished (or cancelled) before an ISO time, oldest first: what prune removes."""
        jobs = self.t.jobs
        with self._read() as con:
            return list(con.execute(sa.select(jobs.c.job_id).where(
                sa.or_(jobs.c.state.in_(FINAL_STATES), jobs.c.cancelled == 1),
                sa.func.coalesce(jobs.c.finished, jobs.c.created) < cutoff_iso).order_by(self.t.order)).scalars())

    def delete(self, job_ids: list[str]) -> None:
        """Forget jobs and their runs (their folders are the caller's)."""
        job_ids = list(job_ids)
        with self._write() as con:
            for i in range(0, len(job_ids), 500):  # bounded statements (bound-parameter limits)
                chunk = job_ids[i:i + 500]
                con.execute(sa.delete(self.t.runs).where(self.t.runs.c.job_id.in_(chunk)))
                con.execute(sa.delete(self.t.jobs).where(self.t.jobs.c.job_id.in_(chunk)))

    def inputs_mention(self, names: set[str], exclude: set[str] = frozenset()) -> set[str]:
        """Which of these names (e.g. stored upload names) appear in the inputs of jobs not in `exclude`."""
        found: set[str] = set()
        with self._read() as con:
            for job_id, inputs in con.execute(sa.select(self.t.jobs.c.job_id, self.t.jobs.c.inputs)):
                if job_id not in exclude:
                    found.update(n for n in names if n in inputs)
        return found

    def unfinished_counts(self) -> dict[str, int]:
        """Jobs waiting for a worker (queued) and being run (running), cancelled ones excluded."""
        jobs = self.t.jobs
        count = lambda cond: sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)  # noqa: E731
        with self._read() as con:
            queued, running = con.execute(sa.select(count(jobs.c.state.is_(None)), count(jobs.c.state == "STARTED"))
                                          .where(jobs.c.cancelled == 0, self._unfinished())).one()
        return {"queued": int(queued), "running": int(running)}

    def is_cancelled(self, job_id: str) -> bool:
        with self._read() as con:
            value = con.execute(sa.select(self.t.jobs.c.cancelled).where(self.t.jobs.c.job_id == job_id)).scalar()
        return bool(value)

    # -- worker side ----------------------------------------------------------------------------
    def begin_run(self, job_id: str, worker: str, node: str | None = None) -> int:
        """Record that a worker (Celery node `node`, process `worker`) starts running the job; returns
        the attempt number (1, 2, ...). Earlier runs still open never reported back: their process
        died (a job process killed by the OOM killer is re-queued by Celery at once), so they are
        closed as lost here."""
        jobs, runs = self.t.jobs, self.t.runs
        with self._write() as con:
            # the job's row lock serialises runs of one job (a message delivered twice): the attempt
            # number read below is then still free at the insert (SQLite: BEGIN IMMEDIATE did it)
            con.execute(sa.select(jobs.c.job_id).where(jobs.c.job_id == job_id).with_for_update())
            now = time.time()
            con.execute(sa.update(runs).where(runs.c.job_id == job_id, runs.c.outcome.is_(None))
                        .values(finished=now, outcome=LOST))
            attempt = con.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.attempt), 0) + 1)
                                  .where(runs.c.job_id == job_id)).scalar_one()
            con.execute(sa.insert(runs).values(job_id=job_id, attempt=attempt, worker=worker, started=now, node=node))
            con.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(
                attempts=attempt, state="STARTED", started=sa.func.coalesce(jobs.c.started, utc_now_iso())))
        return int(attempt)

    def end_run(self, job_id: str, attempt: int, outcome: str, state: str | None = None,
                error: str | None = None) -> None:
        """Close a run; with `state` (a final state) also record the job's outcome."""
        jobs, runs = self.t.jobs, self.t.runs
        with self._write() as con:
            con.execute(sa.update(runs).where(runs.c.job_id == job_id, runs.c.attempt == attempt)
                        .values(finished=time.time(), outcome=outcome))
            if state is not None:  # a finished SUCCESS stays (a stray duplicate run must not undo it)
                con.execute(sa.update(jobs).where(
                    jobs.c.job_id == job_id, sa.or_(jobs.c.state.is_(None), jobs.c.state != "SUCCESS"))
                    .values(state=state, error=error, finished=utc_now_iso()))

    def close_open_runs(self, job_id: str, outcome: str, state: str, error: str | None = None) -> None:
        """End runs that never reported back (their process was killed) and record the job's state."""
        jobs, runs = self.t.jobs, self.t.runs
        with self._write() as con:
            con.execute(sa.update(runs).where(runs.c.job_id == job_id, runs.c.outcome.is_(None))
                        .values(finished=time.time(), outcome=outcome))
            con.execute(sa.update(jobs).where(
                jobs.c.job_id == job_id, sa.or_(jobs.c.state.is_(None), jobs.c.state.not_in(("SUCCESS", "FAILURE"))))
                .values(state=state, error=error, finished=utc_now_iso()))

    def finish(self, job_id: str, state: str, error: str | None = None) -> None:
        with self._write() as con:
            con.execute(sa.update(self.t.jobs).where(self.t.jobs.c.job_id == job_id)
                        .values(state=state, error=error, finished=utc_now_iso()))

    def runs(self, job_id: str) -> list[dict]:
        runs = self.t.runs
        with self._read() as con:
            rows = con.execute(sa.select(runs).where(runs.c.job_id == job_id).order_by(runs.c.attempt)).all()
        return [dict(r._mapping) for r in rows]

    def last_run(self, job_id: str) -> dict | None:
        runs = self.t.runs
        with self._read() as con:
            row = con.execute(sa.select(runs).where(runs.c.job_id == job_id)
                              .order_by(runs.c.attempt.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    # -- worker heartbeats ----------------------------------------------------------------------
    def heartbeat(self, node: str, host: str, pid: int) -> None:
        """A worker (Celery node name) is alive now."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        now = time.time()
        stmt = insert(self.t.workers).values(node=node, host=host, pid=pid, started=now, beat=now, state="alive")
        stmt = stmt.on_conflict_do_update(index_elements=[self.t.workers.c.node],
                                          set_={"beat": stmt.excluded.beat, "state": "alive"})
        with self._write() as con:
            con.execute(stmt)

    def worker_gone(self, state: str, *, node: str | None = None, host: str | None = None,
                    pid: int | None = None) -> int:
        """Mark a worker 'stopped' (a clean shutdown) or 'dead' (seen dying), by node name or by
        host and pid; its open runs are then lost at the next close_lost_runs. Returns rows changed."""
        if state not in WORKER_STATES[1:]:
            raise ValueError(f"worker state must be stopped or dead, got {state!r}")
        w = self.t.workers
        where = (w.c.node == node,) if node is not None else (w.c.host == host, w.c.pid == pid)
        with self._write() as con:
            return con.execute(sa.update(w).where(*where).values(state=state)).rowcount

    def workers(self) -> list[dict]:
        """Known workers, newest heartbeat first, with `age` (seconds since their last heartbeat)."""
        now = time.time()
        with self._read() as con:
            rows = con.execute(sa.select(self.t.workers).order_by(self.t.workers.c.beat.desc())).all()
        return [dict(r._mapping, age=round(now - r.beat, 3)) for r in rows]

    def close_lost_runs(self, lost_after: float, forget_after: float = 7 * 24 * 3600.0) -> list[str]:
        """Close as lost the open runs of workers that stopped, were seen dead, or sent no heartbeat
        for `lost_after` seconds. Returns the ids of the unfinished jobs among them, each once and to
        one caller only: that caller queues them again. Runs of workers that never sent a heartbeat
        are left to the visibility timeout. Workers silent for `forget_after` seconds with no open
        run are forgotten."""
        jobs, runs, w = self.t.jobs, self.t.runs, self.t.workers
        now = time.time()
        lost_nodes = sa.select(w.c.node).where(sa.or_(w.c.state != "alive", w.c.beat < now - lost_after))
        with self._write() as con:
            # one UPDATE ... RETURNING: a concurrent caller waits for these rows' locks (PostgreSQL)
            # or the write lock (SQLite), then finds their outcome set and returns none of them
            closed = con.execute(sa.update(runs).where(runs.c.outcome.is_(None), runs.c.node.in_(lost_nodes))
                                 .values(finished=now, outcome=LOST).returning(runs.c.job_id)).scalars().all()
            busy = sa.select(runs.c.node).where(runs.c.outcome.is_(None), runs.c.node.is_not(None))
            con.execute(sa.delete(w).where(w.c.beat < now - forget_after, w.c.node.not_in(busy)))
            if not closed:
                return []
            unfinished = con.execute(sa.select(jobs.c.job_id).where(
                jobs.c.job_id.in_(sorted(set(closed))), self._unfinished())).scalars().all()
        return sorted(unfinished)


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
