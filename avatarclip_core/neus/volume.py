"""NeuS volume rendering (Eqs. 2-3, 7-9) for rays of the project's ``PerspectiveCameras``.

Rays: ``camera_rays`` follows cameras.py exactly (pixel centres, vertical fov, the camera looks
down its -Z axis), so a NeuS render and a mesh render of the same camera line up pixel for pixel.

Sampling per ray (NeuS): ``n_samples`` stratified samples in [near, far], then ``n_importance``
more in ``up_sample_steps`` rounds drawn from the unbiased weights with a growing fixed s. Then
three CPU savings:

- *template-guided intervals* (optional): when the caller knows the template's front depth per
  pixel, [near, far] shrinks to where a surface within ``band`` of the template can be, so few
  samples are dense where it matters;
- *a sampling grid* (optional, ``SDFGrid``): sample placement reads f from a grid refreshed every
  few steps instead of evaluating the network;
- *pruning*: a no-gradient pass estimates every section's weight; only sections with weight
  above ``prune_threshold`` (and their neighbours) are evaluated with gradients. The others
  have alpha ~ 0 and would add nothing but cost.

Weights are NeuS' discrete unbiased, occlusion-aware ones (alpha from the logistic CDF of the
SDF at the section ends, estimated with the SDF gradient), colour = sum w c (Eq. 2), normal =
sum w grad f (Eq. 7). Gray (Eq. 8) and randomly shaded colour (Eq. 9) reuse render/shading.
All maths runs in the network's normalised coordinates; depths come back in metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avatarclip_core.render import PerspectiveCameras
from avatarclip_core.render._ops import gather_rows, scatter_add_rows, scatter_rows
from avatarclip_core.render.cameras import ImageSize, as_hw
from avatarclip_core.render.shading import lambert

from .networks import NeusModel


# --- rays ---------------------------------------------------------------------------------------

def camera_rays(cameras: PerspectiveCameras, image_size: ImageSize, pixels: torch.Tensor | None = None):
    """World-space rays through pixel centres.

    pixels: flat indices into the (B, H, W) grid (default: all). Returns origins (N, 3) and unit
    directions (N, 3), N = len(pixels), in the conventions of render/cameras.py.
    """
    H, W = as_hw(image_size)
    B = len(cameras)
    device = cameras.R.device
    if pixels is None:
        pixels = torch.arange(B * H * W, device=device)
    b = torch.div(pixels, H * W, rounding_mode="floor")
    rem = pixels % (H * W)
    row = torch.div(rem, W, rounding_mode="floor").float()
    col = (rem % W).float()
    fov = torch.as_tensor(cameras.fov, dtype=torch.float32, device=device).reshape(-1).expand(B)
    f = 1.0 / torch.tan(torch.deg2rad(fov) * 0.5)  # (B,)
    fb = f[b]
    x = ((col + 0.5) / W * 2.0 - 1.0) / (fb * (H / W))
    y = (1.0 - (row + 0.5) / H * 2.0) / fb
    d_view = torch.stack([x, y, -torch.ones_like(x)], dim=-1)
    R = cameras.R.float()[b]  # (N, 3, 3) world-to-view; view-to-world is R^T
    d = F.normalize((R.transpose(1, 2) @ d_view.unsqueeze(-1)).squeeze(-1), dim=-1)
    o = cameras.get_camera_center().float()[b]
    return o, d


def ray_box(origins: torch.Tensor, dirs: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor):
    """Slab test: (near, far) (N,) distances along unit rays into an axis-aligned box, and hit (N,)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (box_min.to(origins) - origins) * inv
    t1 = (box_max.to(origins) - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far, far > near + 1e-6


# --- sampling ------------------------------------------------------------------------------------

def _sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int) -> torch.Tensor:
    """NeRF/NeuS inverse-CDF sampling (deterministic, mid-quantiles): bins (R, S), weights (R, S-1)."""
    weights = weights + 1e-5
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    u = torch.linspace(0.5 / n, 1.0 - 0.5 / n, n, device=bins.device).expand(cdf.shape[0], n).contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = (inds - 1).clamp_min(0)
    above = inds.clamp_max(cdf.shape[-1] - 1)
    cdf_g0, cdf_g1 = cdf.gather(1, below), cdf.gather(1, above)
    b0, b1 = bins.gather(1, below), bins.gather(1, above)
    denom = torch.where(cdf_g1 - cdf_g0 < 1e-5, torch.ones_like(cdf_g0), cdf_g1 - cdf_g0)
    return b0 + (u - cdf_g0) / denom * (b1 - b0)


