"""Text -> body shape: query the code-book (paper Sec. 3.3.1, Eq. 4).

Two scorers, both relative to a neutral body and a neutral text (``t_n`` = "a person"):

- "clip": every code-book body and the neutral body are rendered from the front with a fixed
  camera (so height differences stay visible) and uniform clay shading, and encoded with CLIP;
  ``s_i = cos(f_I(i) - f_I(neutral), f_T(text) - f_T(t_n))`` (Eq. 4). Render features are cached
  per code-book and CLIP model in the user cache folder (``paths.user_cache_dir``, ``shape_clip``).
- "text" (offline): every entry is described in words from its phenotypes (describe.py) and the
  same relative cosine is taken between sentence embeddings: ``cos(E(desc_i) - E(desc_neutral),
  E(text) - E(t_n))``.

"auto" uses CLIP when a real scorer is given (never the random-weight test CLIP), else text.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from avatarclip_core.errors import UserInputError
from avatarclip_core.registry import Registry
from avatarclip_core.shape.store import ShapeArtifacts, load_artifacts, resolve_artifacts_dir
from avatarclip_core.shape.config import ShapeConfig, ShapeQueryConfig

log = logging.getLogger(__name__)

# query methods by name (shape.query.method): each scores every code-book entry for a text,
# `fn(query: ShapeQuery, text, scorer) -> ((K,) scores, method used)`. A new one is a module with
# that function plus one `SHAPE_QUERIES.register_lazy(name, "module:function")` line at the end of
# this file (and its name in ShapeQueryConfig.method's Literal).
SHAPE_QUERIES = Registry("shape query method", "shape.query.method")
# Fixed camera for code-book renders: frames the tallest bodies (about 2.45 m) so that every body
# is seen at the same scale, which is what lets CLIP tell tall from short (the paper's motivation
# for a neutral reference).
CAMERA = {"distance": 3.7, "azimuth": 0.0, "elevation": 0.0, "at": (0.0, 1.25, 0.0), "fov": 40.0}


@dataclass
class ShapeMatch:
    index: int  # code-book entry
    score: float  # relative cosine (higher is better)
    sliders: dict[str, float]
    description: str
    method: str  # "clip" or "text"


@torch.no_grad()
def render_bodies(body, sliders: list[dict[str, float]], size: int = 224, batch: int = 16):
    """Yield (B, size, size, 3) front renders in [0, 1] of the bodies, batch by batch."""
    from avatarclip_core.render import orbit_camera
    from avatarclip_core.render.preview import clay_render

    cams = orbit_camera(**CAMERA)
    for start in range(0, len(sliders), batch):
        chunk = sliders[start:start + batch]
        shapes = torch.stack([body.shape_vector(s) for s in chunk])
        verts, _ = body.rest(shapes)
        yield clay_render(verts.float().cpu(), body.faces.cpu(), cams, size)


class ShapeQuery:
    """Query one code-book (``ShapeArtifacts``) with text; see the module docstring."""

    def __init__(self, artifacts: ShapeArtifacts, *, scorer=None, text_encoder=None, body=None,
                 config: ShapeQueryConfig | None = None, clip_config=None):
        self.artifacts = artifacts
        self.space = artifacts.space
        self.scorer = scorer
        self.config = config or ShapeQueryConfig()
        self.clip_config = clip_config
        self._text_encoder = text_encoder
        self._body = body
        self._desc = None  # (desc_emb, neutral_emb) for the current text encoder
        self._clip_feats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ShapeConfig | None = None, **kwargs) -> "ShapeQuery":
        config = config or ShapeConfig()
        path = resolve_artifacts_dir(config.artifacts_dir, config.name)
        return cls(load_artifacts(path), config=config.query, **kwargs)

    # --- helpers --------------------------------------------------------------------------------

    @property
    def body(self):
        if self._body is None:
            from avatarclip_core.body import create_body_model

            self._body = create_body_model()
            self.space.check_body(self._body)
        return self._body

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            from avatarclip_core.clip.text_encoder import TextEncoder

            self._text_encoder = TextEncoder()
        return self._text_encoder

    def neutral_sliders(self) -> dict[str, float]:
        return self.space.to_sliders(self.space.neutral)

    def resolve_method(self, method: str = "auto", scorer=None) -> str:
        method = (method or self.config.method or "auto").lower()
        SHAPE_QUERIES.find(method)  # an unknown name: UserInputError listing the registered ones
        if method == "auto":
            scorer = scorer or self.scorer
            return "clip" if scorer is not None and getattr(scorer, "real", False) else "text"
        return method

    def _scorer_for_clip(self, scorer):
        scorer = scorer or self.scorer
        if scorer is None:  # explicit "clip" without a scorer: load the configured real one (may raise)
            from avatarclip_core.clip import ClipConfig, load_scorer

            scorer = self.scorer = load_scorer(self.clip_config or ClipConfig())
        return scorer

    # --- scores ---------------------------------------------------------------------------------

    def scores(self, text: str, method: str = "auto", scorer=None) -> tuple[np.ndarray, str]:
        """(K,) relative-direction scores of every code-book entry, and the method used."""
        text = (text or "").strip()
        if not text:
            raise UserInputError("the shape description is empty: describe the body, e.g. 'a tall, thin woman'")
        method = self.resolve_method(method, scorer)
        return SHAPE_QUERIES.find(method).cls(self, text, scorer)

    def matches(self, text: str, k: int = 1, method: str = "auto", scorer=None) -> list[ShapeMatch]:
        if k < 1:
            raise UserInputError(f"k must be at least 1, got {k}")
        s, used = self.scores(text, method, scorer)
        order = np.argsort(-s, kind="stable")[:k]
        return [ShapeMatch(int(i), float(s[i]), self.artifacts.sliders(int(i)), self.artifacts.descriptions[i][0], used)
                for i in order]

    def query_shape(self, text: str, k: int = 1, method: str = "auto", scorer=None) -> list[dict[str, float]]:
        """The k best code-book bodies for ``text`` as slider values (best first)."""
        return [m.sliders for m in self.matches(text, k, method, scorer)]

    def _neutral_fallback(self) -> np.ndarray:
        """Scores when the text says nothing beyond the neutral text: the entries nearest the neutral body."""
        w = np.asarray(self.artifacts.meta.get("clustering_weights", np.ones(self.space.dim)))
        return -np.linalg.norm((self.artifacts.entries - self.space.neutral) * w, axis=1)

    def _relative(self, feats: torch.Tensor, neutral: torch.Tensor, t: torch.Tensor, t_n: torch.Tensor) -> np.ndarray:
        from avatarclip_core.clip.scorer import relative_scores

        if float((t - t_n).norm()) < 1e-6:
            return self._neutral_fallback()
        return relative_scores(feats.float(), neutral.float(), t.float(), t_n.float()).cpu().numpy()

    # text path
    def description_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            if self._desc is None:
                art, enc = self.artifacts, self.text_encoder
                if art.desc_emb is not None and art.text_model == getattr(enc, "model_id", None):
                    emb, neutral = art.desc_emb, art.neutral_desc_emb
                else:  # another sentence model than the one the artifacts were embedded with
                    from avatarclip_core.shape.train import embed_descriptions

                    all_emb = embed_descriptions(enc, art.descriptions + [art.neutral_descriptions])
                    emb, neutral = all_emb[:-1], all_emb[-1]
                self._desc = (torch.as_tensor(emb, dtype=torch.float32), torch.as_tensor(neutral, dtype=torch.float32))
            return self._desc

    def _text_scores(self, text: str) -> np.ndarray:
        emb, neutral = self.description_embeddings()
        q = self.text_encoder.encode([text, self.config.neutral_text])
        return self._relative(emb, neutral, q[0], q[1])

    # CLIP path
    def clip_features(self, scorer) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, D) features of the code-book renders and (D,) of the neutral body (cached)."""
        size = int(getattr(scorer, "render_size", 224))
        key = f"{scorer.name}|{size}"
        with self._lock:
            if key in self._clip_feats:
                return self._clip_feats[key]
            path = self._clip_cache_path(scorer.name, size)
            if path.is_file():
                data = np.load(path)
                feats = (torch.as_tensor(data["entries"].astype(np.float32)), torch.as_tensor(data["neutral"]))
            else:
                feats = self._compute_clip_features(scorer, size)
                tmp = path.with_name(path.name + ".tmp.npz")
                np.savez(tmp, entries=feats[0].numpy(), neutral=feats[1].numpy())
                tmp.replace(path)
            self._clip_feats[key] = feats
            return feats

    def _clip_cache_path(self, scorer_name: str, size: int):
        from avatarclip_core.paths import user_cache_dir

        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", scorer_name)[:40]
        digest = hashlib.sha1(scorer_name.encode()).hexdigest()[:8]
        # keyed by the code-book's content and the model: one cache per user, as the pose code-book's
        return user_cache_dir("shape_clip") / f"{self.artifacts.fingerprint}-{slug}-{digest}-{size}.npz"

    @torch.no_grad()
    def _compute_clip_features(self, scorer, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        sliders = [self.neutral_sliders()] + [self.artifacts.sliders(i) for i in range(self.artifacts.size)]
        started = time.perf_counter()
        log.info("rendering %d code-book bodies at %d px for %s (once; cached)", len(sliders), size, scorer.name)
        feats = [scorer.encode_image(images).float().cpu() for images in render_bodies(self.body, sliders, size)]
        feats = torch.cat(feats)
        log.info("code-book CLIP features in %.1f s", time.perf_counter() - started)
        return feats[1:], feats[0]

    def _clip_scores(self, text: str, scorer) -> np.ndarray:
        feats, neutral = self.clip_features(scorer)
        t = scorer.encode_text([text, self.config.neutral_text]).float().cpu()
        return self._relative(feats, neutral, t[0], t[1])


_QUERIES: dict[tuple, ShapeQuery] = {}
_QUERIES_LOCK = threading.Lock()


def get_shape_query(config: ShapeConfig | None = None) -> ShapeQuery:
    """The process-wide ShapeQuery for a config's artifacts (loaded once)."""
    config = config or ShapeConfig()
    path = resolve_artifacts_dir(config.artifacts_dir, config.name).resolve()
    key = (str(path), config.query.neutral_text, config.query.method)
    with _QUERIES_LOCK:
        if key not in _QUERIES:
            _QUERIES[key] = ShapeQuery(load_artifacts(path), config=config.query)
        return _QUERIES[key]


def query_shape(text: str, k: int = 1, method: str = "auto", *, config: ShapeConfig | None = None,
                scorer=None) -> list[dict[str, float]]:
    """The k best code-book bodies for ``text`` as slider dicts (best first).

    method: "auto" (CLIP when ``scorer`` is a real CLIP, else the offline text path), "clip"
    (``scorer`` or the default ClipConfig's model; raises ClipUnavailableError offline), "text".
    """
    return get_shape_query(config).query_shape(text, k=k, method=method, scorer=scorer)


@SHAPE_QUERIES.register("clip")
def clip_query(query: ShapeQuery, text: str, scorer=None) -> tuple[np.ndarray, str]:
    """Eq. 4 on clay renders of the code-book (a real CLIP scorer: the given one, else the configured one)."""
    return query._clip_scores(text, query._scorer_for_clip(scorer)), "clip"


@SHAPE_QUERIES.register("text")
def text_query(query: ShapeQuery, text: str, scorer=None) -> tuple[np.ndarray, str]:
    """The same relative cosine on sentence embeddings of the entries' descriptions (offline)."""
    return query._text_scores(text), "text"


@SHAPE_QUERIES.register("auto")
def auto_query(query: ShapeQuery, text: str, scorer=None) -> tuple[np.ndarray, str]:
    """clip with a real scorer, else text (ShapeQuery.resolve_method)."""
    return SHAPE_QUERIES.find(query.resolve_method("auto", scorer)).cls(query, text, scorer)
