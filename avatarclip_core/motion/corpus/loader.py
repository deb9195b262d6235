"""load_corpus: the procedural library, or a folder of BVH / AMASS files by path."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.corpus.library import LabelledClip, iter_corpus


def load_corpus(path: Path | None, skeleton: Skeleton | None = None, clips_per_generator: int = 50,
                seed: int = 0, fps: float = 30.0) -> Iterator[LabelledClip]:
    if path is None:
        return iter_corpus(skeleton, clips_per_generator, seed, fps)
    raise NotImplementedError
