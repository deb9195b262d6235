"""Results that every process would compute again the same way (tensors, lists, numbers), kept as
files in the user cache folder (`paths.user_cache_dir_path()`, beside the body model's build).

A cache file is named by a hash of everything its value is computed from (`Digest`: code, versions,
input tensors' values), so a changed input is a new file and never a stale read. Files are written
atomically (whole or absent across processes); one that cannot be read is computed again and
replaced; a folder that cannot be written only means computing each time. Values are read with
`torch.load(weights_only=True)`: tensors, dicts, lists, strings and numbers only.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import torch

T = TypeVar("T")


class Digest:
    """sha256 over the inputs of a cached value: text, file contents and tensors (dtype, shape, values)."""

    def __init__(self, *texts: str):
        self._h = hashlib.sha256()
        self.text(*texts)

    def text(self, *texts: str) -> "Digest":
        for t in texts:
            self._h.update(t.encode() + b"\0")
        return self

    def files(self, paths: Iterable[Path]) -> "Digest":
        for path in paths:
            self._h.update(Path(path).read_bytes() + b"\0")
        return self

    def tensors(self, *tensors: torch.Tensor) -> "Digest":
        for t in tensors:
            t = t.detach().cpu().contiguous()
            self._h.update(f"{t.dtype}{tuple(t.shape)}".encode() + t.numpy().tobytes())
        return self

    def hexdigest(self, length: int = 24) -> str:
        return self._h.hexdigest()[:length]


def cache_file(folder: str, name: str) -> Path | None:
    """`name` in the user cache folder's `folder` (created); None when it cannot be created."""
    from avatarclip_core.paths import user_cache_dir_path

    path = user_cache_dir_path() / folder
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path / name


def read_cached(path: Path | None):
    """The value stored in `path`, or None (absent, damaged, or not a plain value)."""
    if path is None or not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return None


def write_cached(path: Path | None, value) -> None:
    if path is None:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(value, partial)
        os.replace(partial, path)
    except OSError:  # read-only or full: computed again next time
        partial.unlink(missing_ok=True)


def cached(path: Path | None, compute: Callable[[], T], accept: Callable[[object], bool] = lambda v: True) -> T:
    """The value in `path` when there is one `accept` takes, else compute() (and store it)."""
    value = read_cached(path)
    if value is not None and accept(value):
        return value
    value = compute()
    write_cached(path, value)
    return value
