"""Queue benchmark: latency and throughput of the job queue with a real worker process.

    from workers.bench import bench_queue
    bench_queue("sqlite")   # or "redis";  python -m workers.bench sqlite redis

Runs on a throwaway data folder (its cache/ is a symlink to the configured data folder's cache, so
the body model is not built again) and, for Redis, on a per-run queue prefix, so it never touches
real jobs. Measures:
  worker_start_s         process start until it consumes (mostly importing torch)
  first_job_s            the first sliders job of a fresh worker (loads the body model)
  noop_*                 an empty `selftest` job: pure queue overhead
  sliders_*              a sliders job (default preview preset, no motion)
  *_submit_to_start_ms   submit() returned -> the worker started the job (job store `runs.started`)
  *_end_to_end_ms        submit() called -> status() says SUCCESS (polled every 5 ms)
  throughput             `jobs` sliders jobs submitted at once -> all SUCCESS
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from workers.settings import Settings, get_settings


def redis_problem(url: str, timeout: float = 1.0) -> str | None:
    """None when a Redis answers PING at `url`, else why not."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"no Redis answers at {url} ({type(exc).__name__})"


def _redis_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    for name in ("AVATAR_BROKER_URL", "AVATAR_TEST_REDIS_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("redis://", "rediss://")):
            return url
    return "redis://127.0.0.1:6379/0"


def _ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "median": round(statistics.median(values) * 1000, 1),
        "p90": round(values[min(len(values) - 1, int(0.9 * len(values)))] * 1000, 1),
        "min": round(values[0] * 1000, 1),
        "max": round(values[-1] * 1000, 1),
        "n": len(values),
    }


def _timed_job(api, kind: str, inputs: dict, poll: float = 0.005) -> tuple[float, float]:
    """(submit -> started, submit -> SUCCESS observed) in seconds."""
    t0 = time.time()
    job_id = api.submit(kind, inputs)
    while True:
        status = api.status(job_id)
        if status.done:
            end = time.time()
            break
        time.sleep(poll)
    if status.state != "SUCCESS":
        raise RuntimeError(f"bench job {job_id} ended {status.state}: {status.error}")
    started = api.runs(job_id)[-1]["started"]
    return started - t0, end - t0


def bench_queue(settings_kind: str = "sqlite", jobs: int = 20, repeats: int = 10, *,
                redis_url: str | None = None, keep: bool = False) -> dict:
    """Latency and throughput of the queue on the embedded SQLite broker or Redis (see module doc)."""
    from workers.api import JobAPI
    from workers.embedded import start_worker_process, stop_worker_process, wait_worker_ready

    if settings_kind not in ("sqlite", "redis"):
        raise ValueError(f"settings_kind must be 'sqlite' or 'redis', got {settings_kind!r}")
    base = get_settings()
    env = {"AVATAR_DATA_DIR": "", "AVATAR_SOFT_TIME_LIMIT": "120", "AVATAR_TIME_LIMIT": "150",
           "AVATAR_VISIBILITY_TIMEOUT": "600"}
    result: dict = {"broker": settings_kind, "cpus": os.cpu_count(), "jobs": jobs, "repeats": repeats}
    if settings_kind == "redis":
        url = _redis_url(redis_url)
        problem = redis_problem(url)
        if problem:
            return {**result, "skipped": problem}
        env["AVATAR_BROKER_URL"] = url
        env["AVATAR_QUEUE_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}."
    root = Path(tempfile.mkdtemp(prefix="avatar-queue-bench-"))
    data = root / "data"
    data.mkdir()
    cache = base.data_dir / "cache"
    if cache.is_dir():
        (data / "cache").symlink_to(cache.resolve(), target_is_directory=True)
    env["AVATAR_DATA_DIR"] = str(data)
    settings = Settings.from_env(env)
    result["settings"] = settings.describe()
    api = JobAPI(settings)
    proc = None
    try:
        t0 = time.monotonic()
        proc = start_worker_process(settings, concurrency=1, exit_with_parent=True)
        wait_worker_ready(proc, settings, timeout=600)
        result["worker_start_s"] = round(time.monotonic() - t0, 2)

        t0 = time.monotonic()
        _timed_job(api, "sliders", {"sliders": {}})
        result["first_job_s"] = round(time.monotonic() - t0, 2)

        noop = [_timed_job(api, "selftest", {}) for _ in range(repeats)]
        result["noop_submit_to_start_ms"] = _ms([a for a, _ in noop])
        result["noop_end_to_end_ms"] = _ms([b for _, b in noop])

        sliders = [_timed_job(api, "sliders", {"sliders": {"height": 0.3 + 0.04 * i}})
                   for i in range(max(3, repeats // 2))]
        result["sliders_submit_to_start_ms"] = _ms([a for a, _ in sliders])
        result["sliders_end_to_end_ms"] = _ms([b for _, b in sliders])

        t0 = time.monotonic()
        ids = [api.submit("sliders", {"sliders": {"height": (i % 10) / 10}}) for i in range(jobs)]
        submitted = time.monotonic() - t0
        states = [api.wait(j, timeout=120 + 30 * jobs, poll=0.02).state for j in ids]
        total = time.monotonic() - t0
        result["throughput"] = {
            "jobs": jobs, "worker_concurrency": 1, "submit_all_s": round(submitted, 3),
            "all_done_s": round(total, 2), "jobs_per_s": round(jobs / total, 2),
            "succeeded": states.count("SUCCESS"),
            "runs": sum(len(api.runs(j)) for j in ids),
        }
    finally:
        if proc is not None:
            stop_worker_process(proc, timeout=30)
        if settings_kind == "redis":
            _cleanup_redis(settings, [s.job_id for s in api.list(10_000)])
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _cleanup_redis(settings: Settings, job_ids: list[str]) -> None:
    try:
        import redis

        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=1, socket_timeout=5)
        keys = list(client.scan_iter(match=f"*{settings.queue_prefix}*", count=500))
        keys += [f"celery-task-meta-{j}" for j in job_ids]
        if keys:
            client.delete(*keys)
        client.close()
    except Exception:  # noqa: BLE001  (best effort)
        pass


def main(argv: list[str] | None = None) -> int:
    kinds = (argv if argv is not None else sys.argv[1:]) or ["sqlite", "redis"]
    print(json.dumps([bench_queue(k) for k in kinds], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
