"""The `text` job (AvatarCLIP's static half): shape text -> body shape from the code-book,
appearance text -> NeuS sculpting and texturing with CLIP -> rigged mesh, optionally animated.

CLIP weights cannot be downloaded on every machine. When none can be loaded, the job says so in
its warnings (and the CLI on stderr) with how to provide them, and runs only the stages that have
a real offline path: the shape query through the offline sentence encoder, and the template body
without sculpting. It never falls back to a random-weight CLIP.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avatarclip_core.body import BodyConfig, create_body_model
from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.clip import ClipConfig, ClipUnavailableError, load_scorer
from avatarclip_core.config import config_to_dict, load_config
from avatarclip_core.config.limits import MAX_PROMPT_CHARS
from avatarclip_core.device import resolve_device
from avatarclip_core.errors import UserInputError
from avatarclip_core.jobfolder import atomic_job_folder, check_output_folder
from avatarclip_core.motion.gen_config import MotionGenConfig, MotionTrainConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion, check_motion_request, is_builtin
from avatarclip_core.neus.api import sculpt_avatar, template_from_body
from avatarclip_core.neus.config import NeusConfig
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
from avatarclip_core.rig import RigConfig, rig_like_template
from avatarclip_core.user_text import check_text
from avatarclip_core.shape.config import ShapeConfig
from avatarclip_core.shape.query import get_shape_query
from avatarclip_core.config.ranges import NonNegativeInt

log = logging.getLogger(__name__)


class InvalidPromptError(UserInputError):
    pass


@dataclass
class TextJobConfig:
    body: BodyConfig = field(default_factory=BodyConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    neus: NeusConfig = field(default_factory=NeusConfig)
    rig: RigConfig = field(default_factory=RigConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)  # name: a built-in motion or a description
    motion_gen: MotionGenConfig = field(default_factory=MotionGenConfig)  # text -> motion (AvatarCLIP Sec. 3.4)
    # how `avatar train motion` builds an artifact set for this preset (read by that command, not by the job)
    motion_train: MotionTrainConfig = field(default_factory=MotionTrainConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    sculpt: bool = True  # run NeuS sculpting when an appearance is given and CLIP is available
    seed: NonNegativeInt = 0


def load_text_config(preset: str | None = "preview", overrides: dict | None = None) -> TextJobConfig:
    return load_config(TextJobConfig, preset, overrides, section="text")


def _check_prompt(name: str, text: str | None, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InvalidPromptError(f"the {name} prompt is empty; describe the body, e.g. 'a tall and fat man'")
    try:  # the checks every entry point makes (length, control characters, lone surrogates)
        return check_text(text, f"the {name} prompt", MAX_PROMPT_CHARS)
    except UserInputError as exc:
        raise InvalidPromptError(str(exc)) from None


def _split_for_texture(mesh: RiggedMesh, result) -> RiggedMesh:
    """Re-index the welded, rigged mesh onto the UV-split vertices of the texture bake."""
    src = result.uv_source_vertex
    return RiggedMesh(
        vertices=mesh.vertices[src], faces=result.uv_faces.long(), skeleton=mesh.skeleton,
        skin_indices=mesh.skin_indices[src], skin_weights=mesh.skin_weights[src],
        vertex_colors=None, uvs=result.uvs.float(), texture=result.texture.float(), name=mesh.name)


def run_text_job(
    shape_text: str,
    appearance: str | None,
    config: TextJobConfig,
    output_dir: Path,
    force: bool = False,
    progress: ProgressFn | None = None,
    scorer=None,
) -> Path:
    """scorer: an ImageTextScorer to use instead of loading `config.clip` (tests, API users)."""
    given_scorer = scorer
    shape_text = _check_prompt("shape", shape_text, required=False)
    appearance = _check_prompt("appearance", appearance, required=False) or None
    if not shape_text and not appearance and not config.motion.name:
        raise InvalidPromptError("give a shape prompt (--shape), an appearance prompt (--appearance), a motion "
                                 "(--motion) or any of them together")
    output_dir = check_output_folder(Path(output_dir), force)
    check_motion_request(config.motion, config.motion_gen)
    preflight_export(config.export)
    device = resolve_device(config.body.device)
    seed_everything(config.seed)
    warnings: list[str] = []
    sculpting = bool(appearance) and config.sculpt
    generated_motion = bool(config.motion.name) and not is_builtin(config.motion.name)
    timer = StageTimer({"load models": 1, "shape query": 1, "sculpt": 30 if sculpting else 0, "rig": 1,
                        "motion": 8 if generated_motion else 1, "export glb": 1, "preview": 2, "export fbx": 3 if config.export.fbx else 0},
                       progress)

    def load_models():
        body = create_body_model(config.body)
        if given_scorer is not None:
            return body, given_scorer
        scorer = None
        wants_clip = (sculpting or config.shape.query.method == "clip"
                      or (generated_motion and config.motion_gen.query_method == "clip"))
        if wants_clip:
            try:
                scorer = load_scorer(config.clip)
            except ClipUnavailableError as exc:
                if config.shape.query.method == "clip":
                    raise
                warnings.append(f"{exc} Sculpting and texturing were skipped; the shape comes from the "
                                "offline text query.")
                log.info("%s", warnings[-1])
        return body, scorer

    body, scorer = timer.run("load models", load_models)

    def shape_query():
        if not shape_text:
            return {}
        query = get_shape_query(config.shape)
        method = config.shape.query.method
        return query.query_shape(shape_text, k=1, method=method, scorer=scorer)[0]

    sliders = timer.run("shape query", shape_query)
    template = body.rigged_mesh(sliders)
    sculpt_info: dict = {"sculpted": False}
    mesh = template
    if sculpting and scorer is not None:
        def sculpt():
            vertices, faces, face_center = template_from_body(body, sliders)
            generator = torch.Generator().manual_seed(config.seed)

            def report(stage: str, fraction: float, message: str = "") -> None:
                if progress:
                    progress(stage, fraction, message)

            return sculpt_avatar(vertices, faces, appearance, scorer, config.neus, progress=report,
                                 generator=generator, face_center=face_center)

        result = timer.run("sculpt", sculpt)
        sculpt_info = {"sculpted": result.sculpted, "stage1_cached": result.stage1_cached,
                       "timings_s": result.timings, "vertices": int(result.vertices.shape[0])}

        def rig():
            rigged = rig_like_template(result.vertices, result.faces, template, config.rig,
                                       vertex_colors=result.vertex_colors)
            return _split_for_texture(rigged, result) if result.texture is not None else rigged

        mesh = timer.run("rig", rig)
    motion, motion_info = timer.run("motion", lambda: build_motion(
        mesh.skeleton, config.motion, config.motion_gen, scorer=scorer, progress=timer.within("motion")))
    warnings.extend((motion_info or {}).get("warnings", []))  # e.g. a description out of the motion vocabulary

    with atomic_job_folder(output_dir, force) as tmp:
        export_record = write_avatar_files(tmp, mesh, motion, body.semantic_joints, config.preview, config.export, timer,
                                           face_template=(body, template.vertices))
        resolved = {s.name: float(v) for s, v in zip(body.sliders(), body.shape_vector(sliders).tolist())}
        write_json(tmp / "params.json", {
            "schema": PARAMS_SCHEMA,
            "kind": "text",
            "prompts": {"shape": shape_text, "appearance": appearance},
            "export": export_record,
            "body_model": body.name,
            "sliders_set": sliders,
            "sliders": resolved,
            "sculpt": sculpt_info,
            "clip": None if scorer is None else repr(scorer),
            "motion": config_to_dict(config.motion) if motion is not None else None,
            "motion_source": motion_info,
            "joints": mesh.skeleton.names,
            "semantic_joints": body.semantic_joints,
            "warnings": warnings,
        })
        write_provenance(tmp, "text", config, timer, device, inputs={"shape": shape_text, "appearance": appearance})
    if progress:
        progress("done", 1.0, f"wrote {output_dir}")
    return output_dir
