"""A tabulated, additive model of an engine's landmarks: fast landmarks and exact Jacobians for fitting.

Face sliders of bone- or blendshape-driven creators act (close to) independently, each along a
piecewise-linear curve: landmarks(x) = L(m) + sum_j [L(m with x_j) - L(m)]. Tabulating every parameter
at K knots (with the others at the average face m) costs N*K landmark evaluations once per engine;
afterwards one evaluation is a gather. For the Anny engine (sliders with plus/minus targets, phenotypes
tabulated at 9 knots) the model is exact; `max_error` reports how far it is off elsewhere.
"""
from __future__ import annotations

import torch


class AdditiveLandmarks:
    def __init__(self, engine, mean: torch.Tensor, schemes: list[str], knots: int = 9, chunk: int = 256):
        self.engine, self.schemes, self.K = engine, list(schemes), knots
        self.mean = mean.detach()
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