def _section_alpha(z: torch.Tensor, sdf: torch.Tensor, inv_s: float | torch.Tensor) -> torch.Tensor:
    """NeuS' up-sampling estimate of each section's alpha from SDF values at its ends (R, S-1)."""
    prev_sdf, next_sdf = sdf[:, :-1], sdf[:, 1:]
    dist = (z[:, 1:] - z[:, :-1]).clamp_min(1e-6)
    mid_sdf = 0.5 * (prev_sdf + next_sdf)
    cos_val = (next_sdf - prev_sdf) / (dist + 1e-5)
    prev_cos = torch.cat([torch.zeros_like(cos_val[:, :1]), cos_val[:, :-1]], -1)
    cos_val = torch.minimum(prev_cos, cos_val).clamp(-1e3, 0.0)
    prev_est = mid_sdf - cos_val * dist * 0.5
    next_est = mid_sdf + cos_val * dist * 0.5
    prev_cdf = torch.sigmoid(prev_est * inv_s)
    next_cdf = torch.sigmoid(next_est * inv_s)
    return ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)


def _weights_from_alpha(alpha: torch.Tensor) -> torch.Tensor:
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-7], -1), -1)[:, :-1]
    return alpha * trans


class SDFGrid:
    """f sampled on a grid over the model's box (normalised units, no gradients).

    A cheap stand-in for the network in the sampling passes (uniform + importance samples and
    the pruning estimate): trilinear lookups instead of network evaluations. The samples' final
    values always come from the network, so the grid only has to be close enough to place the
    samples near the surface; refresh it every few optimisation steps (``sampling_grid_every``).
    """

    @torch.no_grad()
    def __init__(self, model: NeusModel, resolution: int, chunk: int = 131072):
        norm = model.normalizer
        dev = model.device
        lo, hi = norm.to_net(norm.box_min.float().to(dev)), norm.to_net(norm.box_max.float().to(dev))
        step = float((hi - lo).max()) / max(2, resolution)
        counts = [max(2, int(math.ceil(float(hi[k] - lo[k]) / step)) + 1) for k in range(3)]
        axes = [torch.linspace(float(lo[k]), float(lo[k]) + step * (counts[k] - 1), counts[k], device=dev)
                for k in range(3)]
        pts = torch.stack(torch.meshgrid(axes[2], axes[1], axes[0], indexing="ij")[::-1], -1).reshape(-1, 3)
        vals = torch.cat([model.sdf_net.sdf(pts[i:i + chunk])[:, 0] for i in range(0, pts.shape[0], chunk)])
        self.values = vals.view(1, 1, counts[2], counts[1], counts[0])  # (1, 1, D=z, H=y, W=x)
        self.lo = lo
        self.span = torch.tensor([step * (c - 1) for c in counts], device=dev)
        self.resolution = resolution

    def query(self, p: torch.Tensor) -> torch.Tensor:
        """SDF (N,) at normalised points (N, 3) (clamped to the box)."""
        g = ((p - self.lo) / self.span * 2.0 - 1.0).view(1, -1, 1, 1, 3)
        return F.grid_sample(self.values, g, mode="bilinear", padding_mode="border", align_corners=True).view(-1)


@torch.no_grad()
def _eval_sdf(model: NeusModel, pts: torch.Tensor, chunk: int = 131072) -> torch.Tensor:
    flat = pts.reshape(-1, 3)
    grid = getattr(model, "sampling_grid", None)
    if grid is not None:
        return grid.query(flat).view(pts.shape[:-1])
    out = [model.sdf_net.sdf(flat[s:s + chunk])[:, 0] for s in range(0, flat.shape[0], chunk)]
    return torch.cat(out).view(pts.shape[:-1])


