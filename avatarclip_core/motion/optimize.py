"""Reference-based latent optimisation of the motion VAE (AvatarCLIP Sec. 3.4.2, Eq. 12-16).

L_motion = L_pose + lambda_6 L_delta + lambda_7 L_clip (+ our latent, anchor and contact terms):
- L_pose (Eq. 13): for each reference pose theta_i (best first), the distance to its nearest
  decoded frame, weighted by lambda_pose(i) = 1 - (i - 1) / k. Distances are Euclidean norms of
  the 20 roles' 6-D rotations; we divide the sum by k so the weights do not depend on top_k.
- L_delta (Eq. 14): minus the distance between adjacent frames (rewards range of motion); we
  average over the L - 1 pairs instead of summing so lambda_6 does not depend on L.
- L_clip (Eq. 15-16): s_i = 1 - cos(E_I(R(Theta_i)), E_T(text)) on a few sampled frames per
  iteration, weighted by lambda_clip(i) = i / L (later frames matter more); averaged over them.
- ours: latent_weight |z|^2 keeps z where the decoder was trained; anchor_weight |z - z_0|^2
  keeps the initial (label-matched) clip's timing and root path when starting from one.
- ours: contact_weight L_contact keeps the stance of the initial (label-matched) decode
  (`contact_loss`, by corpus.feet's one contact model: `planted_steps`, `carrying_feet`): no new
  flight on its stance frames, its stance feet pushing the body as they did, no feet splitting in
  double support, no sliding landing. Without it the other terms grow flights the matched clip does
  not have, which settle into skating (preview, 150 steps: jog / run / jump 0.68 / 0.26 / 0.42 m/s;
  with it 0.00 / 0.03 / 0.06). Only with a z_0 and a skeleton: a zero latent's decode has no stance
  worth keeping. The paper has no such term (configs/paper.yaml sets 0).

CPU schedule (MotionGenConfig): one CLIP step (render + ViT forward/backward) costs ~100x a step
of the other terms, so L_clip can run every ``clip_every``-th iteration; with ``clip_hold`` the
steps between keep its last gradient w.r.t. the latent (a first-order surrogate of L_clip, so
Adam sees a steady CLIP direction instead of a spike every k steps). The last pass, which only
records the final losses, always evaluates L_clip and builds no graph.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from avatarclip_core.body.lbs import matrix_to_rotation_6d
from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.motion_vae import MotionVAE


@dataclass
class OptimizationResult:
    latent: torch.Tensor  # (Z,)
    rotations: torch.Tensor  # (L, 20, 3, 3) canonical rotations
    root_translation: torch.Tensor  # (L, 3)
    losses: dict[str, list[float]] = field(default_factory=dict)  # per iteration: total, pose, delta, clip
    seconds: float = 0.0


def pose_weights(k: int, device=None) -> torch.Tensor:
    """lambda_pose(i) = 1 - (i - 1) / k for i = 1..k."""
    return 1.0 - torch.arange(k, dtype=torch.float32, device=device) / k


def pose_loss(frames6: torch.Tensor, refs6: torch.Tensor) -> torch.Tensor:
    """Eq. 13 / k. frames6 (L, 120), refs6 (k, 120), references best first."""
    dist = torch.cdist(refs6[None], frames6[None])[0]  # (k, L)
    return (pose_weights(refs6.shape[0], refs6.device) * dist.min(dim=1).values).sum() / refs6.shape[0]


def delta_loss(frames6: torch.Tensor) -> torch.Tensor:
    """Eq. 14 / (L - 1): minus the mean distance between adjacent frames."""
    return -(frames6[1:] - frames6[:-1]).norm(dim=-1).mean()


def clip_loss(scorer, posed, rotations: torch.Tensor, root: torch.Tensor, text: str, frames: torch.Tensor,
              azimuth: float) -> torch.Tensor:
    """Eq. 15-16 on the sampled ``frames`` (0-based; lambda_clip = (i + 1) / L), averaged over them."""
    from avatarclip_core.motion.pose_codebook import render_poses

    L = rotations.shape[0]
    centred = root[frames] * torch.tensor([0.0, 1.0, 0.0], device=root.device)  # keep the body in frame
    images = render_poses(posed, rotations[frames], centred, [azimuth], int(getattr(scorer, "render_size", 224)))
    f_img = scorer.encode_image(images)
    f_txt = scorer.encode_text([text]).to(f_img.device)
    s = 1.0 - (f_img * f_txt).sum(-1)
    weights = (frames.to(s.device).float() + 1.0) / L
    return (weights * s).mean()


@dataclass
class Contacts:
    """The stance of the initial decode (`initial_contacts`), which `contact_loss` keeps."""
    frames: torch.Tensor  # (L,) bool: the lowest foot is on the ground at frame t
    steps: torch.Tensor  # (L-1, 2) bool: the foot carries the body over step t, both ends on the ground
    push: torch.Tensor  # (L-1, 2, 2) each foot's planted-point step relative to the pelvis (x, z; metres)


def _push(step: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Planted-point steps (`planted_steps`, in the world) relative to the pelvis's horizontal travel."""
    return step - (root[1:, [0, 2]] - root[:-1, [0, 2]])[:, None]


