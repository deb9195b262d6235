"""Stage 2: CLIP-guided shape sculpting and texture generation (AvatarCLIP Sec. 3.3.2, Eq. 6).

    L2 = lambda_recon L1 + lambda3 L_clip(I_c, t) + lambda4 L_clip(I_g, t)

- I_c: the colour render of {f, c_c} with random shading (Eq. 9), I_g: the texture-less render
  (Eq. 8), both from one NeuS pass over the rays inside the template's dilated silhouette,
  composited over one of the paper's four random backgrounds (render.random_backgrounds);
  light within +-pi/4 of the camera direction, ambient ~ U(0, 0.2) (render.shading).
- Cameras: render.sample_random_cameras (the paper's look-at sampling); every ``face_every``-th
  step a close-up of the face centre (render.face_camera) with ``face_prompt(t)``; views with
  |azimuth| > 90 degrees use ``back_prompt(t)``.
- L1, the shape-keeping term: the paper re-renders the template (Eq. 5) every step; here f is
  held to the template's signed distance at bank points outside a band around the surface
  (``sculpt_band`` outside, the smaller ``sculpt_band_inside`` inside, so clothes and hair can
  grow) and at the bank's core points at any depth (so parts thinner than the inner band, hands
  and forearms, cannot be carved away), plus the eikonal term. It is CPU-cheap and keeps the
  sculpted mesh aligned with the template for rigging.

``scorer`` is duck-typed: anything with ``clip_loss(images (B, H, W, 3) in [0, 1], texts) -> scalar``.
"""
from __future__ import annotations

import time

import torch

from avatarclip_core.clip import back_prompt, face_prompt
from avatarclip_core.render import (
    face_camera,
    random_backgrounds,
    sample_ambient,
    sample_light_directions,
    sample_random_cameras,
)

from .config import NeusConfig
from .guide import template_guide
from .networks import NeusModel
from .stage1 import Template, eikonal, sdf_supervision
from .volume import SDFGrid, render_images


def sample_views(step: int, config: NeusConfig, template: Template, face_center: torch.Tensor,
                 generator: torch.Generator, appearance: str):
    """Cameras, per-view prompts and look-at targets for one stage-2 step."""
    cfg = config
    B = cfg.batch_size
    scale = template.height / 1.7
    dev = template.vertices.device
    if cfg.face_every > 0 and step % cfg.face_every == 0:
        sample = face_camera(face_center.cpu(), n=B, generator=generator, config=cfg.camera, scale=scale, device=dev)
        prompts = [face_prompt(appearance)] * B
        kind = "face"
    else:
        sample = sample_random_cameras(B, generator, cfg.camera, center=template.center.cpu(), scale=scale, device=dev)
        prompts = [back_prompt(appearance) if bool(b) else appearance for b in sample.is_back]
        kind = "back" if bool(sample.is_back.all()) else "body"
    return sample, prompts, kind


def render_clip_views(model: NeusModel, template: Template, cameras, config: NeusConfig, generator: torch.Generator,
                      target: torch.Tensor | None = None, train: bool = True):
    """(I_c, I_g, NeusImages) for the cameras: random backgrounds, light and ambient (Eqs. 8-9)."""
    cfg = config
    B, S = len(cameras), cfg.image_size
    guide = template_guide(template.vertices, template.faces, cameras, S, dilation_radius=cfg.dilation_radius,
                           dilation_px=cfg.dilation_px, band=cfg.sculpt_band, target=target)
    dev = template.vertices.device
    bg = random_backgrounds(B, S, S, generator=generator, config=cfg.background, device=dev)
    light = sample_light_directions(cameras, generator, cfg.shading)
    ambient = sample_ambient(B, generator, cfg.shading, device=dev)
    outputs = ("shaded" if cfg.random_shading else "rgb", "textureless")
    img = render_images(model, cameras, S, mask=guide.mask, near_far=guide.near_far, outputs=outputs, stylised=True,
                        background=bg, light_dir=light, ambient=ambient, train=train, generator=generator)
    colour = img.shaded if cfg.random_shading else img.rgb
    return colour, img.textureless, img


def clip_losses(scorer, i_c: torch.Tensor, i_g: torch.Tensor, prompts: list[str], color: bool = True,
                geometry: bool = True):
    """(L_clip(I_c), L_clip(I_g)) as Eq. 1 averaged over the views.

    With an ImageTextScorer-like scorer (``encode_image`` / ``encode_text`` giving unit features)
    both renders go through the image encoder as one batch, which is cheaper on the CPU than two
    calls; any other scorer gets two ``clip_loss`` calls.
    """
    zero = i_c.new_zeros(())
    if color and geometry and hasattr(scorer, "encode_image") and hasattr(scorer, "encode_text"):
        B = i_c.shape[0]
        f_img = scorer.encode_image(torch.cat([i_c, i_g]))
        f_txt = scorer.encode_text(list(prompts) * 2).to(f_img)
        loss = 1.0 - (f_img * f_txt).sum(-1)
        return loss[:B].mean(), loss[B:].mean()
    l_c = scorer.clip_loss(i_c, prompts) if color else zero
    l_g = scorer.clip_loss(i_g, prompts) if geometry else zero
    return l_c, l_g


