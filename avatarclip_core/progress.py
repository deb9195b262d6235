"""Progress reporting shared by CLI (tqdm bar), workers (task state) and the web page.

A pipeline receives a `ProgressFn(stage, fraction, message)`; fraction is overall in [0, 1].
`StageTimer` maps per-stage progress to the overall fraction and records stage timings and peak
memory for provenance.json (and `avatar bench`).
"""
from __future__ import annotations

import time
from typing import Callable, Protocol


class ProgressFn(Protocol):
    def __call__(self, stage: str, fraction: float, message: str = "") -> None: ...


def no_progress(stage: str, fraction: float, message: str = "") -> None:
    return None


class StageTimer:
    """Runs named stages with weights; reports overall progress and keeps timings (seconds)."""

    def __init__(self, stages: dict[str, float], progress: ProgressFn | None = None) -> None:
        total = sum(stages.values()) or 1.0
        self._weights = {name: w / total for name, w in stages.items()}
        self._progress = progress or no_progress
        self._done = 0.0
        self.timings: dict[str, float] = {}
        self.peak_memory_mb: dict[str, dict[str, float]] = {}  # stage -> {"rss_mb", "cuda_mb"?}

    def within(self, stage: str) -> ProgressFn:
        """A ProgressFn for work inside `stage` (call it while the stage runs): its own 0..1 maps
        into the stage's share of the overall bar; its sub-stage names show in the message."""
        def report(sub: str, fraction: float, message: str = "") -> None:
            share = self._weights.get(stage, 0.0) * min(1.0, max(0.0, float(fraction)))
            self._progress(stage, min(1.0, self._done + share), message or sub)

        return report

    def run(self, stage: str, fn: Callable[[], object], message: str = ""):
        self._progress(stage, self._done, message or stage)
        from avatarclip_core.memory import read_peak, reset_peak

        windowed = reset_peak()
        started = time.perf_counter()
        result = fn()
        self.timings[stage] = round(time.perf_counter() - started, 4)
        self.peak_memory_mb[stage] = {**read_peak(), **({} if windowed else {"since_start": True})}
        self._done = min(1.0, self._done + self._weights.get(stage, 0.0))
        self._progress(stage, self._done, f"{stage} done")
        return result
