"""The `sliders` job: a rigged avatar from named body sliders, optionally with a built-in motion.

Writes avatar.glb, params.json, preview.png, provenance.json and, with a motion, motion.bvh and
motion.npz (plus avatar.fbx when export.fbx is set and Blender's bpy is installed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avatarclip_core.body import BodyConfig, create_body_model, resolve_device
from avatarclip_core.config import config_to_dict, load_config
from avatarclip_core.jobfolder import atomic_job_folder, check_output_folder
from avatarclip_core.motion.procedural import MotionConfig, make_motion
from avatarclip_core.pipelines.common import (
    PARAMS_SCHEMA,
    ExportConfig,
    PreviewConfig,
    preflight_export,
    seed_everything,
    write_avatar_files,
    write_provenance,
)
from avatarclip_core.progress import ProgressFn, StageTimer
from avatarclip_core.provenance import write_json


@dataclass
class SlidersJobConfig:
    body: BodyConfig = field(default_factory=BodyConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    seed: int = 0


def load_sliders_config(preset: str | None = "preview", overrides: dict | None = None) -> SlidersJobConfig:
    return load_config(SlidersJobConfig, preset, overrides, section="sliders")


def run_sliders_job(
    sliders: dict[str, float],
    config: SlidersJobConfig,
    output_dir: Path,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Validate everything first, then build, export and rename the folder into place."""
    output_dir = check_output_folder(Path(output_dir), force)
    device = resolve_device(config.body.device)
    seed_everything(config.seed)
    timer = StageTimer(
        {"load body model": 1, "build avatar": 1, "motion": 1, "export glb": 2, "preview": 2, "export fbx": 3
         if config.export.fbx else 0}, progress)

    body = timer.run("load body model", lambda: create_body_model(config.body))
    shape = body.shape_vector(sliders)  # validates names and ranges before any output exists
    if config.motion.name:
        from avatarclip_core.motion.procedural import BUILTIN_MOTIONS, UnknownMotionError

        if config.motion.name not in BUILTIN_MOTIONS:
            raise UnknownMotionError(
                f"unknown motion '{config.motion.name}' (built-in: {', '.join(sorted(BUILTIN_MOTIONS))})")
    preflight_export(config.export)

    mesh = timer.run("build avatar", lambda: body.rigged_mesh(sliders))
    motion = timer.run("motion", lambda: make_motion(mesh.skeleton, config.motion)) if config.motion.name else None

    with atomic_job_folder(output_dir, force) as tmp:
        write_avatar_files(tmp, mesh, motion, body.semantic_joints, config.preview, config.export, timer)
        resolved = {s.name: float(v) for s, v in zip(body.sliders(), shape.tolist())}
        write_json(tmp / "params.json", {
            "schema": PARAMS_SCHEMA,
            "kind": "sliders",
            "body_model": body.name,
            "rig": config.body.anny.rig if body.name == "anny" else body.name,
            "sliders_set": {k: float(v) for k, v in sliders.items()},
            "sliders": resolved,
            "motion": config_to_dict(config.motion) if motion is not None else None,
            "joints": mesh.skeleton.names,
            "semantic_joints": body.semantic_joints,
        })
        write_provenance(tmp, "sliders", config, timer, device, inputs={"sliders": sliders})
    if progress:
        progress("done", 1.0, f"wrote {output_dir}")
    return output_dir
