"""The Celery app: one per Settings, configured entirely from it (`python -m celery -A workers.app ...`
uses the one from the environment).

Delivery guarantees (both brokers):
  * task_acks_late + task_reject_on_worker_lost + prefetch 1: a job's message is acknowledged only
    after the job finished; a job process that dies is re-queued at once, a whole worker that dies
    (SIGKILL, power loss) has its runs closed as lost and its job delivered again once its heartbeat
    in the job store is AVATAR_WORKER_LOST_AFTER seconds old (or at once when `avatar serve`'s
    supervisor saw it die): the next live worker's heartbeat round does it (JobAPI.recover_lost_runs).
    The broker's own AVATAR_VISIBILITY_TIMEOUT (hard time limit + 120 s; Redis: kombu's visibility
    timeout, embedded SQLite: workers.transport) is the fallback. Queued jobs stay in the broker,
    never in a worker's memory.
  * Every run is recorded in the job store first (`runs` table); a job whose store state is already
    SUCCESS is not run again when its message comes back (e.g. the worker died between finishing
    and acknowledging), and a job process that keeps dying is given up after max_retries + 3 runs.
  * Jobs whose message the broker lost altogether (a Redis without persistence restarted) are
    found by the workers' periodic JobAPI.requeue_lost() sweep and queued again.
  * Job folders are written with force=True into a temp folder renamed into place when complete, so
    a re-delivered job replaces a crashed attempt and a folder exists only when complete.
  * Errors: UserInputError -> FAILURE with its message, never retried; TransientJobError,
    ConnectionError, TimeoutError, "database is locked", CUDA out-of-memory -> retried up to
    max_retries times with exponential backoff (retry_backoff * 2**n, capped); anything else is a
    bug -> FAILURE "internal error ..." (traceback in the worker log), not retried.
  * Progress: custom state PROGRESS with meta {stage, progress (0..1), message}.
  * Cancel: the job store's cancelled marker (checked before a job starts and at every progress
    report, so a re-delivered cancelled job never runs) plus revoke(terminate=True, signal=SIGUSR1)
    where the broker supports remote control (Redis; the SQLite transport has no fanout, there the
    marker stops the job at its next progress report).
"""
from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy.exc
from celery import Celery
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from kombu import Exchange, Queue

from avatar_studio.errors import TransientJobError
from avatar_studio.kinds import JobContext, get_kind
from avatarclip_core.errors import UserInputError
from workers.errors import JobCancelled, JobFailed
from workers.settings import ALL_QUEUES, Settings, get_settings
from workers.store import JobStore, list_job_files, use_wal

TASK_NAME = "avatar.run_job"
PROGRESS = "PROGRESS"
CRASH_RUNS_ALLOWED = 2  # runs beyond 1 + max_retries before a job that keeps killing its process is given up

log = get_task_logger(__name__)


def _sqlite_path(url: str, prefix: str) -> Path | None:
    if url.startswith(prefix) and len(url) > len(prefix):
        return Path(url[len(prefix):])
    return None


def prepare_sqlite_files(settings: Settings) -> None:
    """Folders for the embedded databases, and WAL mode (persistent per file) so readers never block."""
    settings.ensure_dirs()
    for url, prefix in ((settings.broker_url, "sqla+sqlite:///"), (settings.broker_url, "sqlalchemy+sqlite:///"),
                        (settings.result_backend, "db+sqlite:///")):
        path = _sqlite_path(url, prefix)
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30)
        try:
            use_wal(con)
        finally:
            con.close()


def transport_options(settings: Settings) -> dict:
    if settings.broker_kind == "redis":
        return {
            "visibility_timeout": settings.visibility_timeout,
            # kombu sweeps for expired unacked messages every interval * throttle seconds (100 s by
            # default): make it a tenth of the visibility timeout, between 1 and 10 s.
            "unacked_restore_interval": min(10.0, max(1.0, settings.visibility_timeout / 10)),
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
        }
    if settings.broker_kind == "sqlite" or settings.broker_url.startswith(("sqla+", "sqlalchemy+")):
        return {"polling_interval": settings.sqla_polling_interval,
                "visibility_timeout": settings.visibility_timeout}
    return {"visibility_timeout": settings.visibility_timeout}


