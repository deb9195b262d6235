"""What every avatar job does at the end: export GLB (+ VRM/BVH/NPZ/FBX) shaped by an export profile,
preview, params, provenance."""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from avatarclip_core.body.types import Motion, RiggedMesh
from avatarclip_core.motion.npz import save_motion_npz
from avatarclip_core.progress import StageTimer
from avatarclip_core.provenance import provenance, write_json
from avatarclip_core.config.ranges import Pixels
from avatarclip_core.export.profiles import (ExportProfile, FormatName, ProfileName, resolve_formats,
                                             resolve_profile)

PARAMS_SCHEMA = "avatar-studio/params@1"
SKIN_COLOR = (0.80, 0.62, 0.52)


@dataclass
class PreviewConfig:
    enabled: bool = True
    size: Pixels = 384  # pixels per view


@dataclass
class ExportConfig:
    # files besides avatar.glb (always written: the primary file, the web preview and the FBX source):
    # vrm (+ motion.vrma with a motion), fbx (needs Blender's bpy: make install-fbx), bvh (with a
    # motion); auto = glb, bvh, plus fbx
    # where bpy is installed
    formats: tuple[FormatName, ...] = ("auto",)
    profile: ProfileName = "generic"  # bone names, rest pose, influences, root motion (export/profiles.py)
    bone_names: Literal["profile", "unreal", "mixamo", "vrm"] = "profile"  # "profile": the profile's
    rest_pose: Literal["profile", "A", "T"] = "profile"
    max_influences: int = 0  # 4 or 8; 0: the profile's
    root_motion: Literal["profile", "root_motion", "in_place"] = "profile"
    fbx: bool = False  # also write avatar.fbx (same as fbx in formats)
    # ARKit's 52 face blend shapes + 15 visemes as morph targets on the avatar's head (export/face_shapes.py)
    face_shapes: Literal["arkit", "none"] = "arkit"
    skin_color: tuple[float, ...] = SKIN_COLOR  # vertex colour when the avatar has none


def export_profile(export: ExportConfig) -> ExportProfile:
    return resolve_profile(export.profile, export.bone_names, export.rest_pose, export.max_influences,
                           export.root_motion)


def export_formats(export: ExportConfig) -> tuple[str, ...]:
    """The files the job writes besides its json/png (see ExportConfig.formats)."""
    from avatarclip_core.export.fbx import fbx_available

    installed = fbx_available() if "auto" in export.formats else False
    return tuple(sorted({"glb", *resolve_formats(export.formats, installed, export.fbx)}, key=_FORMAT_ORDER.index))


_FORMAT_ORDER = ["glb", "vrm", "fbx", "bvh"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def preflight_export(export: ExportConfig) -> None:
    """Fail before any work when an output cannot be produced (a bad format or profile override, FBX
    asked for without Blender)."""
    from avatarclip_core.config.core import ConfigError

    try:
        export_profile(export)
        formats = export_formats(export)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "fbx" in formats:
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
    face_template: tuple | None = None,
) -> dict:
    """Write the job's files; returns what params.json records under "export" (profile, formats,
    files). The preview and motion.npz show the avatar as built (the body's rig and rest pose);
    avatar.glb, avatar.vrm, motion.bvh and avatar.fbx are shaped by the export profile.
    face_template: (body model, its rest vertices for this avatar's shape) to build the face shapes
    from (`with_face_shapes`); None for a mesh that has no body behind it."""
    from avatarclip_core.export import write_bvh, write_glb
    from avatarclip_core.export.apply_profile import apply_profile

    if mesh.vertex_colors is None and mesh.texture is None:
        color = torch.tensor(export.skin_color[:3], dtype=torch.float32)
        mesh.vertex_colors = color.expand(mesh.vertices.shape[0], 3).clone()
    if face_template is not None:
        from avatarclip_core.export.face_shapes import with_face_shapes

        mesh = timer.run("face shapes", lambda: with_face_shapes(mesh, *face_template, export.face_shapes))
    profile = export_profile(export)
    formats = export_formats(export)
    out_mesh, out_motion = timer.run("export profile", lambda: apply_profile(mesh, motion, profile))
    timer.run("export glb", lambda: write_glb(out_mesh, folder / "avatar.glb", motion=out_motion,
                                              max_influences=profile.max_influences))
    record: dict = {"profile": profile.as_dict(), "formats": list(formats)}
    if out_motion is not None:  # the animation as the files hold it (motion_source.clip: how it was made)
        record["animation"] = {"name": out_motion.name, "seconds": round(out_motion.duration, 4),
                               "frames": out_motion.num_frames, "root_motion": profile.root_motion}
    if "vrm" in formats:  # avatar.vrm, and the motion as motion.vrma (VRMC_vrm_animation)
        from avatarclip_core.export.vrm import write_vrm, write_vrma

        vrm_profile = replace(profile, rest_pose="T", max_influences=4)  # what VRM requires
        vrm_mesh, vrm_motion = ((out_mesh, out_motion) if vrm_profile == profile
                                else apply_profile(mesh, motion, vrm_profile))
        timer.run("export vrm", lambda: write_vrm(vrm_mesh, folder / "avatar.vrm"))
        if vrm_motion is not None:
            timer.run("export vrma", lambda: write_vrma(vrm_mesh, vrm_motion, folder / "motion.vrma"))
        record["vrm_profile"] = vrm_profile.as_dict()
    if motion is not None:
        if "bvh" in formats:
            timer.run("export bvh", lambda: write_bvh(out_mesh.skeleton, out_motion, folder / "motion.bvh"))
        save_motion_npz(folder / "motion.npz", mesh.skeleton, motion, semantic_joints)
    if preview.enabled:
        from avatarclip_core.render.preview import render_preview

        timer.run("preview", lambda: render_preview(
            mesh.vertices, mesh.faces, vertex_colors=mesh.vertex_colors, uvs=mesh.uvs, texture=mesh.texture,
            size=preview.size, path=folder / "preview.png"))
    if "fbx" in formats:
        from avatarclip_core.export.fbx import glb_to_fbx

        timer.run("export fbx", lambda: glb_to_fbx(folder / "avatar.glb", folder / "avatar.fbx"))
    record["files"] = sorted(p.name for p in folder.iterdir() if p.suffix in (".glb", ".vrm", ".vrma", ".fbx", ".bvh"))
    return record


def write_provenance(folder: Path, kind: str, config, timer: StageTimer, device: str, inputs: dict) -> None:
    """provenance.json for a job folder: its config, seed, versions, stage timings and peak memory."""
    from avatarclip_core.config import config_to_dict

    write_json(folder / "provenance.json", provenance(
        kind, config_to_dict(config), config.seed, timer.timings, device, inputs=inputs,
        peak_memory_mb=timer.peak_memory_mb))
