"""avatarclip_core/tensor_cache.py: the per-user caches of computed tensors (face engine head, landmark
table, face prior): keyed by their inputs, written whole, damaged files recomputed, old files pruned."""
from __future__ import annotations

import os

import torch

from avatarclip_core import tensor_cache as tc


def test_cached_values_round_trip_and_a_damaged_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    key = tc.Digest("v1").tensors(torch.arange(3.0)).hexdigest()
    assert key != tc.Digest("v1").tensors(torch.arange(3.0) + 1).hexdigest()
    assert key != tc.Digest("v1").tensors(torch.arange(3)).hexdigest()  # the dtype is part of the key
    path = tc.cache_file("kind", f"thing_{key}.pt")
    assert path.parent == tmp_path / "kind"
    calls = []
    value = {"a": torch.ones(2), "names": ["x"], "n": 1.5}
    compute = lambda: calls.append(1) or value  # noqa: E731
    first, again = tc.cached(path, compute), tc.cached(path, compute)
    assert len(calls) == 1 and torch.equal(again["a"], value["a"]) and again["names"] == ["x"]
    path.write_bytes(b"broken")
    assert torch.equal(tc.cached(path, compute)["a"], first["a"]) and len(calls) == 2
    assert tc.cached(path, compute, accept=lambda v: False) and len(calls) == 3  # refused: recomputed
    assert not list(path.parent.glob(".*.tmp"))


def test_only_the_most_recently_used_files_of_a_kind_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    paths = [tc.cache_file("kind", f"thing_{i}.pt") for i in range(tc.KEEP + 2)]
    other = tc.cache_file("kind", "other_0.pt")
    tc.cached(other, lambda: torch.zeros(1))
    for i, path in enumerate(paths):
        tc.cached(path, lambda: torch.zeros(1))
        os.utime(path, (1000 + i, 1000 + i))
    tc.cached(paths[0], lambda: torch.zeros(1))  # read: now the most recently used
    tc.cached(tc.cache_file("kind", "thing_new.pt"), lambda: torch.zeros(1))
    left = sorted(p.name for p in (tmp_path / "kind").glob("thing_*.pt"))
    assert len(left) == tc.KEEP and "thing_0.pt" in left and "thing_new.pt" in left and "thing_1.pt" not in left
    assert other.is_file()  # another kind is not touched