class AvatarCelery(Celery):
    """Celery whose Redis result backend does not subscribe to every submitted job's result channel.

    The stock backend subscribes (pub/sub) on each send_task so that AsyncResult.get() can block; the
    job API polls instead, so in a long-running web process those subscriptions would only pile up,
    and with Redis down a submit would spend ~20 s reconnecting them before failing."""

    def _get_backend(self):
        backend = super()._get_backend()
        if hasattr(backend, "result_consumer"):
            backend.on_task_call = lambda producer, task_id: {}
        return backend


def create_app(settings: Settings, client: bool = False) -> Celery:
    """The app for a worker, or with client=True for the job API: there a broker or result backend
    that is down must give a quick answer (QueueUnavailableError, "live status unavailable") instead
    of blocking a web request for the many retries a worker makes to save a result."""
    import workers.transport  # noqa: F401  (the crash-safe, fast-polling sqla transport)

    prepare_sqlite_files(settings)
    app = AvatarCelery("avatar", broker=settings.broker_url, backend=settings.result_backend,
                       set_as_current=False)
    queues = [Queue(settings.queue_name(q), Exchange(settings.queue_name(q), type="direct"),
                    routing_key=settings.queue_name(q)) for q in ALL_QUEUES]
    app.conf.update(
        task_queues=queues,
        task_default_queue=settings.queue_name("cpu"),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        task_soft_time_limit=settings.soft_time_limit,
        task_time_limit=settings.time_limit,
        task_publish_retry=True,
        # a submit survives a broker restart of ~3 s, then raises QueueUnavailableError
        task_publish_retry_policy={"max_retries": 4, "interval_start": 0.1, "interval_step": 0.5,
                                   "interval_max": 1.5},
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_disable_rate_limits=True,
        worker_lost_wait=2.0,  # a dead job process's job is re-queued after 2 s, not 10
        worker_send_task_events=False,
        # A lost broker connection cannot acknowledge a running job's message any more, and kombu
        # hands it back to the queue: stop the job (it runs again from the start) rather than let a
        # second copy run beside it (Celery 6's default; a broker blip restarts running jobs).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=transport_options(settings),
        result_expires=int(settings.result_expires),
        result_backend_always_retry=not client,
        result_backend_max_retries=20,
        redis_socket_timeout=5 if client else 30,
        redis_socket_connect_timeout=5,
        redis_retry_on_timeout=True,
        redis_backend_health_check_interval=10,
        database_engine_options={"connect_args": {"timeout": 30}},
    )
    app.avatar_settings = settings

    # throws: JobFailed is the expected way a job fails (its message says why); logged without a traceback
    @app.task(name=TASK_NAME, bind=True, max_retries=settings.max_retries, throws=(JobFailed,))
    def run_job(self, job_id: str, kind: str, inputs: dict, config: dict):
        return execute_job(self, settings, job_id, kind, inputs, config)

    if not client:
        from celery import signals

        def on_revoked(sender=None, request=None, terminated=False, **_):
            # revoke(terminate=True) killed the job's process: close its run in the job store
            if request is not None and getattr(sender, "app", None) is app and terminated:
                try:
                    job_store(settings).close_open_runs(request.id, "REVOKED", "REVOKED", "cancelled")
                except Exception:  # noqa: BLE001
                    log.exception("could not record the revoke of %s", request.id)

        signals.task_revoked.connect(on_revoked, weak=False)

        def on_failure(sender=None, task_id=None, exception=None, **_):
            # the hard time limit killed the job's process (sent in the worker's main process)
            if getattr(sender, "app", None) is app and type(exception).__name__ == "TimeLimitExceeded":
                try:
                    job_store(settings).close_open_runs(
                        task_id, "FAILURE", "FAILURE",
                        f"the job exceeded its hard time limit of {settings.time_limit:g} s; its process was killed")
                except Exception:  # noqa: BLE001
                    log.exception("could not record the time-out of %s", task_id)

        signals.task_failure.connect(on_failure, weak=False)

    return app


