"""Hair styles on one topology so styles blend (see assets/__init__.py): an offset shell of the scalp, a
hanging "skirt" from the shell's side/back edge (shoulder-length and long styles), a bun and a ponytail.

Each style is a few numbers (tables below): where the hairline sits and how thick the shell is (short
styles), how far and how loosely the skirt falls (long styles), and curls as a smooth bump field.
"""
from __future__ import annotations

import math

import torch

from . import HIDDEN_INSET, BlendAsset, HeadFrame, shell_faces, smoothstep

HAIR_STYLES = ("bald", "buzz", "short", "short_curly", "side_part", "bob", "long", "long_wavy", "ponytail",
               "bun", "afro")
# what each option looks like (the attribute mapping and the UI use these words)
HAIR_STYLE_TEXT = {
    "bald": "no hair", "buzz": "clipped to a few millimetres", "short": "short, straight",
    "short_curly": "short, curly", "side_part": "short, parted and swept to one side",
    "bob": "shoulder length, straight", "long": "long straight hair down the back",
    "long_wavy": "long wavy or curly hair with volume", "ponytail": "pulled back into a ponytail",
    "bun": "pulled back into a bun", "afro": "full rounded afro",
}
SKIRT_ROWS = 10
BUN_RADIUS = 0.042
TAIL_RINGS, TAIL_SEGMENTS = 12, 10
SCALP_INSET = 0.004  # deepest offset under the scalp; deeper than HIDDEN_INSET so the offset stays linear across the hairline
HAIRLINE_SLOPE = 1.0  # hair thickness gained per metre above the hairline (45 degrees out of the skin)

# style -> (front hairline above the skull centre, thickness at the hairline, extra at the crown, curl bumps) (m)
_SHELL = {
    "short": (0.06, 0.008, 0.012, 0.0), "short_curly": (0.055, 0.013, 0.012, 0.005),
    "side_part": (0.055, 0.010, 0.012, 0.0), "bob": (0.04, 0.010, 0.010, 0.0), "long": (0.05, 0.008, 0.010, 0.0),
    "long_wavy": (0.05, 0.011, 0.013, 0.002), "ponytail": (0.06, 0.005, 0.003, 0.0),
    "bun": (0.06, 0.006, 0.004, 0.0), "afro": (0.05, 0.038, 0.028, 0.006),
}
# style -> (length below the shell edge, outward volume, wave amplitude, wave period) (m)
_SKIRT = {"bob": (0.20, 0.026, 0.0, 1.0), "long": (0.38, 0.024, 0.0, 1.0), "long_wavy": (0.36, 0.036, 0.011, 0.075)}


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


def _curls(q: torch.Tensor, period: float = 0.03) -> torch.Tensor:
    """(N,) smooth bumps in [0, 1] over the scalp: tight curls read as a lumpy outline and shading."""
    k = 2 * math.pi / period
    b = torch.sin(k * q[:, 0] + 1.3) * torch.sin(k * q[:, 1] + 0.4) + torch.sin(k * 0.8 * q[:, 2] + 2.1) * torch.sin(k * 0.9 * q[:, 0])
    return (b / 2 + 0.5).clamp(0, 1)


