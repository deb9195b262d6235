"""The job API: the one way web, CLI and tests submit and follow jobs.

    api = get_job_api()                     # or JobAPI(Settings.from_env(...))
    job_id = api.submit("sliders", {"sliders": {"height": 0.9}, "motion": "walk"},
                        {"preset": "preview", "overrides": {"motion.fps": 24}})
    api.status(job_id)  -> JobStatus(state="PROGRESS", stage="export glb", progress=0.6, ...)
    api.wait(job_id)    -> JobStatus(state="SUCCESS", files={"avatar.glb": "/abs/path", ...})
    api.file(job_id, "avatar.glb") -> Path   (safe_job_file: only inside that job's folder)
    api.cancel(job_id); api.list(limit=50)

States: PENDING (queued, or waiting for a retry), STARTED, PROGRESS, SUCCESS, FAILURE, REVOKED.
User errors raise avatarclip_core.errors.UserInputError subclasses (workers.errors) with a message
meant for the user; an unreachable broker raises workers.errors.QueueUnavailableError.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from avatar_studio.kinds import get_kind
from workers.errors import QueueUnavailableError, UnknownJobError
from workers.settings import Settings, get_settings, redact_url
from workers.store import (FINAL_STATES, LOST, JobRecord, JobStore, check_job_id, list_job_files, new_job_id,
                           resolve_job_file, utc_now_iso)

if TYPE_CHECKING:
    from workers.retention import SweepReport

log = logging.getLogger(__name__)

STATES = ("PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "REVOKED")
RETRYING_AFTER_LOSS = "retrying after a worker loss"


@dataclass
class JobStatus:
    job_id: str
    kind: str
    state: str  # PENDING/STARTED/PROGRESS/SUCCESS/FAILURE/REVOKED
    stage: str
    progress: float  # 0..1
    message: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> absolute path, only when SUCCESS
    created: str = ""  # ISO time (UTC)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict:
        return asdict(self)


def _failure_text(result) -> str:
    name = type(result).__name__
    if name == "TimeLimitExceeded":
        return f"the job exceeded its hard time limit ({result}); its process was killed"
    if name == "WorkerLostError":
        return f"the job's worker process was lost: {result}"
    text = str(result)
    return text if name == "JobFailed" or not text else (f"{name}: {text}" if name != "str" else text)


class JobAPI:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.settings.ensure_dirs()
        self.store = JobStore(self.settings.job_store_url)
        self._app = None
        self._lock = threading.Lock()
        self._remote_control: bool | None = None

    @property
    def app(self):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from workers.app import get_app

                    self._app = get_app(self.settings, client=True)
        return self._app

    # -- submit -----------------------------------------------------------------------------------
    def submit(self, kind: str, inputs: dict, config: dict | None = None) -> str:
        """Validate, record and queue a job; returns its id."""
        job_kind = get_kind(kind)
        inputs, config = job_kind.validate(inputs, config or {})
        queue = job_kind.route(inputs, config)
        job_id = new_job_id()
        self.store.create(job_id, kind, inputs, config, queue, utc_now_iso())
        try:
            self._send(job_id, kind, inputs, config, queue)
        except Exception as exc:  # noqa: BLE001  (any broker error: the job must not stay PENDING for ever)
            msg = (f"could not queue the job: the broker {redact_url(self.settings.broker_url)} did not answer "
                   f"({type(exc).__name__})")
            log.error("%s: %s", msg, self._scrub(str(exc)))
            self.store.finish(job_id, "FAILURE", msg)
            raise QueueUnavailableError(msg, job_id) from None
        return job_id

    # -- follow -----------------------------------------------------------------------------------
    def record(self, job_id: str) -> JobRecord:
        """The job store's row (inputs, config, attempts, ...)."""
        record = self.store.get(check_job_id(job_id))
        if record is None:
            raise UnknownJobError(f"no job with id {job_id!r}")
        return record

    def runs(self, job_id: str) -> list[dict]:
        """One row per time a worker started the job: attempt, worker, started, finished, outcome."""
        return self.store.runs(self.record(job_id).job_id)

    def status(self, job_id: str) -> JobStatus:
        return self._status(self.record(job_id))

    def _status(self, rec: JobRecord) -> JobStatus:
        common = dict(job_id=rec.job_id, kind=rec.kind, created=rec.created)
        if rec.state == "SUCCESS":
            return self._success(rec)
        if rec.state == "FAILURE":
            return JobStatus(state="FAILURE", stage="failed", progress=0.0, message=rec.error or "failed",
                             error=rec.error or "failed", **common)
        if rec.cancelled or rec.state == "REVOKED":
            return JobStatus(state="REVOKED", stage="cancelled", progress=0.0, message="cancelled", **common)
        if rec.state == "STARTED" and (self.store.last_run(rec.job_id) or {}).get("outcome") == LOST:
            # its worker died; the result backend still shows that run's last progress
            return JobStatus(state="PENDING", stage="retrying", progress=0.0, message=RETRYING_AFTER_LOSS, **common)
        try:
            meta = self.app.backend.get_task_meta(rec.job_id)
        except Exception as exc:  # noqa: BLE001  (status must answer while the backend is down)
            state = "STARTED" if rec.state == "STARTED" else "PENDING"
            return JobStatus(state=state, stage="unknown", progress=0.0,
                             message=f"live status unavailable ({type(exc).__name__})", **common)
        state, result = meta.get("status", "PENDING"), meta.get("result")
        if state == "PROGRESS" and isinstance(result, dict):
            return JobStatus(state="PROGRESS", stage=str(result.get("stage", "")),
                             progress=float(result.get("progress", 0.0)), message=str(result.get("message", "")),
                             **common)
        if state == "STARTED" or (state in ("PENDING", "PROGRESS") and rec.state == "STARTED"):
            return JobStatus(state="STARTED", stage="starting", progress=0.0, message="running", **common)
        if state == "RETRY":
            return JobStatus(state="PENDING", stage="retrying", progress=0.0,
                             message=f"waiting to retry after: {_failure_text(result)}", **common)
        if state == "SUCCESS":
            return self._success(rec)
        if state == "FAILURE":
            text = _failure_text(result)
            return JobStatus(state="FAILURE", stage="failed", progress=0.0, message=text, error=text, **common)
        if state == "REVOKED":
            return JobStatus(state="REVOKED", stage="cancelled", progress=0.0, message="cancelled", **common)
        return JobStatus(state="PENDING", stage="queued", progress=0.0, message="waiting for a worker", **common)

    def _success(self, rec: JobRecord) -> JobStatus:
        files = {name: str(path) for name, path in list_job_files(self.settings.job_dir(rec.job_id)).items()}
        return JobStatus(job_id=rec.job_id, kind=rec.kind, state="SUCCESS", stage="done", progress=1.0,
                         message="done", files=files, created=rec.created)

    def result_files(self, job_id: str) -> dict[str, Path]:
        """Regular files inside the job's folder (empty until the job succeeded); no symlinks followed."""
        rec = self.record(job_id)
        return list_job_files(self.settings.job_dir(rec.job_id))

    def file(self, job_id: str, name: str) -> Path:
        """One file of a job for download (JobFileError for traversal, symlinks, missing files)."""
        return resolve_job_file(self.settings.jobs_dir, self.record(job_id).job_id, name)

    def list(self, limit: int = 50) -> list[JobStatus]:
        """Newest first."""
        return [self._status(rec) for rec in self.store.list(limit)]

    def wait(self, job_id: str, timeout: float = 120, poll: float = 0.1) -> JobStatus:
        """Poll until the job is SUCCESS, FAILURE or REVOKED; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status.done:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {status.state} ({status.stage}) after {timeout:g} s")
            time.sleep(poll)

    # -- cancel -----------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job: True when it is cancelled, False when it had already finished.

        A queued job is never run; a running one stops at its next progress report (and at once on
        Redis, where the worker also gets revoke(terminate=True))."""
        rec = self.record(job_id)
        if not self.store.cancel(rec.job_id):
            return False
        if self._supports_remote_control():
            try:
                # SIGTERM (the default): the job's process dies and the pool forks a new one. Not
                # SIGUSR1 (soft time limit): billiard then flags that process as terminated for good,
                # and its next genuine crash would be reported as REVOKED and its job acknowledged.
                self.app.control.revoke(rec.job_id, terminate=True)
            except Exception as exc:  # noqa: BLE001  (the store's marker still stops the job)
                log.warning("revoke of %s failed (%s); the job stops at its next progress report",
                            rec.job_id, type(exc).__name__)
        return True

    # -- retention --------------------------------------------------------------------------------
    def prune(self, older_than: float | None, dry_run: bool = False,
              uploads_older_than: float | None | str = "same") -> dict:
        """Remove jobs finished (or cancelled) more than `older_than` seconds ago (None: none): their
        folders and job-store rows; and stored uploads older than `uploads_older_than` seconds (default:
        the same age; None: none) that no remaining job names. Returns what was (or, with dry_run,
        would be) removed: {"jobs": n, "uploads": n, "bytes": n}. Retention rounds: workers.retention."""
        import shutil

        now = _dt.datetime.now(_dt.timezone.utc)
        job_ids: list[str] = []
        if older_than is not None:
            cutoff = now - _dt.timedelta(seconds=older_than)
            job_ids = self.store.finished_before(cutoff.isoformat(timespec="milliseconds"))
        from workers.retention import entry_bytes

        freed = sum(entry_bytes(self.settings.job_dir(j)) for j in job_ids)
        uploads_age = older_than if uploads_older_than == "same" else uploads_older_than
        uploads: list[Path] = []
        if uploads_age is not None and self.settings.uploads_dir.is_dir():
            upload_cutoff = (now - _dt.timedelta(seconds=uploads_age)).timestamp()
            old = {p.name: p for p in self.settings.uploads_dir.iterdir()
                   if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
                   and p.stat().st_mtime < upload_cutoff}
            kept = self.store.inputs_mention(set(old), exclude=set(job_ids)) if old else set()
            uploads = [p for name, p in old.items() if name not in kept]  # no job left needs them
            freed += sum(p.stat().st_size for p in uploads)
        if not dry_run:
            self.store.delete(job_ids)
            for job_id in job_ids:
                shutil.rmtree(self.settings.job_dir(check_job_id(job_id)), ignore_errors=True)
            for path in uploads:
                path.unlink(missing_ok=True)
        return {"jobs": len(job_ids), "uploads": len(uploads), "bytes": freed, "dry_run": dry_run}

    def sweep(self, **ages) -> "SweepReport":
        """One retention round with the settings' ages (workers.retention.sweep; `ages` override them:
        jobs_older_than, uploads_older_than, temp_older_than, dry_run, now)."""
        from workers.retention import sweep

        return sweep(self.settings, api=self, **ages)

    def disk_usage(self, extra: dict | None = None) -> dict:
        """The data folder's bytes by part and the free space (workers.retention.disk_usage)."""
        from workers.retention import disk_usage

        return disk_usage(self.settings, extra)

    # -- recovery ---------------------------------------------------------------------------------
    def requeue_lost(self, min_age: float = 60.0, settle: float = 1.0) -> list[str]:
        """Queue again the unfinished, uncancelled jobs older than `min_age` seconds whose message
        the broker no longer holds (a Redis without persistence restarted, a broker volume lost).

        Safe to call at any time and from several processes (one at a time, under a lock file): a job
        counts as lost only if two scans of the broker `settle` seconds apart both miss its message,
        and a message delivered twice never runs a finished job again. Workers call it every
        AVATAR_REQUEUE_INTERVAL seconds. Returns the ids queued again."""
        import fcntl

        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=min_age)
        if not self.store.unfinished(cutoff.isoformat(timespec="milliseconds")):
            return []
        lock_path = self.settings.queue_dir / "requeue.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                candidates = self.store.unfinished(cutoff.isoformat(timespec="milliseconds"))
                present = broker_job_ids(self.settings)
                missing = [r.job_id for r in candidates if r.job_id not in present]
                if not missing:
                    return []
                time.sleep(settle)  # a message between two broker structures shows up in the second scan
                present = broker_job_ids(self.settings)
                requeued = []
                for job_id in missing:
                    rec = self.store.get(job_id)
                    if rec is None or rec.cancelled or rec.final or job_id in present:
                        continue
                    log.warning("job %s: its message is no longer in the broker; queueing it again", job_id)
                    self._send(rec.job_id, rec.kind, rec.inputs, rec.config, rec.queue)
                    requeued.append(job_id)
                return requeued
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def recover_lost_runs(self) -> list[str]:
        """Close as lost the runs of workers that died (no heartbeat for AVATAR_WORKER_LOST_AFTER
        seconds, or seen dying by their supervisor) and deliver their jobs again now: the broker's
        taken-but-unacknowledged message goes back to its queue (no second copy), or, when the
        broker holds none, the job is sent again. Workers call it every AVATAR_HEARTBEAT_INTERVAL
        seconds; the visibility timeout stays the fallback. Returns the ids queued again."""
        job_ids = self.store.close_lost_runs(self.settings.worker_lost_after)
        if not job_ids:
            return []
        restored = restore_taken_messages(self.settings, job_ids)
        present = broker_job_ids(self.settings) if set(job_ids) - restored else set()
        for job_id in job_ids:
            if job_id in restored:
                log.warning("job %s: its worker died; delivered again (%s)", job_id, RETRYING_AFTER_LOSS)
            elif job_id not in present:
                rec = self.store.get(job_id)
                log.warning("job %s: its worker died and the broker holds no message; queueing it again", job_id)
                self._send(rec.job_id, rec.kind, rec.inputs, rec.config, rec.queue)
        return list(job_ids)

    def _send(self, job_id: str, kind: str, inputs: dict, config: dict, queue: str) -> None:
        from workers.app import TASK_NAME

        self.app.send_task(TASK_NAME, args=[job_id, kind, inputs, config], task_id=job_id,
                           queue=self.settings.queue_name(queue))

    def _supports_remote_control(self) -> bool:
        if self._remote_control is None:
            try:
                with self.app.connection_for_write() as conn:
                    self._remote_control = bool(conn.supports_exchange_type("fanout"))
            except Exception:  # noqa: BLE001
                return False
        return self._remote_control

    def _scrub(self, text: str) -> str:
        from urllib.parse import urlsplit

        for url in (self.settings.broker_url, self.settings.result_backend):
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                text = text.replace(password, "***")
        if self.settings.api_token:
            text = text.replace(self.settings.api_token, "***")
        return text


