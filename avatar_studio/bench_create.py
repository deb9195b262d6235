"""`avatar bench --only create`: the whole create job (issue 15) as a user runs it, timed per stage.

Each run is a fresh `avatar create --photo PHOTO --body "a very tall heavy man" --look "red jacket,
blue jeans, glasses" --motion wave --preset preview --set method=iterative` process (imports, model
loads and all; PHOTO default skimage's astronaut). Recorded:
- wall_s: seconds from starting the process to its exit (outside view);
- cpu_s: the child's user + system CPU seconds (a loaded machine inflates wall time far more);
- stages_s: provenance.json's per-stage wall seconds, and each stage's share of the job;
- outside_job_s: wall seconds not inside a stage (interpreter start, imports, config, report);
- load_avg: the 1-minute load average before and after, so figures from a busy machine read as such.
The first run fills the per-user caches (body model, face engine head, landmark table, face prior) as
a user's first job does; it is reported apart, the medians are of the runs after it. With
`compare_threads`, one more run with `--set threads=0` (torch's default thread count) shows what the
job's one-thread setting is worth on this machine.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BODY = "a very tall heavy man"
LOOK = "red jacket, blue jeans, glasses"
MOTION = "wave"
# the photo (a frontal, high-resolution face) makes `auto` choose the iterative fit; the bench's
# default photo might not, so the method is named: every run times the same, slower path
METHOD = "iterative"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_create_once(photo: Path, out: Path, extra: list[str] = (), timeout: float = 900.0) -> dict:
    """One fresh `avatar create` process: wall and CPU seconds, stage timings from provenance.json."""
    argv = [sys.executable, "-m", "avatar_studio.cli", "create", "--photo", str(photo), "--body", BODY,
            "--look", LOOK, "--motion", MOTION, "--preset", "preview", "--set", f"method={METHOD}",
            "-o", str(out), "--force", "-q", *extra]
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_children()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"avatar create failed: {done.stderr.strip()[-600:]}")
    stages = json.loads((out / "provenance.json").read_text())["timings_s"]
    return {"wall_s": round(wall, 3), "cpu_s": round(_cpu_children() - cpu_before, 3),
            "stages_s": stages, "outside_job_s": round(wall - sum(stages.values()), 3),
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def _summary(runs: list[dict]) -> dict:
    stages = {name: round(statistics.median(r["stages_s"].get(name, 0.0) for r in runs), 3)
              for name in runs[0]["stages_s"]}
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"wall_s": round(wall, 3), "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "outside_job_s": round(statistics.median(r["outside_job_s"] for r in runs), 3),
            "stages_s": stages, "stage_share": {k: round(v / wall, 3) for k, v in stages.items()}}


def bench_create(repeats: int = 3, photo: Path | None = None, compare_threads: bool = True) -> dict:
    from PIL import Image
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        if photo is None:  # a frontal face photo every install has (skimage's astronaut)
            photo = Path(tmp) / "astronaut.png"
            Image.fromarray(data.astronaut()).save(photo)
        first = run_create_once(photo, Path(tmp) / "first")
        runs = [run_create_once(photo, Path(tmp) / f"run{i}") for i in range(max(1, repeats))]
        results = {"command": f"avatar create --photo {Path(photo).name} --body '{BODY}' --look '{LOOK}' "
                              f"--motion {MOTION} --preset preview --set method={METHOD}",
                   "cpu_count": os.cpu_count(), "first_run": first, "median": _summary(runs), "runs": runs}
        if compare_threads:
            results["torch_default_threads"] = run_create_once(photo, Path(tmp) / "threads0", ["--set", "threads=0"])
    return results
