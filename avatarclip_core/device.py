"""The one device resolver: a config's device string -> where tensors go.

Config fields hold plain strings ("auto", "cpu", "cuda", "cuda:N") so configs stay torch-free and
checkable at submit (`check_device`); torch is asked only when a job resolves them.
"""
from __future__ import annotations

import re

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
