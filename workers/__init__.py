"""The job queue: Celery workers that run avatar pipelines, and the job API that web, CLI and tests use.

Public API
----------
    from workers.api import JobAPI, JobStatus, get_job_api
    api = get_job_api()                                   # settings from AVATAR_* variables
    job_id = api.submit("sliders", {"sliders": {"height": 0.9}, "motion": "walk"},
                        {"preset": "preview", "overrides": {"motion.fps": 24}})
    api.status(job_id)        # JobStatus(job_id, kind, state, stage, progress, message, files, created, error)
    api.wait(job_id)          # until SUCCESS / FAILURE / REVOKED (TimeoutError after `timeout`)
    api.result_files(job_id)  # {name: Path} inside <data>/jobs/<job_id>/
    api.cancel(job_id)        # True: it will not run (further); False: it had finished
    api.list(limit=50)        # newest first
    api.file(job_id, name)    # == workers.store.safe_job_file(job_id, name, settings): downloads
    api.requeue_lost()        # queue again jobs whose message a broker lost (workers do it every 60 s)

    from workers.settings import Settings, get_settings   # the ONE settings object (see its table)
    from workers.embedded import start_worker_process, stop_worker_process, wait_worker_ready, run_worker
    from avatar_studio.kinds import register_kind, JobKind, public_kinds  # job kinds live in the app package
    from workers.bench import bench_queue                                 # `avatar bench`

States: PENDING (queued, or waiting to retry), STARTED, PROGRESS (stage, progress 0..1, message),
SUCCESS (files), FAILURE (error: the user-facing message), REVOKED (cancelled).
Bad input raises avatarclip_core.errors.UserInputError subclasses (workers.errors); an unreachable
broker raises workers.errors.QueueUnavailableError after ~3 s of retries.

Running workers
---------------
    python -m workers.worker --queues cpu,gpu --concurrency 1     # foreground (`avatar worker`)
    proc = start_worker_process(settings)                          # background (`avatar serve`),
    stop_worker_process(proc)                                      #   logs to <data>/logs/worker.log

Default deployment is embedded: no services, the broker and results are SQLite files in
<data>/queue/ (kombu's sqla transport, made crash-safe and fast-polling by workers.transport).
For several machines, or GPU workers elsewhere: AVATAR_BROKER_URL=redis://host:6379/0 on every
machine (run Redis with appendonly yes so queued jobs survive a Redis restart; without it, the
workers' periodic requeue_lost() sweep queues lost jobs again within ~2 minutes) and one shared
AVATAR_DATA_DIR (job store, job folders). Queues: `cpu` (sliders) and `gpu` (jobs whose config
asks for cuda).

Layout
------
settings.py  Settings (AVATAR_* variables)     app.py      Celery app, task, retries, progress, cancel
api.py       JobAPI, JobStatus, get_job_api     store.py    job store (sqlite), safe_job_file
transport.py embedded SQLite transport          worker.py   `python -m workers.worker`
embedded.py  worker subprocess control          bench.py    bench_queue
The job kinds (validation at submit, routing) and their runners: avatar_studio.kinds, avatar_studio.jobs.
"""
from avatarclip_core.lazy import lazy_exports

# lazy, so `import workers` stays cheap (the web process imports only what it uses)
__getattr__, __all__ = lazy_exports({
    "workers.api": "JobAPI JobStatus get_job_api",
    "workers.bench": "bench_queue",
    "workers.embedded": "run_worker start_worker_process stop_worker_process wait_worker_ready",
    "workers.settings": "Settings get_settings",
    "workers.store": "safe_job_file",
})
