"""The job store on both backends (SQLite file, real PostgreSQL server): schema creation and upgrades,
order, and the read-modify-write operations under concurrent callers (threads with their own
connections, as web threads and workers have). The `job_store_url` fixture (conftest.py) gives each
test a fresh store: a new SQLite file or a new PostgreSQL database, dropped afterwards."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from workers.settings import Settings, SettingsError
from workers.store import LOST, SCHEMA_VERSION, JobStore, store_url, utc_now_iso

THREADS = 8


def _together(fn, n: int = THREADS) -> list:
    """Run fn(i) in n threads released at once; their results (an exception fails the test)."""
    start, results, errors = threading.Barrier(n), [None] * n, []

    def run(i):
        try:
            start.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_a_new_store_opened_by_many_at_once_gets_one_schema(job_store_url, tmp_path):
    stores = _together(lambda i: JobStore(job_store_url))
    assert {s._version() for s in stores} == {SCHEMA_VERSION}
    if job_store_url.startswith("sqlite"):
        # new files again: two connections switching a new file to WAL together got "database is locked"
        # at once, past the busy timeout (1 in ~150 such openings before the fix; 0 in 400 after)
        for attempt in range(100):
            url = f"sqlite:///{tmp_path / f'again-{attempt}' / 'jobs.sqlite'}"
            assert {s._version() for s in _together(lambda i: JobStore(url))} == {SCHEMA_VERSION}
    stores[0].create("j", "selftest", {"a": 1}, {}, "cpu", utc_now_iso())
    assert JobStore(job_store_url).get("j").inputs == {"a": 1}  # reopening keeps what is there


def test_jobs_are_listed_newest_first_and_counted(job_store_url):
    store = JobStore(job_store_url)
    ids = [f"job-{i}" for i in range(6)]
    for job in ids:  # same millisecond or not: insertion order decides
        store.create(job, "selftest", {}, {}, "cpu", "2026-01-01T00:00:00.000+00:00")
    assert [r.job_id for r in store.list(4)] == ids[::-1][:4]
    assert [r.job_id for r in store.unfinished("2027")] == ids
    store.begin_run("job-1", "w/1", node="w")
    assert store.cancel("job-2") and store.is_cancelled("job-2")
    store.end_run("job-1", 1, "SUCCESS", "SUCCESS")
    assert not store.cancel("job-1")  # finished: stays SUCCESS
    store.begin_run("job-3", "w/2", node="w")
    assert store.unfinished_counts() == {"queued": 3, "running": 1}
    assert store.finished_before("2999") == ["job-1", "job-2"]
    store.delete(["job-1", "job-2"])
    assert store.get("job-1") is None and store.runs("job-1") == []


def test_one_job_started_by_many_workers_at_once_gets_distinct_attempts(job_store_url):
    store = JobStore(job_store_url)
    store.create("job", "selftest", {}, {}, "cpu", utc_now_iso())
    attempts = _together(lambda i: store.begin_run("job", f"w{i}/1", node=f"w{i}"))
    assert sorted(attempts) == list(range(1, THREADS + 1))
    outcomes = [r["outcome"] for r in store.runs("job")]
    assert outcomes == [LOST] * (THREADS - 1) + [None]  # every run but the newest closed as lost
    assert store.get("job").attempts == THREADS


def test_lost_runs_go_to_exactly_one_of_many_concurrent_callers(job_store_url):
    store = JobStore(job_store_url)
    jobs = [f"job-{i:02d}" for i in range(20)]
    store.heartbeat("gone", "host", 1)
    for job in jobs:
        store.create(job, "selftest", {}, {}, "cpu", utc_now_iso())
        store.begin_run(job, "gone/2", node="gone")
    store.worker_gone("dead", node="gone")
    handed = _together(lambda i: store.close_lost_runs(lost_after=30))
    assert sorted(j for part in handed for j in part) == jobs  # each job once, to one caller
    assert {r["outcome"] for job in jobs for r in store.runs(job)} == {LOST}


def test_concurrent_heartbeats_and_cancels_do_not_conflict(job_store_url):
    store = JobStore(job_store_url)
    store.create("job", "selftest", {}, {}, "cpu", utc_now_iso())
    _together(lambda i: (store.heartbeat("node", "host", 1), store.cancel("job")))
    assert [w["node"] for w in store.workers()] == ["node"] and store.is_cancelled("job")


def test_an_existing_version_2_sqlite_store_keeps_working(tmp_path):
    path = tmp_path / "jobs.sqlite"  # as the raw-sqlite3 store of schema version 2 made it
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, inputs TEXT NOT NULL, config TEXT NOT NULL,
            queue TEXT NOT NULL, created TEXT NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0, state TEXT,
            error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started TEXT, finished TEXT);
        CREATE TABLE runs (job_id TEXT NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL, started REAL NOT NULL,
            finished REAL, outcome TEXT, node TEXT, PRIMARY KEY (job_id, attempt));
        CREATE TABLE workers (node TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL,
            beat REAL NOT NULL, state TEXT NOT NULL);
        INSERT INTO jobs (job_id, kind, inputs, config, queue, created, state)
            VALUES ('old', 'selftest', '{"x": 1}', '{}', 'cpu', 'x', 'SUCCESS');
        PRAGMA journal_mode=WAL;
        PRAGMA user_version=2;""")
    con.close()
    store = JobStore(path)
    assert store.url == f"sqlite:///{path.resolve()}"
    store.create("new", "selftest", {}, {}, "cpu", utc_now_iso())
    assert [r.job_id for r in store.list()] == ["new", "old"] and store.get("old").inputs == {"x": 1}
    assert store.begin_run("old", "w/1", node="w") == 1
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_job_store_url_setting(tmp_path):
    base = {"AVATAR_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).job_store_url == f"sqlite:///{tmp_path.resolve()}/queue/jobs.sqlite"
    pg = Settings.from_env(dict(base, AVATAR_JOB_STORE_URL="postgresql+psycopg://avatar:pw@db.internal/avatar"))
    assert pg.job_store_kind == "postgresql" and Settings.from_env(pg.to_env()) == pg  # what a worker gets
    assert "pw" not in repr(pg) and "avatar:***@db.internal" in repr(pg)
    assert store_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"  # psycopg 3, not psycopg2
    for bad in ("mysql://u@h/db", "sqlite://", "/var/jobs.sqlite"):
        with pytest.raises(SettingsError, match="AVATAR_JOB_STORE_URL must be sqlite:///"):
            Settings.from_env(dict(base, AVATAR_JOB_STORE_URL=bad))
