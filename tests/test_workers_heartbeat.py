"""Worker heartbeats and lost runs (fast tier): the job store's bookkeeping, the status of a job whose
worker died, and putting its message back in the embedded broker. No worker runs here: runs and
heartbeats are written the way a worker writes them. The fault tests (a real worker SIGKILLed and
restarted by its supervisor) are in tests/test_workers_faults.py."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

from workers.api import RETRYING_AFTER_LOSS, JobAPI, broker_job_ids
from workers.settings import Settings, SettingsError
from workers.store import LOST, JobStore, utc_now_iso
from workers_helpers import deployment_env, make_data_dir


def test_visibility_timeout_follows_the_hard_time_limit(tmp_path):
    base = {"AVATAR_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).visibility_timeout == 960 + 120
    derived = Settings.from_env(dict(base, AVATAR_SOFT_TIME_LIMIT="50", AVATAR_TIME_LIMIT="60"))
    assert derived.visibility_timeout == 180
    assert Settings.from_env(derived.to_env()).visibility_timeout == 180  # what a worker process gets
    explicit = Settings.from_env(dict(base, AVATAR_VISIBILITY_TIMEOUT="5000"))
    assert explicit.visibility_timeout == 5000
    with pytest.raises(SettingsError, match="AVATAR_WORKER_LOST_AFTER .* at least twice"):
        Settings.from_env(dict(base, AVATAR_HEARTBEAT_INTERVAL="5", AVATAR_WORKER_LOST_AFTER="8"))


def _job(store: JobStore, job_id: str) -> str:
    store.create(job_id, "selftest", {}, {}, "cpu", utc_now_iso())
    return job_id


def test_a_version_1_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "jobs.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, inputs TEXT NOT NULL, config TEXT NOT NULL,
            queue TEXT NOT NULL, created TEXT NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0, state TEXT,
            error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started TEXT, finished TEXT);
        CREATE TABLE runs (job_id TEXT NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL, started REAL NOT NULL,
            finished REAL, outcome TEXT, PRIMARY KEY (job_id, attempt));
        INSERT INTO jobs (job_id, kind, inputs, config, queue, created) VALUES ('old', 'selftest', '{}', '{}', 'cpu', 'x');
        INSERT INTO runs (job_id, attempt, worker, started, outcome) VALUES ('old', 1, 'w/1', 1.0, 'SUCCESS');
        PRAGMA user_version=1;""")
    con.close()
    store = JobStore(path)
    assert store.runs("old") == [{"job_id": "old", "attempt": 1, "worker": "w/1", "started": 1.0, "finished": None,
                                  "outcome": "SUCCESS", "node": None}]
    store.heartbeat("n1", "host", 123)
    assert [w["node"] for w in store.workers()] == ["n1"]
    assert store.begin_run("old", "n1/124", node="n1") == 2


def test_runs_of_silent_stopped_or_dead_workers_are_closed_as_lost_once(job_store_url):
    store = JobStore(job_store_url)
    jobs = [_job(store, f"job-{i}") for i in range(5)]
    for pid, node in enumerate(("silent", "alive", "dead", "stopped")):
        store.heartbeat(node, "host", pid)
    for job, node in zip(jobs, ("silent", "alive", "dead", "stopped", "never-beat")):
        store.begin_run(job, f"{node}/9", node=node)
    assert store.worker_gone("dead", host="host", pid=2) == 1  # what a supervisor records: by host and pid
    assert store.worker_gone("stopped", node="stopped") == 1   # what a worker records at its exit
    time.sleep(0.3)
    store.heartbeat("alive", "host", 1)
    assert store.close_lost_runs(lost_after=0.2) == ["job-0", "job-2", "job-3"]
    assert [store.runs(j)[0]["outcome"] for j in jobs] == [LOST, None, LOST, LOST, None]
    assert store.close_lost_runs(lost_after=0.2) == []  # closed once, queued again by one caller only
    store.end_run("job-4", 1, "SUCCESS", "SUCCESS")
    store.begin_run("job-0", "alive/3", node="alive")
    store.heartbeat("alive", "host", 1)  # (the store calls above may take longer than lost_after)
    assert store.close_lost_runs(lost_after=0.2) == []


def test_a_new_run_closes_the_runs_that_never_reported_back(job_store_url):
    store = JobStore(job_store_url)
    job = _job(store, "job")
    assert [store.begin_run(job, f"w/{i}", node="w") for i in range(3)] == [1, 2, 3]
    store.end_run(job, 3, "SUCCESS", "SUCCESS")
    assert [r["outcome"] for r in store.runs(job)] == [LOST, LOST, "SUCCESS"]  # no NULL outcome left


def _taken(settings: Settings, job_id: str) -> None:
    """Flag the job's broker message as delivered and unacknowledged, as a worker's fetch does."""
    con = sqlite3.connect(settings.broker_url.split(":///", 1)[1])
    with con:
        for row_id, payload in con.execute("SELECT id, payload FROM kombu_message").fetchall():
            if json.loads(payload)["headers"]["id"] == job_id:
                con.execute("UPDATE kombu_message SET visible = 0 WHERE id = ?", (row_id,))
    con.close()


def _visible(settings: Settings) -> set[str]:
    con = sqlite3.connect(settings.broker_url.split(":///", 1)[1])
    rows = con.execute("SELECT payload FROM kombu_message WHERE visible = 1").fetchall()
    con.close()
    return {json.loads(p)["headers"]["id"] for (p,) in rows}


def test_a_dead_workers_job_goes_back_to_its_queue_and_says_so(tmp_path, job_store_url):
    settings = Settings.from_env(deployment_env(make_data_dir(tmp_path / "data"), "sqlite",
                                                AVATAR_JOB_STORE_URL=job_store_url))
    api = JobAPI(settings)
    job, gone = api.submit("selftest", {}), api.submit("selftest", {})
    for j in (job, gone):
        _taken(settings, j)
        api.store.heartbeat("avatar-1@h", "h", 1)
        api.store.begin_run(j, "avatar-1@h/2", node="avatar-1@h")
    assert _visible(settings) == set()
    con = sqlite3.connect(settings.broker_url.split(":///", 1)[1])  # the broker lost one message altogether
    with con:
        for row_id, payload in con.execute("SELECT id, payload FROM kombu_message").fetchall():
            if json.loads(payload)["headers"]["id"] == gone:
                con.execute("DELETE FROM kombu_message WHERE id = ?", (row_id,))
    con.close()
    assert api.recover_lost_runs() == []  # alive: nothing happens
    api.store.worker_gone("dead", host="h", pid=1)  # what the supervisor records when it sees it die
    assert sorted(api.recover_lost_runs()) == sorted([job, gone])
    assert _visible(settings) == {job, gone}  # one put back in place, one sent again
    assert len(broker_job_ids(settings)) == 2  # no second copy
    for j in (job, gone):
        status = api.status(j)
        assert (status.state, status.stage, status.message) == ("PENDING", "retrying", RETRYING_AFTER_LOSS)
        assert [r["outcome"] for r in api.runs(j)] == [LOST]
    assert api.recover_lost_runs() == []
