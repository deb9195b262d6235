"""The job queue with real parts: real worker processes on both brokers (the embedded SQLite
transport and a real Redis) and both job stores (SQLite, a real PostgreSQL server), real sliders
jobs, the Khronos validator on the GLBs.

Redis: $AVATAR_TEST_REDIS_URL, else redis://127.0.0.1:6379/13 (queues get a per-session prefix, so
test sessions sharing one Redis do not see each other's jobs); the Redis cases skip, saying why,
only when no Redis answers. PostgreSQL: a fresh database on $AVATAR_TEST_POSTGRES_URL's server (else
postgres@127.0.0.1:5432), dropped afterwards; without a server those cases skip, or fail in CI. Fault tests (worker SIGKILL, Redis restart, 20 concurrent jobs) are in
tests/test_workers_faults.py (slow tier).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from avatar_studio.errors import InvalidJobInputError, UnknownJobKindError
from avatarclip_core.errors import UserInputError
from gltf_validation import validate_glb
from workers.api import JobAPI, JobStatus
from workers.embedded import start_worker_process, stop_worker_processes, wait_worker_ready
from workers.errors import JobFileError, QueueUnavailableError, UnknownJobError
from workers.settings import Settings, SettingsError, redact_url
from workers.store import safe_job_file
from workers_helpers import (cleanup_redis, deployment_env, free_port, fresh_postgres_database, in_ci,
                             make_data_dir, postgres_answers, postgres_url_for_tests, redis_answers,
                             redis_url_for_tests, wait_for, watch)

TOKEN = f"tok-{uuid.uuid4().hex}"
# sqlite: everything embedded; redis: a Redis broker; postgresql: the embedded broker and a PostgreSQL job store
DEPLOYMENTS = ("sqlite", "redis", "postgresql")


@dataclass
class Deployment:
    name: str
    settings: Settings
    api: JobAPI
    proc: object
    redis_url: str | None = None


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    """One worker process per deployment, started together (startup is mostly importing torch)."""
    deps: dict[str, Deployment | str] = {}
    databases = contextlib.ExitStack()
    for name in DEPLOYMENTS:
        url, extra = None, {"AVATAR_API_TOKEN": TOKEN}
        if name == "redis":
            url = redis_url_for_tests()
            why = redis_answers(url)
            if why:
                deps[name] = why
                continue
        if name == "postgresql":
            why = postgres_answers(postgres_url_for_tests())
            if why:
                deps[name] = why
                continue
            extra["AVATAR_JOB_STORE_URL"] = databases.enter_context(fresh_postgres_database(postgres_url_for_tests()))
        data = make_data_dir(tmp_path_factory.mktemp(f"data-{name}"))
        settings = Settings.from_env(deployment_env(data, url or "sqlite", **extra))
        deps[name] = Deployment(name, settings, JobAPI(settings), start_worker_process(settings), url)
    try:
        for dep in deps.values():
            if isinstance(dep, Deployment):
                wait_worker_ready(dep.proc, dep.settings, timeout=240)
        yield deps
    finally:
        running = [dep for dep in deps.values() if isinstance(dep, Deployment)]
        stop_worker_processes([dep.proc for dep in running], timeout=30)
        for dep in running:
            if dep.redis_url:
                    cleanup_redis(dep.redis_url, dep.settings.queue_prefix,
                                  [s.job_id for s in dep.api.list(1000)])
        databases.close()


@pytest.fixture(params=DEPLOYMENTS)
def dep(request, deployments) -> Deployment:
    found = deployments[request.param]
    if isinstance(found, str):
        if request.param == "postgresql" and in_ci():  # CI starts a server: its absence is a failure
            pytest.fail(found)
        pytest.skip(found)
    return found


@pytest.fixture
def offline(tmp_path) -> JobAPI:
    """A JobAPI on the embedded broker with no worker (submit-side and store behaviour)."""
    return JobAPI(Settings.from_env(deployment_env(make_data_dir(tmp_path / "data"), "sqlite")))


# -- settings ----------------------------------------------------------------------------------
def test_settings_defaults_embedded_and_redis(tmp_path):
    s = Settings.from_env({"AVATAR_DATA_DIR": str(tmp_path)})
    assert s.broker_url == f"sqla+sqlite:///{tmp_path.resolve()}/queue/broker.sqlite"
    assert s.result_backend == f"db+sqlite:///{tmp_path.resolve()}/queue/results.sqlite"
    assert s.broker_kind == "sqlite" and s.queues == ("cpu", "gpu") and s.upload_max_bytes == 10 * 1024 * 1024
    assert s.api_token is None and s.visibility_timeout > s.time_limit > s.soft_time_limit
    r = Settings.from_env({"AVATAR_DATA_DIR": str(tmp_path), "AVATAR_BROKER_URL": "redis://:pw@host:6379/2",
                           "AVATAR_API_TOKEN": "sekrit", "AVATAR_UPLOAD_MAX_BYTES": "123"})
    assert r.broker_kind == "redis" and r.result_backend == "redis://:pw@host:6379/2"
    assert r.upload_max_bytes == 123 and r.api_token == "sekrit"
    assert "sekrit" not in repr(r) and "pw" not in repr(r) and "***" in repr(r)
    assert "AVATAR_API_TOKEN" not in r.to_env() and Settings.from_env(r.to_env()) == r
    assert redact_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"


@pytest.mark.parametrize("env, words", [
    ({"AVATAR_TIME_LIMIT": "ten"}, "AVATAR_TIME_LIMIT must be a number"),
    ({"AVATAR_VISIBILITY_TIMEOUT": "100", "AVATAR_TIME_LIMIT": "200", "AVATAR_SOFT_TIME_LIMIT": "10"},
     "must exceed AVATAR_TIME_LIMIT"),
    ({"AVATAR_SOFT_TIME_LIMIT": "50", "AVATAR_TIME_LIMIT": "40"}, "must be below AVATAR_TIME_LIMIT"),
    ({"AVATAR_QUEUES": "cpu,tpu"}, "unknown queue"),
    ({"AVATAR_UPLOAD_MAX_BYTES": "-1"}, "AVATAR_UPLOAD_MAX_BYTES must be >= 1"),
])
def test_settings_errors_name_the_variable(tmp_path, env, words):
    with pytest.raises(SettingsError, match=words):
        Settings.from_env({"AVATAR_DATA_DIR": str(tmp_path), **env})


def test_package_exports_and_worker_cli_errors(tmp_path):
    import subprocess
    import sys

    import workers

    assert workers.JobAPI is JobAPI and callable(workers.start_worker_process) and callable(workers.bench_queue)
    proc = subprocess.run([sys.executable, "-m", "workers.worker", "--queues", "cpu,tpu"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "AVATAR_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "error: unknown queue(s) tpu" in proc.stderr


# -- submit-side validation (no worker needed) -------------------------------------------------
@pytest.mark.parametrize("kind, inputs, config, error, words", [
    ("banana", {}, None, UnknownJobKindError, "unknown job kind 'banana' \\(available: create, face, photo, sliders, text"),
    ("photo", {"photo": "../../etc/passwd"}, None, InvalidJobInputError, "must name a stored upload"),
    ("photo", {"photo": "0" * 32 + ".png", "method": "magic"}, None, InvalidJobInputError, "unknown method 'magic'"),
    ("photo", {"photo": "0" * 32 + ".gif"}, None, InvalidJobInputError, "must name a stored upload"),
    ("sliders", [], None, InvalidJobInputError, "inputs must be a mapping"),
    ("sliders", {"slider": {}}, None, InvalidJobInputError, "unknown sliders input field 'slider'"),
    ("sliders", {"sliders": {"height": "tall"}}, None, InvalidJobInputError, "slider 'height' must be a number"),
    ("sliders", {"sliders": {"height": True}}, None, InvalidJobInputError, "slider 'height' must be a number"),
    ("sliders", {"sliders": {"height": float("nan")}}, None, InvalidJobInputError, "finite"),
    ("sliders", {"motion": "dance " * 70}, None, InvalidJobInputError, "the motion has 419 characters"),
    ("sliders", {}, {"preset": "ultra"}, InvalidJobInputError, "unknown preset 'ultra' \\(available:"),
    ("sliders", {}, {"overrides": {"motion.fps": {"a": 1}}}, InvalidJobInputError, "config override 'motion.fps'"),
    ("sliders", {}, {"overrides": {"../x": 1}}, InvalidJobInputError, "dotted name"),
    ("sliders", {}, {"seed": 1}, InvalidJobInputError, "unknown sliders config field 'seed'"),
    # the whole config resolves at submit (preset, then overrides), as the worker would resolve it
    ("sliders", {}, {"overrides": {"motion.speeed": 2}}, InvalidJobInputError, "unknown config key 'motion.speeed'"),
    ("sliders", {}, {"overrides": {"body.model": "smplx"}}, InvalidJobInputError, "body.model must be one of anny, smpl"),
    ("sliders", {}, {"overrides": {"body.device": "gpu"}}, InvalidJobInputError, "body.device must be auto, cpu, cuda"),
    ("text", {"shape": "a man"}, {"overrides": {"neus.iterations": "many"}}, InvalidJobInputError,
     "neus.iterations needs an integer"),
    # ranges declared in the config types: a request cannot ask for a 100000^3 grid or a NaN rate
    ("text", {"shape": "a man"}, {"overrides": {"neus.mc_resolution": 100000}}, InvalidJobInputError,
     "neus.mc_resolution must be >= 8 and <= 512"),
    ("text", {"shape": "a man"}, {"overrides": {"neus.lr": "nan"}}, InvalidJobInputError, "neus.lr needs a finite number"),
    ("photo", {"photo": "0" * 32 + ".png"}, {"overrides": {"engine_kind": "unreal"}}, InvalidJobInputError,
     "engine_kind must be one of anny, external"),
    ("sliders", {"motion": "walk"}, {"overrides": {"motion.name": "wave"}}, InvalidJobInputError, "disagree"),
    ("sliders", {"sliders": {f"s{i}": 0.5 for i in range(1001)}}, None, InvalidJobInputError, "too many sliders"),
])
def test_submit_rejects_bad_input_at_the_boundary(offline, kind, inputs, config, error, words):
    with pytest.raises(error, match=words) as info:
        offline.submit(kind, inputs, config)
    assert isinstance(info.value, UserInputError)
    assert offline.list() == []  # nothing recorded, nothing queued


def test_unknown_job_ids_are_user_errors(offline):
    for bad in ("20260101-000000-000000000000", "../../etc", "", None):
        with pytest.raises(UnknownJobError):
            offline.status(bad)
    with pytest.raises(UserInputError):
        offline.cancel("nope")


def test_builtin_motion_names_have_one_home_that_the_pipeline_builds():
    from avatar_studio.kinds import public_kinds
    from avatarclip_core.config import limits
    from avatarclip_core.motion.procedural import BUILTIN_MOTIONS
    from web.jobs import MOTIONS

    assert tuple(BUILTIN_MOTIONS) == limits.BUILTIN_MOTIONS and MOTIONS is limits.BUILTIN_MOTIONS
    assert "sliders" in public_kinds() and "selftest" not in public_kinds()  # internal kinds stay hidden


def test_unreachable_broker_fails_fast_and_records_the_job(tmp_path):
    port = free_port()  # nothing listens there
    settings = Settings.from_env(deployment_env(make_data_dir(tmp_path / "d"), f"redis://:hunter2@127.0.0.1:{port}/0"))
    api = JobAPI(settings)
    started = time.monotonic()
    with pytest.raises(QueueUnavailableError) as info:
        api.submit("selftest", {})
    assert time.monotonic() - started < 30
    assert "hunter2" not in str(info.value) and "did not answer" in str(info.value)
    status = api.status(info.value.job_id)
    assert status.state == "FAILURE" and "could not queue the job" in status.error


def test_requeue_lost_sends_again_only_jobs_whose_message_is_gone(offline):
    import sqlite3

    api = offline
    job_id = api.submit("selftest", {})  # no worker: the message waits in the broker
    assert api.requeue_lost(min_age=0, settle=0.1) == []
    broker = api.settings.broker_url.split(":///", 1)[1]
    with sqlite3.connect(broker) as con:
        con.execute("DELETE FROM kombu_message")  # the broker loses its data
    assert api.requeue_lost(min_age=3600, settle=0.1) == []  # too young to be called lost
    assert api.requeue_lost(min_age=0, settle=0.1) == [job_id]
    assert api.requeue_lost(min_age=0, settle=0.1) == []  # it is back
    api.cancel(job_id)
    with sqlite3.connect(broker) as con:
        con.execute("DELETE FROM kombu_message")
    assert api.requeue_lost(min_age=0, settle=0.1) == []  # cancelled jobs stay cancelled


# -- downloads ---------------------------------------------------------------------------------
def test_safe_job_file_rejects_traversal_and_symlinks(offline, tmp_path):
    settings = offline.settings
    folder = settings.job_dir("20260101-000000-abcdefabcdef")
    (folder / "sub").mkdir(parents=True)
    (folder / "avatar.glb").write_bytes(b"glTF")
    (folder / "sub" / "a.txt").write_text("a")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (folder / "escape.txt").symlink_to(secret)
    (folder / "escape_dir").symlink_to(tmp_path, target_is_directory=True)
    (folder / "inner_link.glb").symlink_to(folder / "avatar.glb")
    job = folder.name

    assert safe_job_file(job, "avatar.glb", settings) == (folder / "avatar.glb").resolve()
    assert safe_job_file(job, "sub/a.txt", settings) == (folder / "sub" / "a.txt").resolve()
    for name in ("../../etc/passwd", "/etc/passwd", "..", ".", "sub/../../x", "sub/../avatar.glb", "a\\b",
                 "escape.txt", "escape_dir/secret.txt", "inner_link.glb", "sub", "missing.glb", "", "a\x00b"):
        with pytest.raises(JobFileError):
            safe_job_file(job, name, settings)
    for bad_job in ("../jobs", "..", "/etc", "a/b"):
        with pytest.raises(UserInputError):
            safe_job_file(bad_job, "avatar.glb", settings)
    from workers.store import list_job_files

    assert sorted(list_job_files(folder)) == ["avatar.glb", "sub/a.txt"]  # symlinks never listed


# -- with real workers, on both brokers ----------------------------------------------------------
def test_sliders_job_reports_progress_and_succeeds_with_a_valid_glb(dep):
    api = dep.api
    job_id = api.submit("sliders", {"sliders": {"height": 0.9, "weight": 0.3}, "motion": "walk"},
                        {"preset": "preview", "overrides": {"motion.cycles": 1}})
    assert api.status(job_id).state in ("PENDING", "STARTED", "PROGRESS")
    final, seen = watch(api, job_id, timeout=120)
    assert final.state == "SUCCESS", (final, seen)
    progress = [p for s, _, p in seen if s == "PROGRESS"]
    assert progress and progress == sorted(progress) and all(0.0 <= p <= 1.0 for p in progress), seen
    assert final.progress == 1.0 and final.error is None and final.kind == "sliders"
    expected = {"avatar.glb", "params.json", "preview.png", "provenance.json", "motion.bvh", "motion.npz"}
    assert expected <= set(final.files), final.files
    folder = dep.settings.job_dir(job_id)
    assert all(Path(p).is_file() and Path(p).parent == folder for p in final.files.values())
    assert {k: Path(v) for k, v in final.files.items()} == api.result_files(job_id)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    report = validate_glb(final.files["avatar.glb"])
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    params = json.loads(Path(final.files["params.json"]).read_text())
    assert params["sliders"]["height"] == pytest.approx(0.9) and params["motion"]["name"] == "walk"
    assert [r["outcome"] for r in api.runs(job_id)] == ["SUCCESS"]
    as_dict = final.to_dict()
    assert as_dict["state"] == "SUCCESS" and json.dumps(as_dict)
    assert isinstance(api.status(job_id), JobStatus)


def test_bad_slider_fails_with_its_message_and_is_not_retried(dep):
    api = dep.api
    job_id = api.submit("sliders", {"sliders": {"hieght": 0.9}})
    final = api.wait(job_id, timeout=60, poll=0.02)
    assert final.state == "FAILURE"
    assert final.error.startswith("unknown slider 'hieght'") and "height" in final.error, final.error
    out_of_range = api.wait(api.submit("sliders", {"sliders": {"height": 7}}), timeout=60, poll=0.02)
    assert out_of_range.state == "FAILURE" and "out of range" in out_of_range.error
    time.sleep(0.5)  # a retry would have been scheduled by now
    for job in (job_id, out_of_range.job_id):
        assert [r["outcome"] for r in api.runs(job)] == ["FAILURE"]
        assert api.status(job).state == "FAILURE" and api.result_files(job) == {}
        assert not dep.settings.job_dir(job).exists()


def test_cancel_a_queued_job_it_never_runs(dep):
    api = dep.api
    blocker = api.submit("selftest", {"sleep": 1.5})
    wait_for(lambda: api.status(blocker).state == "PROGRESS", 60, what="blocker running")
    victim = api.submit("sliders", {"sliders": {"height": 0.1}})
    assert api.status(victim).state == "PENDING"
    assert api.cancel(victim) is True
    assert api.status(victim).state == "REVOKED"
    after = api.submit("selftest", {})  # FIFO: its success means the victim's message was handled
    assert api.wait(blocker, 60, 0.02).state == "SUCCESS"
    assert api.wait(after, 60, 0.02).state == "SUCCESS"
    assert api.status(victim).state == "REVOKED"
    assert api.runs(victim) == [] and not dep.settings.job_dir(victim).exists()
    assert api.cancel(blocker) is False  # finished jobs cannot be cancelled


def test_cancel_a_running_job_stops_it(dep):
    api = dep.api
    job_id = api.submit("selftest", {"sleep": 20})
    wait_for(lambda: api.status(job_id).state == "PROGRESS", 60, what="job running")
    started = time.monotonic()
    assert api.cancel(job_id) is True
    assert api.status(job_id).state == "REVOKED"
    wait_for(lambda: [r["outcome"] for r in api.runs(job_id)] == ["REVOKED"], 10, what="run stopped")
    assert time.monotonic() - started < 10
    assert api.wait(api.submit("selftest", {}), 60, 0.02).state == "SUCCESS"  # the worker goes on
    assert not dep.settings.job_dir(job_id).exists()


def test_transient_errors_are_retried_with_backoff_and_bounded(dep):
    api = dep.api
    flaky = api.submit("selftest", {"fail": "transient", "fail_attempts": 2})
    final = api.wait(flaky, 60, 0.02)
    assert final.state == "SUCCESS"
    runs = api.runs(flaky)
    assert [r["outcome"] for r in runs] == ["RETRY", "RETRY", "SUCCESS"]
    assert runs[1]["started"] - runs[0]["finished"] >= 0.15  # backoff (0.2 s, then 0.4 s, jittered)
    broken = api.wait(api.submit("selftest", {"fail": "transient", "fail_attempts": 9}), 60, 0.02)
    assert broken.state == "FAILURE" and broken.error.startswith("failed after 3 attempts")  # max_retries=2
    bug = api.wait(api.submit("selftest", {"fail": "bug"}), 60, 0.02)
    assert bug.state == "FAILURE" and "internal error" in bug.error
    assert [r["outcome"] for r in api.runs(bug.job_id)] == ["FAILURE"]  # bugs are not retried


def test_a_job_process_that_dies_is_run_again_at_once(dep):
    api = dep.api
    job_id = api.submit("selftest", {"fail": "crash", "fail_attempts": 1})
    final = api.wait(job_id, 90, 0.05)
    assert final.state == "SUCCESS", final
    runs = api.runs(job_id)
    assert [r["outcome"] for r in runs] == ["lost", "SUCCESS"]  # died without a word: closed by the next run


def test_list_is_newest_first(dep):
    api = dep.api
    ids = [api.submit("selftest", {}) for _ in range(3)]
    listed = [s.job_id for s in api.list(limit=3)]
    assert listed == ids[::-1]
    for job in ids:
        api.wait(job, 60, 0.02)


def test_no_secrets_reach_the_worker_its_log_or_job_folders(dep):
    api = dep.api
    job_id = api.submit("sliders", {"sliders": {"height": 0.5}})
    assert api.wait(job_id, 120, 0.05).state == "SUCCESS"
    environ = Path(f"/proc/{dep.proc.pid}/environ").read_bytes()
    assert TOKEN.encode() not in environ and b"AVATAR_DATA_DIR" in environ
    assert TOKEN not in dep.settings.log_file.read_text(errors="replace")
    for path in dep.settings.jobs_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
