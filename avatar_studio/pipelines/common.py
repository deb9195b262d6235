"""What every avatar job does at the end: export GLB (+ BVH/NPZ/FBX), preview, params, provenance."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.body.types import Motion, RiggedMesh
from avatarclip_core.motion.npz import save_motion_npz
from avatarclip_core.progress import StageTimer
from avatarclip_core.provenance import provenance, write_json
from avatarclip_core.config.ranges import Pixels

PARAMS_SCHEMA = "avatar-studio/params@1"
SKIN_COLOR = (0.80, 0.62, 0.52)


@dataclass
class PreviewConfig:
    enabled: bool = True
    size: Pixels = 384  # pixels per view


@dataclass
class ExportConfig:
    fbx: bool = False  # needs Blender's bpy (make install-fbx)
    skin_color: tuple[float, ...] = SKIN_COLOR  # vertex colour when the avatar has none


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def preflight_export(export: ExportConfig) -> None:
    """Fail before any work when an output cannot be produced (FBX without Blender)."""
    if export.fbx:
        from avatarclip_core.export.fbx import require_bpy

        require_bpy()


def write_avatar_files(
    folder: Path,
    mesh: RiggedMesh,
    motion: Motion | None,
    semantic_joints: dict[str, int],
    preview: PreviewConfig,
    export: ExportConfig,
    timer: StageTimer,
) -> None:
    from avatarclip_core.export import write_bvh, write_glb

    if mesh.vertex_colors is None and mesh.texture is None:
        color = torch.tensor(export.skin_color[:3], dtype=torch.float32)
        mesh.vertex_colors = color.expand(mesh.vertices.shape[0], 3).clone()
    timer.run("export glb", lambda: write_glb(mesh, folder / "avatar.glb", motion=motion))
    if motion is not None:
        write_bvh(mesh.skeleton, motion, folder / "motion.bvh")
        save_motion_npz(folder / "motion.npz", mesh.skeleton, motion, semantic_joints)
    if preview.enabled:
        from avatarclip_core.render.preview import render_preview

        timer.run("preview", lambda: render_preview(
            mesh.vertices, mesh.faces, vertex_colors=mesh.vertex_colors, uvs=mesh.uvs, texture=mesh.texture,
            size=preview.size, path=folder / "preview.png"))
    if export.fbx:
        from avatarclip_core.export.fbx import glb_to_fbx

        timer.run("export fbx", lambda: glb_to_fbx(folder / "avatar.glb", folder / "avatar.fbx"))


def write_provenance(folder: Path, kind: str, config, timer: StageTimer, device: str, inputs: dict) -> None:
    """provenance.json for a job folder: its config, seed, versions, stage timings and peak memory."""
    from avatarclip_core.config import config_to_dict

    write_json(folder / "provenance.json", provenance(
        kind, config_to_dict(config), config.seed, timer.timings, device, inputs=inputs,
        peak_memory_mb=timer.peak_memory_mb))
