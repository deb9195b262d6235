"""The one device resolver: a config's device string -> where tensors go.

Config fields hold plain strings ("auto", "cpu", "cuda", "cuda:N") so configs stay torch-free and
checkable at submit (`check_device`); torch is asked only when a job resolves them.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator

from avatarclip_core.errors import UserInputError

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(name: object, what: str = "device") -> str:
    """`name` if it is a device string a config may hold, else UserInputError (no torch needed)."""
    if not isinstance(name, str) or not DEVICE_RE.match(name):
        raise UserInputError(f"{what} must be auto, cpu, cuda or cuda:N, got {name!r}")
    return name


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when CUDA is available, else 'cpu'; an explicit CUDA device without CUDA is an
    error that says so (never a silent fall-back to the CPU: a 30k-iteration job would take days)."""
    import torch

    check_device(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"device {name!r} requested but CUDA is not available on this machine")
    return name


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to `count` inside the block (0: left as they are), and put back
    after it: a count left behind changes later float reductions in the process.

    Jobs made of many small tensor ops (face fits, body and preview work) run best on one thread: a
    second one only adds hand-offs, and on a loaded machine each parallel op waits for a core
    (measured on 2 cores at load ~8: the create job's fit 1.4 s CPU / 1.5-2.2 s wall on one thread,
    7-12 s CPU / 15-20 s wall on two, with the same results)."""
    import torch

    previous = torch.get_num_threads()
    if count > 0 and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's worker threads set to `count` inside the block and put back after it (results do not
    depend on the count: OpenCV splits rows and output channels, not sums). A photo batch runs one busy
    process per core, where a second OpenCV thread in each only contends with the other process: on 2
    cores the bench's photo went 21.2-22.9 -> 23.2-23.6 photos/s once running, real photos 15.2-16.7 ->
    16.6-16.7 (A/B in turn, same process)."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def usable_cores(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The cores this process may use: the CPUs it is allowed to run on (a container's cpuset, `taskset`),
    capped by a cgroup CPU quota (`docker run --cpus 2`: v2 cpu.max, v1 cpu.cfs_quota_us / period),
    rounded up. os.cpu_count() is the host's count, which would size a pool of photo analysis
    processes (~0.3 GB each) for 64 cores inside a 2-core container."""
    import math
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota(Path(cgroup_root))
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs' worth of the cgroup's CFS quota, or None without one (unreadable files count as none)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000" or "200000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # v1: -1 = none
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (x86 AVX512-BF16 or AMX): only then is a bf16
    matrix product faster than fp32 here (elsewhere oneDNN emulates it, slower)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:  # not Linux: no cheap, reliable probe; fp32 is never wrong
        pass
    return False


def inference_dtype(precision: str, device: str):
    """The torch dtype for gradient-free inference at `precision` on a resolved `device`: 'auto' is fp16 on
    CUDA (the precision OpenAI ships CLIP in and runs it at), bf16 on a CPU with native bf16, else fp32."""
    import torch

    if precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if str(device).startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
