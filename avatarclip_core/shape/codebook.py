"""The shape code-book (paper Sec. 3.3.1 / 4.1.1): K-Means centroids of VAE-decoded bodies.

Latent codes are drawn from the VAE prior N(0, I), decoded, clipped to the slider ranges, and
clustered with K-Means (paper: 40,960 samples -> 2,048 centroids). We cluster the *decoded*
bodies (the paper clusters latent codes), in a weighted metric where the phenotypes dominate
(``clustering_weights``), so entries spread over what renders and words distinguish. Each entry
is its cluster's medoid (the decoded sample nearest the centroid): a clipped decoded body, so it
lies inside the slider ranges, and not an average that would blur, e.g., the two modes of gender
towards androgynous. Each entry also keeps its latent code (the encoder mean of the entry).
"""
from __future__ import annotations

import numpy as np
import torch

from avatarclip_core.shape.space import ShapeSpace


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0,
           chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded K-Means (k-means++ initialisation, Lloyd iterations) -> centroids (k, D), labels (N,)."""
    n = x.shape[0]
    if k > n:
        raise ValueError(f"kmeans: {k} clusters from {n} points")
    rng = np.random.default_rng(seed)
    xn = x.numpy()
    chosen = [int(rng.integers(n))]
    closest = ((xn - xn[chosen[0]]) ** 2).sum(-1)
    for u in rng.random(k - 1):  # k-means++: next centre with probability proportional to D^2
        cum = np.cumsum(closest)
        idx = min(int(np.searchsorted(cum, u * cum[-1], side="right")), n - 1) if cum[-1] > 0 else int(u * n)
        chosen.append(idx)
        np.minimum(closest, ((xn - xn[idx]) ** 2).sum(-1), out=closest)
    centroids = x[torch.as_tensor(chosen)].clone()
    x_sq = (x ** 2).sum(-1, keepdim=True)

    def assign(c: torch.Tensor) -> torch.Tensor:
        c_sq = (c ** 2).sum(-1)
        return torch.cat([(x_sq[s:s + chunk] - 2 * x[s:s + chunk] @ c.T + c_sq).argmin(-1) for s in range(0, n, chunk)])

    labels = assign(centroids)
    for _ in range(iters):
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if bool(empty.any()):  # re-seed empty clusters at the points farthest from their centre
            dist = ((x - centroids[labels]) ** 2).sum(-1)
            far = dist.topk(int(empty.sum())).indices
            centroids[empty] = x[far]
        new_labels = assign(centroids)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels


# How much each kind of coordinate counts when clustering, per standard deviation of the samples.
PHENOTYPE_IMPORTANCE = {"gender": 1.0, "age": 1.0, "muscle": 1.0, "weight": 1.0, "height": 1.0, "proportions": 0.5}
LOCAL_CHANGE_IMPORTANCE = 0.3


def clustering_weights(space: ShapeSpace, samples: np.ndarray) -> np.ndarray:
    """(D,) per-coordinate scales for K-Means: importance / standard deviation of the samples.

    The phenotypes (what words and renders mostly tell apart) count fully; the local
    changes (31 smaller proportion tweaks, correlated through 9 factors) count 0.3 each, so
    the code-book spreads over height, weight, muscle, age and gender first.
    """
    importance = np.array([PHENOTYPE_IMPORTANCE.get(n, LOCAL_CHANGE_IMPORTANCE) for n in space.names])
    return importance / np.maximum(samples.std(0), 1e-3)


@torch.no_grad()
def build_codebook(vae, space: ShapeSpace, samples: int, size: int, iters: int, seed: int) -> dict[str, np.ndarray]:
    """Sample the VAE prior, decode, cluster.

    Returns {'entries' (K, D) shape coordinates, 'latents' (K, Z), 'counts' (K,), 'weights' (D,)}.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, vae.latent_dim, generator=gen)
    decoded_np = space.clip(vae.decode(z).double().numpy())
    weights = clustering_weights(space, decoded_np)
    xw = torch.as_tensor(decoded_np * weights, dtype=torch.float32)
    centroids, labels = kmeans(xw, size, iters=iters, seed=seed)
    counts = torch.bincount(labels, minlength=size).numpy()
    dist = ((xw - centroids[labels]) ** 2).sum(-1).numpy()
    lab = labels.numpy()
    order_pts = np.lexsort((dist, lab))  # by cluster, then by distance to its centroid
    nonempty = np.flatnonzero(counts > 0)
    medoid = order_pts[np.searchsorted(lab[order_pts], nonempty)]
    entries, counts = decoded_np[medoid], counts[nonempty]
    # order by size of cluster (largest first) so truncated code-books stay representative
    order = np.argsort(-counts, kind="stable")
    entries = entries[order]
    latents = vae.encode(torch.as_tensor(entries, dtype=torch.float32))[0].numpy()
    return {"entries": entries.astype(np.float32), "latents": latents.astype(np.float32),
            "counts": counts[order].astype(np.int32), "weights": weights.astype(np.float32)}