def _style_shell(style: str, frame: HeadFrame, q: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
    """(N,) signed hair offset (m) along the normal at shell vertices for one style: the thickness above the
    hairline, rising from the skin with the height above it, and down to -SCALP_INSET below it. Because the
    offset is linear in that height near the line, every triangle across it meets the skin at the hairline
    itself (a clean edge, not the mesh's staircase)."""
    if style not in _SHELL:
        return torch.full_like(q[:, 1], -SCALP_INSET)
    y = q[:, 1]
    top = smoothstep(0.0, 0.09, y)
    front, base, crown, curl = _SHELL[style]
    thick = base + crown * top + curl * _curls(q)
    if style == "side_part":  # volume swept to the avatar's right, a part line on its left
        thick = thick + 0.008 * smoothstep(0.0, 0.08, -q[:, 0]) * top
        thick = thick * (1 - 0.7 * torch.exp(-((q[:, 0] - 0.035) / 0.008) ** 2) * (q[:, 2] > 0))
    if style == "afro":  # rounder: more volume at the sides and back than on the forehead
        thick = thick + 0.02 * smoothstep(0.5, 1.6, az.abs())
    height = y - hairline(az, front)
    return torch.minimum(thick, HAIRLINE_SLOPE * height).clamp(min=-SCALP_INSET)


def _skirt(style: str, base: torch.Tensor, radial: torch.Tensor, az: torch.Tensor,
           body: torch.Tensor | None) -> torch.Tensor:
    """(SKIRT_ROWS * L, 3) skirt rows hanging from the shell edge `base` (L, 3) for one style."""
    if style not in _SKIRT:
        return base.repeat(SKIRT_ROWS, 1)
    length, volume, wave, period = _SKIRT[style]
    back = smoothstep(0.9, 1.5, az.abs())[:, None]  # no skirt over the face
    side = az.sin().abs()[:, None]
    rows = []
    for r in range(SKIRT_ROWS):
        f = r / (SKIRT_ROWS - 1)
        drop = length * f
        out = volume * min(1.0, 2.5 * f) + wave * math.sin(2 * math.pi * drop / period) * min(1.0, 3 * f)
        # below the jaw the side locks go behind the shoulders (they would otherwise stick out over them)
        behind = smoothstep(0.10, 0.24, torch.tensor(drop)) * side
        shift = radial * out + torch.tensor([0.0, 0.0, -0.07]) * behind
        row = base + back * (torch.tensor([0.0, -drop, 0.0]) + shift)
        if body is not None and r > 0:
            direction = torch.nn.functional.normalize(radial * (1 - behind) + torch.tensor([0.0, 0.0, -1.0]) * behind, dim=1)
            row = row + back * min(1.0, 4 * f) * _clearance(row, direction, body)[:, None] * direction
        rows.append(row)
    rows = torch.stack(rows)  # (R, L, 3): a lock never swings back towards the body once pushed out
    reach = ((rows - base) * radial).sum(-1)
    rows = rows + (reach.cummax(0).values - reach)[..., None] * radial * back
    return rows.reshape(-1, 3)


def _clearance(points: torch.Tensor, direction: torch.Tensor, body: torch.Tensor, gap: float = 0.012) -> torch.Tensor:
    """(P,) how far each point must move along its horizontal `direction` to sit `gap` outside the body
    (body points at its height within 2 cm of the line; 0 when already clear)."""
    near = (body[None, :, 1] - points[:, None, 1]).abs() < 0.012  # (P, Nb)
    u = (body[None, :, [0, 2]] - points[:, None, [0, 2]])  # horizontal offsets to the body points
    d = direction[:, None, [0, 2]]
    t = (u * d).sum(-1)
    perp = (u - t[..., None] * d).norm(dim=-1)
    t = torch.where(near & (perp < 0.02), t, torch.full_like(t, -1.0))
    return (t.max(1).values + gap).clamp(min=0)


def _tail(frame: HeadFrame) -> torch.Tensor:
    """(TAIL_RINGS * TAIL_SEGMENTS, 3) a ponytail: tied at the back of the crown, out, then down the nape."""
    c = frame.centre
    t = torch.linspace(0, 1, TAIL_RINGS)
    # centre line: from the tie (behind the crown) backwards and down, hanging below the occiput
    path = torch.stack([torch.zeros_like(t), 0.05 - 0.26 * t ** 1.3, -0.105 - 0.05 * torch.sin(t * math.pi * 0.6)], 1) + c
    radius = 0.017 + 0.012 * torch.sin(t * math.pi).clamp(min=0) ** 0.7 - 0.013 * t
    if frame.body is not None:  # hangs clear of the nape and the upper back
        back = torch.tensor([0.0, 0.0, -1.0]).expand_as(path)
        path = path + (_clearance(path, back, frame.body, 0.004) + radius * (t > 0.2))[:, None] * back * (t > 0.2)[:, None]
    ring = torch.linspace(0, 2 * math.pi, TAIL_SEGMENTS + 1)[:-1]
    tangent = torch.nn.functional.normalize(torch.gradient(path, dim=0)[0], dim=1)
    side = torch.tensor([1.0, 0.0, 0.0]).expand_as(tangent)
    normal = torch.nn.functional.normalize(torch.linalg.cross(tangent, side, dim=1), dim=1)
    pts = path[:, None] + radius[:, None, None] * (torch.cos(ring)[None, :, None] * side[:, None]
                                                   + torch.sin(ring)[None, :, None] * normal[:, None])
    return pts.reshape(-1, 3)


def _tube_faces(rings: int, segments: int) -> torch.Tensor:
    faces = []
    for i in range(rings - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    for j in range(1, segments - 1):  # close the tip
        last = (rings - 1) * segments
        faces.append([last, last + j, last + j + 1])
    return torch.tensor(faces)


def _buzz_as_detected(frame: HeadFrame, q: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
    """(N,) "buzz" offsets as they were when the shipped landmark tables were detected on the default head
    wearing it (engines/landmarks.py): with the signed hairline of _style_shell dlib's brow points moved by
    3 px at 512 (and with a subdivided scalp its jaw points by 2 px), so this style keeps its old shell."""
    t = smoothstep(0.0, 0.012, q[:, 1] - hairline(az, 0.06)) * 0.003
    return -HIDDEN_INSET + (HIDDEN_INSET + t) * (t > 1e-4)


def build_hair(frame: HeadFrame) -> BlendAsset:
    q, az = frame.local(), frame.azimuth()
    in_patch = frame.skin & (q[:, 1] > hairline(az, 0.035) - 0.01)
    anchors, faces = shell_faces(frame.faces, in_patch)
    nrm, qa, aza = frame.normals[anchors], q[anchors], az[anchors]
    shell = torch.stack([nrm * (_buzz_as_detected(frame, qa, aza) if s == "buzz" else _style_shell(s, frame, qa, aza))[:, None]
                         for s in HAIR_STYLES])

    # skirt: columns hanging from the patch edge behind the temples
    loop = torch.tensor(_boundary_loop(faces))
    la = anchors[loop]
    radial = torch.nn.functional.normalize(torch.stack([qa[loop, 0], torch.zeros(len(la)), qa[loop, 2]], 1), dim=1)
    skirt = torch.stack([_skirt(s, frame.vertices[la] + shell[k, loop], radial, aza[loop], frame.body)
                         for k, s in enumerate(HAIR_STYLES)]) - frame.vertices[la].repeat(SKIRT_ROWS, 1)
    n_loop = len(loop)
    skirt_faces = []
    for r in range(SKIRT_ROWS - 1):
        for j in range(n_loop):
            a, b = r * n_loop + j, r * n_loop + (j + 1) % n_loop
            skirt_faces += [[a, b, b + n_loop], [a, b + n_loop, a + n_loop]]
    skirt_faces = torch.tensor(skirt_faces) + len(anchors)

    # bun and ponytail: rigid parts at the back of the crown, anchored to the nearest scalp vertex
    bun_centre = frame.centre + torch.tensor([0.0, 0.085, -0.075])
    tie = int(anchors[int((frame.vertices[anchors] - bun_centre).norm(dim=1).argmin())])
    hidden_at_tie = -HIDDEN_INSET * frame.normals[tie]
    sphere_v, sphere_f = _uv_sphere(8, 12)
    tail_v, tail_f = _tail(frame), _tube_faces(TAIL_RINGS, TAIL_SEGMENTS)
    bun, tail = [], []
    for s in HAIR_STYLES:
        bun.append(bun_centre + BUN_RADIUS * sphere_v - frame.vertices[tie] if s == "bun"
                   else hidden_at_tie.expand(len(sphere_v), 3))
        tail.append(tail_v - frame.vertices[tie] if s == "ponytail" else hidden_at_tie.expand(len(tail_v), 3))
    n_shell_skirt = len(anchors) + n_loop * SKIRT_ROWS
    all_faces = torch.cat([faces, skirt_faces, sphere_f + n_shell_skirt, tail_f + n_shell_skirt + len(sphere_v)])
    all_anchors = torch.cat([anchors, la.repeat(SKIRT_ROWS), torch.full((len(sphere_v) + len(tail_v),), tie)])
    offsets = torch.cat([shell, skirt, torch.stack(bun), torch.stack(tail)], 1)
    return BlendAsset("hair_style", list(HAIR_STYLES), all_anchors, offsets, all_faces, "hair")


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
