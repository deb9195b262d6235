"""The `photo` job: a selfie -> engine parameters -> a rigged, game-ready avatar; and the `face` job:
engine parameters (an edited params.json) -> the same job folder.

Writes params.json (engine, version, continuous, discrete, warnings, method, losses; an edited result:
method "edited" and its source_job), face.png (the engine's front render of the face), avatar.glb (the
full rigged body from the engine) and provenance.json, atomically: bad input (not an image, no face,
face too small, an unknown slider or option, existing folder without --force) fails before anything
is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarclip_core.config import load_config
from avatarclip_core.jobfolder import atomic_job_folder, check_output_folder
from avatarclip_core.progress import ProgressFn, StageTimer
from avatarclip_core.provenance import write_json
from avatar_studio.pipelines.common import (ExportConfig, PreviewConfig, preflight_export, seed_everything,
                                            write_avatar_files, write_provenance)
from face2param.config import Face2ParamConfig
from face2param.engines.base import engine_name
from avatarclip_core.config.ranges import NonNegativeInt, Pixels

PARAMS_VERSION = 1


@dataclass
class PhotoJobConfig(Face2ParamConfig):
    """The photo and face jobs: the library's Face2ParamConfig plus what a job folder needs."""

    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    face_image_size: Pixels = 512  # face.png
    # torch CPU threads while the job runs (put back after); 0 = torch's default. As in the create job: the
    # fit and the avatar are many small tensor ops, one thread gives the same params.json and a second only
    # adds hand-offs (the fit 7x cheaper in CPU on one thread on a loaded 2-core machine)
    threads: NonNegativeInt = 1


def load_photo_config(preset: str | None = "preview", overrides: dict | None = None) -> PhotoJobConfig:
    """PhotoJobConfig from configs/<preset>.yaml, section `photo` (absent: the dataclass defaults)."""
    return load_config(PhotoJobConfig, preset, overrides, section="photo")


def run_photo_job(image_path, config: PhotoJobConfig | None = None, output_dir: Path | str = "photo_avatar",
                  force: bool = False, progress: ProgressFn | None = None, engine=None,
                  fixed: dict | None = None, analysed=None) -> Path:
    """Photo file (or bytes) -> job folder; returns the folder. `fixed`: attributes or slots the user
    corrected (e.g. {"gender": "female", "hair_style": "long"}); they win over detection, params.json's
    `attributes` block records them with source 'user', and an unknown key or value fails before
    anything is written (UnknownAttributeError). `analysed`: the photo's analysis already under way
    in another process (photo_batch.ForkedAnalysis, started by `avatar photo` before its imports):
    the engine is built while it runs; when it gives nothing, the photo is analysed here."""
    from avatarclip_core.device import torch_threads

    config = config or PhotoJobConfig()
    with torch_threads(config.threads):
        return _run_photo_job(image_path, config, output_dir, force, progress, engine, fixed, analysed)


def _run_photo_job(image_path, config: PhotoJobConfig, output_dir: Path | str, force: bool,
                   progress: ProgressFn | None, engine, fixed: dict | None, analysed=None) -> Path:
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import load_image

    output_dir = check_output_folder(Path(output_dir), force)
    preflight_export(config.export)
    timer = photo_stage_timer(config, progress)
    found = None
    if analysed is not None:
        from face2param.engines.registry import load_engine

        engine = engine or timer.run("load engine", lambda: load_engine(config))  # while the child analyses
        found = timer.run("analyse face", lambda: analysed.result(config.faces))
    # specific errors: missing file, not an image, truncated, too small. Held in a list that hands the
    # photo over to write_photo_job below, so that it is freed after the fit, not kept to the end here
    photo = [load_image(image_path) if found is None else found[1]]
    analysis = (found[0] if found is not None else
                timer.run("analyse face", lambda: analyse_face(photo[0], config.faces)))  # no face / too small
    del found
    # the file name only (an upload's hash name in the worker): provenance.json is downloadable
    source = Path(image_path).name if isinstance(image_path, (str, Path)) else "<bytes>"
    return write_photo_job(analysis, photo.pop(), source, config, output_dir, force, timer, engine=engine, fixed=fixed)


def photo_stage_timer(config: PhotoJobConfig, progress: ProgressFn | None = None, with_face: bool = True,
                      with_avatar: bool = True) -> StageTimer:
    """The photo job's weighted stages (a batch leaves out the files it does not write)."""
    return StageTimer({"analyse face": 2, "load engine": 1, "fit": 4, "render face": 1 if with_face else 0,
                       "build avatar": 2 if with_avatar else 0, "export glb": 2 if with_avatar else 0,
                       "preview": 2 if config.preview.enabled and with_avatar else 0}, progress)


