"""Results that every process would compute again the same way (tensors, lists, numbers), kept as
files in the user cache folder (`paths.user_cache_dir_path()`, beside the body model's build).

A cache file is named `<kind>_<hash>.pt`, the hash of everything its value is computed from (`Digest`:
code, versions, input tensors' values), so a changed input is a new file and never a stale read; of
each kind the KEEP most recently used files are kept (a code change leaves its old files behind, up
to ~19 MB each for the face engine's head). Files are written
atomically (whole or absent across processes); one that cannot be read is computed again and
replaced; a folder that cannot be written only means computing each time. Values are read with
`torch.load(weights_only=True)`: tensors, dicts, lists, strings and numbers only.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import torch

T = TypeVar("T")
KEEP = 4  # files of one kind kept (most recently used first): a few installs or versions side by side


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
    except Exception:  # any damage (truncated, overwritten, not a plain value) means: compute it again
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


def prune(path: Path, keep: int = KEEP) -> None:
    """Remove all but the `keep` most recently used files of `path`'s kind (`<kind>_*.pt` beside it)."""
    kind = path.name.rsplit("_", 1)[0]
    files = []
    for other in path.parent.glob(f"{kind}_*.pt"):
        try:
            files.append((other.stat().st_mtime, other))
        except OSError:
            continue
    for _, other in sorted(files, reverse=True)[keep:]:
        other.unlink(missing_ok=True)


def cached(path: Path | None, compute: Callable[[], T], accept: Callable[[object], bool] = lambda v: True) -> T:
    """The value in `path` when there is one `accept` takes, else compute() (and store it, pruning
    the kind's older files)."""
    value = read_cached(path)
    if value is not None and accept(value):
        try:
            os.utime(path)  # used now: the last to be pruned
        except OSError:
            pass
        return value
    value = compute()
    write_cached(path, value)
    if path is not None:
        prune(path)
    return value
