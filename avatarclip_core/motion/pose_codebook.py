"""Pose code-book (AvatarCLIP Sec. 3.4.1): K-Means over pose-VAE latents of corpus poses, and its queries.

- ``build_pose_codebook``: encode corpus poses (latent means), K-Means (``shape.codebook.kmeans``),
  decode the centroids; each entry keeps the clip labels of the corpus poses nearest its centroid,
  weighted by how often they occur there.
- ``clip_scores`` (Eq. 10): every entry is rendered on the default body from a few azimuths with
  our renderer, encoded with CLIP (features averaged over views, cached per code-book and model)
  and compared with the text: s_i = 1 - cos, so lower is better; we return the cosine.
- ``label_scores`` (offline): the sentence encoder's cosine between the text and the labels of
  the clips of the corpus poses nearest each entry (best label per clip, averaged over the poses).
- ``top_k_distinct``: best first, skipping entries closer than a threshold (mean angle per joint)
  to one already taken.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass

import numpy as np
import torch

from avatarclip_core.body import lbs
from avatarclip_core.motion.canonical import CanonicalMotion, to_motion
from avatarclip_core.motion.pose_vae import rotation_angle_degrees
from avatarclip_core.shape.codebook import kmeans

log = logging.getLogger(__name__)
# Fixed cameras framing a standing adult with raised arms (about -0.2 to 2.2 m), one scale for every pose.
CAMERA = {"distance": 3.3, "elevation": 5.0, "at": (0.0, 1.0, 0.0), "fov": 40.0}


@dataclass
class PoseCodebook:
    latents: torch.Tensor  # (K, Z) centroids in the pose model's latent space
    poses: torch.Tensor  # (K, 20, 3, 3) decoded centroids (canonical rotations)
    counts: torch.Tensor  # (K,) corpus poses per centroid
    label_index: torch.Tensor  # (K, M) indices into `labels` (-1 = none), most frequent first
    label_weight: torch.Tensor  # (K, M) frequency of each label among the entry's nearest corpus poses
    neighbour_clips: torch.Tensor  # (K, n) corpus clip of each of the entry's nearest corpus poses

    @property
    def size(self) -> int:
        return int(self.latents.shape[0])

    def head(self, n: int) -> "PoseCodebook":
        """The n largest clusters (entries are stored largest first); n <= 0 keeps all."""
        if n <= 0 or n >= self.size:
            return self
        return PoseCodebook(self.latents[:n], self.poses[:n], self.counts[:n], self.label_index[:n],
                            self.label_weight[:n], self.neighbour_clips[:n])

    @property
    def fingerprint(self) -> str:
        data = lbs.matrix_to_rotation_6d(self.poses).float().numpy().round(4).tobytes()
        return hashlib.sha256(data).hexdigest()[:16]


@torch.no_grad()
def build_pose_codebook(model, poses: torch.Tensor, pose_clip: torch.Tensor, clip_labels: list[list[int]], *,
                        size: int, iters: int, neighbours: int, seed: int, max_labels: int = 6) -> PoseCodebook:
    """K-Means over latent means of ``poses`` (N, 20, 3, 3).

    pose_clip (N,): the corpus clip each pose comes from; clip_labels: per clip, indices of its
    labels in the global label list.
    """
    z = torch.cat([model.encode(poses[s:s + 4096].float())[0] for s in range(0, len(poses), 4096)]).float().cpu()
    size = min(size, len(z))
    centroids, assign = kmeans(z, size, iters=iters, seed=seed)
    counts = torch.bincount(assign, minlength=size)
    order = torch.argsort(-counts, stable=True)  # largest clusters first: truncated code-books stay representative
    centroids, counts = centroids[order], counts[order]
    decoded = model.decode(centroids.to(next(iter(model.parameters())).device)).float().cpu()
    dist = torch.cdist(centroids, z)
    near = dist.topk(min(neighbours, len(z)), largest=False).indices  # (K, n)
    idx = torch.full((size, max_labels), -1, dtype=torch.long)
    wts = torch.zeros(size, max_labels)
    for k in range(size):
        tally: dict[int, float] = {}
        for p in near[k].tolist():
            labels = clip_labels[int(pose_clip[p])]
            for lab in labels:
                tally[lab] = tally.get(lab, 0.0) + 1.0 / len(labels)
        best = sorted(tally.items(), key=lambda kv: -kv[1])[:max_labels]
        total = sum(w for _, w in best) or 1.0
        for m, (lab, w) in enumerate(best):
            idx[k, m], wts[k, m] = lab, w / total
    return PoseCodebook(centroids, decoded, counts, idx, wts, pose_clip[near].long())


def top_k_distinct(scores: torch.Tensor, poses: torch.Tensor, k: int, min_degrees: float) -> list[int]:
    """Indices of the k best scores (higher is better) whose poses differ from the ones taken by at
    least ``min_degrees`` (mean angle per joint)."""
    taken: list[int] = []
    for i in torch.argsort(scores, descending=True, stable=True).tolist():
        if all(float(rotation_angle_degrees(poses[i], poses[j]).mean()) >= min_degrees for j in taken):
            taken.append(i)
            if len(taken) == k:
                break
    return taken


def clip_label_similarity(label_index: torch.Tensor, label_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """(C,) per corpus clip: the best cosine between the text (D,) and one of its labels ((C, M), -1 padded)."""
    cos = label_emb.float() @ text_emb.float().reshape(-1)
    per = torch.where(label_index >= 0, cos[label_index.clamp_min(0)], torch.full((), -2.0))
    return per.max(dim=1).values


def label_scores(book: PoseCodebook, clip_similarity: torch.Tensor) -> torch.Tensor:
    """(K,) offline score of each entry: the mean text similarity of the clips its nearest corpus poses
    come from (``clip_label_similarity``), so an entry scores high when the poses around it belong to
    clips described like the text."""
    return clip_similarity[book.neighbour_clips].mean(dim=1)


class PosedBody:
    """The default body's rest data, posed with canonical rotations through the one LBS (differentiable)."""

    def __init__(self, body, sliders: dict[str, float] | None = None, device: str = "cpu"):
        mesh = body.rigged_mesh(sliders or {})
        self.skeleton = mesh.skeleton
        self.device = torch.device(device)
        self.vertices = mesh.vertices.float().to(device)
        self.faces = mesh.faces.to(device)
        self.rest_world = mesh.skeleton.rest_transforms.float().to(device)
        self.dense = lbs.dense_skin_weights(mesh.skin_indices, mesh.skin_weights.float(),
                                            mesh.skeleton.num_joints).to(device)

    def pose(self, rotations: torch.Tensor, root: torch.Tensor | None = None) -> torch.Tensor:
        """(B, V, 3) vertices for canonical rotations (B, 20, 3, 3) and root translations (B, 3)."""
        if root is None:
            root = rotations.new_zeros(rotations.shape[0], 3)
        motion = to_motion(CanonicalMotion(30.0, rotations, root), self.skeleton, "pose")
        verts, _ = lbs.pose_body(self.vertices, self.rest_world, self.skeleton.parents, self.dense,
                                 motion.rotations.to(self.device), motion.root_translation.to(self.device))
        return verts


