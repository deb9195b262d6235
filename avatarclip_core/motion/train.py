"""`train_motion_models`: pose VAE (or VPoser v2 by path), pose code-book and motion VAE (`avatar train motion`).

Writes one artifact folder (``generate.load_motion_artifacts`` reads it): ``meta.json`` (schema,
configs, labels, metrics) and ``motion_models.npz`` (weights, code-book, clip library). The clip
library holds, per corpus clip, the motion-VAE latent of its first window and its labels, so the
offline path can start the latent optimisation from the most label-similar clip.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.body.lbs import matrix_to_rotation_6d
from avatarclip_core.config import ConfigError
from avatarclip_core.device import resolve_device
from avatarclip_core.jobfolder import atomic_job_folder
from avatarclip_core.motion.gen_config import MotionTrainConfig
from avatarclip_core.motion.motion_vae import MotionVAE, crop, resample, to_features, train_motion_vae
from avatarclip_core.motion.pose_codebook import build_pose_codebook
from avatarclip_core.motion.pose_vae import PoseVAE, load_vposer, pose_reconstruction_error, train_pose_vae
from avatarclip_core.progress import ProgressFn, StageTimer

log = logging.getLogger(__name__)
SCHEMA = "avatar-studio/motion-artifacts@1"
META_FILE, ARRAYS_FILE, METRICS_FILE = "meta.json", "motion_models.npz", "metrics.json"


def _load_clips(config: MotionTrainConfig, skeleton) -> tuple[list, dict[str, int]]:
    """The training clips (procedural first, then the external corpus's) and how many came from each.
    An external corpus (``corpus``) replaces the procedural generators, or with ``corpus_mode=join``
    is added to them."""
    from avatarclip_core.motion.corpus import iter_corpus, load_corpus

    procedural, external = [], []
    if not config.corpus or config.corpus_mode == "join":
        procedural = list(iter_corpus(skeleton, clips_per_generator=config.clips_per_generator, seed=config.seed,
                                      fps=config.corpus_fps))
    if config.corpus:
        external = list(load_corpus(Path(config.corpus).expanduser(), skeleton, fps=config.corpus_fps))
    clips = procedural + external
    if len(clips) < 4:
        raise ConfigError(f"the motion corpus has {len(clips)} clips; at least 4 are needed to train")
    return clips, {"procedural": len(procedural), "external": len(external)}


def _sample_poses(clips: list, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n frames drawn uniformly over all frames of ``clips``: poses (n, 20, 3, 3) and their clip index."""
    lengths = torch.tensor([c.motion.rotations.shape[0] for c in clips])
    starts = torch.cumsum(lengths, 0) - lengths
    flat = torch.randint(0, int(lengths.sum()), (n,), generator=gen)
    clip_of = torch.searchsorted(starts, flat, right=True) - 1
    frame = flat - starts[clip_of]
    poses = torch.stack([clips[int(c)].motion.rotations[int(f)] for c, f in zip(clip_of, frame)])
    return poses.float(), clip_of


def _state_arrays(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v.detach().float().cpu().numpy() for k, v in module.state_dict().items()}


def train_motion_models(config: MotionTrainConfig | None = None, output_dir: str | os.PathLike | None = None,
                        progress: ProgressFn | None = None, *, body=None, text_encoder=None) -> Path:
    """Train and write an artifact set; returns its folder (default ``$AVATAR_DATA_DIR/motion/<name>``)."""
    config = config or MotionTrainConfig()
    previous_threads = torch.get_num_threads()
    try:
        return _train_motion_models(config, output_dir, progress, body=body, text_encoder=text_encoder)
    finally:
        # config.threads is for this training only: a thread count left behind changes every later
        # float reduction in the process (it made the NeuS slow test depend on test order).
        torch.set_num_threads(previous_threads)


def _train_motion_models(config: MotionTrainConfig, output_dir, progress, *, body, text_encoder) -> Path:
    from avatarclip_core.motion.generate import default_output_dir

    config = config or MotionTrainConfig()
    out = Path(output_dir) if output_dir is not None else default_output_dir(config.name)
    device = resolve_device(config.device)
    pv, cb, mv = config.pose_vae, config.codebook, config.motion_vae
    timer = StageTimer({"corpus": 2, "pose vae": 6 if not config.vposer else 1, "codebook": 1, "motion vae": 20,
                        "library": 1, "labels": 1, "save": 1}, progress)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    if min(cb.size, mv.frames - 1, mv.epochs, pv.epochs, pv.poses - cb.size) < 1:
        raise ConfigError("text.motion_train needs codebook.size >= 1, pose_vae.poses > codebook.size, "
                          "motion_vae.frames >= 2 and at least one epoch for each model")
    vposer = load_vposer(config.vposer, device) if config.vposer else None  # a bad path fails before any work
    if body is None:
        from avatarclip_core.body import create_body_model

        body = create_body_model()
    skeleton = body.rigged_mesh({}).skeleton
    clips, sources = timer.run("corpus", lambda: _load_clips(config, skeleton))
    labels = list(dict.fromkeys(lab for c in clips for lab in c.labels))
    clip_labels = [[labels.index(lab) for lab in dict.fromkeys(c.labels)] for c in clips]
    order = torch.randperm(len(clips), generator=gen).tolist()
    n_held = max(1, int(round(len(clips) * config.held_out_fraction)))
    held_ids, train_ids = sorted(order[:n_held]), sorted(order[n_held:])
    train_clips, held_clips = [clips[i] for i in train_ids], [clips[i] for i in held_ids]
    report: dict = {"clips": len(clips), "clip_sources": sources, "train_clips": len(train_clips),
                    "held_out_clips": len(held_clips), "held_out_clip_ids": held_ids,  # library indices
                    "labels": len(labels), "device": device}

    n_held_poses = max(64, int(pv.poses * pv.held_out_fraction))
    poses, pose_clip_local = _sample_poses(train_clips, pv.poses, gen)
    held_poses, _ = _sample_poses(held_clips, n_held_poses, gen)
    pose_clip = torch.tensor(train_ids)[pose_clip_local]

    def pose_stage():
        if vposer is not None:
            return vposer, {"source": vposer.source, **pose_reconstruction_error(vposer, held_poses, device)}
        model = PoseVAE(pv.latent_dim, pv.hidden)
        rep = train_pose_vae(model, poses, held_poses, epochs=pv.epochs, batch_size=pv.batch_size, lr=pv.lr,
                             kl_weight=pv.kl_weight, seed=config.seed, device=device,
                             progress=lambda f, m: log.info(m))
        return model, rep

    pose_model, report["pose_vae"] = timer.run("pose vae", pose_stage)
    book = timer.run("codebook", lambda: build_pose_codebook(
        pose_model, poses.to(device), pose_clip, clip_labels, size=cb.size, iters=cb.kmeans_iters,
        neighbours=cb.label_neighbours, seed=config.seed))

    def resampled(cs):
        return [resample(c.motion.rotations.float(), c.motion.root_translation.float(), c.motion.fps, mv.fps)
                for c in cs]

    all_resampled = resampled(clips)
    vae = MotionVAE(mv.frames, mv.latent_dim, mv.width, mv.layers, mv.heads, mv.ff, mv.dropout, mv.norm_first)
    report["motion_vae"] = timer.run("motion vae", lambda: train_motion_vae(
        vae, [all_resampled[i] for i in train_ids], [all_resampled[i] for i in held_ids], epochs=mv.epochs,
        batch_size=mv.batch_size, lr=mv.lr, kl_weight=mv.kl_weight, root_weight=mv.root_weight,
        windows_per_clip=mv.windows_per_clip, seed=config.seed, device=device,
        progress=lambda f, m: log.info(m)))

    @torch.no_grad()
    def library():
        first = [to_features(*(x[None] for x in crop(rot, root, 0, mv.frames)))[0] for rot, root in all_resampled]
        return torch.cat([vae.encode(torch.stack(first[s:s + 64]).to(device))[0].cpu()
                          for s in range(0, len(first), 64)])

    library_latents = timer.run("library", library)

    def embed_labels():
        from avatarclip_core.clip.text_encoder import TextEncoder

        encoder = text_encoder or TextEncoder()
        return encoder.model_id, encoder.encode(labels)

    text_model, label_emb = timer.run("labels", embed_labels)
    lib_idx = np.full((len(clips), max(len(c) for c in clip_labels)), -1, dtype=np.int32)
    for i, ids in enumerate(clip_labels):
        lib_idx[i, :len(ids)] = ids
    arrays = {**(_state_arrays("pose_vae", pose_model) if pose_model.kind == "ours" else {}),
              **_state_arrays("motion_vae", vae),
              "codebook/latents": book.latents.numpy(), "codebook/poses6d": matrix_to_rotation_6d(book.poses).numpy(),
              "codebook/counts": book.counts.numpy().astype(np.int32),
              "codebook/label_index": book.label_index.numpy().astype(np.int32),
              "codebook/label_weight": book.label_weight.numpy(),
              "codebook/neighbour_clips": book.neighbour_clips.numpy().astype(np.int32),
              "library/latents": library_latents.numpy(),
              "library/label_index": lib_idx, "labels/embeddings": label_emb.numpy().astype(np.float16)}
    meta = {"schema": SCHEMA, "name": config.name, "config": dataclasses.asdict(config),
            "pose_model": {"kind": pose_model.kind, "latent_dim": pose_model.latent_dim,
                           "hidden": getattr(pose_model, "hidden", None), "vposer": config.vposer},
            "motion_vae": vae.hparams, "fps": mv.fps, "labels": labels, "text_model": text_model,
            "library": [{"generator": c.generator, "category": c.category} for c in clips],
            "report": report}

    def save():
        report["timings_s"] = dict(timer.timings)
        report["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with atomic_job_folder(out, force=True) as tmp:
            np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
            (tmp / METRICS_FILE).write_text(json.dumps(report, indent=1))
        return out

    return timer.run("save", save)
