"""Retention: `avatar jobs prune --older-than` (JobAPI.prune): finished jobs' folders and store rows,
and uploads no remaining job names; unfinished jobs and recent ones stay."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from workers.api import JobAPI
from workers.settings import Settings
from workers_helpers import deployment_env, make_data_dir

ROOT = Path(__file__).resolve().parents[1]
LONG_AGO = "2020-01-01T00:00:00.000+00:00"


def _finished(api: JobAPI, state: str, when: str | None = None) -> str:
    job = api.submit("selftest", {})
    attempt = api.store.begin_run(job, "w/1", node="w")
    api.store.end_run(job, attempt, state, state)
    if when:
        jobs = api.store.t.jobs
        with api.store.engine.begin() as con:
            con.execute(sa.update(jobs).where(jobs.c.job_id == job).values(finished=when))
    api.settings.job_dir(job).mkdir(parents=True)
    (api.settings.job_dir(job) / "result.json").write_text("x" * 1000)
    return job


def test_prune_removes_old_finished_jobs_and_unused_uploads(tmp_path, job_store_url):
    settings = Settings.from_env(deployment_env(make_data_dir(tmp_path / "data"), "sqlite",
                                                AVATAR_JOB_STORE_URL=job_store_url))
    api = JobAPI(settings)
    old_ok, old_failed = _finished(api, "SUCCESS", LONG_AGO), _finished(api, "FAILURE", LONG_AGO)
    recent, queued = _finished(api, "SUCCESS"), api.submit("selftest", {})
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    unused, needed, fresh = (settings.uploads_dir / f"{c * 64}.png" for c in "012")
    for path in (unused, needed, fresh):
        path.write_bytes(b"\x89PNG" + b"\0" * 500)
    for path in (unused, needed):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    photo = "20240101-000000-needsupload1"  # an unfinished job that still needs its upload
    api.store.create(photo, "photo", {"image": needed.name}, {}, "cpu", LONG_AGO)

    assert api.prune(3600, dry_run=True) == {"jobs": 2, "uploads": 1, "bytes": 2504, "dry_run": True}
    assert settings.job_dir(old_ok).is_dir() and unused.exists()  # a dry run removes nothing
    env = dict(os.environ, **settings.to_env())
    out = subprocess.run([sys.executable, "-m", "avatar_studio.cli", "jobs", "prune", "--older-than", "1h"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("removed 2 finished job(s) and 1 upload(s) older than 1h, 0 temp entries: 0.0 MB"), \
        out.stdout
    assert not settings.job_dir(old_ok).exists() and not settings.job_dir(old_failed).exists()
    assert sorted(s.job_id for s in api.list()) == sorted([photo, queued, recent])
    assert settings.job_dir(recent).is_dir() and needed.exists() and fresh.exists() and not unused.exists()
    assert api.store.runs(old_ok) == []

    bad = subprocess.run([sys.executable, "-m", "avatar_studio.cli", "jobs", "prune", "--older-than", "soon"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--older-than must be an age like 30d" in bad.stderr, bad.stderr
