"""Hair styles: an offset shell of the scalp, a hanging "skirt" from the shell's back/side edge (bob, long)
and a bun, all on one topology so styles blend (see assets/__init__.py)."""
from __future__ import annotations

import math

import torch

from . import HIDDEN_INSET, BlendAsset, HeadFrame, shell_faces, smoothstep

HAIR_STYLES = ("bald", "buzz", "short", "side_part", "bob", "long", "bun", "afro")
SKIRT_ROWS = 6
BUN_RADIUS = 0.042


def hairline(az: torch.Tensor, front: float) -> torch.Tensor:
    """Height of the hairline above the skull centre (m) by azimuth: forehead, temples above the ears, nape."""
    a = az.abs()
    knots = torch.tensor([0.0, 1.0, 1.55, 2.2, math.pi])
    heights = torch.tensor([front, front - 0.01, 0.03, -0.055, -0.075])
    i = torch.bucketize(a, knots).clamp(1, len(knots) - 1)
    w = (a - knots[i - 1]) / (knots[i] - knots[i - 1])
    return heights[i - 1] * (1 - w) + heights[i] * w


def _boundary_loop(faces: torch.Tensor) -> list[int]:
    """The longest closed boundary loop of a triangle patch, as ordered vertex ids."""
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = torch.sort(edges, dim=1).values
    uniq, counts = torch.unique(key, dim=0, return_counts=True)
    boundary = uniq[counts == 1].tolist()
    nxt: dict[int, list[int]] = {}
    for a, b in boundary:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    seen, best = set(), []
    for start in nxt:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            cands = [n for n in nxt[cur] if n != prev and n not in seen]
            if not cands:
                break
            prev, cur = cur, cands[0]
            seen.add(cur)
            loop.append(cur)
        best = loop if len(loop) > len(best) else best
    return best


def _style_shell(style: str, frame: HeadFrame, q: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
    """(N,) hair thickness (m) at shell vertices for one style; <= 0 means no hair there."""
    y = q[:, 1]
    top = smoothstep(0.0, 0.09, y)
    params = {  # front hairline, thickness at the hairline, extra at the crown
        "buzz": (0.06, 0.003, 0.0), "short": (0.06, 0.008, 0.012), "side_part": (0.055, 0.010, 0.012),
        "bob": (0.035, 0.010, 0.010), "long": (0.05, 0.008, 0.010), "bun": (0.06, 0.006, 0.004),
        "afro": (0.05, 0.035, 0.025),
    }
    if style not in params:
        return torch.zeros_like(y)
    front, base, crown = params[style]
    cover = smoothstep(0.0, 0.012, y - hairline(az, front))
    thick = base + crown * top
    if style == "side_part":  # volume swept to the avatar's right, a part line on its left
        thick = thick + 0.008 * smoothstep(0.0, 0.08, -q[:, 0]) * top
        thick = thick * (1 - 0.7 * torch.exp(-((q[:, 0] - 0.035) / 0.008) ** 2) * (q[:, 2] > 0))
    return cover * thick


def build_hair(frame: HeadFrame) -> BlendAsset:
    q, az = frame.local(), frame.azimuth()
    in_patch = frame.skin & (q[:, 1] > hairline(az, 0.035) - 0.01)
    anchors, faces = shell_faces(frame.faces, in_patch)
    nrm, qa, aza = frame.normals[anchors], q[anchors], az[anchors]
    K = len(HAIR_STYLES)
    shell = torch.stack([nrm * (-HIDDEN_INSET + (HIDDEN_INSET + t) * (t > 1e-4))[:, None]
                         for t in (_style_shell(s, frame, qa, aza) for s in HAIR_STYLES)])

    # skirt: columns hanging from the patch edge behind the temples
    loop = torch.tensor(_boundary_loop(faces))
    la = anchors[loop]
    radial = torch.nn.functional.normalize(torch.stack([q[la, 0], torch.zeros(len(la)), q[la, 2]], 1), dim=1)
    back = smoothstep(0.9, 1.5, az[la].abs())
    lengths = {"bob": 0.17, "long": 0.36}
    skirt = []
    for k, s in enumerate(HAIR_STYLES):
        base = shell[k, loop]  # start at the shell edge
        rows = []
        for r in range(SKIRT_ROWS):
            f = r / (SKIRT_ROWS - 1)
            if s in lengths:
                drop = torch.tensor([0.0, -lengths[s] * f, 0.0]) * back[:, None]
                push = radial * (0.028 * min(1.0, 2.5 * f)) * back[:, None]
                rows.append(base + drop + push)
            else:
                rows.append(base)
        skirt.append(torch.cat(rows))
    skirt = torch.stack(skirt)
    n_loop = len(loop)
    skirt_faces = []
    for r in range(SKIRT_ROWS - 1):
        for j in range(n_loop):
            a, b = r * n_loop + j, r * n_loop + (j + 1) % n_loop
            skirt_faces += [[a, b, b + n_loop], [a, b + n_loop, a + n_loop]]
    skirt_faces = torch.tensor(skirt_faces) + len(anchors)

    # bun: a sphere at the back of the crown, anchored to the nearest scalp vertex
    bun_centre = frame.centre + torch.tensor([0.0, 0.085, -0.075])
    bun_anchor = int((frame.vertices[anchors] - bun_centre).norm(dim=1).argmin())
    bun_anchor = int(anchors[bun_anchor])
    sphere_v, sphere_f = _uv_sphere(8, 12)
    bun = []
    for s in HAIR_STYLES:
        if s == "bun":
            bun.append(bun_centre + BUN_RADIUS * sphere_v - frame.vertices[bun_anchor])
        else:
            bun.append((-HIDDEN_INSET * frame.normals[bun_anchor]).expand(len(sphere_v), 3))
    bun = torch.stack(bun)
    all_faces = torch.cat([faces, skirt_faces, sphere_f + len(anchors) + len(loop) * SKIRT_ROWS])
    all_anchors = torch.cat([anchors, la.repeat(SKIRT_ROWS), torch.full((len(sphere_v),), bun_anchor)])
    return BlendAsset("hair_style", list(HAIR_STYLES), all_anchors, torch.cat([shell, skirt, bun], 1),
                      all_faces, "hair")


def _uv_sphere(rings: int, segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    verts = [[0.0, 1.0, 0.0]]
    for i in range(1, rings):
        t = math.pi * i / rings
        for j in range(segments):
            p = 2 * math.pi * j / segments
            verts.append([math.sin(t) * math.cos(p), math.cos(t), math.sin(t) * math.sin(p)])
    verts.append([0.0, -1.0, 0.0])
    faces = [[0, 1 + (j + 1) % segments, 1 + j] for j in range(segments)]
    for i in range(rings - 2):
        for j in range(segments):
            a, b = 1 + i * segments + j, 1 + i * segments + (j + 1) % segments
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    last = len(verts) - 1
    base = 1 + (rings - 2) * segments
    faces += [[base + j, base + (j + 1) % segments, last] for j in range(segments)]
    return torch.tensor(verts), torch.tensor(faces)
