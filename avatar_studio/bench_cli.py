"""`avatar bench --only cli`: what a user waits for at the command line, timed from outside the process.

- first_line_s: for each command, seconds from starting `avatar ...` to its first line of output
  (progress bar, notice or result) on stdout or stderr; the process is stopped once it printed.
- photo_cold_s: one `avatar photo PHOTO -o OUT --method oneshot` in a fresh process (`python -m
  avatar_studio.cli`, which ends as the `avatar` script does: console_main's hard exit), wall seconds
  (median of several runs after an untimed first one, reported as `first_run`: caches on disk as a user
  has them after a first run), and cpu_s: the process's user + system CPU seconds (median), which a
  loaded machine inflates far less than wall.
- serve_fresh_data_s: `avatar serve` (with its embedded worker, as a user starts it) on a fresh data
  folder: seconds until the page answers (`page`: the browser's GET of / with Accept text/html, a
  notice while the studio warms) and until the studio is ready (`ready`: /healthz 200).
- reference_python_s: a fresh `python -c "import numpy"` measured in the same run: the machine's
  start-up cost at that moment, so ratios survive a loaded machine.
"""
from __future__ import annotations

import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# one invocation per command: each does real work (the output folder is a fresh temp path)
_FIRST_LINE_COMMANDS = {
    "body": ["body", "-o", "{tmp}/body"],
    "text": ["text", "--shape", "a tall man", "-o", "{tmp}/text"],
    "photo": ["photo", "{photo}", "-o", "{tmp}/photo", "--method", "oneshot"],
    "photo_batch": ["photo", "{photo}", "{photo}", "-o", "{tmp}/batch", "--method", "oneshot"],
    "sliders": ["sliders", "--group", "phenotype"],
    "face-engine": ["face-engine", "spec"],
    "eval": ["eval", "photo", "--dir", "{photo_dir}", "--methods", "mean", "-o", "{tmp}/eval"],
    "train": ["train", "shape", "-o", "{tmp}/train"],
    "warmup": ["warmup"],
    "jobs": ["jobs", "list", "--limit", "1"],
    "bench": ["bench", "--only", "body", "-o", "{tmp}/bench.json"],
    "serve": ["serve", "--port", "0", "--no-worker"],
    "worker": ["worker", "--queues", "cpu"],
}


def _avatar_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "avatar_studio.cli", *args]


def first_output_seconds(args: list[str], timeout: float = 60.0, env: dict | None = None) -> float:
    """Seconds until `avatar ARGS` writes its first byte to stdout or stderr (then it is stopped);
    the full run time when it finishes silently; `timeout` when it says nothing for that long."""
    started = time.perf_counter()
    proc = subprocess.Popen(_avatar_argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    selector.register(proc.stderr, selectors.EVENT_READ)
    try:
        while True:
            remaining = timeout - (time.perf_counter() - started)
            if remaining <= 0:
                return timeout
            for key, _ in selector.select(remaining):
                if os.read(key.fileobj.fileno(), 1):
                    return time.perf_counter() - started
                selector.unregister(key.fileobj)  # closed: the process ended (or closed that pipe)
            if not selector.get_map():
                return time.perf_counter() - started
    finally:
        selector.close()
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the command and anything it started
        except ProcessLookupError:
            pass
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        stream.close()


def wall_seconds(args: list[str], env: dict | None = None, timeout: float = 600.0) -> float:
    return wall_and_cpu_seconds(args, env, timeout)[0]


def wall_and_cpu_seconds(args: list[str], env: dict | None = None, timeout: float = 600.0) -> tuple[float, float]:
    """Wall seconds of `avatar ARGS` run to its end, and its user + system CPU seconds (its children's too)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(_avatar_argv(args), capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"avatar {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def serve_fresh_data_seconds(timeout: float = 300.0) -> dict:
    """`avatar serve` on a new data folder (the user's body-model cache as it is): seconds to the page
    and to ready (module doc)."""
    import urllib.error
    import urllib.request

    from web.app import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, AVATAR_DATA_DIR=data)
        started = time.perf_counter()
        proc = subprocess.Popen(_avatar_argv(["serve", "--port", str(port)]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        found: dict[str, float] = {}
        try:
            for name, path, accept in (("page", "/", "text/html"), ("ready", "/healthz", "application/json")):
                while name not in found and time.perf_counter() - started < timeout:
                    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": accept})
                    try:
                        with urllib.request.urlopen(request, timeout=5) as answer:
                            if answer.status == 200:
                                found[name] = round(time.perf_counter() - started, 2)
                    except (urllib.error.URLError, ConnectionError, TimeoutError):
                        time.sleep(0.1)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return found


def _reference_python_s(repeats: int) -> float:
    def run() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        return time.perf_counter() - started

    return round(statistics.median(run() for _ in range(repeats)), 3)


def bench_cli(repeats: int = 3, photo: Path | None = None, commands: tuple[str, ...] | None = None) -> dict:
    from PIL import Image
    from skimage import data

    results: dict = {"reference_python_s": _reference_python_s(repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        if photo is None:
            photo = Path(tmp) / "in" / "astronaut.png"
            photo.parent.mkdir()
            Image.fromarray(data.astronaut()).save(photo)
        values = {"tmp": tmp, "photo": str(photo), "photo_dir": str(photo.parent)}
        first: dict[str, float] = {}
        for name, template in _FIRST_LINE_COMMANDS.items():
            if commands and name not in commands:
                continue
            first[name] = round(first_output_seconds([a.format(**values) for a in template]), 3)
        results["first_line_s"] = first
        results["first_line_max_s"] = max(first.values()) if first else None
        def cold_run(name: str) -> tuple[float, float]:
            return wall_and_cpu_seconds(["photo", str(photo), "-o", f"{tmp}/{name}", "--method", "oneshot", "-q"])

        # an untimed first run fills what a user's first run fills (kernel and asset caches, the page cache
        # of torch's libraries); it is reported apart, not in the median
        first_run_s, _ = cold_run("cold-first")
        timed = [cold_run(f"cold{i}") for i in range(repeats)]
        runs = [wall for wall, _ in timed]
        if not commands or "serve" in commands:
            results["serve_fresh_data_s"] = serve_fresh_data_seconds()
        results["photo_cold_s"] = {"median": round(statistics.median(runs), 3),
                                   "runs": [round(r, 3) for r in runs], "first_run": round(first_run_s, 3),
                                   "cpu_s": round(statistics.median(cpu for _, cpu in timed), 3)}
    return results
