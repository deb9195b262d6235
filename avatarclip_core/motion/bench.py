"""`bench_motion()`: training time per epoch (pose VAE, motion VAE) and latent-optimisation wall time.

Epoch times use the preview configuration's model sizes and dataset sizes; the motion-VAE epoch is
extrapolated from a few timed batches. The CLIP-path timing uses a ViT-B-32 architecture with
random weights (timing only: its scores mean nothing), rendering `clip_frames` frames per iteration.
"""
from __future__ import annotations

import math
import time

import torch

from avatarclip_core.motion.gen_config import MotionGenConfig, MotionTrainConfig


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _pose_vae_epoch(config: MotionTrainConfig, clips) -> dict:
    from avatarclip_core.motion.pose_vae import PoseVAE, train_pose_vae
    from avatarclip_core.motion.train import _sample_poses

    pv = config.pose_vae
    poses, _ = _sample_poses(clips, pv.poses, torch.Generator().manual_seed(0))
    vae = PoseVAE(pv.latent_dim, pv.hidden)
    rep = train_pose_vae(vae, poses, poses[:256], epochs=1, batch_size=pv.batch_size, lr=pv.lr,
                         kl_weight=pv.kl_weight, seed=0)
    return {"poses": pv.poses, "seconds_per_epoch": rep["seconds_per_epoch"]}


def _motion_vae_epoch(config: MotionTrainConfig, clips, batches: int = 6) -> dict:
    from avatarclip_core.motion.motion_vae import MotionVAE, _loss, random_windows, resample

    mv = config.motion_vae
    vae = MotionVAE(mv.frames, mv.latent_dim, mv.width, mv.layers, mv.heads, mv.ff, mv.dropout, mv.norm_first).train()
    data = random_windows([resample(c.motion.rotations.float(), c.motion.root_translation.float(), c.motion.fps,
                                    mv.fps) for c in clips], mv.frames, 1, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(vae.parameters(), lr=mv.lr)

    def step(i: int) -> None:
        batch = data[torch.arange(i * mv.batch_size, (i + 1) * mv.batch_size) % len(data)]
        loss = _loss(vae, batch, mv.kl_weight, mv.root_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)  # warm-up
    seconds = _timed(lambda: [step(i) for i in range(1, batches + 1)]) / batches
    n_clips = config.clips_per_generator * len(_generators())
    per_epoch = math.ceil(n_clips * mv.windows_per_clip / mv.batch_size)
    return {"seconds_per_batch": round(seconds, 4), "batches_per_epoch": per_epoch,
            "seconds_per_epoch_estimated": round(seconds * per_epoch, 2), "frames": mv.frames, "width": mv.width}


def _generators() -> list[str]:
    from avatarclip_core.motion.corpus import generator_names

    return generator_names()


def _optimisation(frames: int, clip: bool) -> dict:
    """Wall time of `iterations` optimisation steps for a motion VAE of `frames` frames (preview sizes)."""
    from avatarclip_core.body import create_body_model
    from avatarclip_core.motion.motion_vae import MotionVAE
    from avatarclip_core.motion.optimize import optimize_latent
    from avatarclip_core.motion.pose_codebook import PosedBody

    gen, mv = MotionGenConfig(), MotionTrainConfig().motion_vae
    vae = MotionVAE(frames, mv.latent_dim, mv.width, mv.layers, mv.heads, mv.ff, mv.dropout, mv.norm_first).eval()
    refs = torch.eye(3).repeat(gen.top_k, 20, 1, 1)
    if not clip:
        seconds = _timed(lambda: optimize_latent(vae, refs, gen))
        return {"frames": frames, "iterations": gen.iterations, "seconds": round(seconds, 2)}
    from avatarclip_core.clip.scorer import random_weights_scorer

    scorer = random_weights_scorer("ViT-B-32", render_size=224)
    posed = PosedBody(create_body_model())
    iters = 3
    cfg = MotionGenConfig(iterations=iters)
    seconds = _timed(lambda: optimize_latent(vae, refs, cfg, scorer=scorer, text="a person jumps", posed=posed))
    return {"frames": frames, "clip_model": "ViT-B-32 (random weights, timing only)", "clip_frames": cfg.clip_frames,
            "seconds_per_iteration": round(seconds / iters, 3),
            "seconds_for_preview_iterations_estimated": round(seconds / iters * gen.iterations, 1)}


def bench_motion(clip: bool = True) -> dict:
    """Timings on this machine (see the module docstring)."""
    from avatarclip_core.motion.corpus import default_skeleton, iter_corpus

    config = MotionTrainConfig()
    clips = list(iter_corpus(default_skeleton(), clips_per_generator=2, seed=0))
    out = {
        "threads": torch.get_num_threads(),
        "pose_vae_epoch": _pose_vae_epoch(config, clips),
        "motion_vae_epoch": _motion_vae_epoch(config, clips),
        "optimise_offline_preview_frames": _optimisation(config.motion_vae.frames, clip=False),
        "optimise_offline_60_frames": _optimisation(60, clip=False),
    }
    if clip:
        out["optimise_clip_60_frames"] = _optimisation(60, clip=True)
    return out
