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
    from avatarclip_core.tensor_cache import Digest, cache_file

    digest = Digest(source_key([_ENGINE_CODE, _BODY_CODE], ["anny", "torch", "numpy"]),
                    f"{type(body).__module__}.{type(body).__qualname__}|{getattr(body, 'config', None)!r}",
                    repr([s.name for s in body.sliders()]))
    digest.tensors(rest_body, body.faces)
    return cache_file("face2param", f"engine_head_{digest.hexdigest()}.pt")


def _fields(value) -> dict:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _build(body, rest_body: torch.Tensor) -> dict:
    head = build_head_model(body)
    hair = build_hair(head_frame(head.neutral, head.faces, head.regions, rest_body))
    return {"head": _fields(head), "hair": _fields(hair)}


def _whole(data) -> bool:
    names = ({f.name for f in dataclasses.fields(HeadModel)}, {f.name for f in dataclasses.fields(BlendAsset)})
    return isinstance(data, dict) and (set(data.get("head", ())), set(data.get("hair", ()))) == names


def cached_head_and_hair(body, rest_body: torch.Tensor) -> tuple[HeadModel, BlendAsset]:
    """(head model, hair asset) on the CPU for `body` (its default rest vertices `rest_body`), as
    build_head_model and build_hair make them; from the user cache when built there before."""
    from avatarclip_core.tensor_cache import cached

    data = cached(head_cache_path(body, rest_body), lambda: _build(body, rest_body), accept=_whole)
    return HeadModel(**data["head"]), BlendAsset(**data["hair"])
