"""The one device resolver: a config's device string -> where tensors go.

Config fields hold plain strings ("auto", "cpu", "cuda", "cuda:N") so configs stay torch-free and
checkable at submit (`check_device`); torch is asked only when a job resolves them.
"""
from __future__ import annotations

import contextlib
import re
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
