"""NeuS networks: SDF f(p), colour c(p, n, v), the stage-2 colour c_c(p), learnable variance s.

All networks work in a normalised cube ``[-1, 1]^3`` (``Normalizer`` maps the template's world
box into it, so a body and an icosphere see the same numbers). Encodings:

- ``FrequencyEncoding``: NeuS' positional encoding (identity + sin/cos of 2^k p), the paper's choice.
- ``HashGridEncoding``: a multiresolution hash grid (instant-ngp) in plain torch, for the CPU:
  one gather of 8 corners x L levels per point and trilinear weights, all differentiable in the
  point (so normals and the eikonal term work through autograd, double backward included).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import NeusConfig



@dataclass
class Normalizer:
    """World <-> network coordinates: ``p_net = (p_world - center) / scale`` (SDF scales the same)."""

    center: torch.Tensor  # (3,)
    scale: float
    box_min: torch.Tensor  # (3,) world box for ray marching and marching cubes
    box_max: torch.Tensor

    @classmethod
    def from_vertices(cls, vertices: torch.Tensor, margin: float) -> Normalizer:
        lo, hi = vertices.min(0).values - margin, vertices.max(0).values + margin
        center = 0.5 * (lo + hi)
        scale = float(0.5 * (hi - lo).max()) * 1.05  # the box fits in [-0.95, 0.95]^3
        return cls(center.float(), scale, lo.float(), hi.float())

    def to_net(self, p: torch.Tensor) -> torch.Tensor:
        return (p - self.center.to(p)) / self.scale

    def to_world(self, p: torch.Tensor) -> torch.Tensor:
        return p * self.scale + self.center.to(p)

    def state(self) -> dict:
        return {"center": self.center, "scale": self.scale, "box_min": self.box_min, "box_max": self.box_max}

    @classmethod
    def from_state(cls, s: dict) -> Normalizer:
        return cls(s["center"], float(s["scale"]), s["box_min"], s["box_max"])


class FrequencyEncoding(nn.Module):
    """NeuS/NeRF positional encoding: [p, sin(2^k p), cos(2^k p)] for k < bands."""

    def __init__(self, bands: int):
        super().__init__()
        self.bands = bands
        self.register_buffer("freqs", 2.0 ** torch.arange(bands, dtype=torch.float32), persistent=False)
        self.out_dim = 3 + 6 * bands

    def forward(self, p: torch.Tensor, jacobian: bool = False):
        """p (N, 3) -> encoding (N, D) and, with ``jacobian``, d encoding / d p as (N, 3, D)."""
        N = p.shape[0]
        eye = torch.eye(3, dtype=p.dtype, device=p.device).expand(N, 3, 3) if jacobian else None
        if self.bands == 0:
            return p, eye
        x = p.unsqueeze(-1) * self.freqs  # (N, 3, bands)
        sin, cos = torch.sin(x), torch.cos(x)
        enc = torch.cat([p, sin.flatten(1), cos.flatten(1)], dim=-1)
        if not jacobian:
            return enc, None
        # d sin(2^k p_i) / d p_j = delta_ij 2^k cos(.): block-diagonal over the input axis
        d_sin = torch.diag_embed((cos * self.freqs).transpose(1, 2)).permute(0, 2, 3, 1).reshape(N, 3, -1)
        d_cos = torch.diag_embed((-sin * self.freqs).transpose(1, 2)).permute(0, 2, 3, 1).reshape(N, 3, -1)
        return enc, torch.cat([eye, d_sin, d_cos], dim=-1)


_P1 = 2654435761 - 2 ** 32  # the instant-ngp primes as int32 (products wrap like uint32)
_P2 = 805459861


class HashGridEncoding(nn.Module):
    """Multiresolution hash encoding over ``[-1, 1]^3`` (Mueller et al. 2022), plain torch.

    Level l has resolution ``floor(base * b^l)`` (b spaces them geometrically up to ``max_res``);
    coarse levels whose (res+1)^3 corners fit in the table are indexed densely, finer ones hashed
    (xor of coordinates times primes, modulo the power-of-two table size). Index maths runs in
    int32 per axis and is combined by broadcasting; features are stored (F, T) so each gather
    and its backward are 1-D. The Jacobian d encoding / d p comes from the trilinear weights'
    derivatives (forward mode), so SDF gradients need no double backward.
    """

    def __init__(self, levels: int = 12, features: int = 2, log2_size: int = 16, base_res: int = 16,
                 max_res: int = 512):
        super().__init__()
        self.levels, self.features = levels, features
        T = 2 ** log2_size
        growth = math.exp((math.log(max_res) - math.log(base_res)) / max(levels - 1, 1))
        res = [int(math.floor(base_res * growth ** l)) for l in range(levels)]
        dense = [(r + 1) ** 3 <= T for r in res]
        if any(d and not prev for prev, d in zip(dense, dense[1:])):
            raise ValueError("hash grid: levels must get finer")
        self.n_dense = int(sum(dense))
        sizes = [min(T, (r + 1) ** 3) for r in res]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.mask = T - 1
        self.register_buffer("res", torch.tensor(res, dtype=torch.float32), persistent=False)
        self.register_buffer("res_max", torch.tensor(res, dtype=torch.int32) - 1, persistent=False)
        self.register_buffer("r1", torch.tensor(res[:self.n_dense], dtype=torch.int32) + 1, persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int32), persistent=False)
        self.register_buffer("dsign", torch.tensor([-1.0, 1.0]), persistent=False)
        self.table = nn.Parameter(torch.empty(features, int(sum(sizes))).uniform_(-1e-4, 1e-4))
        self.out_dim = levels * features

    def _indices(self, i0: torch.Tensor) -> torch.Tensor:
        N, L = i0.shape[0], self.levels
        c = torch.stack([i0, i0 + 1], -1)  # (N, L, 3, 2) corner coordinates per axis
        parts = []
        nd = self.n_dense
        if nd:
            cd = c[:, :nd]
            r1 = self.r1.view(1, -1, 1)
            x, y, z = cd[:, :, 0], cd[:, :, 1] * r1, cd[:, :, 2] * (r1 * r1)
            parts.append((z.view(N, nd, 2, 1, 1) + y.view(N, nd, 1, 2, 1) + x.view(N, nd, 1, 1, 2)).view(N, nd, 8))
        if nd < L:
            ch = c[:, nd:]
            x, y, z = ch[:, :, 0], ch[:, :, 1] * _P1, ch[:, :, 2] * _P2
            yz = z.view(N, -1, 2, 1) ^ y.view(N, -1, 1, 2)
            parts.append(((yz.view(N, -1, 2, 2, 1) ^ x.view(N, -1, 1, 1, 2)) & self.mask).view(N, L - nd, 8))
        idx = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return (idx + self.offsets.view(1, -1, 1)).view(-1)

    def forward(self, p: torch.Tensor, jacobian: bool = False):
        """p (N, 3) -> encoding (N, L*F) and, with ``jacobian``, d encoding / d p as (N, 3, L*F)."""
        N, L, Fd = p.shape[0], self.levels, self.features
        u = ((p.clamp(-1.0, 1.0) + 1.0) * 0.5).unsqueeze(1) * self.res.view(1, -1, 1)  # (N, L, 3)
        with torch.no_grad():
            i0 = torch.minimum(u.floor().to(torch.int32), self.res_max.view(1, -1, 1))
            idx = self._indices(i0)
        f = u - i0.to(u.dtype)  # (N, L, 3) fractional position, differentiable in p
        wx, wy, wz = (torch.stack([1.0 - f[..., k], f[..., k]], dim=-1) for k in range(3))  # (N, L, 2)
        wyz = wz.view(N, L, 2, 1) * wy.view(N, L, 1, 2)
        w = (wyz.view(N, L, 4, 1) * wx.view(N, L, 1, 2)).view(N * L, 1, 8)  # corner = x + 2y + 4z
        if jacobian:
            ds = self.dsign.view(1, 1, 2)
            dwx = (wyz.view(N, L, 4, 1) * ds.view(1, 1, 1, 2)).view(N * L, 1, 8)
            dwy = ((wz.view(N, L, 2, 1) * ds.view(1, 1, 1, 2)).view(N, L, 4, 1) * wx.view(N, L, 1, 2)).view(N * L, 1, 8)
            dwz = ((ds.view(1, 1, 2, 1) * wy.view(N, L, 1, 2)).view(N, L, 4, 1) * wx.view(N, L, 1, 2)).view(N * L, 1, 8)
            w = torch.cat([w, dwx, dwy, dwz], 1)  # (N*L, 4, 8)
        feats = torch.stack([self.table[k].index_select(0, idx) for k in range(Fd)], -1).view(N * L, 8, Fd)
        out = torch.bmm(w, feats)  # (N*L, 1 or 4, F)
        enc = out[:, 0].reshape(N, L * Fd)
        if not jacobian:
            return enc, None
        inside = ((p > -1.0) & (p < 1.0)).to(p.dtype)  # the clamp's derivative
        scale = (0.5 * self.res).view(1, L, 1, 1) * inside.view(N, 1, 3, 1)  # du/dp per level and axis
        jac = out[:, 1:].reshape(N, L, 3, Fd) * scale
        return enc, jac.permute(0, 2, 1, 3).reshape(N, 3, L * Fd)


def _wn(layer: nn.Linear, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(layer) if enabled else layer


class SDFNetwork(nn.Module):
    """f(p) -> (signed distance, feature vector) with NeuS' geometric initialisation.

    Input = [p, encoding(p)]; ``layers`` linear layers with softplus(beta) between them; skip layers
    re-concatenate the input (divided by sqrt 2, as NeuS). Geometric initialisation makes the
    initial f the SDF of a sphere of radius ``init_radius`` (encoding weights start at 0 for the
    positional encoding, as NeuS; tiny for hash features, which start near 0 anyway).
    """

    def __init__(self, config: NeusConfig):
        super().__init__()
        cfg = config
        if cfg.encoding == "hashgrid":
            self.encoding: nn.Module = HashGridEncoding(cfg.hash_levels, cfg.hash_features, cfg.hash_log2_size,
                                                        cfg.hash_base_resolution, cfg.hash_max_resolution)
            d_in = 3 + self.encoding.out_dim
        elif cfg.encoding == "frequency":
            self.encoding = FrequencyEncoding(cfg.frequency_bands)
            d_in = self.encoding.out_dim  # includes p
        else:
            raise ValueError(f"unknown encoding {cfg.encoding!r}")
        self.kind = cfg.encoding
        self.d_in = d_in
        self.feature_dim = cfg.feature_dim
        self.skip = set(cfg.sdf_skip_layers)
        n = max(1, cfg.sdf_layers)
        dims = [d_in] + [cfg.sdf_width] * (n - 1) + [1 + cfg.feature_dim]
        self.layers = nn.ModuleList()
        for l in range(n):
            out_dim = dims[l + 1] - (d_in if (l + 1) in self.skip else 0)
            if out_dim <= 0:
                raise ValueError(f"sdf_width {cfg.sdf_width} is too narrow for a skip connection of a {d_in}-d input")
            lin = nn.Linear(dims[l], out_dim)
            self._geometric_init(lin, l, n, dims, out_dim, cfg)
            self.layers.append(_wn(lin, cfg.weight_norm))
        if cfg.activation == "softplus":
            self.act: nn.Module = nn.Softplus(beta=cfg.softplus_beta)
        elif cfg.activation == "relu":
            self.act = nn.ReLU()
        else:
            raise ValueError(f"unknown activation {cfg.activation!r}")
        self.relu = cfg.activation == "relu"

    def _geometric_init(self, lin: nn.Linear, l: int, n: int, dims: list[int], out_dim: int, cfg: NeusConfig) -> None:
        with torch.no_grad():
            if l == n - 1:
                nn.init.normal_(lin.weight, mean=math.sqrt(math.pi) / math.sqrt(dims[l]), std=1e-4)
                nn.init.constant_(lin.bias, -cfg.init_radius)
                return
            nn.init.constant_(lin.bias, 0.0)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
            enc_cols = slice(3, self.d_in)  # columns of the encoding in the network input
            if l == 0:
                if self.kind == "frequency":
                    lin.weight[:, enc_cols] = 0.0
                else:
                    lin.weight[:, enc_cols] *= 1e-2
            elif l in self.skip:
                cols = slice(dims[l] - self.d_in + 3, dims[l])
                lin.weight[:, cols] = 0.0 if self.kind == "frequency" else lin.weight[:, cols] * 1e-2

    def encode(self, p: torch.Tensor, jacobian: bool = False):
        """Network input [p, encoding(p)] (N, d_in) and, with ``jacobian``, its d/dp (N, 3, d_in)."""
        e, J = self.encoding(p, jacobian)
        if self.kind != "hashgrid":
            return e, J
        x0 = torch.cat([p, e], dim=-1)
        if J is None:
            return x0, None
        eye = torch.eye(3, dtype=p.dtype, device=p.device).expand(p.shape[0], 3, 3)
        return x0, torch.cat([eye, J], dim=-1)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """p (N, 3) in the normalised cube -> (N, 1 + feature_dim): [sdf, features]."""
        x0, _ = self.encode(p)
        x = x0
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            if l in self.skip:
                x = torch.cat([x, x0], dim=-1) / math.sqrt(2.0)
            x = layer(x)
            if l < last:
                x = self.act(x)
        return x

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return self.forward(p)[:, :1]

    def sdf_and_gradient(self, p: torch.Tensor, create_graph: bool = True):
        """(sdf (N, 1), features (N, F), gradient d sdf / d p (N, 3)).

        Forward-mode: the encoding's Jacobian is pushed through the MLP as three tangents (linear
        layers map them by W, softplus scales them by sigmoid(beta x)), so the gradient is an
        ordinary differentiable tensor and losses on it need only first-order backward (no
        double backward). ``create_graph=False`` computes everything without a graph.
        """
        ctx = torch.enable_grad() if create_graph else torch.no_grad()
        with ctx:
            x0, t0 = self.encode(p, jacobian=True)
            x, t = x0, t0
            last = len(self.layers) - 1
            for l, layer in enumerate(self.layers):
                if l in self.skip:
                    x = torch.cat([x, x0], dim=-1) / math.sqrt(2.0)
                    t = torch.cat([t, t0], dim=-1) / math.sqrt(2.0)
                w = layer.weight
                x = F.linear(x, w, layer.bias)
                t = F.linear(t, w)
                if l < last:
                    if self.relu:
                        t = t * (x > 0).to(t.dtype).unsqueeze(1)
                    else:  # d softplus_beta(x) / dx = sigmoid(beta x)
                        t = t * torch.sigmoid(self.act.beta * x).unsqueeze(1)
                    x = self.act(x)
        return x[:, :1], x[:, 1:], t[:, :, 0]


class ColorNetwork(nn.Module):
    """c(p, n, v, feature) -> RGB in [0, 1] (sigmoid); the view direction is optional (off: paper).

    own_grid: also feed a hash-grid encoding of p (``color_grid_*``), for the stylised c_c.
    """

    def __init__(self, config: NeusConfig, own_grid: bool = False):
        super().__init__()
        cfg = config
        self.use_view, self.use_normal = cfg.color_use_view, cfg.color_use_normal
        self.encoding = None
        if own_grid and cfg.color_grid_levels > 0:
            self.encoding = HashGridEncoding(cfg.color_grid_levels, 2, cfg.color_grid_log2_size,
                                             cfg.hash_base_resolution, cfg.color_grid_max_resolution)
        d_in = 3 + cfg.feature_dim + (3 if cfg.color_use_normal else 0) + (3 if cfg.color_use_view else 0)
        d_in += self.encoding.out_dim if self.encoding is not None else 0
        n = max(1, cfg.color_layers)
        dims = [d_in] + [cfg.color_width] * (n - 1) + [3]
        self.layers = nn.ModuleList(_wn(nn.Linear(dims[l], dims[l + 1]), cfg.weight_norm) for l in range(n))

    def forward(self, p, normals, view_dirs, features) -> torch.Tensor:
        parts = [p]
        if self.use_view:
            parts.append(view_dirs)
        if self.use_normal:
            parts.append(normals)
        parts.append(features)
        if self.encoding is not None:
            parts.append(self.encoding(p)[0])
        x = torch.cat(parts, dim=-1)
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            x = layer(x)
            if l < last:
                x = torch.relu(x)
        return torch.sigmoid(x)


class Variance(nn.Module):
    """NeuS' single learnable variance: inv_s = exp(10 v), the sharpness of the logistic density."""

    def __init__(self, init: float):
        super().__init__()
        self.variance = nn.Parameter(torch.tensor(float(init)))

    def inv_s(self) -> torch.Tensor:
        return torch.exp(self.variance * 10.0).clamp(1e-6, 1e6)


