"""Text -> motion (AvatarCLIP Sec. 3.4): code-book query for reference poses, then latent optimisation.

``text_to_motion(text, skeleton, config, scorer=None)``:
1. reference poses: "clip" (a real CLIP scorer, or explicitly asked for) renders every code-book
   pose and ranks it against the text (Eq. 10); "offline" ranks entries by the sentence encoder's
   similarity between the text and the labels of the corpus poses nearest each centroid. Top-k,
   near-duplicates removed. CLIP is never faked: "auto" without a real scorer is "offline".
2. the motion VAE latent starts from the most label-similar corpus clip (offline) or zero (clip)
   and is optimised (optimize.py); the result goes through `canonical.to_motion` onto ``skeleton``.
Artifacts (weights, code-book, clip library) are loaded once per process.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarclip_core.body.lbs import rotation_6d_to_matrix
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.config.limits import MAX_PROMPT_CHARS
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import CanonicalMotion, to_motion
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.limits import clamp_to_limits
from avatarclip_core.motion.motion_vae import MotionVAE, resample
from avatarclip_core.motion.optimize import optimize_latent
from avatarclip_core.motion.pose_codebook import (
    PoseCodebook,
    PosedBody,
    clip_label_similarity,
    clip_scores,
    label_scores,
    top_k_distinct,
)
from avatarclip_core.motion.pose_vae import PoseVAE, load_vposer
from avatarclip_core.registry import Registry
from avatarclip_core.user_text import check_text

PACKAGED_DIR = Path(__file__).resolve().parent / "artifacts"
# text -> reference poses by name (motion_gen.query_method): `fn(art, text, config, scorer, report) ->
# MotionQuery`. A new one is a module with that function plus one `MOTION_QUERIES.register_lazy(name,
# "module:function")` line at the end of this file (and its name in MotionGenConfig.query_method's Literal).
MOTION_QUERIES = Registry("motion query method", "motion_gen.query_method")


class MotionArtifactsMissingError(UserInputError):
    """No usable motion artifacts where the config points."""


@dataclass
class MotionArtifacts:
    path: Path
    meta: dict
    pose_model: torch.nn.Module
    motion_vae: MotionVAE
    codebook: PoseCodebook
    library_latents: torch.Tensor  # (C, Z) motion-VAE latent of each corpus clip's first window
    library_label_index: torch.Tensor  # (C, M) label indices, -1 padded
    labels: list[str]
    label_emb: torch.Tensor  # (U, E) sentence embeddings of `labels`
    fps: float


def default_output_dir(name: str) -> Path:
    from avatarclip_core.paths import data_dir

    return data_dir() / "motion" / name


def resolve_artifacts_dir(artifacts_dir: str, name: str) -> Path:
    """artifacts_dir if set; else the data folder's motion/<name> if trained; else the packaged set."""
    from avatarclip_core.artifacts import find_artifact_set
    from avatarclip_core.motion.train import META_FILE

    return find_artifact_set(artifacts_dir, default_output_dir(name), PACKAGED_DIR, name, META_FILE, lambda known: (
        MotionArtifactsMissingError(f"no motion artifacts named '{name}' (packaged: {', '.join(known) or 'none'}): "
                                    "run `avatar train motion`, or set text.motion_gen.artifacts_dir")))


def _module_state(arrays: dict, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()
            if k.startswith(prefix + "/")}