def write_photo_job(analysis, pixels: np.ndarray | None, source: str, config: PhotoJobConfig, output_dir: Path,
                    force: bool, timer: StageTimer, engine=None, fixed: dict | None = None,
                    with_face: bool = True, with_avatar: bool = True, pixels_sha256: str | None = None) -> Path:
    """A face analysis of a photo -> fit -> its job folder (the step `avatar photo` shares with a batch,
    which analyses photos in other processes and loads the engine once). `pixels` may be None when the
    fit does not read them (`fit.reads_photo_pixels`) and `pixels_sha256` (provenance) comes with it."""
    from face2param.engines.registry import load_engine
    from face2param.faces.images import image_pixels_sha256
    from face2param.methods.fit import fit
    from face2param.methods.target import target_from_analysis

    seed_everything(config.seed)
    engine = engine or timer.run("load engine", lambda: load_engine(config))
    digest = pixels_sha256 or image_pixels_sha256(pixels)
    target = target_from_analysis(analysis, pixels)
    # the fit is the photo's last use: it is not kept through the export (a 12 MP photo is 36 MB;
    # a caller that keeps its own reference, like a batch, keeps it alive anyway)
    del pixels
    result = timer.run("fit", lambda: fit(target, config.method, engine, config, fixed=fixed))
    del target
    losses = {k: v for k, v in result.losses.items() if k != "history"}
    return _write_engine_job(
        output_dir, force, engine, result.params, config, timer, "photo",
        params_meta={"warnings": list(result.warnings), "method": result.method, "losses": losses,
                     "timings": result.timings, **({"attributes": result.attributes} if result.attributes else {})},
        provenance_inputs={"image": str(source), "image_pixels_sha256": digest,
                           "image_size": list(analysis.image_size), "method": result.method,
                           **({"fixed_attributes": dict(fixed)} if fixed else {})},
        with_face=with_face, with_avatar=with_avatar)


def run_params_job(params, config: PhotoJobConfig | None = None, output_dir: Path | str = "face_avatar",
                   force: bool = False, progress: ProgressFn | None = None, engine=None,
                   source_job: str = "") -> Path:
    """Engine parameters (EngineParams, or a params.json dict: unnamed entries take the engine's
    defaults) -> the job folder a photo job writes, params.json with method "edited" and source_job."""
    from avatarclip_core.device import torch_threads

    config = config or PhotoJobConfig()
    with torch_threads(config.threads):
        return _run_params_job(params, config, output_dir, force, progress, engine, source_job)


def _run_params_job(params, config: PhotoJobConfig, output_dir: Path | str, force: bool,
                    progress: ProgressFn | None, engine, source_job: str) -> Path:
    from face2param.engines.base import EngineParams
    from face2param.engines.registry import load_engine

    output_dir = check_output_folder(Path(output_dir), force)
    preflight_export(config.export)
    seed_everything(config.seed)
    params = params if isinstance(params, EngineParams) else EngineParams.from_json(params)
    timer = StageTimer({"load engine": 1, "render face": 1, "build avatar": 2, "export glb": 2,
                        "preview": 2 if config.preview.enabled else 0}, progress)
    engine = engine or timer.run("load engine", lambda: load_engine(config))
    params = params.validated(engine.spec)  # unknown slider / option, out of range: before anything is written
    return _write_engine_job(output_dir, force, engine, params, config, timer, "face",
                             params_meta={"warnings": [], "method": "edited", "source_job": source_job},
                             provenance_inputs={"method": "edited", "source_job": source_job})


def _write_engine_job(output_dir: Path, force: bool, engine, params, config: PhotoJobConfig, timer: StageTimer,
                      kind: str, params_meta: dict, provenance_inputs: dict, with_face: bool = True,
                      with_avatar: bool = True) -> Path:
    """face.png, avatar.glb (+ preview), params.json and provenance.json of one parameter set, atomically
    (no avatar.glb, with a warning in params.json, for an engine that builds no avatars itself; a batch
    may leave face.png and avatar.glb out)."""
    from face2param.methods.fit import as_numpy_image

    face = (timer.run("render face", lambda: as_numpy_image(engine.render(params, config.face_image_size)))
            if with_face else None)
    mesh = None
    try:
        if with_avatar:
            mesh = timer.run("build avatar", lambda: engine.build_avatar(params))
    except NotImplementedError as exc:  # an external engine: the game builds its avatar from params.json
        mesh = None
        params_meta = {**params_meta, "warnings": [*params_meta.get("warnings", []),
                                                   f"no avatar.glb: {exc} (the {engine_name(engine)} engine)"]}

    with atomic_job_folder(output_dir, force) as tmp:
        from PIL import Image

        if face is not None:
            Image.fromarray(face).save(tmp / "face.png")
        export_record = None
        if mesh is not None:
            joints = getattr(engine, "semantic_joints", None) or engine.body.semantic_joints
            body = getattr(engine, "body", None)  # the Anny engine's avatar starts with its body's vertices
            face_template = (body, mesh.vertices[:len(body.skin_indices)]) if body is not None else None
            export_record = write_avatar_files(tmp, mesh, None, joints, config.preview, config.export, timer,
                                               face_template=face_template)
        write_json(tmp / "params.json", {
            "engine": engine_name(engine), "version": PARAMS_VERSION,
            "continuous": {k: round(float(v), 6) for k, v in params.continuous.items()},
            "discrete": dict(params.discrete), **params_meta, **({"export": export_record} if export_record else {}),
        })
        write_provenance(tmp, kind, config, timer, str(getattr(engine, "device", "cpu")), inputs=provenance_inputs)
    return output_dir