def render_poses(posed: PosedBody, rotations: torch.Tensor, root: torch.Tensor | None, azimuths, size: int
                 ) -> torch.Tensor:
    """(B * A, size, size, 3) clay renders in [0, 1] of B poses from A azimuths (degrees), pose-major
    (cameras: ``CAMERA``)."""
    from avatarclip_core.render import orbit_camera
    from avatarclip_core.render.preview import clay_render

    verts = posed.pose(rotations, root)  # (B, V, 3)
    A = len(azimuths)
    verts = verts.repeat_interleave(A, dim=0)
    az = torch.tensor(list(azimuths), dtype=torch.float32).repeat(rotations.shape[0])
    cams = orbit_camera(azimuth=az, device=posed.device, **CAMERA)
    return clay_render(verts, posed.faces, cams, size)


@torch.no_grad()
def codebook_clip_features(book: PoseCodebook, scorer, posed: PosedBody, azimuths, batch: int = 8,
                           precision: str = "fp32", progress=None) -> torch.Tensor:
    """(K, D) CLIP features of the entries averaged over views (of unit features), the image tower at
    `precision` (device.inference_dtype); cached on disk, once per user (the key: the code-book's
    fingerprint, the CLIP model, the views, the precision's dtype). `progress(done, total)` after each
    batch of a first run (tens of seconds on a CPU)."""
    from avatarclip_core.device import inference_dtype
    from avatarclip_core.paths import user_cache_dir

    dtype = inference_dtype(precision, str(scorer.device))
    size = int(getattr(scorer, "render_size", 224))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", scorer.name)[:40]
    # what the features depend on; fp32 keeps the key it had before precisions existed (caches stay valid)
    source = f"{scorer.name}|{size}|{list(azimuths)}|{sorted(CAMERA.items())}"
    key = hashlib.sha1((source if dtype == torch.float32 else f"{source}|{dtype}").encode()).hexdigest()[:10]
    path = user_cache_dir("motion_clip") / f"{book.fingerprint}-{slug}-{key}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path))
    started = time.perf_counter()
    log.info("rendering %d code-book poses x %d views at %d px for %s in %s (once; cached)", book.size,
             len(azimuths), size, scorer.name, str(dtype).replace("torch.", ""))
    feats = []
    for s in range(0, book.size, batch):
        poses = book.poses[s:s + batch].to(posed.device)
        images = render_poses(posed, poses, None, azimuths, size)
        # mean of unit features over the views: its dot product with the text is the views' mean cosine
        feats.append(scorer.encode_images(images, dtype).cpu().reshape(poses.shape[0], len(azimuths), -1).mean(1))
        if progress is not None:
            progress(s + poses.shape[0], book.size)
    feats = torch.cat(feats)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, feats.numpy())
    tmp.replace(path)
    log.info("code-book CLIP features in %.1f s", time.perf_counter() - started)
    return feats


def clip_scores(book: PoseCodebook, scorer, posed: PosedBody, text: str, azimuths, precision: str = "fp32",
                progress=None) -> torch.Tensor:
    """(K,) cosine between each entry's (view-averaged) render features and the text (1 - Eq. 10's s_i)."""
    feats = codebook_clip_features(book, scorer, posed, azimuths, precision=precision, progress=progress)
    t = scorer.encode_text([text]).float().cpu()[0]
    return feats @ t