@torch.no_grad()
def sample_along_rays(model: NeusModel, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                      n_samples: int, n_importance: int, up_sample_steps: int, perturb: bool = False,
                      generator: torch.Generator | None = None):
    """Sample depths (R, S) sorted, and the SDF there (R, S), in normalised units (no gradients)."""
    R = o.shape[0]
    steps = torch.arange(n_samples, dtype=o.dtype, device=o.device)
    if perturb:
        jitter = torch.rand(R, n_samples, generator=generator).to(o.device)
    else:
        jitter = torch.full((R, n_samples), 0.5, device=o.device)
    t = (steps + jitter) / n_samples
    z = near[:, None] + (far - near)[:, None] * t
    sdf = _eval_sdf(model, o[:, None] + d[:, None] * z[..., None])
    if n_importance > 0 and up_sample_steps > 0:
        per = max(1, n_importance // up_sample_steps)
        for i in range(up_sample_steps):
            alpha = _section_alpha(z, sdf, 64.0 * 2 ** i)
            new_z = _sample_pdf(z, _weights_from_alpha(alpha), per)
            new_sdf = _eval_sdf(model, o[:, None] + d[:, None] * new_z[..., None])
            z, order = torch.sort(torch.cat([z, new_z], -1), -1)
            sdf = torch.cat([sdf, new_sdf], -1).gather(1, order)
    return z, sdf


# --- rendering -----------------------------------------------------------------------------------

@dataclass
class RayOutput:
    color: torch.Tensor | None  # (R, 3) sum w c (premultiplied by opacity)
    opacity: torch.Tensor  # (R, 1) sum w
    normal: torch.Tensor | None  # (R, 3) sum w grad f (Eq. 7), world-oriented, unnormalised
    depth: torch.Tensor  # (R,) metres along the ray, sum w t / opacity (0 where empty)
    shading: torch.Tensor | None  # (R, 1) A + D max(n . l, 0) with n = normalised normal, or None
    gradients: torch.Tensor  # (K, 3) SDF gradients of the evaluated samples (eikonal term)
    num_samples: int  # K, evaluated with gradients


def render_rays(model: NeusModel, origins: torch.Tensor, dirs: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                *, stylised: bool = True, color: bool = True, normals: bool = True, light_dir: torch.Tensor | None = None,
                ambient: torch.Tensor | None = None, train: bool = True, generator: torch.Generator | None = None,
                n_samples: int | None = None, n_importance: int | None = None, cos_anneal: float = 1.0) -> RayOutput:
    """Render R world-space rays (unit dirs) between world distances [near, far] (R,).

    stylised: colour from c_c (stage 2) instead of c. light_dir (R, 3) world direction towards the
    light and ambient (R, 1): when given, ``shading`` holds Eq. 8's intensity. train: jittered
    samples and a graph through f, its (forward-mode) gradient, c and s; otherwise none is built.
    """
    cfg = model.config
    norm = model.normalizer
    R = origins.shape[0]
    if R == 0:
        z3 = origins.new_zeros(0, 3)
        return RayOutput(z3 if color else None, origins.new_zeros(0, 1), z3, origins.new_zeros(0),
                         origins.new_zeros(0, 1) if light_dir is not None else None, z3, 0)
    o = norm.to_net(origins)
    n0, f0 = near / norm.scale, far / norm.scale
    ns = cfg.n_samples if n_samples is None else n_samples
    ni = cfg.n_importance if n_importance is None else n_importance
    z, sdf = sample_along_rays(model, o, dirs, n0, f0, ns, ni, cfg.up_sample_steps,
                               perturb=train and cfg.perturb, generator=generator)
    inv_s_now = float(model.variance.inv_s().detach())
    # sections [z_i, z_{i+1}]: evaluate at their midpoints (NeuS render_core)
    dists = (z[:, 1:] - z[:, :-1]).clamp_min(1e-6)
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    with torch.no_grad():
        keep = torch.ones_like(dists, dtype=torch.bool)
        if cfg.prune_threshold > 0:
            w_est = _weights_from_alpha(_section_alpha(z, sdf, inv_s_now))
            k = w_est > cfg.prune_threshold
            # keep neighbours on each side: the estimate is coarse (more with a sampling grid)
            for _ in range(2 if getattr(model, "sampling_grid", None) is not None else 1):
                k[:, 1:] |= k[:, :-1].clone()
                k[:, :-1] |= k[:, 1:].clone()
            keep = k
        ray_id, sec = keep.nonzero(as_tuple=True)
    K = int(ray_id.numel())
    pts = o[ray_id] + dirs[ray_id] * mids[ray_id, sec].unsqueeze(-1)
    dk = dists[ray_id, sec].unsqueeze(-1)
    vd = dirs[ray_id]
    if K:
        grad_ctx = torch.enable_grad() if train else torch.no_grad()
        with grad_ctx:
            s_k, feat, grad = model.sdf_net.sdf_and_gradient(pts, create_graph=train)
    else:
        s_k, feat, grad = pts.new_zeros(0, 1), pts.new_zeros(0, cfg.feature_dim), pts.new_zeros(0, 3)
    ctx = torch.enable_grad() if train else torch.no_grad()
    with ctx:
        inv_s = model.variance.inv_s()
        true_cos = (vd * grad).sum(-1, keepdim=True)
        iter_cos = -(F.relu(-true_cos * 0.5 + 0.5) * (1.0 - cos_anneal) + F.relu(-true_cos) * cos_anneal)
        prev_cdf = torch.sigmoid((s_k - iter_cos * dk * 0.5) * inv_s)
        next_cdf = torch.sigmoid((s_k + iter_cos * dk * 0.5) * inv_s)
        alpha_k = ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)[:, 0]
        alpha = torch.zeros_like(dists).masked_scatter(keep, alpha_k)  # dropped sections: alpha 0
        weights = _weights_from_alpha(alpha)[ray_id, sec].unsqueeze(-1)  # (K, 1)
        opacity = scatter_add_rows(weights, ray_id, R)
        depth = scatter_add_rows(weights * mids[ray_id, sec].unsqueeze(-1), ray_id, R)[:, 0]
        depth = torch.where(opacity[:, 0] > 1e-4, depth / opacity[:, 0].clamp_min(1e-4), torch.zeros_like(depth))
        out_color = out_normal = shading = None
        unit = F.normalize(grad, dim=-1)
        if color:
            net = model.color_c if stylised else model.color
            rgb = net(pts, unit, vd, feat)
            out_color = scatter_add_rows(weights * rgb, ray_id, R)
        if normals or light_dir is not None:
            out_normal = scatter_add_rows(weights * unit, ray_id, R)
        if light_dir is not None:
            amb = ambient if ambient is not None else torch.full((R, 1), 0.2, device=origins.device)
            shading = lambert(F.normalize(out_normal, dim=-1, eps=1e-8), light_dir, amb)
    return RayOutput(out_color, opacity, out_normal, depth * norm.scale, shading, grad, K)


