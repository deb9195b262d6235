"""Worker processes for the embedded default (`avatar serve`) and for tests.

    proc = start_worker_process(settings)          # python -m workers.worker ..., logs to <data>/logs/worker.log
    wait_worker_ready(proc, settings)              # optional: block until it consumes
    ...
    stop_worker_process(proc)                      # SIGTERM: finish running jobs, then exit (SIGKILL after timeout)

    sup = WorkerSupervisor(settings).start()       # what `avatar serve` runs: the worker, restarted
    ...                                            # within seconds whenever it dies; sup.stop() at exit

The worker runs in its own session (Ctrl-C in a terminal reaches `avatar serve`, which stops it)
and exits by itself when the process that started it is gone. Its environment is the caller's
plus settings.to_env(), without AVATAR_API_TOKEN: workers never see the token.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

from workers.settings import Settings, get_settings
from workers.worker import parse_queues, ready_dir, run_worker

__all__ = ["start_worker_process", "stop_worker_process", "stop_worker_processes", "wait_worker_ready",
           "kill_worker_process", "WorkerSupervisor",
           "embedded_worker", "run_worker"]

_PROJECT_ROOT = Path(__file__).resolve().parents[1]
_SECRET_VARS = ("AVATAR_API_TOKEN",)


def worker_env(settings: Settings, base: dict | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in _SECRET_VARS:
        env.pop(name, None)
    env.update(settings.to_env())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("WARP_QUIET", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def start_worker_process(settings: Settings | None = None, queues: Sequence[str] | str = ("cpu", "gpu"),
                         concurrency: int = 1, *, loglevel: str = "INFO", exit_with_parent: bool = True,
                         extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `python -m workers.worker` in the background; output appends to <data>/logs/worker.log."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    logical = parse_queues(queues, settings)
    cmd = [sys.executable, "-m", "workers.worker", "--queues", ",".join(logical), "--concurrency", str(int(concurrency)),
           "--loglevel", loglevel]
    if exit_with_parent:
        cmd += ["--exit-with-parent", str(os.getpid())]
    env = worker_env(settings)
    if extra_env:
        env.update(extra_env)
    with open(settings.log_file, "ab") as log:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=str(_PROJECT_ROOT), start_new_session=True)


def wait_worker_ready(proc: subprocess.Popen, settings: Settings | None = None, timeout: float = 180.0) -> dict:
    """Block until the worker consumes (its ready marker appears); RuntimeError if it exits first."""
    settings = settings or get_settings()
    marker = ready_dir(settings) / f"{proc.pid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            with contextlib.suppress(ValueError, OSError):
                return json.loads(marker.read_text())
        code = proc.poll()
        if code is not None:
            raise RuntimeError(f"worker exited with status {code} before it was ready; see {settings.log_file}:\n"
                               + log_tail(settings))
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready after {timeout:g} s; see {settings.log_file}:\n" + log_tail(settings))


def log_tail(settings: Settings, lines: int = 30) -> str:
    try:
        return "\n".join(settings.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_worker_process(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """Warm shutdown (SIGTERM: running jobs finish and are acknowledged); SIGKILL the process group
    after `timeout` seconds (unfinished jobs are delivered again to the next worker)."""
    return stop_worker_processes([proc], timeout)[0]


def stop_worker_processes(procs: Sequence[subprocess.Popen], timeout: float = 60.0) -> list[int]:
    """stop_worker_process for several workers at once (they shut down in parallel, ~2-5 s)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_worker_process(proc)
        _reap_group(proc)
    return [proc.returncode for proc in procs]


def kill_worker_process(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its job processes at once (what a crash or the OOM killer does)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the worker leads its own session: pgid == pid
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(30)
    _reap_group(proc)


def _reap_group(proc: subprocess.Popen) -> None:
    # job processes of a worker that died could outlive it for a moment; end them (our own group only)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def embedded_worker(settings: Settings | None = None, queues: Sequence[str] | str = ("cpu", "gpu"),
                    concurrency: int = 1, ready_timeout: float = 180.0) -> Iterator[subprocess.Popen]:
    settings = settings or get_settings()
    proc = start_worker_process(settings, queues, concurrency)
    try:
        wait_worker_ready(proc, settings, ready_timeout)
        yield proc
    finally:
        stop_worker_process(proc)


class WorkerSupervisor:
    """The embedded worker, kept running: when its process exits without being asked to (SIGKILL,
    the OOM killer, a crash), its process group is cleared, the job store learns that it is dead
    (its running jobs are closed as lost and queued again by the next worker's heartbeat round,
    workers.api.JobAPI.recover_lost_runs) and a new worker is started within `restart_delay` s.
    A worker that keeps dying right after its start is restarted less and less often (up to
    `max_delay` s apart), so a broken installation does not spin."""

    def __init__(self, settings: Settings | None = None, concurrency: int = 1, *,
                 say: Callable[[str], None] | None = None, restart_delay: float = 0.5, max_delay: float = 30.0,
                 stable_after: float = 60.0) -> None:
        self.settings = settings or get_settings()
        self.concurrency = concurrency
        self.say = say or (lambda line: print(line, flush=True))
        self.restart_delay, self.max_delay, self.stable_after = restart_delay, max_delay, stable_after
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> "WorkerSupervisor":
        self.proc = start_worker_process(self.settings, concurrency=self.concurrency)
        self.say(f"started the embedded worker (pid {self.proc.pid}); its log: {self.settings.log_file}")
        self._thread = threading.Thread(target=self._watch, name="avatar-worker-supervisor", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        delay = self.restart_delay
        while not self._stopping.is_set():
            proc = self.proc
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            _reap_group(proc)  # its job processes must not go on running a job that will run again
            self._mark_dead(proc.pid)
            delay = self.restart_delay if time.monotonic() - started >= self.stable_after else \
                min(self.max_delay, delay * 2 if self.restarts else delay)
            self.say(f"error: the embedded worker (pid {proc.pid}) exited (status {code}); restarting it in "
                     f"{delay:g} s. See {self.settings.log_file}")
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self.proc = start_worker_process(self.settings, concurrency=self.concurrency)
                except OSError as exc:
                    self.say(f"error: could not restart the embedded worker: {exc}")
                    continue
                self.restarts += 1
            self.say(f"restarted the embedded worker (pid {self.proc.pid}, restart {self.restarts})")

    def _mark_dead(self, pid: int) -> None:
        # its running jobs go back to the queue now (status: retrying after a worker loss), not when
        # the next worker's heartbeat round notices the silence
        try:
            from workers.api import JobAPI

            api = JobAPI(self.settings)
            api.store.worker_gone("dead", host=socket.gethostname(), pid=pid)
            requeued = api.recover_lost_runs()
            if requeued:
                self.say(f"queued again the job(s) it was running: {', '.join(requeued)}")
        except Exception as exc:  # noqa: BLE001  (the heartbeat's age finds it anyway)
            self.say(f"warning: could not record the worker's death in the job store: {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 60.0) -> int | None:
        """Warm shutdown of the current worker (running jobs finish); no restart afterwards."""
        with self._lock:
            self._stopping.set()
        if self.proc is None:
            return None
        return stop_worker_process(self.proc, timeout)
