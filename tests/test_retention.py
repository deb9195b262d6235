"""Retention (workers/retention.py, web/retention.py): configured ages for finished jobs, uploads and
temp leftovers, one sweep that enforces them (avatar serve's rounds, `avatar jobs prune`), the data
folder's disk usage (`avatar jobs usage`, /healthz), Gradio's temp files of unused and refused uploads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from workers.api import JobAPI
from workers.retention import disk_usage, sweep, sweep_lock
from workers.settings import Settings, SettingsError
from workers_helpers import deployment_env, make_data_dir

ROOT = Path(__file__).resolve().parents[1]
LONG_AGO = "2020-01-01T00:00:00.000+00:00"
HOUR = 3600.0


def _settings(tmp_path, job_store_url=None, **env) -> Settings:
    extra = {"AVATAR_JOB_STORE_URL": job_store_url} if job_store_url else {}
    return Settings.from_env(deployment_env(make_data_dir(tmp_path / "data"), "sqlite", **extra, **env))


def _finished_job(api: JobAPI, when: str | None = None, size: int = 1000) -> str:
    job = api.submit("selftest", {})
    attempt = api.store.begin_run(job, "w/1", node="w")
    api.store.end_run(job, attempt, "SUCCESS", "SUCCESS")
    if when:
        jobs = api.store.t.jobs
        with api.store.engine.begin() as con:
            con.execute(sa.update(jobs).where(jobs.c.job_id == job).values(finished=when))
    api.settings.job_dir(job).mkdir(parents=True)
    (api.settings.job_dir(job) / "result.json").write_bytes(b"x" * size)
    return job


def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    for p in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(p, (then, then), follow_symlinks=False)
    return path


def test_retention_ages_come_from_the_environment_with_units_and_specific_errors(tmp_path):
    s = _settings(tmp_path, AVATAR_RETENTION_JOBS="12h", AVATAR_RETENTION_UPLOADS="0",
                  AVATAR_RETENTION_TEMP="90m", AVATAR_RETENTION_INTERVAL="600")
    assert (s.retention_jobs, s.retention_uploads, s.retention_temp, s.retention_interval) == (43200, 0, 5400, 600)
    assert Settings.from_env(s.to_env()).retention_temp == 5400  # what a worker process gets
    with pytest.raises(SettingsError, match=r"^AVATAR_RETENTION_JOBS must be an age like 30d, 12h, 90m or 3600 "
                                            r"\(seconds\), got 'soon'$"):
        _settings(tmp_path, AVATAR_RETENTION_JOBS="soon")
    with pytest.raises(SettingsError, match="AVATAR_RETENTION_TEMP .* must exceed AVATAR_TIME_LIMIT"):
        _settings(tmp_path, AVATAR_RETENTION_TEMP="20s")  # under the 25 s hard limit: a running job's folder could go


def test_a_sweep_removes_what_is_older_than_its_age_and_nothing_else(tmp_path, job_store_url):
    s = _settings(tmp_path, job_store_url, AVATAR_RETENTION_JOBS="1h", AVATAR_RETENTION_UPLOADS="2h",
                  AVATAR_RETENTION_TEMP="2h")
    api = JobAPI(s)
    old, recent, queued = _finished_job(api, LONG_AGO, 3000), _finished_job(api, size=500), api.submit("selftest", {})
    s.uploads_dir.mkdir(parents=True, exist_ok=True)
    unused_old, unused_young, named = (s.uploads_dir / f"{c * 32}.png" for c in "abc")
    for path, age in ((unused_old, 3 * HOUR), (unused_young, 1.5 * HOUR), (named, 3 * HOUR)):
        path.write_bytes(b"\x89PNG" + bytes(200))
        _aged(path, age)
    api.store.create("20240101-000000-needsupload1", "photo", {"photo": named.name}, {}, "cpu", LONG_AGO)
    dead = s.jobs_dir / f".{queued}.tmp-k1ll3d"  # a job process killed while writing its folder
    dead.mkdir()
    (dead / "avatar.glb").write_bytes(bytes(700))
    _aged(dead, 3 * HOUR)
    writing = s.jobs_dir / f".{recent}.tmp-w0rk1n"  # an old folder with a file written just now
    writing.mkdir()
    _aged(writing, 3 * HOUR)
    (writing / "avatar.glb").write_bytes(bytes(10))
    partial = s.uploads_dir / ".upload-abc123"  # store_upload killed mid-write
    partial.write_bytes(bytes(50))
    _aged(partial, 3 * HOUR)

    before = disk_usage(s)["parts"]
    assert before["jobs"] == {"count": 2, "bytes": 3500} and before["uploads"] == {"count": 3, "bytes": 612}
    assert before["temp"] == {"count": 3, "bytes": 760}

    dry = sweep(s, dry_run=True)
    assert (dry.jobs, dry.uploads, dry.temp, dry.bytes) == (1, 1, 2, 3000 + 204 + 700 + 50)
    after_dry = disk_usage(s)["parts"]
    assert all(after_dry[k] == before[k] for k in ("jobs", "uploads", "temp"))  # a dry run removes nothing

    done = api.sweep()
    assert (done.jobs, done.uploads, done.temp, done.bytes) == (1, 1, 2, 3954)
    assert sorted(done.removed_temp) == sorted([dead.name, partial.name])
    assert not s.job_dir(old).exists() and api.store.get(old) is None
    assert s.job_dir(recent).is_dir() and api.store.get(queued) is not None and writing.is_dir()
    assert not unused_old.exists() and unused_young.exists() and named.exists()
    after = disk_usage(s)["parts"]
    assert after["jobs"] == {"count": 1, "bytes": 500} and after["temp"] == {"count": 1, "bytes": 10}


def test_zero_keeps_jobs_and_uploads_for_ever_and_one_sweep_at_a_time(tmp_path):
    s = _settings(tmp_path, AVATAR_RETENTION_JOBS="0", AVATAR_RETENTION_UPLOADS="0")
    api = JobAPI(s)
    old = _finished_job(api, LONG_AGO)
    assert sweep(s).jobs == 0 and s.job_dir(old).is_dir()
    with sweep_lock(s) as mine:
        assert mine
        busy = sweep(s, jobs_older_than=1)
        assert busy.skipped == "another process is sweeping this data folder" and busy.jobs == 0
    assert sweep(s, jobs_older_than=1).jobs == 1 and not s.job_dir(old).exists()


def test_disk_usage_counts_a_symlinked_cache_as_its_link(tmp_path):
    s = _settings(tmp_path)
    assert (s.data_dir / "cache").is_symlink()
    usage = disk_usage(s)
    assert usage["parts"]["cache"]["bytes"] == os.lstat(s.data_dir / "cache").st_size  # the shared models
    assert usage["total_bytes"] == sum(p["bytes"] for p in usage["parts"].values())
    assert 0 < usage["free_bytes"] <= usage["disk_bytes"]


def test_avatar_jobs_prune_without_an_age_uses_the_configured_retention_and_usage_prints(tmp_path):
    s = _settings(tmp_path, AVATAR_RETENTION_JOBS="1h")
    api = JobAPI(s)
    old, recent = _finished_job(api, LONG_AGO, 2_000_000), _finished_job(api)
    env = dict(os.environ, **s.to_env())

    def avatar(*args):
        return subprocess.run([sys.executable, "-m", "avatar_studio.cli", "jobs", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    usage = avatar("usage")
    assert usage.returncode == 0, usage.stderr
    jobs_line = next(line for line in usage.stdout.splitlines() if line.startswith("jobs"))
    assert jobs_line.split() == ["jobs", "2.0", "MB", "2", "entries"]
    out = avatar("prune")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("removed 1 finished job(s) and 0 upload(s) older than jobs 1h, uploads 30d, "
                                  "0 temp entries: 2.0 MB")
    assert not s.job_dir(old).exists() and s.job_dir(recent).is_dir()
    bad = subprocess.run([sys.executable, "-m", "avatar_studio.cli", "jobs", "usage"], cwd=ROOT,
                         env={**env, "AVATAR_RETENTION_TEMP": "10s"}, capture_output=True, text=True, timeout=120)
    last = bad.stderr.strip().splitlines()[-1]  # after the command's "opening the job store" line
    assert bad.returncode == 2 and last.startswith("error: AVATAR_RETENTION_TEMP (10 s) must exceed"), bad.stderr
    assert "Traceback" not in bad.stderr


# ---- the web process: Gradio's temp files, /healthz ------------------------------------------------

def test_serve_rounds_sweep_gradio_temp_files_and_healthz_reports_disk_usage(tmp_path):
    from web.retention import own_gradio_temp_dir
    from web.testing import studio

    with studio(tmp_path / "data", worker=False, own_gradio_temp=True) as s:
        with urllib.request.urlopen(f"{s.url}/healthz", timeout=30) as resp:
            body = json.loads(resp.read())
        assert body["disk_used_mb"] is None and body["disk_free_mb"] > 0  # no round yet
        blocks = s.retention.blocks
        temp = own_gradio_temp_dir(s.settings.data_dir)
        assert Path(blocks.GRADIO_CACHE).resolve() == temp.resolve()
        # an upload Gradio received that no job used (the page's upload, then nothing submitted)
        boundary = "b0undary"
        payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"me.png\"\r\n"
                   f"Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG" + bytes(100) + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{s.url}/gradio_api/upload", data=payload, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            (received,) = json.loads(resp.read())
        assert Path(received).is_file() and Path(received).resolve().is_relative_to(temp.resolve())
        leftover = temp / ("f" * 40)  # left by an earlier server process
        leftover.mkdir(parents=True)
        (leftover / "cached.glb").write_bytes(bytes(5000))
        _aged(leftover, 2 * 86400)

        first = s.retention.sweep()
        assert first["gradio"]["received"] == 0 and first["gradio"]["temp"] == 1  # the upload is fresh
        assert not leftover.exists() and Path(received).is_file()
        later = s.retention.sweep(now=time.time() + 3600)  # past UNUSED_UPLOAD_TTL_S
        assert later["gradio"]["received"] == 1 and not Path(received).exists()
        assert str(received) not in blocks.upload_file_set

        with urllib.request.urlopen(f"{s.url}/healthz", timeout=30) as resp:
            body = json.loads(resp.read())
        used = body["disk_used_mb"]
        assert set(used) == {"jobs", "uploads", "temp", "queue", "logs", "web_temp", "cache", "total"}
        assert used["total"] == pytest.approx(later["usage"]["total_bytes"] / 1e6, abs=0.1)
        assert later["usage"]["parts"]["queue"]["bytes"] > 0 and 0 <= body["disk_used_age_s"] < 60
        assert str(s.settings.data_dir) not in json.dumps(body)  # figures only, no paths
