"""Helpers for the job-queue tests (tests/test_workers*.py) and workers.bench: real brokers, real workers."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/13"
# a server where we may CREATE DATABASE; each test (or test module) gets a fresh database on it
DEFAULT_TEST_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FINAL = ("SUCCESS", "FAILURE", "REVOKED")


def shared_cache_dir() -> Path:
    """The built body model (building it anew takes a minute): the session's data folder's cache."""
    env = os.environ.get("AVATAR_DATA_DIR")
    for candidate in ([Path(env) / "cache"] if env else []) + [ROOT / "data" / "cache"]:
        if candidate.is_dir():
            return candidate.resolve()
    return (ROOT / "data" / "cache").resolve()


def make_data_dir(path: Path) -> Path:
    """A fresh data folder whose cache/ is a symlink to the shared body-model cache."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cache = path / "cache"
    if not cache.exists():
        cache.symlink_to(shared_cache_dir(), target_is_directory=True)
    return path


def redis_url_for_tests() -> str:
    return os.environ.get("AVATAR_TEST_REDIS_URL") or DEFAULT_TEST_REDIS


def redis_answers(url: str, timeout: float = 1.0) -> str | None:
    """None when a Redis answers PING at `url`, else why not."""
    try:
        import redis
    except ImportError:
        return "the redis client package is not installed"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"no Redis answers at {url} ({type(exc).__name__}: {exc}); set AVATAR_TEST_REDIS_URL"


def postgres_url_for_tests() -> str:
    return os.environ.get("AVATAR_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES


def _psycopg_conninfo(url: str) -> tuple[str, str]:
    """(libpq connection string, database name) of a SQLAlchemy PostgreSQL URL."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False), parsed.database or "postgres"


def postgres_answers(url: str, timeout: float = 3.0) -> str | None:
    """None when a PostgreSQL server answers at `url`, else why not."""
    try:
        import psycopg
    except ImportError:
        return "the psycopg package is not installed (pip install 'psycopg[binary]')"
    try:
        with psycopg.connect(_psycopg_conninfo(url)[0], connect_timeout=int(timeout)) as con:
            con.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001
        from workers.settings import redact_url

        return (f"no PostgreSQL answers at {redact_url(url)} ({type(exc).__name__}: {str(exc).strip()[:200]}); "
                "start one (.ci/run does) or set AVATAR_TEST_POSTGRES_URL")


def require_postgres() -> str:
    """The test PostgreSQL server's URL; without one the test skips, saying why, except in CI
    (CI=true), where a missing server fails: the PostgreSQL job-store tests must run there."""
    import pytest

    url = postgres_url_for_tests()
    why = postgres_answers(url)
    if why:
        pytest.fail(why) if in_ci() else pytest.skip(why)
    return url


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (its URL), dropped afterwards with every connection to it."""
    import psycopg
    import sqlalchemy as sa

    conninfo, _ = _psycopg_conninfo(server_url)
    name = f"avatar_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_prefix() -> str:
    return f"t{os.getpid()}-{uuid.uuid4().hex[:8]}."


def deployment_env(data_dir: Path, broker: str, **extra: str) -> dict[str, str]:
    """AVATAR_* variables for a test deployment: sqlite (embedded) or a redis:// URL."""
    env = {
        "AVATAR_DATA_DIR": str(data_dir),
        "AVATAR_SOFT_TIME_LIMIT": "20",
        "AVATAR_TIME_LIMIT": "25",
        "AVATAR_VISIBILITY_TIMEOUT": "30",
        "AVATAR_MAX_RETRIES": "2",
        "AVATAR_RETRY_BACKOFF": "0.2",
        "AVATAR_RESULT_EXPIRES": "3600",
    }
    if broker != "sqlite":
        env["AVATAR_BROKER_URL"] = broker
        env["AVATAR_QUEUE_PREFIX"] = unique_prefix()
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cleanup_redis(url: str, prefix: str, job_ids=()) -> None:
    """Delete this test's keys from a shared Redis (queue bindings and results)."""
    if not prefix:
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        keys = [k for k in client.scan_iter(match=f"*{prefix}*", count=500)]
        keys += [f"celery-task-meta-{j}" for j in job_ids]
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001  (best effort)
        pass
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """Our own redis-server on a free port (for tests that restart it). persistent=True: with an
    append-only file, so that what was queued survives a restart (how a production broker should
    run); persistent=False: everything is lost on restart."""

    def __init__(self, workdir: Path, port: int | None = None, persistent: bool = True) -> None:
        self.persistent = persistent
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            raise RuntimeError("redis-server is not installed")

    def start(self, timeout: float = 10.0) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        subprocess.run([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
                        "--dir", str(self.workdir),
                        "--pidfile", str(self.workdir / "redis.pid"), "--logfile", str(self.workdir / "redis.log"),
                        "--daemonize", "yes"], check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while redis_answers(self.url, 0.2) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        pidfile = self.workdir / "redis.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True, timeout=30)
        if pid:  # wait until that process (ours) is gone
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()


def watch(api, job_id: str, timeout: float = 120, poll: float = 0.02) -> tuple[object, list[tuple[str, str, float]]]:
    """Poll a job to its end; returns the final JobStatus and every (state, stage, progress) seen."""
    seen: list[tuple[str, str, float]] = []
    deadline = time.monotonic() + timeout
    while True:
        status = api.status(job_id)
        key = (status.state, status.stage, round(status.progress, 3))
        if not seen or seen[-1] != key:
            seen.append(key)
        if status.state in FINAL:
            return status, seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status.state} after {timeout} s; seen {seen}")
        time.sleep(poll)


def wait_for(predicate, timeout: float, poll: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout} s")
        time.sleep(poll)
