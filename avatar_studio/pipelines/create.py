"""The `create` job: one avatar from everything a user gives -- a photo for the face, words for the body,
words for the look (hair, beard, glasses, colours, outfit), a motion -- in one rigged, animated file.

Who decides what (each decision is written to params.json's `decisions`):
- the photo decides the face (the fit), the skin tone, gender and age;
- the body words decide height, weight, muscle and the rest of the body (the shape code-book, as the
  `text` job), the look's body words only where no body words were given;
- explicit look words win over the photo for hair, beard, glasses and eye colour (what a photo may not
  show, or the user wants changed); look words for skin tone or gender under a photo are recorded as
  overridden by the photo;
- without a photo the look's face words set the engine's attributes and slots on the average face.
Garments from the look words are dressed onto the body (avatarclip_core.outfit), one per kind; a part
the words leave bare gets the default outfit's garment (`default_outfit`, () for none).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from avatar_studio.look import LookResult, parse_look
from avatar_studio.look.vocabulary import GARMENTS
from avatar_studio.pipelines.common import (PARAMS_SCHEMA, ExportConfig, PreviewConfig, preflight_export,
                                            seed_everything, write_avatar_files, write_provenance)
from avatarclip_core.config import config_to_dict, load_config
from avatarclip_core.config.limits import MAX_PROMPT_CHARS
from avatarclip_core.config.ranges import NonNegativeInt, Pixels
from avatarclip_core.errors import UserInputError
from avatarclip_core.jobfolder import atomic_job_folder, check_output_folder
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion, check_motion_request, is_builtin
from avatarclip_core.outfit import OutfitConfig
from avatarclip_core.progress import ProgressFn, StageTimer
from avatarclip_core.provenance import write_json
from avatarclip_core.user_text import check_text
from avatarclip_core.shape.config import ShapeConfig
from face2param.config import Face2ParamConfig

DefaultGarment = Literal["t_shirt", "long_sleeve", "shirt", "jacket", "hoodie", "trousers", "jeans", "shorts",
                         "skirt", "dress", "shoes", "boots"]
PHOTO_WINS = ("skin_tone", "gender", "age_band")  # under a photo, look words for these are overridden
BODY_WORDS_KEEP_FROM_PHOTO = ("gender", "age")  # Anny sliders the photo's fit keeps against the body words


class CreateInputError(UserInputError):
    """A create request with nothing to build from, or a part that cannot be read."""


@dataclass
class CreateJobConfig(Face2ParamConfig):
    """The photo fit's config (Face2ParamConfig) plus the body, motion and export of a whole avatar."""

    shape: ShapeConfig = field(default_factory=ShapeConfig)  # body words -> body sliders
    motion: MotionConfig = field(default_factory=MotionConfig)
    motion_gen: MotionGenConfig = field(default_factory=MotionGenConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    outfit: OutfitConfig = field(default_factory=OutfitConfig)  # garments from the look words
    # worn where the look words leave a part bare (top, bottom, shoes); () = only what the words name
    default_outfit: tuple[DefaultGarment, ...] = ("t_shirt", "trousers", "shoes")
    face_image_size: Pixels = 512
    # torch CPU threads while the job runs (put back after); 0 = torch's default. The job is thousands of
    # small tensor ops: one thread gives the same files, and a second one made it 3x slower on a loaded
    # 2-core machine (avatarclip_core.device.torch_threads)
    threads: NonNegativeInt = 1


def load_create_config(preset: str | None = "preview", overrides: dict | None = None) -> CreateJobConfig:
    """CreateJobConfig from configs/<preset>.yaml, section `create` (built there from the `photo`, `text` and
    `sliders` sections with YAML anchors, so each value keeps one home)."""
    return load_config(CreateJobConfig, preset, overrides, section="create")


def run_create_job(photo=None, body_text: str | None = None, look_text: str | None = None,
                   config: CreateJobConfig | None = None, output_dir: Path | str = "avatar",
                   force: bool = False, progress: ProgressFn | None = None, engine=None) -> Path:
    """Photo (path/bytes, optional), body words, look words and config.motion.name -> a job folder."""
    from avatarclip_core.device import torch_threads

    config = config or CreateJobConfig()
    with torch_threads(config.threads):
        return _run_create_job(photo, body_text, look_text, config, output_dir, force, progress, engine)


def _run_create_job(photo, body_text: str | None, look_text: str | None, config: CreateJobConfig,
                    output_dir: Path | str, force: bool, progress: ProgressFn | None, engine) -> Path:
    body_text = check_text((body_text or "").strip(), "the body description", MAX_PROMPT_CHARS)
    look_text = check_text((look_text or "").strip(), "the look description", MAX_PROMPT_CHARS)
    if photo is None and not body_text and not look_text and not config.motion.name:
        raise CreateInputError("give a photo, a body description, a look description or a motion")
    output_dir = check_output_folder(Path(output_dir), force)
    check_motion_request(config.motion, config.motion_gen)
    preflight_export(config.export)
    seed_everything(config.seed)
    timer = StageTimer({"read look": 1, "analyse face": 2 if photo is not None else 0, "load engine": 1,
                        "fit": 4 if photo is not None else 0, "body": 1, "build avatar": 2, "dress": 1,
                        "motion": 1 if is_builtin(config.motion.name) else 8, "export glb": 2, "preview": 2}, progress)

    look = timer.run("read look", lambda: parse_look(look_text) if look_text else LookResult(text=""))
    from face2param.engines.registry import load_engine

    engine = engine or timer.run("load engine", lambda: load_engine(config))
    decisions: list[dict] = []
    face_fixed = _face_words(look, photo is not None, decisions)
    fit_record: dict = {}
    if photo is not None:
        params, fit_record = _fit_photo(photo, engine, config, face_fixed, timer)
    else:
        params = _params_from_words(engine, face_fixed, config)
    body_values, body_record = timer.run("body", lambda: _body_values(body_text, look, config, photo is not None,
                                                                      decisions))
    mesh = timer.run("build avatar", lambda: engine.build_avatar(params, body_values=body_values))
    warnings = [*fit_record.pop("warnings", []), *look.warnings,
                *([f"look words not placed: {', '.join(look.unplaced)}"] if look.unplaced else [])]
    mesh, outfit_record = timer.run("dress", lambda: _dress(mesh, look, config, decisions, warnings))
    motion, motion_info = timer.run("motion", lambda: build_motion(
        mesh.skeleton, config.motion, config.motion_gen, progress=timer.within("motion")))
    warnings += (motion_info or {}).get("warnings", [])
    with atomic_job_folder(output_dir, force) as tmp:
        body = engine.body
        export_record = write_avatar_files(tmp, mesh, motion, engine.body.semantic_joints, config.preview,
                                           config.export, timer,
                                           face_template=(body, mesh.vertices[:len(body.skin_indices)]))
        write_json(tmp / "params.json", {
            "schema": PARAMS_SCHEMA, "kind": "create", "engine": "anny_face", "export": export_record,
            "prompts": {"body": body_text, "look": look_text, "motion": config.motion.name or None},
            "face": {"continuous": {k: round(float(v), 6) for k, v in params.continuous.items()},
                     "discrete": dict(params.discrete), **fit_record},
            "body": body_record, "look": look.to_json(), "outfit": outfit_record, "decisions": decisions,
            "motion": config_to_dict(config.motion) if motion is not None else None,
            "motion_source": motion_info, "joints": mesh.skeleton.names,
            "semantic_joints": engine.body.semantic_joints, "warnings": warnings,
        })
        write_provenance(tmp, "create", config, timer, str(getattr(engine, "device", "cpu")),
                         inputs={"photo": Path(photo).name if isinstance(photo, (str, Path)) else
                                 ("<bytes>" if photo is not None else None),
                                 "body": body_text, "look": look_text, "motion": config.motion.name or None})
    if progress:
        progress("done", 1.0, f"wrote {output_dir}")
    return output_dir


@dataclass
class WordsAvatar:
    """What the create job makes of words without a photo, before it builds anything: the face engine's
    parameters (attributes and slots), the body sliders and the outfit (default garments included)."""

    params: object  # face2param EngineParams
    body_values: dict[str, float]
    garments: list  # avatarclip_core.outfit GarmentSpec, in dressing order
    decisions: list[dict]
    warnings: list[str]


def words_avatar(look: LookResult, engine, config: CreateJobConfig, body_text: str = "") -> WordsAvatar:
    """run_create_job's own steps from words to the avatar's parameters (no photo): the look's face words
    (_face_words, _params_from_words), the body (_body_values) and the outfit (_outfit), without building a
    mesh, rendering or writing files (tests/test_create.py compares these for one-attribute look changes)."""
    decisions: list[dict] = []
    warnings: list[str] = []
    params = _params_from_words(engine, _face_words(look, False, decisions), config)
    body_values, _ = _body_values(body_text, look, config, False, decisions)
    return WordsAvatar(params, body_values, _outfit(look, config, decisions, warnings), decisions, warnings)


def _face_words(look: LookResult, has_photo: bool, decisions: list[dict]) -> dict[str, str]:
    """The look's face words as the fit's `fixed` dict; under a photo, the photo keeps PHOTO_WINS."""
    fixed = {}
    for key, value in look.face.items():
        if has_photo and key in PHOTO_WINS:
            decisions.append({"key": key, "value": value, "by": "photo", "over": "look words"})
            continue
        fixed[key] = value
        decisions.append({"key": key, "value": value, "by": "look words", **({"over": "photo"} if has_photo else {})})
    return fixed


def _fit_photo(photo, engine, config: CreateJobConfig, fixed: dict, timer: StageTimer):
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import load_image
    from face2param.methods.fit import fit
    from face2param.methods.target import target_from_analysis

    pixels = load_image(photo)
    analysis = timer.run("analyse face", lambda: analyse_face(pixels, config.faces))
    result = timer.run("fit", lambda: fit(target_from_analysis(analysis, pixels), config.method, engine, config,
                                          fixed=fixed))
    return result.params, {"method": result.method, "attributes": result.attributes,
                           "warnings": list(result.warnings)}


def _params_from_words(engine, fixed: dict, config: CreateJobConfig):
    """The average face with the look's attributes and slots (the photo fit's own constraint logic)."""
    from face2param.methods.attribute_slots import AGE_VALUE, attribute_constraints

    params = engine.spec.defaults()
    if not fixed:
        return params
    constraints = attribute_constraints(None, engine, fixed, config.attributes)
    params.continuous.update(constraints.continuous)
    if "age_band" in fixed and "age" in params.continuous:  # the photo path reads age from the photo's band
        params.continuous["age"] = AGE_VALUE[fixed["age_band"]]
    params.discrete.update(constraints.discrete)
    if constraints.require_glasses and params.discrete.get("glasses") == "none":
        params.discrete["glasses"] = engine.spec.slot("glasses").options[1]
    return params.validated(engine.spec)


def _body_values(body_text: str, look: LookResult, config: CreateJobConfig, has_photo: bool,
                 decisions: list[dict]) -> tuple[dict[str, float], dict]:
    """Anny body sliders from the body words (shape code-book) or else the look's body words."""
    if body_text:
        from avatarclip_core.shape.query import get_shape_query

        sliders = get_shape_query(config.shape).query_shape(body_text, k=1, method=config.shape.query.method)[0]
        # gender and age belong to the face: the photo's fit, or the look's explicit words, keep them
        kept = BODY_WORDS_KEEP_FROM_PHOTO if has_photo else tuple(
            slider for slider, word in (("gender", "gender"), ("age", "age_band")) if word in look.face)
        for key in kept:
            if key in sliders:
                decisions.append({"key": key, "by": "photo" if has_photo else "look words", "over": "body words"})
        sliders = {k: v for k, v in sliders.items() if k not in kept}
        for key in look.body:
            decisions.append({"key": key, "value": look.body[key], "by": "body words", "over": "look words"})
        decisions.append({"key": "body", "by": "body words", "method": config.shape.query.method})
        return {k: float(v) for k, v in sliders.items()}, {"source": "body words", "sliders": sliders}
    values = dict(look.body)
    for key, value in values.items():
        decisions.append({"key": key, "value": value, "by": "look words"})
    return values, {"source": "look words" if values else "default", "sliders": values}


def _outfit(look: LookResult, config: CreateJobConfig, decisions: list[dict], warnings: list[str]) -> list:
    """The look's garments as GarmentSpecs: one per kind, shoes or boots (the first named wins; the others
    are reported), then the default outfit's garment on each part the words leave bare."""
    from avatarclip_core.outfit import GarmentSpec

    worn, feet = {}, None
    for g in look.garments:
        if g.kind in worn or (g.category == "shoes" and feet is not None):
            warnings.append(f"'{g.words}' not worn: '{(worn.get(g.kind) or feet).words}' is already there")
            continue
        worn[g.kind] = g
        feet = g if g.category == "shoes" else feet
    for g in worn.values():
        decisions.append({"key": "garment", "value": g.kind, "colour": g.colour, "by": "look words"})
    covered = {c for g in worn.values() for c in (("top", "bottom") if g.category == "dress" else (g.category,))}
    specs = [GarmentSpec(kind=g.kind, rgb=tuple(g.rgb)) for g in worn.values()]
    for kind in config.default_outfit:  # what the words leave bare (a game avatar is dressed by default)
        category = GARMENTS[kind][0]
        if category not in covered:
            covered.add(category)
            specs.append(GarmentSpec(kind=kind))
            decisions.append({"key": "garment", "value": kind, "colour": "default", "by": "default outfit"})
    return specs


def _dress(mesh, look: LookResult, config: CreateJobConfig, decisions: list[dict], warnings: list[str]):
    """The look's garments (`_outfit`) on the body (avatarclip_core.outfit)."""
    from avatarclip_core.outfit import dress

    specs = _outfit(look, config, decisions, warnings)
    if not specs:
        return mesh, None
    dressed, report = dress(mesh, specs, config.outfit)
    return dressed, report.as_dict()
