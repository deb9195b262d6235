"""Coarse body shape from text (AvatarCLIP Sec. 3.3.1): shape VAE, code-book, CLIP / text queries.

- ``space``: the shape coordinates (6 Anny phenotypes + 31 body-proportion local changes) and the
  training distribution;
- ``ShapeVAE`` (16-d latent), code-book by K-Means on decoded prior samples, phrasings of each
  entry in words (``describe``); ``train_shape_artifacts(config, out_dir)`` rebuilds them;
- ``ShapeQuery`` / ``query_shape(text, k, method)``: Eq. 4 relative-direction retrieval with CLIP
  renders ("clip") or sentence embeddings of the descriptions ("text", offline).

Small artifact sets ship in ``avatarclip_core/shape/artifacts/<name>/`` (preview, standard, paper).
"""
from avatarclip_core.shape.config import CodebookConfig, ShapeConfig, ShapeQueryConfig, ShapeVAEConfig
from avatarclip_core.shape.describe import describe
from avatarclip_core.shape.query import ShapeMatch, ShapeQuery, get_shape_query, query_shape, render_bodies
from avatarclip_core.shape.space import ShapeSpace, default_space
from avatarclip_core.shape.store import (
    PACKAGED_DIR,
    ShapeArtifacts,
    ShapeArtifactsMissingError,
    load_artifacts,
    resolve_artifacts_dir,
)
from avatarclip_core.shape.train import train_shape_artifacts
from avatarclip_core.shape.vae import ShapeVAE

__all__ = [
    "PACKAGED_DIR", "CodebookConfig", "ShapeArtifacts", "ShapeArtifactsMissingError", "ShapeConfig", "ShapeMatch",
    "ShapeQuery", "ShapeQueryConfig", "ShapeSpace", "ShapeVAE", "ShapeVAEConfig", "default_space", "describe",
    "get_shape_query", "load_artifacts", "query_shape", "render_bodies", "resolve_artifacts_dir",
    "train_shape_artifacts",
]