class NeusModel(nn.Module):
    """N' = {f, c, c_c} plus s and the world <-> network normaliser.

    ``color`` reconstructs the template (stage 1 and the stage-2 reconstruction term), ``color_c``
    is the stylised colour of stage 2 (randomly initialised, Sec. 3.3.2).
    """

    def __init__(self, config: NeusConfig, normalizer: Normalizer):
        super().__init__()
        self.config = config
        self.normalizer = normalizer
        self.sdf_net = SDFNetwork(config)
        self.color = ColorNetwork(config)
        self.color_c = ColorNetwork(config, own_grid=True)
        self.variance = Variance(config.variance_init)
        self.sampling_grid = None  # volume.SDFGrid used to place samples (None: the network itself)

    @property
    def device(self) -> torch.device:
        return self.variance.variance.device

    def param_groups(self, lr: float, lr_encoding: float, lr_variance: float, which: tuple[str, ...],
                     lr_color_encoding: float | None = None):
        """Adam parameter groups (hash tables get their own learning rates)."""
        groups = []
        if "sdf" in which:
            enc = [p for n, p in self.sdf_net.named_parameters() if n.startswith("encoding.")]
            mlp = [p for n, p in self.sdf_net.named_parameters() if not n.startswith("encoding.")]
            if enc:
                groups.append({"params": enc, "lr": lr_encoding, "eps": 1e-15})
            groups.append({"params": mlp, "lr": lr})
        if "color" in which:
            groups.append({"params": list(self.color.parameters()), "lr": lr})
        if "color_c" in which:
            enc = [p for n, p in self.color_c.named_parameters() if n.startswith("encoding.")]
            mlp = [p for n, p in self.color_c.named_parameters() if not n.startswith("encoding.")]
            if enc:
                groups.append({"params": enc, "lr": lr_color_encoding or lr_encoding, "eps": 1e-15})
            groups.append({"params": mlp, "lr": lr})
        if "variance" in which:
            groups.append({"params": list(self.variance.parameters()), "lr": lr_variance})
        return groups

    @torch.no_grad()
    def sdf_world(self, points: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """Signed distance in metres at world points (N, 3) -> (N,), no gradients."""
        out = []
        for s in range(0, points.shape[0], chunk):
            p = self.normalizer.to_net(points[s:s + chunk].to(self.device).float())
            out.append((self.sdf_net.sdf(p)[:, 0] * self.normalizer.scale).to(points.device))
        return torch.cat(out) if out else points.new_zeros(0)

    def color_world(self, points: torch.Tensor, stylised: bool = True, chunk: int = 32768) -> torch.Tensor:
        """Colour (N, 3) at world points (with the SDF normal), no gradients."""
        net = self.color_c if stylised else self.color
        out = []
        for s in range(0, points.shape[0], chunk):
            p = self.normalizer.to_net(points[s:s + chunk].to(self.device).float())
            _, feat, grad = self.sdf_net.sdf_and_gradient(p, create_graph=False)
            with torch.no_grad():
                n = torch.nn.functional.normalize(grad, dim=-1)
                out.append(net(p, n, -n, feat.detach()).to(points.device))
        return torch.cat(out) if out else points.new_zeros(0, 3)
