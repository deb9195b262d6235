"""The job queue's settings: ONE frozen dataclass, read from environment variables.

| variable                      | default                                              |
|-------------------------------|------------------------------------------------------|
| AVATAR_DATA_DIR               | ./data (jobs/, queue/, logs/ and the model cache)    |
| AVATAR_BROKER_URL             | sqla+sqlite:///<data>/queue/broker.sqlite (embedded) |
| AVATAR_RESULT_BACKEND         | db+sqlite:///<data>/queue/results.sqlite; with a     |
|                               | redis:// broker and no backend set: the broker's URL |
| AVATAR_JOB_STORE_URL          | sqlite:///<data>/queue/jobs.sqlite (one machine);    |
|                               | postgresql+psycopg://user:pw@host/db when web and    |
|                               | workers run on several machines                      |
| AVATAR_QUEUES                 | cpu,gpu (what a worker consumes by default)          |
| AVATAR_QUEUE_PREFIX           | "" (prepended to broker queue names, to share one    |
|                               | Redis between deployments or test sessions)          |
| AVATAR_SOFT_TIME_LIMIT        | 900 s (the job gets a clean FAILURE)                 |
| AVATAR_TIME_LIMIT             | 960 s (the job's process is killed)                  |
| AVATAR_VISIBILITY_TIMEOUT     | AVATAR_TIME_LIMIT + 120 s: a job taken by a worker   |
|                               | that died and was not noticed by its heartbeat is    |
|                               | delivered again after this long. It must exceed      |
|                               | AVATAR_TIME_LIMIT, or a long job would be delivered  |
|                               | twice; tests use ~30 s.                              |
| AVATAR_HEARTBEAT_INTERVAL     | 5 s: workers record that they are alive in the job   |
|                               | store this often, and look for dead ones             |
| AVATAR_WORKER_LOST_AFTER      | 30 s: a worker silent this long is dead; its running |
|                               | jobs are closed as lost and queued again at once     |
| AVATAR_MAX_RETRIES            | 3 retries of transient errors (never user errors)    |
| AVATAR_RETRY_BACKOFF          | 2 s first retry delay, doubled each retry ...        |
| AVATAR_RETRY_BACKOFF_MAX      | ... up to 60 s (at most half the visibility timeout) |
| AVATAR_WORKER_CONCURRENCY     | 1 job process per worker                             |
| AVATAR_SQLA_POLL_INTERVAL     | 0.05 s (embedded broker polling; kombu's default 1 s |
|                               | makes every round trip ~1 s)                         |
| AVATAR_REQUEUE_INTERVAL       | 60 s: workers look this often for unfinished jobs    |
|                               | whose message the broker lost (a Redis without       |
|                               | persistence restarted) and queue them again; 0: off  |
| AVATAR_RESULT_EXPIRES         | 7 days (Celery results; the job store keeps the      |
|                               | final state of every job for ever)                   |
| AVATAR_UPLOAD_MAX_BYTES       | 10 MB (photo uploads, enforced by the web app)       |
| AVATAR_API_TOKEN              | unset (optional bearer token for the web API; never  |
|                               | passed to workers, logged or written to job folders) |
| AVATAR_RETENTION_JOBS         | 30d: finished/cancelled jobs older than this go      |
|                               | (folder + job-store rows); 0 keeps them for ever     |
| AVATAR_RETENTION_UPLOADS      | 30d: stored uploads this old that no job names       |
| AVATAR_RETENTION_TEMP         | 1d: temp leftovers (half-written job folders of      |
|                               | killed jobs, partial uploads, Gradio's temp files);  |
|                               | must exceed AVATAR_TIME_LIMIT                        |
| AVATAR_RETENTION_INTERVAL     | 1h: how often `avatar serve` sweeps (workers.        |
|                               | retention); 0: only `avatar jobs prune` does         |
Ages are seconds or a number with a unit: 30d, 12h, 90m, 45s (parse_age).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from avatarclip_core.config.limits import UPLOAD_MAX_BYTES
from avatarclip_core.errors import UserInputError
from avatarclip_core.paths import data_dir_path

ALL_QUEUES = ("cpu", "gpu")
# visibility timeout beyond the hard time limit: a job's message is held unacknowledged for its
# run plus the worker's bookkeeping (result, acknowledgement) and up to AVATAR_RETRY_BACKOFF_MAX
# waiting for a retry; a live job must never be delivered a second time
VISIBILITY_MARGIN = 120.0


JOB_STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")


class SettingsError(UserInputError):
    """A bad AVATAR_* environment variable (the message names it): the CLI's one error line."""