def band_complement(template: Template, config: NeusConfig) -> torch.Tensor:
    """Indices of the bank points where f must keep the template's signed distance: farther than
    ``sculpt_band`` outside or ``sculpt_band_inside`` inside, and every core point (a part's
    interior, however thin the part)."""
    sdf = template.bank_sdf
    held = (sdf > config.sculpt_band) | (sdf < -config.sculpt_band_inside) | template.bank_core
    return held.nonzero().squeeze(1)


def sculpt(model: NeusModel, template: Template, appearance: str, scorer, config: NeusConfig,
           generator: torch.Generator | None = None, face_center: torch.Tensor | None = None,
           progress=None, snapshot=None) -> dict:
    """Optimise f and c_c with CLIP for ``config.iterations`` steps (in place). Returns statistics.

    progress(fraction in [0, 1], message) every ``progress_every`` steps; snapshot(step, I_c, I_g)
    likewise (optional, e.g. for debugging renders).
    """
    cfg = config
    g = generator if generator is not None else torch.Generator().manual_seed(cfg.seed + 3)
    if face_center is None:
        face_center = template.default_face_center()
    face_center = torch.as_tensor(face_center, dtype=torch.float32).reshape(3)
    which = ("sdf", "color_c") + (("variance",) if cfg.stage2_train_variance else ())
    opt = torch.optim.Adam(model.param_groups(cfg.lr, cfg.lr_encoding, cfg.lr_variance, which, cfg.lr_color_encoding))
    model.variance.variance.requires_grad_(cfg.stage2_train_variance)
    scale = model.normalizer.scale
    outside = band_complement(template, cfg)
    history: dict[str, list] = {"clip_color": [], "clip_geometry": [], "recon": [], "kind": [], "rays": []}

    def _step(step: int) -> None:
        """One optimisation step (a function so the try/finally below stays short)."""
        if cfg.sampling_grid_resolution > 0 and step % max(1, cfg.sampling_grid_every) == 0:
            model.sampling_grid = SDFGrid(model, cfg.sampling_grid_resolution)
        sample, prompts, kind = sample_views(step, cfg, template, face_center, g, appearance)
        target = sample.at
        i_c, i_g, img = render_clip_views(model, template, sample.cameras, cfg, g, target=target)
        l_c, l_g = clip_losses(scorer, i_c, i_g, prompts, cfg.lambda_color_clip > 0, cfg.lambda_geometry_clip > 0)
        loss = cfg.lambda_color_clip * l_c + cfg.lambda_geometry_clip * l_g
        grads = img.gradients
        if cfg.lambda_recon > 0 and outside.numel() > 0:
            idx = outside[torch.randint(0, outside.numel(), (cfg.reg_points,), generator=g).to(outside.device)]
            l_rec, grad_reg = sdf_supervision(model, template, idx, cfg.sdf_clamp)
            loss = loss + cfg.lambda_recon * l_rec / scale
            grads = torch.cat([grads, grad_reg]) if grads is not None else grad_reg
            history["recon"].append(float(l_rec.detach()))
        if grads is not None and grads.numel():
            loss = loss + cfg.eikonal_weight * eikonal(grads)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["clip_color"].append(float(l_c.detach()))
        history["clip_geometry"].append(float(l_g.detach()))
        history["kind"].append(kind)
        history["rays"].append(img.num_rays)
        if (step % max(1, cfg.progress_every) == 0) or step == cfg.iterations - 1:
            if progress is not None:
                progress((step + 1) / max(1, cfg.iterations),
                         f"stage 2: step {step + 1}/{cfg.iterations} ({kind}), CLIP loss colour {float(l_c.detach()):.3f} "
                         f"geometry {float(l_g.detach()):.3f}")
            if snapshot is not None:
                snapshot(step, i_c.detach(), i_g.detach())

    started = time.perf_counter()
    try:
        for step in range(cfg.iterations):
            _step(step)
    finally:
        model.variance.variance.requires_grad_(True)
        model.sampling_grid = None
    n = len(history["clip_color"])
    tail = max(1, n // 5)
    return {
        "iterations": n,
        "seconds": round(time.perf_counter() - started, 3),
        "clip_color_first": sum(history["clip_color"][:tail]) / tail if n else None,
        "clip_color_last": sum(history["clip_color"][-tail:]) / tail if n else None,
        "clip_geometry_first": sum(history["clip_geometry"][:tail]) / tail if n else None,
        "clip_geometry_last": sum(history["clip_geometry"][-tail:]) / tail if n else None,
        "history": history,
    }