_APPS: dict[tuple[Settings, bool], Celery] = {}
_APPS_LOCK = threading.Lock()


def get_app(settings: Settings | None = None, client: bool = False) -> Celery:
    """The Celery app for these settings (one per process, settings and role)."""
    settings = settings or get_settings()
    with _APPS_LOCK:
        if (settings, client) not in _APPS:
            _APPS[settings, client] = create_app(settings, client)
        return _APPS[settings, client]


def __getattr__(name: str):
    # `celery -A workers.app` looks up `app`; built on first use so importing this module is cheap.
    if name in ("app", "celery"):
        return get_app()
    raise AttributeError(name)


# -- the task body -------------------------------------------------------------------------------
_STORES: dict[str, JobStore] = {}


def job_store(settings: Settings) -> JobStore:
    store = _STORES.get(settings.job_store_url)
    if store is None:
        store = _STORES[settings.job_store_url] = JobStore(settings.job_store_url)
    return store


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, UserInputError):
        return False
    if isinstance(exc, (TransientJobError, ConnectionError, TimeoutError, BlockingIOError, InterruptedError)):
        return True
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return True
    if isinstance(exc, sqlalchemy.exc.OperationalError):  # the job store: SQLite busy, PostgreSQL unreachable
        return "locked" in str(exc) or not isinstance(exc.orig, sqlite3.OperationalError)
    return type(exc).__name__ == "OutOfMemoryError" and "cuda" in str(exc).lower()


def retry_delay(settings: Settings, retries: int) -> float:
    delay = min(settings.retry_backoff_max, settings.retry_backoff * 2 ** retries)
    return round(delay * random.uniform(0.8, 1.0), 3)  # jitter: retries of many jobs do not line up


def job_result(settings: Settings, job_id: str) -> dict:
    folder = settings.job_dir(job_id)
    return {"job_id": job_id, "job_dir": str(folder), "files": sorted(list_job_files(folder))}


def _clean_leftovers(settings: Settings, job_id: str) -> None:
    """Temp folders beside the job folders (atomic_job_folder names) that killed attempts left: this
    job's (it runs again now), and anyone's older than the hard time limit (no live attempt owns them;
    e.g. a cancelled job whose process was terminated)."""
    import shutil

    too_old = time.time() - settings.time_limit - 60
    for path in settings.jobs_dir.glob(".*"):
        mine = path.name.startswith((f".{job_id}.tmp-", f".{job_id}.old-"))
        if not (mine or ".tmp-" in path.name or ".old-" in path.name):
            continue
        try:
            stale = path.stat().st_mtime < too_old
        except OSError:
            continue
        if mine or stale:
            shutil.rmtree(path, ignore_errors=True)


