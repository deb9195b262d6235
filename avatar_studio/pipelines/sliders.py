"""The `sliders` job: a rigged avatar from named body sliders, optionally animated (a built-in motion or
one generated from a description).

Writes avatar.glb, params.json, preview.png, provenance.json and, with a motion, motion.bvh and
motion.npz (plus avatar.fbx when export.fbx is set and Blender's bpy is installed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avatarclip_core.body import BodyConfig, create_body_model
from avatarclip_core.config import config_to_dict, load_config
from avatarclip_core.device import resolve_device
from avatarclip_core.jobfolder import atomic_job_folder, check_output_folder
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion, check_motion_request, is_builtin
from avatar_studio.pipelines.common import (
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
from avatarclip_core.config.ranges import NonNegativeInt


@dataclass
class SlidersJobConfig:
    body: BodyConfig = field(default_factory=BodyConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)  # name: a built-in motion or a description
    motion_gen: MotionGenConfig = field(default_factory=MotionGenConfig)  # text -> motion (offline query here)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    seed: NonNegativeInt = 0


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
    check_motion_request(config.motion, config.motion_gen)
    device = resolve_device(config.body.device)
    seed_everything(config.seed)
    timer = StageTimer(
        {"load body model": 1, "build avatar": 1, "motion": 1 if is_builtin(config.motion.name) else 8, "export glb": 2, "preview": 2, "export fbx": 3
         if config.export.fbx else 0}, progress)

    body = timer.run("load body model", lambda: create_body_model(config.body))
    shape = body.shape_vector(sliders)  # validates names and ranges before any output exists
    preflight_export(config.export)

    mesh = timer.run("build avatar", lambda: body.rigged_mesh(sliders))
    motion, motion_info = timer.run("motion", lambda: build_motion(
        mesh.skeleton, config.motion, config.motion_gen, progress=timer.within("motion")))

    with atomic_job_folder(output_dir, force) as tmp:
        export_record = write_avatar_files(tmp, mesh, motion, body.semantic_joints, config.preview, config.export, timer,
                                           face_template=(body, mesh.vertices))
        resolved = {s.name: float(v) for s, v in zip(body.sliders(), shape.tolist())}
        write_json(tmp / "params.json", {
            "schema": PARAMS_SCHEMA,
            "kind": "sliders",
            "body_model": body.name,
            "rig": config.body.anny.rig if body.name == "anny" else body.name,
            "export": export_record,
            "sliders_set": {k: float(v) for k, v in sliders.items()},
            "sliders": resolved,
            "motion": config_to_dict(config.motion) if motion is not None else None,
            "motion_source": motion_info,
            "joints": mesh.skeleton.names,
            "semantic_joints": body.semantic_joints,
            "warnings": list((motion_info or {}).get("warnings", [])),  # e.g. a motion out of vocabulary
        })
        write_provenance(tmp, "sliders", config, timer, device, inputs={"sliders": sliders})
    if progress:
        progress("done", 1.0, f"wrote {output_dir}")
    return output_dir
