"""`avatar bench --only create` (avatar_studio/bench_create.py): what it records, without running jobs
(the runs are faked; timings are never asserted in tests)."""
from __future__ import annotations

from pathlib import Path


def test_the_create_bench_reports_the_first_run_apart_medians_and_the_default_threads_run(monkeypatch):
    from avatar_studio import bench, bench_create

    calls = []

    def fake_run(photo, out, extra=()):
        calls.append((Path(photo).name, out.name, list(extra)))
        n = len(calls)
        return {"wall_s": 10.0 * n, "cpu_s": float(n), "stages_s": {"fit": 1.0 * n, "preview": 0.5},
                "outside_job_s": 2.0, "load_avg": [1.0, 1.0]}

    monkeypatch.setattr(bench_create, "run_create_once", fake_run)
    result = bench.bench_create_job(repeats=5)  # at most 3 timed runs
    assert [c[1] for c in calls] == ["first", "run0", "run1", "run2", "threads0"]
    assert calls[0][0] == "astronaut.png" and calls[-1][2] == ["--set", "threads=0"]
    assert result["first_run"]["wall_s"] == 10.0 and len(result["runs"]) == 3
    assert result["median"]["wall_s"] == 30.0 and result["median"]["stages_s"] == {"fit": 3.0, "preview": 0.5}
    assert result["median"]["stage_share"]["fit"] == 0.1 and result["torch_default_threads"]["wall_s"] == 50.0
    assert "method=iterative" in result["command"] and "create" in bench.ALL_SECTIONS
