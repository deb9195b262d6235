"""One entry point: template mesh (+ appearance prompt + CLIP scorer) -> sculpted, textured mesh."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .config import NeusConfig
from .extract import bake_texture, extract_mesh, query_colors
from .networks import NeusModel
from .stage1 import stage1
from .stage2 import sculpt


@dataclass
class SculptResult:
    """Plain tensors in the template's frame (metres, Y up, facing +Z).

    vertices/faces/vertex_colors: the welded marching-cubes mesh (faces outward, CCW).
    uv_*: the same surface split along UV seams for the baked texture (None when
    ``texture_size`` is 0): ``uv_vertices[i] == vertices[uv_source_vertex[i]]``.
    """

    vertices: torch.Tensor  # (V, 3) float32
    faces: torch.Tensor  # (F, 3) long
    vertex_colors: torch.Tensor  # (V, 3) in [0, 1]
    uvs: torch.Tensor | None = None  # (V', 2), v up
    uv_vertices: torch.Tensor | None = None  # (V', 3)
    uv_faces: torch.Tensor | None = None  # (F, 3) long into uv_vertices / uvs
    uv_source_vertex: torch.Tensor | None = None  # (V',) long into vertices
    texture: torch.Tensor | None = None  # (H, W, 3) in [0, 1], row 0 = top (v = 1)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    stage1_cached: bool = False
    sculpted: bool = False  # False: stage 1 only (the template as an implicit surface)
    stats: dict = field(default_factory=dict)
    model: NeusModel | None = None  # the trained networks (for previews / further work)


def sculpt_avatar(template_vertices: torch.Tensor, template_faces: torch.Tensor, appearance: str | None, scorer,
                  config: NeusConfig, progress=None, generator: torch.Generator | None = None,
                  face_center=None, template_vertex_colors: torch.Tensor | None = None) -> SculptResult:
    """AvatarCLIP's shape sculpting and texture generation on one template mesh.

    Stage 1 (cached per template + config) fits N = {f, c} to the template; stage 2 (only when
    both ``appearance`` and ``scorer`` are given) optimises f and c_c with CLIP; then marching
    cubes, vertex colours (c_c after stage 2, c's neutral template colour otherwise) and a UV
    texture bake. progress(stage, fraction, message): fraction is overall in [0, 1], stages
    "neus_stage1", "neus_stage2", "neus_extract". face_center (3,): look-at point of the face
    close-ups (e.g. the head joint moved to the face); default: estimated from the vertices.
    """
    cfg = config
    do_sculpt = bool(appearance) and scorer is not None
    weights = {"neus_stage1": 0.25, "neus_stage2": 0.65 if do_sculpt else 0.0, "neus_extract": 0.1}
    total_w = sum(weights.values())
    offsets, acc = {}, 0.0
    for k, w in weights.items():
        offsets[k] = acc / total_w
        acc += w

    def report(stage: str):
        def fn(frac: float, message: str = "") -> None:
            if progress is not None:
                progress(stage, min(1.0, offsets[stage] + weights[stage] / total_w * float(frac)), message)
        return fn

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report("neus_stage1")(0.0, "stage 1: template fit (or cache)")
    model, template, info = stage1(template_vertices, template_faces, cfg, template_vertex_colors,
                                   progress=report("neus_stage1"))
    timings["stage1"] = round(time.perf_counter() - t0, 3)
    stats: dict = {"stage1": {k: v for k, v in info.items() if k != "history"}}

    if do_sculpt:
        t0 = time.perf_counter()
        fc = None if face_center is None else torch.as_tensor(face_center, dtype=torch.float32).reshape(3)
        s2 = sculpt(model, template, appearance, scorer, cfg, generator=generator, face_center=fc,
                    progress=report("neus_stage2"))
        timings["stage2"] = round(time.perf_counter() - t0, 3)
        stats["stage2"] = {k: v for k, v in s2.items() if k != "history"}

    t0 = time.perf_counter()
    report("neus_extract")(0.0, "marching cubes")
    vertices, faces = extract_mesh(model, cfg.mc_resolution, cfg.min_component_fraction)
    timings["marching_cubes"] = round(time.perf_counter() - t0, 3)
    t1 = time.perf_counter()
    colors = query_colors(model, vertices, stylised=do_sculpt) if vertices.shape[0] else vertices.new_zeros(0, 3)
    timings["vertex_colors"] = round(time.perf_counter() - t1, 3)
    result = SculptResult(vertices, faces, colors, timings=timings, stage1_cached=bool(info.get("cached")),
                          sculpted=do_sculpt, stats=stats, model=model)
    if cfg.texture_size > 0 and faces.shape[0] > 0:
        t1 = time.perf_counter()
        report("neus_extract")(0.5, "UV texture bake")
        bake = bake_texture(model, vertices, faces, cfg.texture_size, cfg.texture_padding, stylised=do_sculpt)
        result.uvs, result.uv_vertices, result.uv_faces = bake.uvs, bake.vertices, bake.faces
        result.uv_source_vertex, result.texture = bake.source_vertex, bake.texture
        timings["texture_bake"] = round(time.perf_counter() - t1, 3)
    timings["extract"] = round(time.perf_counter() - t0, 3)
    report("neus_extract")(1.0, "done")
    return result


def template_from_body(body, values: dict | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(vertices, faces, face centre) of a body model's rigged mesh: the face centre is the head
    joint moved forward to the front of the head (for ``sculpt_avatar``'s face close-ups)."""
    mesh = body.rigged_mesh(values or {})
    v = mesh.vertices.detach().float()
    head = mesh.skeleton.rest_positions[body.semantic_joints["head"]].float().clone()
    near = v[(v - head).norm(dim=-1) < 0.25]
    near = near[near[:, 1] > head[1]]  # the skull above the head joint (at the top of the neck)
    if near.shape[0]:
        head[1] = head[1] + 0.4 * (near[:, 1].max() - head[1])  # eye / nose level
        head[2] = 0.5 * (head[2] + near[:, 2].max())
    return v, mesh.faces, head