def broker_job_ids(settings: Settings) -> set[str]:
    """Ids of the jobs whose message the broker holds: queued, reserved by a worker or waiting for
    a retry. Embedded SQLite and Redis; other brokers raise NotImplementedError."""
    ids: set[str] = set()

    def add(payload) -> None:
        try:
            message = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
            ids.add(message["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            pass

    if settings.broker_kind == "redis":
        import redis

        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=5, socket_timeout=30)
        try:
            for logical in ("cpu", "gpu"):
                name = settings.queue_name(logical)
                for key in [name, *client.scan_iter(match=f"{name}\x06\x16*")]:  # kombu priority lists
                    for item in client.lrange(key, 0, -1):
                        add(item)
            for value in client.hvals("unacked"):  # delivered, not yet acknowledged (kombu's default key)
                try:
                    add(json.loads(value)[0])
                except (ValueError, IndexError, TypeError):
                    pass
        finally:
            client.close()
        return ids
    if settings.broker_kind == "sqlite":
        import sqlite3

        path = settings.broker_url.split(":///", 1)[1]
        con = sqlite3.connect(path, timeout=30)
        try:
            for (payload,) in con.execute("SELECT payload FROM kombu_message"):
                add(payload)
        except sqlite3.OperationalError:  # no table yet: nothing was ever queued
            pass
        finally:
            con.close()
        return ids
    raise NotImplementedError(f"cannot list the messages of a {settings.broker_kind} broker")


def restore_taken_messages(settings: Settings, job_ids) -> set[str]:
    """Put the messages of these jobs that a (dead) worker took and never acknowledged back in
    their queues; returns the ids found. Embedded SQLite and Redis; other brokers restore none
    (their visibility timeout does it)."""
    wanted = set(job_ids)
    if not wanted:
        return set()
    if settings.broker_kind == "sqlite":
        from workers.transport import restore_unacked_jobs

        return restore_unacked_jobs(settings.broker_url.split(":///", 1)[1], wanted)
    if settings.broker_kind != "redis":
        return set()
    from workers.app import get_app

    found: set[str] = set()
    with get_app(settings, client=True).connection_for_write() as conn:
        channel = conn.default_channel
        for tag, value in channel.client.hgetall(channel.unacked_key).items():
            try:
                job_id = json.loads(value)[0]["headers"]["id"]
            except (ValueError, IndexError, KeyError, TypeError):
                continue
            if job_id in wanted:
                channel.qos.restore_by_tag(tag, leftmost=True)  # kombu's own restore: one transaction
                found.add(job_id)
    return found


_API: JobAPI | None = None
_API_LOCK = threading.Lock()


def get_job_api() -> JobAPI:
    """The process-wide JobAPI built from the environment's settings."""
    global _API
    with _API_LOCK:
        if _API is None:
            _API = JobAPI(get_settings())
        return _API
