"""A whole studio in one call, for tests and demos: a data folder, optionally the embedded worker
process, and the web server on a free port.

    with studio(tmp_path, worker=True) as s:
        s.url, s.api, s.settings
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from avatarclip_core.paths import data_dir_path
from web.app import RunningServer, serve_app, start_server


@dataclass
class Studio:
    url: str
    settings: Any
    api: Any
    server: RunningServer
    worker: Any = None
    retention: Any = None  # web.retention.RetentionRounds: sweep() runs a round now


def make_data_dir(path: Path, cache_from: Path | None = None) -> Path:
    """A fresh data folder whose cache/ links to an existing one (the body model's build is reused)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cache_from = Path(cache_from or data_dir_path() / "cache").resolve()
    cache_from.mkdir(parents=True, exist_ok=True)
    link = path / "cache"
    if not link.exists():
        link.symlink_to(cache_from, target_is_directory=True)
    return path


@contextlib.contextmanager
def studio(data_dir: Path, *, worker: bool = True, token: str | None = None, upload_max_bytes: int | None = None,
           cache_from: Path | None = None, ready_timeout: float = 180.0, own_gradio_temp: bool = False,
           settings_overrides: dict | None = None) -> Iterator[Studio]:
    """own_gradio_temp: Gradio's temp folder inside data_dir, as `avatar serve` has it (GRADIO_TEMP_DIR is
    set while the studio runs); settings_overrides: Settings fields (e.g. retention ages)."""
    from workers.api import JobAPI
    from workers.settings import Settings

    data_dir = make_data_dir(data_dir, cache_from)
    overrides: dict[str, Any] = {"api_token": token}
    if upload_max_bytes is not None:
        overrides["upload_max_bytes"] = upload_max_bytes
    overrides.update(settings_overrides or {})
    # always the embedded SQLite broker in data_dir: a shared Redis would let another test's worker
    # (with another data folder) take these jobs
    dropped = ("AVATAR_API_TOKEN", "AVATAR_BROKER_URL", "AVATAR_RESULT_BACKEND", "AVATAR_QUEUE_PREFIX")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["AVATAR_DATA_DIR"] = str(data_dir)  # broker, result store and jobs all live there
    settings = Settings.from_env(env).replace(**overrides)
    proc = None
    if worker:
        from workers.embedded import start_worker_process

        proc = start_worker_process(settings)
    try:
        if proc is not None:
            from workers.embedded import wait_worker_ready

            wait_worker_ready(proc, settings, ready_timeout)
        api = JobAPI(settings)
        with _gradio_temp_dir(data_dir if own_gradio_temp else None):
            app, retention = serve_app(api, settings, retention_interval=0)
            server = start_server(app)
            try:
                yield Studio(server.url, settings, api, server, proc, retention)
            finally:
                server.stop()
    finally:
        if proc is not None:
            from workers.embedded import stop_worker_process

            stop_worker_process(proc)


@contextlib.contextmanager
def _gradio_temp_dir(data_dir: Path | None) -> Iterator[None]:
    if data_dir is None:
        yield
        return
    from web.retention import own_gradio_temp_dir

    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(own_gradio_temp_dir(data_dir))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


def wait_for_job(client: Any, job_id: str, timeout: float = 600.0, poll: float = 0.5) -> dict:
    """Poll /job_status through a gradio_client.Client until the job ends; returns its last status."""
    import time

    from web.jobs import TERMINAL_STATES

    started = time.monotonic()
    while True:
        status = client.predict(job_id, api_name="/job_status")
        if status["state"] in TERMINAL_STATES:
            return status
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"job {job_id} still {status['state']} after {timeout:g} s: {status}")
        time.sleep(poll)
