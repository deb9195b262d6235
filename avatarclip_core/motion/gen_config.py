"""Typed configs of text -> motion (AvatarCLIP Sec. 3.4): training (`MotionTrainConfig`) and
generation (`MotionGenConfig`). Defaults are the `preview` values (CPU seconds) except the CLIP
schedule (clip_every, clip_hold: L_clip on every step, as the paper; configs/preview.yaml thins it for
CPUs); `paper_values()` lists what the paper uses. YAML: ``text.motion_gen`` (generation) and ``text.motion_train``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from avatarclip_core.config.ranges import Count, Fraction, NonNegative, NonNegativeInt, Positive


@dataclass
class PoseVAEConfig:
    latent_dim: Count = 32  # paper (VPoser)
    hidden: Count = 256  # VPoser: 512
    poses: Count = 20000  # corpus frames sampled for training (+ held_out_fraction more for the held-out metrics)
    held_out_fraction: Fraction = 0.1
    epochs: Count = 20
    batch_size: Count = 256
    lr: Positive = 2e-3
    kl_weight: NonNegative = 5e-3  # VPoser v2's loss_kl_wt, against the mean squared 6-D error


@dataclass
class PoseCodebookConfig:
    size: Count = 256  # K-Means centroids over pose latents (paper: 4,096)
    kmeans_iters: Count = 40
    label_neighbours: Count = 24  # corpus poses nearest each centroid whose clip labels it keeps


@dataclass
class MotionVAEConfig:
    frames: Count = 32  # paper: 60 (corpus clips are 1.2-4 s long; shorter ones hold their last frame)
    fps: Positive = 16.0  # clips are resampled to this rate (32 frames = 2 s)
    latent_dim: Count = 64  # paper: 256
    width: Count = 128
    layers: Count = 2  # encoder and decoder layers each
    heads: Count = 4
    ff: Count = 256
    dropout: Fraction = 0.0  # small data, few epochs: under-fitting, not over-fitting, is the risk
    norm_first: bool = True  # pre-LN layers: trains faster and more stably than ACTOR's post-LN at this budget
    epochs: Count = 40  # paper: 100
    batch_size: Count = 32
    lr: Positive = 2e-3  # paper: 5e-4 (one-cycle schedule here)
    kl_weight: NonNegative = 1e-4  # lambda_5 of Eq. 11 (per latent dimension, against per-feature MSE)
    root_weight: NonNegative = 2.0  # root translation (metres) against the 6-D rotation error
    windows_per_clip: Count = 3  # random crops of each corpus clip per epoch


@dataclass
class MotionTrainConfig:
    """`avatar train motion`: pose VAE (or a VPoser v2 checkpoint), code-book, motion VAE."""

    name: str = "preview"
    seed: NonNegativeInt = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    threads: NonNegativeInt = 0  # CPU threads for torch; 0 = torch's default (1 is much faster on an oversubscribed machine)
    corpus: str = ""  # a real corpus by path (motion.corpus.load_corpus: BVH / AMASS folder); "" = the procedural generators
    # with a corpus: replace = its clips alone; join = the procedural generators' clips and its clips
    corpus_mode: Literal["replace", "join"] = "replace"
    clips_per_generator: Count = 12
    corpus_fps: Positive = 30.0
    held_out_fraction: Fraction = 0.1  # clips kept out of motion-VAE training for the metrics
    vposer: str = ""  # path of a human-body-prior VPoser v2 checkpoint (folder or .ckpt): replaces our pose VAE
    pose_vae: PoseVAEConfig = field(default_factory=PoseVAEConfig)
    codebook: PoseCodebookConfig = field(default_factory=PoseCodebookConfig)
    motion_vae: MotionVAEConfig = field(default_factory=MotionVAEConfig)


@dataclass
class MotionGenConfig:
    """Text -> motion (`generate.text_to_motion`)."""

    artifacts: str = "preview"  # artifact set name (packaged or trained into the data folder)
    artifacts_dir: str = ""  # explicit folder; "" = data folder's motion/<artifacts>, else the packaged set
    query_method: Literal["auto", "clip", "offline"] = "auto"  # auto = clip with a real CLIP scorer, else offline
    top_k: Count = 5  # candidate poses (paper: 5)
    # honest matching (matching.py): a text whose best label cosine (offline sentence encoder) is below
    # this is out of vocabulary. Calibrated on tests/data/motion_match_prompts.json (`python -m
    # avatarclip_core.motion.matching PROMPTS`), packaged preview set (all 92 generators, retrained
    # 2026-12-06): 59 in / 22 out, calibrated 0.596 with 2 errors ("push a heavy door" 0.46 -> push,
    # "sweep the floor" 0.68 -> get_up); lowest other in "applaud the performance" 0.596, highest other
    # out "brush your teeth" 0.52. The 53-generator set before it (20 in) calibrated to the same 0.596
    match_threshold: float = 0.595
    match_top: Count = 3  # best-matching generators reported per text
    # a generated motion must pass the semantic signature of the generator its text matched (motion.signatures);
    # fallback = else use that generator's procedural clip (said in warnings), warn = keep it with a warning
    quality_check: Literal["fallback", "warn", "off"] = "fallback"
    offline_score_margin: NonNegative = 0.15  # offline: candidates scoring this much below the best are dropped
    dedupe_degrees: NonNegative = 12.0  # candidates closer than this (mean angle per joint) count as duplicates
    clip_azimuths: list[float] = field(default_factory=lambda: [0.0, 45.0, -45.0])  # code-book render views
    # the code-book renders' CLIP features (no gradients, computed once per user): auto = fp16 on CUDA (as OpenAI
    # ships and the paper ran CLIP), bf16 on a CPU with native bf16 (ViT-B-32 ~1.9x faster), else fp32
    codebook_precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    clip_max_entries: NonNegativeInt = 0  # CLIP query over the n largest code-book clusters only (0 = all; renders are cached)
    init: Literal["auto", "label", "zero"] = "auto"  # auto = label (offline) / zero (clip), the latent's start
    iterations: NonNegativeInt = 150  # paper: 5,000
    lr: Positive = 0.03  # paper: 1e-2
    # L_pose (Eq. 13). Below 1 here: the references are static code-book poses, and at full weight 150
    # steps pull a walk's legs still, so contact-driven root travel vanishes (measured: 1.6 m -> -0.1 m)
    pose_weight: NonNegative = 0.3
    delta_weight: NonNegative = 0.1  # lambda_6, L_delta (Eq. 14): larger turns a walk into hops
    clip_weight: NonNegative = 1.0  # lambda_7, L_clip (Eq. 15)
    latent_weight: NonNegative = 1e-3  # ours: |z|^2 keeps the latent where the decoder was trained
    anchor_weight: NonNegative = 0.3  # ours: |z - z_init|^2 keeps the label-matched clip's timing, gait and root path
    # ours: L_contact (optimize.contact_loss) keeps the label-matched clip's stance: no new flight on its stance
    # frames, its stance feet pushing as they did, no split in double support, no sliding landing. Without it the
    # other terms grow flights the clip does not have, which settle into skating (preview, 150 steps, default
    # body: jog / run / jump 0.68 / 0.26 / 0.42 m/s -> 0.00 / 0.03 / 0.06). Only with init=label (a zero
    # latent has no stance to keep); configs/paper.yaml sets 0 (the paper has no such term)
    contact_weight: NonNegative = 1.0
    clip_frames: Count = 3  # frames rendered per iteration for L_clip (the paper samples a few)
    # L_clip every n-th iteration. One CLIP step (render + ViT-B-32 forward/backward, ~0.3 s a frame on 2 CPU
    # cores) costs ~100 of the other steps; 1 = every step (the paper; standard), preview.yaml sets 10
    clip_every: Count = 1
    # with clip_every > 1: the steps between CLIP steps keep the last CLIP gradient w.r.t. the latent
    # (first-order surrogate of L_clip) instead of dropping the term; False = L_clip on its own steps only
    clip_hold: bool = False
    # torch CPU threads during the latent optimisation (put back after); 0 = torch's default. preview.yaml: 1.
    # Measured with CLIP (ViT-B-32) on 2 cores at load ~8: one thread 47 s wall / ~20 s CPU, two 136 s / ~70 s
    # (each parallel op waits for the second core); on an idle machine two threads run the ViT ~1.8x faster
    threads: NonNegativeInt = 0
    ground_feet: bool = True  # planted feet do not slide, none below the floor, flight kept (corpus.feet.settle_feet)
    frames: NonNegativeInt = 0  # clip length: fixed by the motion VAE (preview 32 at 16 fps = 2 s); 0 = take it, else must match
    fps: Positive = 30.0  # output frame rate; 0 = the motion VAE's (slerp-resampled when different)
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    seed: NonNegativeInt = 0


def paper_values() -> dict[str, object]:
    """Hyper-parameters AvatarCLIP reports (Sec. 4.1.1); the ones it leaves out are marked."""
    return {
        "pose_vae": "pre-trained VPoser (latent 32, 512 units), AMASS poses",
        "codebook.size": 4096,
        "top_k": 5,
        "motion_vae.latent_dim": 256,
        "motion_vae.frames": 60,
        "motion_vae.fps": "not given (AMASS clips, typically downsampled)",
        "motion_vae.epochs": 100,
        "motion_vae.lr": 5e-4,
        "iterations": 5000,
        "lr": 1e-2,
        "delta_weight (lambda_6), clip_weight (lambda_7), kl_weight (lambda_5)": "not given in the paper",
    }