@torch.no_grad()
def initial_contacts(rotations: torch.Tensor, root: torch.Tensor, fps: float, skeleton: Skeleton) -> Contacts:
    """Where a decoded clip stands, by the corpus's one contact model (`corpus.feet.planted_steps`,
    `carrying_feet`): its frames with the lowest foot within CONTACT_HEIGHT of the ground, and over its
    steps between two of them the feet that carry the body and how they push it."""
    from avatarclip_core.motion.canonical import CanonicalMotion
    from avatarclip_core.motion.corpus.feet import CONTACT_HEIGHT, carrying_feet, planted_steps

    step, clearance = planted_steps(CanonicalMotion(fps, rotations, root), skeleton)
    ground = clearance.amin(1) <= CONTACT_HEIGHT  # (L,)
    carry = carrying_feet(step, clearance, fps) & (ground[1:] & ground[:-1])[:, None]
    return Contacts(ground, carry, _push(step, root))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return values[mask].mean() if bool(mask.any()) else values.new_zeros(())


def contact_loss(rotations: torch.Tensor, root: torch.Tensor, fps: float, skeleton: Skeleton,
                 contacts: Contacts, hover: float) -> torch.Tensor:
    """L_contact (ours): the initial decode's stance (``contacts``) kept, as four squared terms, speeds in
    m/s and heights in units of CONTACT_HEIGHT (one contact height of lift costs as much as 1 m/s of slide):
    - flight: on its stance frames, the lowest foot's height above CONTACT_HEIGHT (no new flight);
    - push: over its stance steps, the change of each carrying foot's planted-point motion relative to
      the pelvis (settle_feet takes the root travel from it: the stance foot keeps pushing the body as
      far, so a run still travels; an absolute speed penalty shortens the strides instead);
    - split: over its double-support steps, the speed at which the two planted points move apart
      (settle_feet moves the root with their mean, so each slides by half of it);
    - landing: over the steps where the decode lands (lowest foot above ``hover``, then at or below it:
      where ground_feet switches from the decoder's root travel to the feet's), the landing foot's
      world speed (it would slide on touchdown).
    Differentiable: one FK pass of the role joints (`corpus.feet.planted_steps`)."""
    from avatarclip_core.motion.canonical import CanonicalMotion
    from avatarclip_core.motion.corpus.feet import CONTACT_HEIGHT, planted_steps

    step, clearance = planted_steps(CanonicalMotion(fps, rotations, root), skeleton)
    lowest = clearance.amin(1)
    flight = _masked_mean((torch.relu(lowest - CONTACT_HEIGHT) / CONTACT_HEIGHT).pow(2), contacts.frames)
    push = _masked_mean((_push(step, root) - contacts.push).pow(2).sum(-1) * fps ** 2, contacts.steps)
    split = _masked_mean((step[:, 0] - step[:, 1]).pow(2).sum(-1) * fps ** 2 / 4, contacts.steps.all(1))
    lands = step[torch.arange(step.shape[0]), clearance[1:].argmin(1)]  # the lower foot's at each step's end
    landing = _masked_mean(lands.pow(2).sum(-1) * fps ** 2, (lowest[:-1] > hover) & (lowest[1:] <= hover))
    return flight + push + split + landing


@torch.no_grad()
def clip_eval_loss(scorer, posed, rotations: torch.Tensor, root: torch.Tensor, text: str, azimuths=(0.0,),
                   batch: int = 8) -> float:
    """What L_clip (Eq. 15-16) averages to over its random draws, for comparing motions (not used by the
    optimiser): every frame i from every azimuth, s_i weighted by (i + 1) / L and averaged, as the
    optimiser's sampled frames and view are in expectation. Deterministic (no sampling)."""
    from avatarclip_core.motion.pose_codebook import render_poses

    L = rotations.shape[0]
    views = list(azimuths) or [0.0]
    f_txt = scorer.encode_text([text])
    size = int(getattr(scorer, "render_size", 224))
    total = 0.0
    for s in range(0, L, batch):
        idx = torch.arange(s, min(L, s + batch))
        centred = root[idx] * torch.tensor([0.0, 1.0, 0.0], device=root.device)
        images = render_poses(posed, rotations[idx], centred, views, size)  # pose-major
        sims = (1.0 - (scorer.encode_image(images) * f_txt.to(images.device)).sum(-1)).reshape(len(idx), len(views))
        total += float((sims.mean(1) * (idx.float() + 1.0) / L).sum())
    return total / L


