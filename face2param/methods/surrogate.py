"""A tabulated, additive model of an engine's landmarks: fast landmarks and exact Jacobians for fitting.

Face sliders of bone- or blendshape-driven creators act (close to) independently, each along a
piecewise-linear curve: landmarks(x) = L(m) + sum_j [L(m with x_j) - L(m)]. Tabulating every parameter
at K knots (with the others at the average face m) costs N*K landmark evaluations once per engine;
afterwards one evaluation is a gather. For the Anny engine (sliders with plus/minus targets, phenotypes
tabulated at 9 knots) the model is exact; `max_error` reports how far it is off elsewhere.

The table of the bundled Anny engine costs 1-3 s of CPU per process (N*K = 1,287 landmark evaluations
per scheme), the same numbers every time: `AdditiveLandmarks(..., cache=True)` keeps it in the user
cache folder (`table_cache_path`), keyed by everything it is computed from -- the engine's head
model, landmark tables and calibration (their values), the mean face, schemes, knots and the code
that evaluates them -- so a fresh process reads the very same table in milliseconds.
"""
from __future__ import annotations

from pathlib import Path

import torch

# the code behind engine.landmarks_tensor and this table: a change to any of them is a new table
_CODE = [Path(__file__), *(Path(__file__).parents[1] / "engines" / name
                           for name in ("anny_engine.py", "head.py", "landmark_calibration.py", "landmarks.py"))]


class AdditiveLandmarks:
    def __init__(self, engine, mean: torch.Tensor, schemes: list[str], knots: int = 9, chunk: int = 256,
                 cache: bool = False):
        """cache: read the table from / write it to the user cache folder (the bundled Anny engine only)."""
        from avatarclip_core.tensor_cache import cached

        self.engine, self.schemes, self.K = engine, list(schemes), knots
        self.mean = mean.detach()
        path = table_cache_path(engine, self.mean, self.schemes, knots) if cache else None
        data = cached(path, lambda: self._build(engine, mean, chunk),
                      accept=lambda d: isinstance(d, dict) and sorted(d.get("table", {})) == sorted(self.schemes))
        device = self.mean.device
        self.base = {s: t.to(device) for s, t in data["base"].items()}
        self.table = {s: t.to(device) for s, t in data["table"].items()}
        self.max_error = float(data["max_error"])

    def _build(self, engine, mean: torch.Tensor, chunk: int) -> dict:
        knots = self.K
        N = mean.shape[0]
        grid = torch.linspace(0, 1, knots, device=mean.device)
        probes = mean.repeat(N * knots, 1)
        probes[torch.arange(N * knots), torch.arange(N).repeat_interleave(knots)] = grid.repeat(N)
        self.base, self.table = {}, {}
        with torch.no_grad():
            for s in self.schemes:
                base = engine.landmarks_tensor(mean[None], s)[0]
                rows = torch.cat([engine.landmarks_tensor(probes[i:i + chunk], s) for i in range(0, len(probes), chunk)])
                self.base[s] = base
                self.table[s] = (rows - base).view(N, knots, *base.shape)  # (N, K, L, 3)
            self.max_error = self._check()
        return {"base": {s: t.cpu() for s, t in self.base.items()},
                "table": {s: t.cpu() for s, t in self.table.items()}, "max_error": self.max_error}

    def _interp(self, x: torch.Tensor):
        t = x.clamp(0, 1) * (self.K - 1)
        lo = t.detach().floor().clamp(max=self.K - 2).long()
        return lo, (t - lo.to(t.dtype))

    def points3d(self, x: torch.Tensor, scheme: str) -> torch.Tensor:
        """(B, N) -> (B, L, 3), differentiable in x: interpolation weights (B, N*K) @ table (N*K, L*3)."""
        lo, w = self._interp(x)
        B, N = x.shape
        weights = torch.zeros(B, N, self.K, device=x.device, dtype=x.dtype)
        weights = weights.scatter(2, lo[..., None], (1 - w)[..., None]).scatter(2, lo[..., None] + 1, w[..., None])
        table = self.table[scheme]
        flat = table.reshape(N * self.K, -1)
        return self.base[scheme] + (weights.reshape(B, -1) @ flat).view(B, *table.shape[2:])

    def jacobian3d(self, x: torch.Tensor, scheme: str) -> torch.Tensor:
        """(B, N) -> (B, N, L, 3): slopes at x; at a knot the mean of the two sides (the kink of two-sided
        sliders sits at the average face, where a one-sided slope would hide half of the range)."""
        t = x.clamp(0, 1) * (self.K - 1)
        lo = t.floor().clamp(max=self.K - 2).long()
        at_knot = (t - t.round()).abs() < 1e-4
        k = t.round().long()
        table, j = self.table[scheme], torch.arange(x.shape[1], device=x.device)
        slope = table[j, lo + 1] - table[j, lo]
        left = table[j, k.clamp(min=1)] - table[j, (k - 1).clamp(min=0)]
        right = table[j, (k + 1).clamp(max=self.K - 1)] - table[j, k.clamp(max=self.K - 2)]
        inner = (k > 0) & (k < self.K - 1)
        central = torch.where(inner[..., None, None], (left + right) / 2, torch.where((k == 0)[..., None, None], right, left))
        return torch.where(at_knot[..., None, None], central, slope) * (self.K - 1)

    def _check(self, samples: int = 4) -> float:
        """Largest error (metres) against the engine on random parameter sets."""
        g = torch.Generator(device="cpu").manual_seed(0)
        x = torch.rand(samples, self.mean.shape[0], generator=g).to(self.mean.device)
        return max(float((self.points3d(x, s) - self.engine.landmarks_tensor(x, s)).abs().max()) for s in self.schemes)


def table_cache_path(engine, mean: torch.Tensor, schemes: list[str], knots: int) -> Path | None:
    """Where the table of the bundled Anny engine is cached (user cache folder, `face2param/`): its name
    is a hash of what the table is computed from; None for other engines (their code is not known here)."""
    from avatarclip_core.tensor_cache import Digest, cache_file

    if type(engine).__name__ != "AnnyFaceEngine":
        return None
    digest = Digest(repr((list(schemes), knots))).files(_CODE)
    head = engine.head
    digest.tensors(mean, head.neutral, head.plus, head.minus, head.one_sided, head.phenotype_table)
    for scheme in schemes:
        digest.tensors(*engine._table(scheme))
        correction = engine._landmark_corrections.get(scheme)
        digest.text(f"{scheme}:{correction is not None}")
        if correction is not None:
            digest.tensors(correction.offset, correction.weights, correction.defaults, correction.kink)
    return cache_file("face2param", f"landmark_table_{digest.hexdigest()}.pt")