def execute_job(task, settings: Settings, job_id: str, kind_name: str, inputs: dict, config: dict):
    started = time.monotonic()
    store = job_store(settings)
    worker = f"{task.request.hostname or 'worker'}/{os.getpid()}"
    record = store.get(job_id)
    if record is None:
        raise JobFailed(f"job {job_id} is not in the job store: the worker and the API must use the same "
                        "AVATAR_JOB_STORE_URL (or, with the default SQLite store, the same AVATAR_DATA_DIR)")
    if record.cancelled:
        log.info("job %s was cancelled before it started; not running it", job_id)
        store.finish(job_id, "REVOKED", "cancelled")
        task.update_state(state="REVOKED", meta={"stage": "cancelled", "progress": 0.0, "message": "cancelled"})
        raise Ignore()
    if record.state == "SUCCESS" and settings.job_dir(job_id).is_dir():
        log.warning("job %s already succeeded (its message was delivered again); not running it again", job_id)
        return job_result(settings, job_id)
    if record.state == "FAILURE":
        raise JobFailed(record.error or "failed")

    attempt = store.begin_run(job_id, worker, node=task.request.hostname)  # the node's heartbeat covers the run
    max_runs = settings.max_retries + 1 + CRASH_RUNS_ALLOWED
    if attempt > max_runs:
        msg = (f"gave up after {attempt - 1} runs: the job's process died each time "
               "(a crash, out of memory, or killed); see the worker log")
        store.end_run(job_id, attempt, "FAILURE", "FAILURE", msg)
        raise JobFailed(msg)
    _clean_leftovers(settings, job_id)
    log.info("job %s (%s) attempt %d on %s", job_id, kind_name, attempt, worker)

    def progress(stage: str, fraction: float, message: str = "") -> None:
        # Celery raises the soft limit from a signal handler wherever the job's process is; code that
        # catches Exception there (this function's own best-effort report, a database driver) swallows
        # it, and only the hard limit would end the job (seen in CI: PostgreSQL store). So the limit is
        # also checked here, at every progress report.
        if time.monotonic() - started > settings.soft_time_limit:
            raise SoftTimeLimitExceeded()
        if store.is_cancelled(job_id):
            raise JobCancelled(job_id)
        try:  # best effort: a result backend hiccup must not fail the job
            task.update_state(state=PROGRESS, meta={
                "stage": str(stage), "progress": float(min(1.0, max(0.0, fraction))), "message": str(message)})
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("job %s: could not report progress: %s", job_id, exc)

    def cancelled() -> None:
        log.info("job %s cancelled while running (attempt %d)", job_id, attempt)
        store.end_run(job_id, attempt, "REVOKED", "REVOKED", "cancelled")
        task.update_state(state="REVOKED", meta={"stage": "cancelled", "progress": 0.0, "message": "cancelled"})
        raise Ignore()

    try:
        kind = get_kind(kind_name)
        progress("starting", 0.0, f"attempt {attempt}")
        ctx = JobContext(job_id=job_id, kind=kind_name, inputs=inputs, config=config,
                         output_dir=settings.job_dir(job_id), progress=progress, attempt=attempt,
                         data_dir=settings.data_dir)
        kind.load_runner()(ctx)
    except JobCancelled:
        cancelled()
    except SoftTimeLimitExceeded:
        if store.is_cancelled(job_id):
            cancelled()
        msg = f"the job exceeded its time limit of {settings.soft_time_limit:g} s"
        store.end_run(job_id, attempt, "FAILURE", "FAILURE", msg)
        raise JobFailed(msg) from None
    except UserInputError as exc:
        msg = str(exc)
        log.info("job %s failed on bad input: %s", job_id, msg)
        store.end_run(job_id, attempt, "FAILURE", "FAILURE", msg)
        raise JobFailed(msg) from None
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}"
        retries = task.request.retries or 0
        if is_transient(exc) and retries < settings.max_retries:
            delay = retry_delay(settings, retries)
            log.warning("job %s: transient error (%s); retry %d/%d in %.1f s",
                        job_id, msg, retries + 1, settings.max_retries, delay)
            store.end_run(job_id, attempt, "RETRY")
            raise task.retry(countdown=delay, max_retries=settings.max_retries, exc=JobFailed(msg)) from None
        if is_transient(exc):
            msg = f"failed after {retries + 1} attempts: {msg}"
        else:
            log.exception("job %s: internal error", job_id)
            msg = f"internal error ({msg}); see the worker log"
        store.end_run(job_id, attempt, "FAILURE", "FAILURE", msg)
        raise JobFailed(msg) from None
    store.end_run(job_id, attempt, "SUCCESS", "SUCCESS")
    log.info("job %s done", job_id)
    return job_result(settings, job_id)


logging.getLogger("workers").addHandler(logging.NullHandler())