def _num(env: Mapping[str, str], name: str, default: float | None, kind=float, minimum: float = 0.0) -> float | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a {'whole ' if kind is int else ''}number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum:g}, got {raw!r}")
    return value


def parse_age(text: str, name: str = "--older-than") -> float:
    """'30d', '12h', '90m', '45s' or plain seconds -> seconds; SettingsError naming `name` otherwise."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    raw = str(text).strip().lower()
    scale = units.get(raw[-1:], None)
    try:
        value = float(raw[:-1] if scale else raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{name} must be an age like 30d, 12h, 90m or 3600 (seconds), got {text!r}")
    return value * (scale or 1.0)


def _age(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw is None or raw.strip() == "" else parse_age(raw, name)


def redact_url(url: str) -> str:
    """The URL with its password replaced by '***' (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    broker_url: str
    result_backend: str
    queues: tuple[str, ...] = ALL_QUEUES
    queue_prefix: str = ""
    soft_time_limit: float = 900.0
    time_limit: float = 960.0
    visibility_timeout: float | None = None  # None: time_limit + VISIBILITY_MARGIN
    max_retries: int = 3
    retry_backoff: float = 2.0
    retry_backoff_max: float | None = None  # None: min(60 s, visibility_timeout / 2)
    worker_concurrency: int = 1
    sqla_polling_interval: float = 0.05
    result_expires: float = 7 * 24 * 3600.0
    requeue_interval: float = 60.0
    heartbeat_interval: float = 5.0
    worker_lost_after: float = 30.0
    upload_max_bytes: int = UPLOAD_MAX_BYTES
    api_token: str | None = field(default=None, repr=False, compare=False)
    job_store_url: str = ""  # "": the SQLite file <data>/queue/jobs.sqlite
    retention_jobs: float = 30 * 86400.0  # seconds; 0 keeps finished jobs for ever (workers.retention)
    retention_uploads: float = 30 * 86400.0
    retention_temp: float = 86400.0
    retention_interval: float = 3600.0  # 0: no periodic sweep

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if not self.job_store_url:
            object.__setattr__(self, "job_store_url", f"sqlite:///{self.queue_dir / 'jobs.sqlite'}")
        if not self.job_store_url.startswith(JOB_STORE_SCHEMES) or self.job_store_url in JOB_STORE_SCHEMES:
            raise SettingsError(f"AVATAR_JOB_STORE_URL must be sqlite:///path/jobs.sqlite or "
                                f"postgresql+psycopg://user@host/db, got {redact_url(self.job_store_url)!r}")
        object.__setattr__(self, "queues", tuple(self.queues))
        unknown = [q for q in self.queues if q not in ALL_QUEUES]
        if unknown or not self.queues:
            raise SettingsError(f"unknown queue(s) {unknown or self.queues!r}: choose from {', '.join(ALL_QUEUES)}")
        if not all(c.isalnum() or c in "._-" for c in self.queue_prefix):
            raise SettingsError(f"AVATAR_QUEUE_PREFIX may use letters, digits and . _ - only, got {self.queue_prefix!r}")
        if self.soft_time_limit >= self.time_limit:
            raise SettingsError(
                f"AVATAR_SOFT_TIME_LIMIT ({self.soft_time_limit:g} s) must be below AVATAR_TIME_LIMIT "
                f"({self.time_limit:g} s)")
        if self.visibility_timeout is None:
            object.__setattr__(self, "visibility_timeout", self.time_limit + VISIBILITY_MARGIN)
        if self.visibility_timeout <= self.time_limit:
            raise SettingsError(
                f"AVATAR_VISIBILITY_TIMEOUT ({self.visibility_timeout:g} s) must exceed AVATAR_TIME_LIMIT "
                f"({self.time_limit:g} s), or a job still running would be delivered a second time")
        if self.retry_backoff_max is None:
            object.__setattr__(self, "retry_backoff_max", min(60.0, self.visibility_timeout / 2))
        if self.retry_backoff_max >= self.visibility_timeout:
            raise SettingsError(
                f"AVATAR_RETRY_BACKOFF_MAX ({self.retry_backoff_max:g} s) must be below AVATAR_VISIBILITY_TIMEOUT "
                f"({self.visibility_timeout:g} s): a waiting retry is held unacknowledged by the worker")
        if self.worker_concurrency < 1:
            raise SettingsError("AVATAR_WORKER_CONCURRENCY must be >= 1")
        if self.heartbeat_interval <= 0 or self.worker_lost_after < 2 * self.heartbeat_interval:
            raise SettingsError(
                f"AVATAR_WORKER_LOST_AFTER ({self.worker_lost_after:g} s) must be at least twice "
                f"AVATAR_HEARTBEAT_INTERVAL ({self.heartbeat_interval:g} s, > 0): one late heartbeat must not "
                "make a live worker's jobs run a second time")
        if self.retention_temp and self.retention_temp <= self.time_limit:
            raise SettingsError(
                f"AVATAR_RETENTION_TEMP ({self.retention_temp:g} s) must exceed AVATAR_TIME_LIMIT "
                f"({self.time_limit:g} s), or a running job's half-written folder could be removed")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        data = data_dir_path(env)
        broker = env.get("AVATAR_BROKER_URL") or f"sqla+sqlite:///{data / 'queue' / 'broker.sqlite'}"
        backend = env.get("AVATAR_RESULT_BACKEND") or ""
        if not backend:
            backend = broker if broker.startswith(("redis://", "rediss://")) else \
                f"db+sqlite:///{data / 'queue' / 'results.sqlite'}"
        queues = tuple(q.strip() for q in (env.get("AVATAR_QUEUES") or ",".join(ALL_QUEUES)).split(",") if q.strip())
        values = dict(
            data_dir=data,
            broker_url=broker,
            result_backend=backend,
            queues=queues,
            queue_prefix=env.get("AVATAR_QUEUE_PREFIX", ""),
            soft_time_limit=_num(env, "AVATAR_SOFT_TIME_LIMIT", 900.0, minimum=1),
            time_limit=_num(env, "AVATAR_TIME_LIMIT", 960.0, minimum=1),
            visibility_timeout=_num(env, "AVATAR_VISIBILITY_TIMEOUT", None, minimum=1),
            max_retries=int(_num(env, "AVATAR_MAX_RETRIES", 3, int)),
            retry_backoff=_num(env, "AVATAR_RETRY_BACKOFF", 2.0),
            retry_backoff_max=_num(env, "AVATAR_RETRY_BACKOFF_MAX", None),
            worker_concurrency=int(_num(env, "AVATAR_WORKER_CONCURRENCY", 1, int, minimum=1)),
            sqla_polling_interval=_num(env, "AVATAR_SQLA_POLL_INTERVAL", 0.05, minimum=0.001),
            result_expires=_num(env, "AVATAR_RESULT_EXPIRES", 7 * 24 * 3600.0, minimum=60),
            requeue_interval=_num(env, "AVATAR_REQUEUE_INTERVAL", 60.0),
            heartbeat_interval=_num(env, "AVATAR_HEARTBEAT_INTERVAL", 5.0, minimum=0.1),
            worker_lost_after=_num(env, "AVATAR_WORKER_LOST_AFTER", 30.0, minimum=0.2),
            upload_max_bytes=int(_num(env, "AVATAR_UPLOAD_MAX_BYTES", UPLOAD_MAX_BYTES, int, minimum=1)),
            api_token=env.get("AVATAR_API_TOKEN") or None,
            job_store_url=(env.get("AVATAR_JOB_STORE_URL") or "").strip(),
            retention_jobs=_age(env, "AVATAR_RETENTION_JOBS", 30 * 86400.0),
            retention_uploads=_age(env, "AVATAR_RETENTION_UPLOADS", 30 * 86400.0),
            retention_temp=_age(env, "AVATAR_RETENTION_TEMP", 86400.0),
            retention_interval=_age(env, "AVATAR_RETENTION_INTERVAL", 3600.0),
        )
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes) -> "Settings":
        return replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The AVATAR_* variables that reproduce these settings in a worker process (no API token)."""
        return {
            "AVATAR_DATA_DIR": str(self.data_dir),
            "AVATAR_BROKER_URL": self.broker_url,
            "AVATAR_RESULT_BACKEND": self.result_backend,
            "AVATAR_QUEUES": ",".join(self.queues),
            "AVATAR_QUEUE_PREFIX": self.queue_prefix,
            "AVATAR_SOFT_TIME_LIMIT": repr(self.soft_time_limit),
            "AVATAR_TIME_LIMIT": repr(self.time_limit),
            "AVATAR_VISIBILITY_TIMEOUT": repr(self.visibility_timeout),
            "AVATAR_MAX_RETRIES": str(self.max_retries),
            "AVATAR_RETRY_BACKOFF": repr(self.retry_backoff),
            "AVATAR_RETRY_BACKOFF_MAX": repr(self.retry_backoff_max),
            "AVATAR_WORKER_CONCURRENCY": str(self.worker_concurrency),
            "AVATAR_SQLA_POLL_INTERVAL": repr(self.sqla_polling_interval),
            "AVATAR_RESULT_EXPIRES": repr(self.result_expires),
            "AVATAR_REQUEUE_INTERVAL": repr(self.requeue_interval),
            "AVATAR_HEARTBEAT_INTERVAL": repr(self.heartbeat_interval),
            "AVATAR_WORKER_LOST_AFTER": repr(self.worker_lost_after),
            "AVATAR_UPLOAD_MAX_BYTES": str(self.upload_max_bytes),
            "AVATAR_JOB_STORE_URL": self.job_store_url,
            "AVATAR_RETENTION_JOBS": repr(self.retention_jobs),
            "AVATAR_RETENTION_UPLOADS": repr(self.retention_uploads),
            "AVATAR_RETENTION_TEMP": repr(self.retention_temp),
            "AVATAR_RETENTION_INTERVAL": repr(self.retention_interval),
        }

    # -- derived ------------------------------------------------------------------------------
    @property
    def broker_kind(self) -> str:
        """'sqlite' (embedded), 'redis', or the URL scheme of anything else."""
        if self.broker_url.startswith(("sqla+sqlite", "sqlalchemy+sqlite")):
            return "sqlite"
        if self.broker_url.startswith(("redis://", "rediss://")):
            return "redis"
        return self.broker_url.split("://", 1)[0]

    def queue_name(self, logical: str) -> str:
        """Broker queue name of a logical queue ('cpu' or 'gpu')."""
        if logical not in ALL_QUEUES:
            raise SettingsError(f"unknown queue {logical!r}: choose from {', '.join(ALL_QUEUES)}")
        return f"{self.queue_prefix}{logical}"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    @property
    def uploads_dir(self) -> Path:
        """Photos the web app received, content-addressed (web.uploads.store_upload); the worker
        reads them from here, so the data folder is shared between web and workers."""
        return self.data_dir / "uploads"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def job_store_kind(self) -> str:
        """'sqlite' or 'postgresql'."""
        return "sqlite" if self.job_store_url.startswith("sqlite") else "postgresql"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "worker.log"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def ensure_dirs(self) -> None:
        for path in (self.jobs_dir, self.queue_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)

    def describe(self) -> dict[str, object]:
        """Settings for logs and `avatar` output: passwords redacted, token never shown."""
        return {
            "data_dir": str(self.data_dir),
            "broker": redact_url(self.broker_url),
            "result_backend": redact_url(self.result_backend),
            "job_store": redact_url(self.job_store_url),
            "queues": list(self.queues),
            "queue_prefix": self.queue_prefix,
            "soft_time_limit": self.soft_time_limit,
            "time_limit": self.time_limit,
            "visibility_timeout": self.visibility_timeout,
            "worker_lost_after": self.worker_lost_after,
            "max_retries": self.max_retries,
            "worker_concurrency": self.worker_concurrency,
            "upload_max_bytes": self.upload_max_bytes,
            "api_token": "set" if self.api_token else "unset",
            "retention_s": {"jobs": self.retention_jobs, "uploads": self.retention_uploads,
                            "temp": self.retention_temp, "interval": self.retention_interval},
        }

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"


_SETTINGS: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings from the environment (read once)."""
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = Settings.from_env()
    return _SETTINGS