def load_motion_artifacts(path: str | Path, device: str = "cpu") -> MotionArtifacts:
    from avatarclip_core.motion.train import ARRAYS_FILE, META_FILE, SCHEMA

    path = Path(path)
    if not (path / META_FILE).is_file() or not (path / ARRAYS_FILE).is_file():
        raise MotionArtifactsMissingError(f"no motion artifacts in {path} ({META_FILE} and {ARRAYS_FILE} expected)")
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("schema") != SCHEMA:
        raise MotionArtifactsMissingError(f"{path / META_FILE}: schema {meta.get('schema')!r}, expected {SCHEMA!r}")
    with np.load(path / ARRAYS_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    pm = meta["pose_model"]
    if pm["kind"] == "vposer":
        pose_model = load_vposer(pm["vposer"], device)
    else:
        pose_model = PoseVAE(pm["latent_dim"], pm["hidden"])
        pose_model.load_state_dict(_module_state(arrays, "pose_vae"))
    vae = MotionVAE(**meta["motion_vae"])
    vae.load_state_dict(_module_state(arrays, "motion_vae"))  # "pe" is rebuilt (not persistent)
    book = PoseCodebook(
        torch.from_numpy(arrays["codebook/latents"]).float(),
        rotation_6d_to_matrix(torch.from_numpy(arrays["codebook/poses6d"]).float()),
        torch.from_numpy(arrays["codebook/counts"]).long(), torch.from_numpy(arrays["codebook/label_index"]).long(),
        torch.from_numpy(arrays["codebook/label_weight"]).float(),
        torch.from_numpy(arrays["codebook/neighbour_clips"]).long())
    return MotionArtifacts(path, meta, pose_model.to(device).eval(), vae.to(device).eval(), book,
                           torch.from_numpy(arrays["library/latents"]).float(),
                           torch.from_numpy(arrays["library/label_index"]).long(), list(meta["labels"]),
                           torch.from_numpy(arrays["labels/embeddings"].astype(np.float32)), float(meta["fps"]))


_CACHE: dict[tuple[str, str], MotionArtifacts] = {}
_LOCK = threading.Lock()


def get_motion_artifacts(config: MotionGenConfig) -> MotionArtifacts:
    """The process-wide artifacts for a config (loaded once)."""
    from avatarclip_core.device import resolve_device

    path = resolve_artifacts_dir(config.artifacts_dir, config.artifacts).resolve()
    key = (str(path), resolve_device(config.device))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_motion_artifacts(path, key[1])
        return _CACHE[key]


_POSED: dict[str, PosedBody] = {}


def _posed_body(device: str) -> PosedBody:
    """The default body (CLIP renders of code-book poses and of optimised frames), built once per device."""
    from avatarclip_core.body import create_body_model

    with _LOCK:
        if device not in _POSED:
            _POSED[device] = PosedBody(create_body_model(), device=device)
        return _POSED[device]


def check_motion_text(text: str) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise UserInputError("the motion description is empty: describe a movement, e.g. 'raise both arms'")
    return check_text(text, "the motion description", MAX_PROMPT_CHARS)


def text_similarities(art: MotionArtifacts, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sentence-encoder embeddings of the artifacts' labels (re-embedded if the encoder differs) and of the text."""
    from avatarclip_core.clip.text_encoder import TextEncoder

    encoder = TextEncoder()
    label_emb = art.label_emb
    if encoder.model_id != art.meta.get("text_model"):
        label_emb = encoder.encode(art.labels)
    return label_emb, encoder.encode([text])[0]


# metres: a decoded lowest foot higher than this is in flight (ground_feet keeps it and the decoder's root
# travel there); at or below it, decoder noise near the floor (the foot is put on the ground)
GROUND_HOVER = 0.03


def ground_feet(canonical: CanonicalMotion, skeleton: Skeleton, hover: float = GROUND_HOVER) -> CanonicalMotion:
    """Planted feet that do not slide and no foot below the floor (``corpus.feet.settle_feet``: root
    travel from the feet in contact, the decoder's travel in flight).

    settle_feet takes the authored height above the ground: the decoded lowest-foot clearance
    where it exceeds ``hover`` (a jump's flight), else 0 (decoder noise near the floor)."""
    from avatarclip_core.motion.canonical import foot_clearance
    from avatarclip_core.motion.corpus.feet import settle_feet

    lowest = foot_clearance(canonical, skeleton).amin(1)
    authored = canonical.root_translation.clone()
    authored[:, 1] = torch.where(lowest > hover, lowest, torch.zeros_like(lowest))
    return settle_feet(CanonicalMotion(canonical.fps, canonical.rotations, authored), skeleton)


def resolve_method(method: str, scorer) -> str:
    """auto -> clip with a real CLIP scorer, else offline; an unknown name lists the registered ones."""
    method = (method or "auto").lower()
    MOTION_QUERIES.find(method)
    if method == "auto":
        return "clip" if scorer is not None and getattr(scorer, "real", False) else "offline"
    return method


def text_to_motion(text: str, skeleton: Skeleton, config: MotionGenConfig | None = None, scorer=None,
                   progress=None, match=None) -> tuple[Motion, dict]:
    """A motion for ``text`` on ``skeleton`` and an info dict (method, reference poses, losses, init, and
    ``matches``: the vocabulary matches and whether the text is known, ``matching.MatchReport``; an
    out-of-vocabulary text adds its sentence to ``warnings``). ``match``: the report when already made."""
    from avatarclip_core.motion.matching import match_text

    config = config or MotionGenConfig()
    text = check_motion_text(text)
    if config.top_k < 1 or config.iterations < 0:
        raise UserInputError("text.motion_gen needs top_k >= 1 and iterations >= 0")
    method = resolve_method(config.query_method, scorer)
    art = get_motion_artifacts(config)
    if config.frames and config.frames != art.motion_vae.frames:
        raise UserInputError(f"text.motion_gen.frames={config.frames}, but the '{config.artifacts}' motion VAE makes "
                             f"{art.motion_vae.frames}-frame clips: set 0, or train artifacts with that length")
    report = progress or (lambda stage, fraction, message="": None)
    match = match or match_text(text, config)
    report("motion query", 0.0, f"closest known motions: {match.summary()}")
    query = MOTION_QUERIES.find(method).cls(art, text, config, scorer, report)
    book, scores, scorer, posed, clip_sim = query.book, query.scores, query.scorer, query.posed, query.label_similarity
    chosen = [i for i in top_k_distinct(scores, book.poses, config.top_k, config.dedupe_degrees) if scores[i] > -9.0]
    references = book.poses[chosen]
    init = config.init if config.init != "auto" else query.default_init
    z0, init_info = None, "zero"
    if init == "label":
        if clip_sim is None:
            clip_sim = clip_label_similarity(art.library_label_index, *text_similarities(art, text))
        clip_id = int(clip_sim.argmax())
        z0 = art.library_latents[clip_id]
        init_info = f"label:{art.meta['library'][clip_id]['generator']}"
    elif init != "zero":
        raise UserInputError(f"unknown motion init '{init}' (auto, label or zero)")
    result = optimize_latent(art.motion_vae, references, config, z0, scorer=scorer,
                             text=text, posed=posed, skeleton=skeleton, fps=art.fps,
                             progress=lambda f, m: report("motion optimisation", f, m))
    rot, root = result.rotations, result.root_translation
    fps = art.fps
    if config.fps > 0 and abs(config.fps - fps) > 1e-6:
        rot, root = resample(rot, root, fps, config.fps)
        fps = config.fps
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "motion"
    canonical = clamp_to_limits(CanonicalMotion(fps, rot, root))  # the decoder can overshoot a joint's range
    if config.ground_feet:
        canonical = ground_feet(canonical, skeleton)
    motion = to_motion(canonical, skeleton, name)
    # artifacts by folder name only: params.json is downloadable, server paths stay private
    info = {
        "method": method, "text": text, "init": init_info, "artifacts": art.path.name, "fps": fps,
        "frames": int(rot.shape[0]),
        "reference_poses": [{"index": int(i), "score": round(float(scores[i]), 4),
                             "labels": [art.labels[j] for j in art.codebook.label_index[i].tolist() if j >= 0][:3]}
                            for i in chosen],
        "losses": result.losses, "optimisation_seconds": result.seconds, "iterations": config.iterations,
        "matches": match.to_dict(), "warnings": [w for w in [match.warning()] if w],
    }
    return motion, info


@dataclass
class MotionQuery:
    """What a motion query gives text_to_motion: scored code-book poses and what the optimisation reuses."""
    book: PoseCodebook  # the poses scored (clip: the first clip_max_entries)
    scores: torch.Tensor  # (P,) higher is better; -9 = dropped
    scorer: Any = None  # the CLIP scorer the optimisation also uses (None: no CLIP term)
    posed: PosedBody | None = None
    label_similarity: torch.Tensor | None = None  # (C,) text vs each library clip's labels, for init=label
    default_init: str = "zero"  # what init=auto means after this query


@MOTION_QUERIES.register("clip")
def clip_motion_query(art: MotionArtifacts, text: str, config: MotionGenConfig, scorer, report) -> MotionQuery:
    """Code-book poses rendered and scored by CLIP (the paper's query); the given scorer, else the configured one."""
    if scorer is None:
        from avatarclip_core.clip import ClipConfig, load_scorer

        scorer = load_scorer(ClipConfig(device=config.device))
    posed = _posed_body(str(next(art.motion_vae.parameters()).device))
    report("motion query", 0.0, "scoring code-book poses with CLIP")
    book = art.codebook.head(config.clip_max_entries)
    def encoded(done: int, total: int) -> None:  # only a user's first run with this CLIP model encodes
        report("motion query", done / total, f"encoding code-book poses with CLIP ({done}/{total}, once per user)")

    scores = clip_scores(book, scorer, posed, text, config.clip_azimuths, config.codebook_precision, encoded)
    return MotionQuery(book, scores, scorer, posed)


@MOTION_QUERIES.register("offline")
def offline_motion_query(art: MotionArtifacts, text: str, config: MotionGenConfig, scorer, report) -> MotionQuery:
    """Code-book poses scored by their corpus labels against the text (a sentence encoder, no CLIP)."""
    report("motion query", 0.0, "scoring code-book poses by their labels")
    clip_sim = clip_label_similarity(art.library_label_index, *text_similarities(art, text))
    scores = label_scores(art.codebook, clip_sim)
    if config.offline_score_margin > 0:  # drop weak matches rather than fill top_k
        weak = scores < scores.max() - config.offline_score_margin
        scores = torch.where(weak, torch.full_like(scores, -9.0), scores)
    return MotionQuery(art.codebook, scores, label_similarity=clip_sim, default_init="label")


@MOTION_QUERIES.register("auto")
def auto_motion_query(art: MotionArtifacts, text: str, config: MotionGenConfig, scorer, report) -> MotionQuery:
    """clip with a real CLIP scorer, else offline (resolve_method)."""
    return MOTION_QUERIES.find(resolve_method("auto", scorer)).cls(art, text, config, scorer, report)
