"""StageTimer: overall progress, stage timings and per-stage peak memory."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from avatarclip_core.progress import StageTimer


def test_progress_fractions_follow_the_stage_weights():
    seen: list[tuple[str, float]] = []
    timer = StageTimer({"a": 1, "b": 3}, lambda stage, fraction, message="": seen.append((stage, fraction)))
    timer.run("a", lambda: None)
    timer.run("b", lambda: None)
    assert seen == [("a", 0.0), ("a", 0.25), ("b", 0.25), ("b", 1.0)]
    assert set(timer.timings) == {"a", "b"}


_MEASURE = """
import json
import numpy as np
from avatarclip_core.memory import read_peak, reset_peak
from avatarclip_core.progress import StageTimer

def allocate_300_mb():
    block = np.ones(300 * 2**20 // 8)  # touched pages count towards the resident set
    return float(block[::4096].sum())

windowed = reset_peak()
baseline = read_peak()["rss_mb"]
timer = StageTimer({"big": 1, "small": 1})
timer.run("big", allocate_300_mb)
timer.run("small", lambda: sum(range(1000)))
print(json.dumps({"windowed": windowed, "baseline": baseline, "peaks": timer.peak_memory_mb}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-stage windows need Linux's clear_refs")
def test_peak_memory_is_measured_per_stage():
    # a fresh interpreter: in the test process, memory freed by earlier tests stays resident and
    # would be reused by the allocation without raising the resident set
    out = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["windowed"]
    big = result["peaks"]["big"]["rss_mb"]
    small = result["peaks"]["small"]["rss_mb"]
    assert big >= result["baseline"] + 250
    # the second window starts after the big block was freed: its peak is well below the first
    assert small < big - 200