def optimize_latent(vae: MotionVAE, references: torch.Tensor, config: MotionGenConfig, z0: torch.Tensor | None = None,
                    *, scorer=None, text: str = "", posed=None, skeleton: Skeleton | None = None, fps: float = 0.0,
                    progress=None) -> OptimizationResult:
    """Optimise the motion VAE latent against reference poses (k, 20, 3, 3), best first.

    L_clip runs only when ``scorer`` (and ``posed``, the body to render) are given; L_contact only
    with ``z0``, ``skeleton`` (the feet's rig) and ``fps`` (the decoder's frame rate). torch runs on
    ``config.threads`` CPU threads meanwhile (0: as they are), put back after.
    """
    from avatarclip_core.device import torch_threads

    with torch_threads(config.threads):
        return _optimize_latent(vae, references, config, z0, scorer=scorer, text=text, posed=posed,
                                skeleton=skeleton, fps=fps, progress=progress)


def _optimize_latent(vae: MotionVAE, references: torch.Tensor, config: MotionGenConfig, z0: torch.Tensor | None,
                     *, scorer, text: str, posed, skeleton: Skeleton | None, fps: float, progress) -> OptimizationResult:
    started = time.perf_counter()
    device = next(vae.parameters()).device
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    refs6 = matrix_to_rotation_6d(references.to(device).float()).flatten(-2)
    start = (z0.to(device).float() if z0 is not None else torch.zeros(vae.latent_dim, device=device)).clone()
    z = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    use_clip = scorer is not None and posed is not None and config.clip_weight > 0 and bool(text)
    every = max(1, config.clip_every)
    hold = use_clip and config.clip_hold and every > 1
    held: torch.Tensor | None = None  # the last CLIP step's gradient of clip_weight * L_clip w.r.t. z
    losses: dict[str, list[float]] = {"total": [], "pose": [], "delta": [], "clip": [], "contact": []}
    L = vae.frames
    contacts = None
    if config.contact_weight > 0 and z0 is not None and skeleton is not None and fps > 0:
        from avatarclip_core.motion.generate import GROUND_HOVER as hover  # ground_feet's flight threshold

        with torch.no_grad():
            rot0, root0 = vae.decode_motion(start[None])
        contacts = initial_contacts(rot0[0], root0[0], fps, skeleton)
    for it in range(max(0, config.iterations) + 1):
        final = it == config.iterations  # the last pass only records the final losses
        clip_step = use_clip and (it % every == 0 or final)
        with torch.set_grad_enabled(not final):
            rot, root = vae.decode_motion(z[None])
            rot, root = rot[0], root[0]
            frames6 = matrix_to_rotation_6d(rot).flatten(-2)
            l_pose = pose_loss(frames6, refs6)
            l_delta = delta_loss(frames6)
            total = config.pose_weight * l_pose + config.delta_weight * l_delta
            total = total + config.latent_weight * z.pow(2).mean() + config.anchor_weight * (z - start).pow(2).mean()
            l_contact = torch.zeros((), device=device)
            if contacts is not None:
                l_contact = contact_loss(rot, root, fps, skeleton, contacts, hover)
                total = total + config.contact_weight * l_contact
            l_clip = torch.zeros((), device=device)
            if clip_step:
                n = min(max(1, config.clip_frames), L)
                frames = torch.randperm(L, generator=gen)[:n].sort().values.to(device)
                az = config.clip_azimuths[int(torch.randint(len(config.clip_azimuths), (1,), generator=gen))] \
                    if config.clip_azimuths else 0.0
                l_clip = clip_loss(scorer, posed, rot, root, text, frames, az)
        for key, value in (("total", total + config.clip_weight * l_clip), ("pose", l_pose), ("delta", l_delta),
                           ("clip", l_clip), ("contact", l_contact)):
            losses[key].append(round(float(value.detach()), 6))
        if final:
            break
        opt.zero_grad(set_to_none=True)
        if hold:
            if clip_step:
                held = torch.autograd.grad(config.clip_weight * l_clip, z, retain_graph=True)[0]
            total.backward()
            if held is not None:
                z.grad = z.grad + held
        else:
            (total + config.clip_weight * l_clip).backward()
        opt.step()
        if progress is not None and (it % 10 == 0 or it == config.iterations - 1):
            progress((it + 1) / config.iterations,
                     f"motion latent {it + 1}/{config.iterations} loss {losses['total'][-1]:.4f}")
    with torch.no_grad():
        rot, root = vae.decode_motion(z.detach()[None])
    return OptimizationResult(z.detach().cpu(), rot[0].cpu(), root[0].cpu(), losses,
                              round(time.perf_counter() - started, 3))
