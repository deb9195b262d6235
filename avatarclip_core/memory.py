"""Peak memory of a stretch of work, per stage: resident set (Linux) and CUDA allocations.

Linux keeps the process's high-water mark of resident memory (VmHWM) and lets a process reset it by
writing "5" to /proc/self/clear_refs, so a stage's peak costs two small file operations and no
sampling thread. Elsewhere (or where that file is not writable) the process-wide peak since start
is reported instead, flagged as such. CUDA peaks come from torch's allocator statistics, read only
when torch is already imported and CUDA initialised (the web process never imports torch).
"""
from __future__ import annotations

import sys
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> bool:
    """Start a new measurement window; False when only the since-start peak can be read."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def read_peak() -> dict[str, float]:
    """Peak resident MB since the last reset (and peak CUDA MB allocated where CUDA is in use)."""
    peak: dict[str, float] = {}
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the since-start peak, in the units the platform reports
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform == "darwin" else 1.0)
    peak["rss_mb"] = round(kb / 1024.0, 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak
