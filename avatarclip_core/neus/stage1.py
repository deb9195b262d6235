"""Stage 1: an implicit copy N = {f, c} of the template mesh M_t (AvatarCLIP Sec. 3.3.2, Eq. 5).

The paper fits a randomly initialised NeuS to multi-view renders of M_t (colour + eikonal + mask).
On the CPU most of that is replaced by direct SDF supervision, which needs no rendering:

1. a *point bank*: surface samples (SDF 0, template normals), near-surface and shell points,
   uniform points in the box and *core* points, each with the template's signed distance
   (mesh_sdf.py). A core point is the deepest point under a surface sample along its inward
   normal (up to ``CORE_DEPTHS``) where the part is thinner than that: an approximate medial-axis
   sample, as dense as the surface, so fingers and forearms get interior points although their
   volume is tiny;
2. supervised steps: ``|f(p) - sdf_t(p)|`` (both clamped), the eikonal term, normal alignment on
   the surface and the colour c(p) of the template on the surface;
3. a few render steps as in the paper (NeuS render of random views vs. the template's rasterised
   colour and silhouette, Eq. 5's L_color + lambda2 L_mask), which is what tunes the variance s
   so renders are sharp. By default f is frozen here (``stage1_render_train_sdf``): the supervised
   fit is more accurate than what a few low-resolution renders would pull it towards.

The fitted networks and the bank are cached per template and config (``paths.cache_dir("neus")``)
so further prompts on the same body skip this stage. The bank is kept: stage 2 uses it to keep f
equal to the template's SDF outside the sculpting band.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from avatarclip_core.device import resolve_device
from avatarclip_core.render import (
    MeshRenderer,
    RasterSettings,
    sample_random_cameras,
)

from .config import NeusConfig
from .guide import template_guide
from .mesh_sdf import MeshSDF
from .networks import NeusModel, Normalizer
from .volume import SDFGrid, render_images

CACHE_VERSION = 2  # 2: core points in the bank

# metres: depths probed under each surface sample for its core point (the deepest one wins)
CORE_DEPTHS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04)

# config fields that do not change what stage 1 produces (excluded from its cache key)
_NOT_STAGE1 = {
    "lr", "lr_encoding", "iterations", "image_size", "batch_size", "lambda_recon", "lambda_color_clip", "lambda_geometry_clip",
    "reg_points", "dilation_px", "face_every", "random_shading", "shading", "background", "progress_every",
    "mc_resolution", "min_component_fraction", "texture_size", "texture_padding", "cache", "cache_max_entries",
    "ray_chunk",
    "stage2_train_variance", "device",
    "color_grid_levels", "color_grid_log2_size", "color_grid_max_resolution", "lr_color_encoding",  # c_c only
}


@dataclass
class Template:
    """The template mesh M_t and what the NeuS stages derive from it (world units, metres)."""

    vertices: torch.Tensor  # (V, 3)
    faces: torch.Tensor  # (F, 3) long
    vertex_colors: torch.Tensor | None
    normalizer: Normalizer
    bank_points: torch.Tensor  # (N, 3) off-surface points
    bank_sdf: torch.Tensor  # (N,) template signed distance (negative inside)
    bank_core: torch.Tensor  # (N,) bool: core points (see core_points), held in stage 2 at any depth
    surface_points: torch.Tensor  # (M, 3)
    surface_normals: torch.Tensor  # (M, 3)
    surface_colors: torch.Tensor  # (M, 3) template colour there

    def to(self, device) -> Template:
        """The same template with every tensor on ``device``."""
        moved = {f.name: (v.to(device) if isinstance(v, torch.Tensor) else v)
                 for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}
        return Template(**moved)

    @property
    def center(self) -> torch.Tensor:
        return 0.5 * (self.vertices.min(0).values + self.vertices.max(0).values)

    @property
    def height(self) -> float:
        return float(self.vertices[:, 1].max() - self.vertices[:, 1].min())

    def default_face_center(self) -> torch.Tensor:
        """Rough face centre without a skeleton: the head is the top ~13 % of the height; take the
        middle of those vertices, pushed forward (+Z) to the face."""
        y = self.vertices[:, 1]
        top = self.vertices[y > y.max() - 0.13 * self.height]
        c = 0.5 * (top.min(0).values + top.max(0).values)
        c[1] = top[:, 1].min() + 0.6 * (top[:, 1].max() - top[:, 1].min())
        c[2] = c[2] + 0.25 * (top[:, 2].max() - top[:, 2].min())
        return c


def template_key(vertices: torch.Tensor, faces: torch.Tensor, config: NeusConfig,
                 vertex_colors: torch.Tensor | None = None) -> str:
    """Hash of the template (vertices to 0.01 mm, faces, colours) and the stage-1 config."""
    h = hashlib.sha256()
    h.update(f"neus-stage1-v{CACHE_VERSION}".encode())
    h.update(torch.round(vertices.detach().cpu().double() * 1e5).to(torch.int64).numpy().tobytes())
    h.update(faces.detach().cpu().to(torch.int64).numpy().tobytes())
    if vertex_colors is not None:
        h.update(torch.round(vertex_colors.detach().cpu().double()[:, :3] * 1e3).to(torch.int64).numpy().tobytes())
    cfg = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_STAGE1}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    return h.hexdigest()


def build_template(vertices: torch.Tensor, faces: torch.Tensor, config: NeusConfig,
                   vertex_colors: torch.Tensor | None = None) -> Template:
    """Point bank with template signed distances (a few seconds for a body at the standard size)."""
    cfg = config
    verts = vertices.detach().float().cpu()
    faces = faces.detach().long().cpu()
    g = torch.Generator().manual_seed(cfg.seed + 1)
    msdf = MeshSDF(verts, faces, seed=cfg.seed)
    norm = Normalizer.from_vertices(verts, cfg.bound_margin)
    n = cfg.stage1_bank_size
    n_surf, n_near, n_shell = n // 4, int(n * 0.4), int(n * 0.15)
    n_unif = n - n_surf - n_near - n_shell
    sp, sn, sf, sb = msdf.sample_surface(n_surf, g)
    if vertex_colors is not None:
        corner = vertex_colors.detach().float().cpu()[:, :3][faces[sf]]  # (n, 3, 3)
        scol = (corner * sb.unsqueeze(-1)).sum(1)
    else:
        scol = torch.tensor(cfg.template_color, dtype=torch.float32).expand(n_surf, 3).clone()
    lo, hi = (math.log(s) for s in cfg.surface_std)
    base, _, _, _ = msdf.sample_surface(n_near + n_shell, g)
    std = torch.cat([torch.exp(lo + (hi - lo) * torch.rand(n_near, generator=g)),
                     torch.full((n_shell,), max(0.1, 2.0 * cfg.sculpt_band))])
    near = base + torch.randn(base.shape, generator=g) * std.unsqueeze(-1)
    unif = norm.box_min + torch.rand(n_unif, 3, generator=g) * (norm.box_max - norm.box_min)
    pts = torch.cat([near, unif])
    sdf, _, _ = msdf.query(pts)
    core, core_sdf = core_points(msdf, sp, sn)
    is_core = torch.cat([torch.zeros(pts.shape[0], dtype=torch.bool), torch.ones(core.shape[0], dtype=torch.bool)])
    return Template(verts, faces, None if vertex_colors is None else vertex_colors.detach().float().cpu()[:, :3],
                    norm, torch.cat([pts, core]), torch.cat([sdf, core_sdf]), is_core, sp, sn, scol)


def core_points(msdf: MeshSDF, points: torch.Tensor, normals: torch.Tensor):
    """The deepest point under each surface point along its inward normal, among ``CORE_DEPTHS``,
    and its signed distance, for parts thinner than the deepest probe (the others, and points whose
    probes all land outside: sheets, bad normals, are dropped).

    Why: stage 2 holds f to the template only deeper than ``sculpt_band_inside``; a finger or a
    forearm has few (or no) bank points that deep, so CLIP could carve it away (a lost forearm
    was the symptom). Core points sample every part's interior in proportion to its surface.
    """
    depths = torch.tensor(CORE_DEPTHS, dtype=torch.float32)
    probes = points.unsqueeze(1) - depths.view(1, -1, 1) * normals.unsqueeze(1)  # (M, D, 3)
    sdf, _, _ = msdf.query(probes.reshape(-1, 3))
    sdf = sdf.view(points.shape[0], -1)
    best = sdf.argmin(1)
    rows = torch.arange(points.shape[0])
    core, core_sdf = probes[rows, best], sdf[rows, best]
    # keep the parts thinner than the deepest probe (the depth profile peaked before it); thicker
    # parts have bank points deeper than the inner band, which stage 2 holds already
    keep = (core_sdf < 0) & (best < len(CORE_DEPTHS) - 1)
    return core[keep], core_sdf[keep]


def new_model(config: NeusConfig, normalizer: Normalizer) -> NeusModel:
    """A freshly initialised NeusModel, deterministic under ``config.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return NeusModel(config, normalizer)


def sdf_supervision(model: NeusModel, template: Template, idx: torch.Tensor, clamp: float):
    """L1 between clamped f and the clamped template SDF at bank points ``idx``; also returns gradients."""
    scale = model.normalizer.scale
    p = model.normalizer.to_net(template.bank_points[idx])
    target = (template.bank_sdf[idx] / scale).clamp(-clamp / scale, clamp / scale)
    sdf, _, grad = model.sdf_net.sdf_and_gradient(p, create_graph=True)
    pred = sdf[:, 0].clamp(-clamp / scale, clamp / scale)
    return (pred - target).abs().mean() * scale, grad


def eikonal(grad: torch.Tensor) -> torch.Tensor:
    if grad.numel() == 0:
        return grad.new_zeros(())
    return ((grad.norm(dim=-1) - 1.0) ** 2).mean()


def fit_stage1(model: NeusModel, template: Template, config: NeusConfig, progress=None) -> dict:
    """Fit f and c to the template (see the module docstring). Returns loss statistics."""
    cfg = config
    g = torch.Generator().manual_seed(cfg.seed + 2)
    dev = model.device
    scale = model.normalizer.scale
    opt = torch.optim.Adam(model.param_groups(cfg.stage1_lr, cfg.stage1_lr_encoding, cfg.lr_variance,
                                              ("sdf", "color", "variance")))
    base_lrs = [grp["lr"] for grp in opt.param_groups]
    n_sup, n_rend = cfg.stage1_iterations, cfg.stage1_render_iterations
    total = max(1, n_sup + n_rend)
    n_bank = template.bank_points.shape[0]
    n_surf_all = template.surface_points.shape[0]
    history = {"sdf": [], "render": [], "mask": []}

    def surface_terms(n: int):
        j = torch.randint(0, n_surf_all, (n,), generator=g).to(dev)
        p = model.normalizer.to_net(template.surface_points[j])
        sdf, feat, grad = model.sdf_net.sdf_and_gradient(p, create_graph=True)
        unit = F.normalize(grad, dim=-1)
        rgb = model.color(p, unit, -unit, feat)
        l_surf = sdf.abs().mean() * scale
        l_norm = (1.0 - (unit * template.surface_normals[j]).sum(-1)).mean()
        l_col = (rgb - template.surface_colors[j]).abs().mean()
        return l_surf, l_norm, l_col, grad

    for it in range(n_sup):
        frac = it / max(1, n_sup)
        for grp, lr in zip(opt.param_groups, base_lrs):  # cosine decay to 10 %
            grp["lr"] = lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))
        n_off = cfg.stage1_points * 3 // 4
        idx = torch.randint(0, n_bank, (n_off,), generator=g).to(dev)
        l_sdf, grad_off = sdf_supervision(model, template, idx, cfg.sdf_clamp)
        l_surf, l_norm, l_col, grad_s = surface_terms(cfg.stage1_points - n_off)
        loss = (l_sdf + l_surf) / scale + cfg.eikonal_weight * eikonal(torch.cat([grad_off, grad_s])) \
            + cfg.normal_weight * l_norm + l_col
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["sdf"].append(float(l_sdf.detach()))
        if progress and (it % max(1, cfg.progress_every * 5) == 0):
            progress(it / total, f"stage 1: SDF fit {it}/{n_sup}, |f - sdf| {float(l_sdf.detach()) * 1000:.1f} mm")

    if n_rend > 0:
        train_sdf = cfg.stage1_render_train_sdf
        which = ("color", "variance") + (("sdf",) if train_sdf else ())
        opt = torch.optim.Adam(model.param_groups(cfg.stage1_lr * 0.1, cfg.stage1_lr_encoding * 0.1, cfg.lr_variance,
                                                  which))
        for prm in model.sdf_net.parameters():
            prm.requires_grad_(train_sdf)
        grid_every = max(1, cfg.sampling_grid_every) if train_sdf else n_rend  # f frozen: one grid
        renderer = MeshRenderer(RasterSettings(image_size=cfg.stage1_render_size, sigma=0.0,
                                               background_color=(1.0, 1.0, 1.0)))
        height_scale = template.height / 1.7
        colors = template.vertex_colors
        if colors is None:
            colors = torch.tensor(cfg.template_color, device=dev).expand(template.vertices.shape[0], 3)
        size = cfg.stage1_render_size
        for it in range(n_rend):
            if cfg.sampling_grid_resolution > 0 and it % grid_every == 0:
                model.sampling_grid = SDFGrid(model, cfg.sampling_grid_resolution)
            cams = sample_random_cameras(1, g, cfg.camera, center=template.center.cpu(), scale=height_scale,
                                         device=dev).cameras
            guide = template_guide(template.vertices, template.faces, cams, size, dilation_radius=cfg.dilation_radius,
                                   band=cfg.sculpt_band, target=template.center)
            with torch.no_grad():
                target = renderer.render(template.vertices, template.faces, cams, vertex_colors=colors,
                                         outputs=("rgb",)).rgb
            img = render_images(model, cams, size, mask=guide.mask, near_far=guide.near_far, outputs=("rgb",),
                                stylised=False, train=True, generator=g)
            m = guide.mask
            l_col = (img.rgb - target).abs()[m].mean()
            sil = guide.silhouette[m].float()
            op = img.opacity[..., 0][m].clamp(1e-4, 1 - 1e-4)
            l_mask = F.binary_cross_entropy(op, sil)
            loss = l_col + cfg.mask_weight * l_mask
            if train_sdf:
                idx = torch.randint(0, n_bank, (cfg.stage1_points // 4,), generator=g).to(dev)
                l_sdf, grad_off = sdf_supervision(model, template, idx, cfg.sdf_clamp)
                grads = torch.cat([grad_off, img.gradients]) if img.gradients is not None else grad_off
                loss = loss + cfg.eikonal_weight * eikonal(grads) + l_sdf / scale
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history["render"].append(float(l_col.detach()))
            history["mask"].append(float(l_mask.detach()))
            if progress and it % max(1, cfg.progress_every) == 0:
                progress((n_sup + it) / total, f"stage 1: render fit {it}/{n_rend}, colour L1 {float(l_col.detach()):.3f}")
        for prm in model.sdf_net.parameters():
            prm.requires_grad_(True)
        model.sampling_grid = None
    return {
        "sdf_l1_m": sum(history["sdf"][-20:]) / max(1, len(history["sdf"][-20:])),
        "render_l1": sum(history["render"][-10:]) / max(1, len(history["render"][-10:])) if history["render"] else None,
        "inv_s": float(model.variance.inv_s().detach()),
        "history": history,
    }


def cache_path(key: str) -> Path:
    from avatarclip_core.paths import cache_dir

    return cache_dir("neus") / f"stage1-{key[:24]}.pt"


def _save(path: Path, model: NeusModel, template: Template, stats: dict) -> None:
    template = template.to("cpu")
    payload = {
        "version": CACHE_VERSION,
        "model": {k: v.cpu() for k, v in model.state_dict().items() if not k.startswith("color_c.")},
        "normalizer": model.normalizer.state(),
        "bank_points": template.bank_points, "bank_sdf": template.bank_sdf, "bank_core": template.bank_core,
        "surface_points": template.surface_points, "surface_normals": template.surface_normals,
        "surface_colors": template.surface_colors,
        "stats": {k: v for k, v in stats.items() if k != "history"},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _evict(folder: Path, keep: int) -> None:
    """Delete the least recently used stage-1 files beyond ``keep`` (loads touch their file)."""
    if keep <= 0:
        return
    files = []
    for p in folder.glob("stage1-*.pt"):
        try:
            files.append((p.stat().st_mtime, p))
        except OSError:  # removed by a concurrent process
            pass
    for _, p in sorted(files, reverse=True)[keep:]:
        try:
            p.unlink()
        except OSError:
            pass


def stage1(vertices: torch.Tensor, faces: torch.Tensor, config: NeusConfig, vertex_colors: torch.Tensor | None = None,
           progress=None) -> tuple[NeusModel, Template, dict]:
    """Load the stage-1 NeuS for this template from the cache, or fit and cache it.

    Returns (model with a fresh c_c, template with its point bank, info) where info has
    ``cached`` (bool), ``key``, ``seconds`` and the fit statistics.
    """
    started = time.perf_counter()
    device = torch.device(resolve_device(config.device))  # the one resolver (avatarclip_core.device)
    key = template_key(vertices, faces, config, vertex_colors)
    path = cache_path(key) if config.cache else None
    if path is not None and path.is_file():
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if data.get("version") == CACHE_VERSION:
                norm = Normalizer.from_state(data["normalizer"])
                model = new_model(config, norm)
                missing, unexpected = model.load_state_dict(data["model"], strict=False)
                if not unexpected and all(k.startswith("color_c.") for k in missing):
                    verts = vertices.detach().float().cpu()
                    template = Template(verts, faces.detach().long().cpu(),
                                        None if vertex_colors is None else vertex_colors.detach().float().cpu()[:, :3],
                                        norm, data["bank_points"], data["bank_sdf"], data["bank_core"],
                                        data["surface_points"],
                                        data["surface_normals"], data["surface_colors"])
                    info = dict(data.get("stats", {}), cached=True, key=key,
                                seconds=round(time.perf_counter() - started, 3))
                    try:
                        os.utime(path)  # most recently used
                    except OSError:
                        pass
                    return model.to(device), template.to(device), info
        except Exception:  # a corrupt or stale cache file: refit and overwrite it
            pass
    template = build_template(vertices, faces, config, vertex_colors).to(device)
    model = new_model(config, template.normalizer).to(device)
    stats = fit_stage1(model, template, config, progress)
    if path is not None:
        _save(path, model, template, stats)
        _evict(path.parent, config.cache_max_entries)
    info = dict(stats, cached=False, key=key, seconds=round(time.perf_counter() - started, 3))
    return model, template, info
