"""Raw REST soak: the web server's memory over many `/gradio_api/call/<api>` requests (POST, then
GET of the event stream, as the README's curl example does), measured on the server process.

    raw_call_growth(calls=1000) -> {"calls": 1000, "rss_start_mb": ..., "growth_mb": ...,
                                    "growth_mb_per_1000_calls": ..., "calls_per_s": ...}

The server runs in its own process (`python -m web.soak serve DATA_DIR PORT`: the studio's web
app on a JobAPI, no worker) so that its resident set is not mixed with the client's. Used by the
slow-tier soak test and `avatar bench` (section `web`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN_JOB = "20240101-000000-0123456789ab"  # well-formed, never stored: the error path


def rss_mb(pid: int) -> float:
    """Resident set of a process (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def raw_call(base: str, api_name: str, *args, timeout: float = 60.0) -> tuple[str, object]:
    """One raw call: POST the arguments, GET the event stream; returns (event, data) of its end
    ('complete' or 'error')."""
    body = json.dumps({"data": list(args)}).encode()
    req = urllib.request.Request(f"{base}/gradio_api/call/{api_name}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        event_id = json.loads(resp.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/{api_name}/{event_id}", timeout=timeout) as resp:
        text = resp.read().decode()
    event, data = "", None
    for line in text.splitlines():
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line[6:])
            return event, data
    raise RuntimeError(f"no result in the event stream of {api_name}: {text[:300]!r}")


def start_server(data_dir: Path, port: int, timeout: float = 180.0) -> subprocess.Popen:
    env = dict(os.environ, AVATAR_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    env.pop("AVATAR_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "web.soak", "serve", str(data_dir), str(port)], cwd=str(ROOT),
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=5):
                return proc
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                raise RuntimeError(f"the soak server exited: {proc.stderr.read().decode()[-2000:]}") from None
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"the soak server did not answer within {timeout:g} s") from None
            time.sleep(0.3)


def raw_call_growth(calls: int = 1000, warmup: int = 150, data_dir: Path | None = None) -> dict:
    """RSS growth of the web server over `calls` raw /job_status calls (half of them for an unknown
    job: the error path) after `warmup` calls (lazy imports, caches, Gradio's bounded records)."""
    from web.app import free_port
    from web.testing import make_data_dir

    with tempfile.TemporaryDirectory(prefix="avatar-soak-") as tmp:
        data = make_data_dir(Path(data_dir) if data_dir else Path(tmp) / "data")
        port = free_port()
        proc = start_server(data, port)
        base = f"http://127.0.0.1:{port}"
        try:
            job = _one_job(base)
            for i in range(warmup):
                raw_call(base, "job_status", job if i % 2 else UNKNOWN_JOB)
            start = rss_mb(proc.pid)
            t0 = time.perf_counter()
            outcomes = {"complete": 0, "error": 0}
            mid = start
            for i in range(calls):
                if i == calls // 2:
                    mid = rss_mb(proc.pid)
                event, _ = raw_call(base, "job_status", job if i % 2 else UNKNOWN_JOB)
                outcomes[event] = outcomes.get(event, 0) + 1
            elapsed = time.perf_counter() - t0
            time.sleep(1.0)  # the reaper's last round
            end = rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    growth = end - start
    return {"calls": calls, "warmup_calls": warmup, "outcomes": outcomes, "rss_start_mb": round(start, 1),
            "rss_end_mb": round(end, 1), "growth_mb": round(growth, 2),
            # the slope: a leak grows in both halves; a one-off step (a first-touched page, an allocator
            # arena) only once
            "growth_second_half_mb": round(end - mid, 2),
            "growth_mb_per_1000_calls": round(growth * 1000 / max(1, calls), 2),
            "calls_per_s": round(calls / elapsed, 1)}


def _one_job(base: str) -> str:
    """A queued sliders job (no worker runs it): the success path of /job_status."""
    event, data = raw_call(base, "create_from_sliders", json.dumps({"height": 0.7}))
    if event != "complete":
        raise RuntimeError(f"could not submit a job: {data}")
    return data[0]


def _serve(data_dir: str, port: int) -> None:
    import uvicorn

    from web.app import create_server_app
    from workers.api import JobAPI
    from workers.settings import Settings

    settings = Settings.from_env(dict(os.environ, AVATAR_DATA_DIR=data_dir))
    uvicorn.run(create_server_app(JobAPI(settings), settings=settings), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps(raw_call_growth(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), indent=2))
