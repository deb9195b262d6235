"""A worker in the foreground: `python -m workers.worker --queues cpu,gpu --concurrency 1`
(what `avatar worker` and the embedded worker of `avatar serve` run).

It consumes the given logical queues (cpu, gpu) with a prefork pool: the main process holds the
broker connection and imports the job kinds' heavy modules (torch, the pipelines) once, then forks
`concurrency` job processes. Settings come from the AVATAR_* environment (workers.settings).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Sequence

from workers.settings import ALL_QUEUES, Settings, SettingsError, get_settings

log = logging.getLogger("workers.worker")


def parse_queues(queues: str | Sequence[str] | None, settings: Settings) -> tuple[str, ...]:
    if queues is None:
        return settings.queues
    items = queues.split(",") if isinstance(queues, str) else list(queues)
    items = [q.strip() for q in items if q and q.strip()]
    unknown = [q for q in items if q not in ALL_QUEUES]
    if unknown or not items:
        raise SettingsError(f"unknown queue(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(ALL_QUEUES)}")
    return tuple(dict.fromkeys(items))


def ready_dir(settings: Settings):
    return settings.queue_dir / "workers"


def preload_kinds() -> None:
    """Import what the registered kinds need before the pool forks (the first job starts faster)."""
    from avatar_studio.kinds import _KINDS

    for kind in _KINDS.values():
        for module in kind.preload:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001  (the job itself will report it)
                log.warning("could not preload %s for %s jobs: %s", module, kind.name, exc)


def _watch_parent(parent_pid: int) -> None:
    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                log.warning("parent process %d is gone; shutting down", parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


REGISTER_TIMEOUT_S = 30.0  # the longest a starting worker waits for its first heartbeat to be stored


def run_worker(queues: str | Sequence[str] | None = None, concurrency: int | None = None, *,
               loglevel: str = "INFO", logfile: str | None = None, settings: Settings | None = None,
               hostname: str | None = None, exit_with_parent: int | None = None) -> None:
    """Run a worker in this process until it is stopped (SIGTERM: finish the running jobs, then exit)."""
    settings = settings or get_settings()
    logical = parse_queues(queues, settings)
    from celery import signals

    from workers.app import get_app

    concurrency = int(concurrency or settings.worker_concurrency)
    app = get_app(settings)
    app.set_current()
    app.set_default()
    preload_kinds()
    marker = ready_dir(settings) / f"{os.getpid()}.json"
    for stale in ready_dir(settings).glob("*.json"):  # markers of workers that were killed
        try:
            os.kill(int(stale.stem), 0)
        except (ValueError, ProcessLookupError):
            stale.unlink(missing_ok=True)
        except PermissionError:
            pass

    def sweep_lost_jobs() -> None:
        from workers.api import JobAPI

        api = JobAPI(settings)
        while True:
            time.sleep(settings.requeue_interval)
            try:
                api.requeue_lost(min_age=settings.requeue_interval)
            except NotImplementedError:
                return
            except Exception as exc:  # noqa: BLE001  (the broker may be down right now; next round)
                log.warning("looking for lost jobs failed: %s: %s", type(exc).__name__, exc)

    stopping = threading.Event()
    node_name: list[str] = []

    def heartbeat(node: str, registered: threading.Event) -> None:
        # The job store learns every heartbeat_interval that this worker is alive; the same round
        # closes the runs of workers that are not and queues their jobs again (any live worker
        # does it: a worker cannot report its own death).
        host, pid = socket.gethostname(), os.getpid()
        api = None
        while not stopping.is_set():
            try:
                if api is None:
                    from workers.api import JobAPI

                    api = JobAPI(settings)
                api.store.heartbeat(node, host, pid)
                registered.set()
                if stopping.is_set():  # shutting down meanwhile: on_shutdown's 'stopped' must win
                    api.store.worker_gone("stopped", node=node)
                    return
                api.recover_lost_runs()
            except Exception as exc:  # noqa: BLE001  (a busy store or broker: next round)
                log.warning("heartbeat round failed: %s: %s", type(exc).__name__, exc)
            registered.set()  # tried once: on_ready waits no longer, later rounds retry
            stopping.wait(settings.heartbeat_interval)

    def on_ready(sender=None, **_):
        node = getattr(sender, "hostname", None)
        if node:
            node_name.append(node)
            registered = threading.Event()
            threading.Thread(target=heartbeat, args=(node, registered), name="heartbeat", daemon=True).start()
            # Consume (and say ready) only once the store knows this worker: the runs of a worker without
            # a row are left to the visibility timeout, so a worker killed before its first beat (seen in
            # CI under load, PostgreSQL) left its job stuck for minutes instead of retried at once. This
            # handler runs on the consumer's loop, which takes no message meanwhile.
            registered.wait(REGISTER_TIMEOUT_S)
        if settings.requeue_interval > 0:
            threading.Thread(target=sweep_lost_jobs, name="requeue-lost", daemon=True).start()
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "hostname": getattr(sender, "hostname", None),
                                   "queues": list(logical), "concurrency": concurrency, "ready": time.time()}))
        os.replace(tmp, marker)

    def on_shutdown(**_):
        if os.getpid() == int(marker.stem):
            marker.unlink(missing_ok=True)

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
    if exit_with_parent:
        _watch_parent(exit_with_parent)
    argv = ["worker", "--queues", ",".join(settings.queue_name(q) for q in logical),
            "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", loglevel,
            "--hostname", hostname or f"avatar-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if logfile:
        argv += ["--logfile", str(logfile)]
    log.info("worker settings: %s", settings.describe())
    try:
        app.worker_main(argv)
    finally:
        # the pool is joined: whatever run is still open now was cut short (cold shutdown) and is lost
        stopping.set()
        if node_name:
            try:
                from workers.store import JobStore

                JobStore(settings.job_store_url).worker_gone("stopped", node=node_name[0])
            except Exception as exc:  # noqa: BLE001  (its heartbeat ages anyway)
                log.warning("could not record the shutdown in the job store: %s", exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", help=f"comma-separated queues to consume (default: AVATAR_QUEUES or "
                                         f"{','.join(ALL_QUEUES)})")
    parser.add_argument("--concurrency", type=int, help="job processes (default: AVATAR_WORKER_CONCURRENCY or 1)")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--logfile", help="log here instead of stderr")
    parser.add_argument("--hostname", help="Celery node name (default avatar-<pid>@<host>)")
    parser.add_argument("--exit-with-parent", type=int, metavar="PID", help="shut down when process PID exits")
    args = parser.parse_args(argv)
    try:
        run_worker(args.queues, args.concurrency, loglevel=args.loglevel, logfile=args.logfile,
                   hostname=args.hostname, exit_with_parent=args.exit_with_parent)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    # Celery has stopped (jobs acknowledged, pool joined): skip the interpreter's teardown of torch &
    # co., which adds seconds to every shutdown.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