# --- images --------------------------------------------------------------------------------------

IMAGE_OUTPUTS = ("rgb", "shaded", "textureless", "opacity", "depth", "normals")


@dataclass
class NeusImages:
    """Dense (B, H, W, C) renders; pixels outside ``mask`` hold the background (or 0)."""

    mask: torch.Tensor  # (B, H, W) bool: pixels whose rays were marched
    opacity: torch.Tensor  # (B, H, W, 1)
    depth: torch.Tensor  # (B, H, W, 1) view depth in metres (as the rasteriser's), 0 where empty
    rgb: torch.Tensor | None = None  # unlit colour over the background
    shaded: torch.Tensor | None = None  # Eq. 9 over the background
    textureless: torch.Tensor | None = None  # Eq. 8 over the background
    normals: torch.Tensor | None = None  # (B, H, W, 3) normalised accumulated normals
    gradients: torch.Tensor | None = None  # (K, 3) SDF gradients of all evaluated samples
    num_rays: int = 0
    num_samples: int = 0


def render_images(model: NeusModel, cameras: PerspectiveCameras, image_size: ImageSize, *,
                  mask: torch.Tensor | None = None, near_far: tuple[torch.Tensor, torch.Tensor] | None = None,
                  outputs=("rgb",), stylised: bool = True, background: torch.Tensor | None = None,
                  light_dir: torch.Tensor | None = None, ambient: torch.Tensor | None = None, train: bool = False,
                  generator: torch.Generator | None = None, chunk: int | None = None) -> NeusImages:
    """Render B views of the NeuS model, marching only the rays inside ``mask`` (B, H, W).

    near_far: optional per-pixel (B, H, W) near / far distances in metres along the rays (e.g.
    ``guide.template_guide(...).near_far``), intersected with the model's box. background: (B, H, W, 3) (default
    white). light_dir (B, 3) towards the light, ambient (B,): Eq. 8/9 (default: headlight, 0.2).
    """
    H, W = as_hw(image_size)
    B = len(cameras)
    unknown = set(outputs) - set(IMAGE_OUTPUTS)
    if unknown:
        raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {IMAGE_OUTPUTS}")
    device = cameras.R.device
    if mask is None:
        mask = torch.ones(B, H, W, dtype=torch.bool, device=device)
    pix = mask.reshape(-1).nonzero().squeeze(1)
    o, d = camera_rays(cameras, (H, W), pix)
    near, far, hit = ray_box(o, d, model.normalizer.box_min, model.normalizer.box_max)
    if near_far is not None:
        n2, f2 = near_far[0].reshape(-1)[pix], near_far[1].reshape(-1)[pix]
        near, far = torch.maximum(near, n2), torch.minimum(far, f2)
        hit = hit & (far > near + 1e-6)
    pix, o, d, near, far = pix[hit], o[hit], d[hit], near[hit], far[hit]
    b = torch.div(pix, H * W, rounding_mode="floor")
    want_shade = bool({"shaded", "textureless"} & set(outputs))
    if want_shade:
        if light_dir is None:
            light_dir = cameras.R[:, 2, :]
        if ambient is None:
            ambient = 0.2
        light_dir = F.normalize(light_dir.float().to(device).reshape(-1, 3).expand(B, 3), dim=-1)
        ambient = torch.as_tensor(ambient, dtype=torch.float32, device=device).reshape(-1).expand(B)
    need_color = bool({"rgb", "shaded"} & set(outputs))
    chunk = chunk or (pix.numel() if train else model.config.ray_chunk)
    parts = []
    for s in range(0, max(pix.numel(), 1), max(chunk, 1)):
        sl = slice(s, s + chunk)
        ld = light_dir[b[sl]] if want_shade else None
        amb = ambient[b[sl]].unsqueeze(-1) if want_shade else None
        parts.append(render_rays(model, o[sl], d[sl], near[sl], far[sl], stylised=stylised, color=need_color,
                                 normals="normals" in outputs or want_shade, light_dir=ld, ambient=amb,
                                 train=train, generator=generator))

    def cat(name):
        vals = [getattr(p, name) for p in parts]
        return torch.cat(vals) if vals and vals[0] is not None else None

    opacity, depth = cat("opacity"), cat("depth")
    depth = depth * (d * cameras.get_view_direction().float()[b]).sum(-1)  # along the ray -> view depth
    n_pix = B * H * W
    def dense(values, fill=0.0, base=None):
        return scatter_rows(values, pix, n_pix, fill, base=base)

    out = NeusImages(mask=mask, opacity=dense(opacity).view(B, H, W, 1), depth=dense(depth.unsqueeze(-1)).view(B, H, W, 1),
                     gradients=cat("gradients"), num_rays=int(pix.numel()),
                     num_samples=sum(p.num_samples for p in parts))
    if background is None:
        background = torch.ones(B, H, W, 3, device=device)
    bg = background.to(device).expand(B, H, W, 3).reshape(n_pix, 3)
    bg_rays = gather_rows(bg, pix)
    empty = 1.0 - opacity
    if "rgb" in outputs:
        out.rgb = dense(cat("color") + empty * bg_rays, base=bg).view(B, H, W, 3)
    if want_shade:
        shading = cat("shading")
        if "shaded" in outputs:
            out.shaded = dense(cat("color") * shading + empty * bg_rays, base=bg).view(B, H, W, 3)
        if "textureless" in outputs:
            out.textureless = dense(opacity * shading.expand(-1, 3) + empty * bg_rays, base=bg).view(B, H, W, 3)
    if "normals" in outputs:
        out.normals = dense(F.normalize(cat("normal"), dim=-1, eps=1e-8)).view(B, H, W, 3)
    return out
