"""The slow, unchanging part of building the Anny face engine, kept in the user cache folder.

`AnnyFaceEngine()` evaluated Anny ~300 times for the head model's slider bases and phenotype table
(head.build_head_model) and draped the long hair styles over the rest body (assets.hair.build_hair):
2-4 s of CPU in every process that fits or builds a face (photo and create jobs, workers), with the
same result each time. `cached_head_and_hair` stores both in `$AVATAR_CACHE_DIR` (else
~/.cache/avatar-studio)/face2param, named by a hash of what they are computed from: the code of
face2param/engines and avatarclip_core/body, the versions of anny, torch and numpy, the body's
configuration, faces and default rest vertices. Read back they are the built tensors bit for bit.
A missing, damaged or unwritable cache only means building them as before.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path

import torch

from .assets import BlendAsset, head_frame
from .assets.hair import build_hair
from .head import HeadModel, build_head_model

_ENGINE_CODE = Path(__file__).resolve().parent
_BODY_CODE = _ENGINE_CODE.parents[1] / "avatarclip_core" / "body"


def head_cache_path(body, rest_body: torch.Tensor) -> Path | None:
    """The cache file for this body (None when the user cache folder cannot be created)."""
    from avatarclip_core.child_json import source_key
    from avatarclip_core.paths import user_cache_dir_path

    h = hashlib.sha256(source_key([_ENGINE_CODE, _BODY_CODE], ["anny", "torch", "numpy"]).encode())
    h.update(f"{type(body).__module__}.{type(body).__qualname__}|{getattr(body, 'config', None)!r}".encode())
    h.update(repr([s.name for s in body.sliders()]).encode())
    for t in (rest_body, body.faces):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode() + t.numpy().tobytes())
    folder = user_cache_dir_path() / "face2param"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"engine_head_{h.hexdigest()[:24]}.pt"


def _build(body, rest_body: torch.Tensor) -> tuple[HeadModel, BlendAsset]:
    head = build_head_model(body)
    return head, build_hair(head_frame(head.neutral, head.faces, head.regions, rest_body))


def _read(path: Path) -> tuple[HeadModel, BlendAsset] | None:
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return HeadModel(**data["head"]), BlendAsset(**data["hair"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError):
        return None  # damaged or from another layout: rebuilt


def _write(path: Path, head: HeadModel, hair: BlendAsset) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole or absent, across processes
    try:
        torch.save({"head": {f.name: getattr(head, f.name) for f in dataclasses.fields(head)},
                    "hair": {f.name: getattr(hair, f.name) for f in dataclasses.fields(hair)}}, partial)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def cached_head_and_hair(body, rest_body: torch.Tensor) -> tuple[HeadModel, BlendAsset]:
    """(head model, hair asset) on the CPU for `body` (its default rest vertices `rest_body`), as
    build_head_model and build_hair make them; from the user cache when built there before."""
    path = head_cache_path(body, rest_body)
    cached = _read(path) if path is not None else None
    if cached is not None:
        return cached
    head, hair = _build(body, rest_body)
    if path is not None:
        _write(path, head, hair)
    return head, hair
