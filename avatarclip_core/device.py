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
