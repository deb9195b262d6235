"""Labelled motion corpus for text-to-motion (AvatarCLIP Sec. 3.4): procedural clips or a real one.

Clips are `CanonicalMotion`s (motion/canonical.py): 20 roles, world-axis rotations, skeleton-
independent; `to_motion(clip.motion, skeleton)` applies one to any rig with a role map.

    generator_names() -> list[str]
    make_clip(generator, skeleton=None, variation=None, seed=0, fps=30.0) -> LabelledClip
    iter_corpus(skeleton=None, clips_per_generator=50, seed=0, fps=30.0) -> Iterator[LabelledClip]
    load_corpus(path, skeleton=None, ...) -> Iterator[LabelledClip]   # None: procedural
"""
from avatarclip_core.motion.corpus.library import (
    LabelledClip,
    UnknownGeneratorError,
    default_skeleton,
    generator_names,
    iter_corpus,
    make_clip,
)
from avatarclip_core.motion.corpus.loader import load_corpus

__all__ = ["LabelledClip", "UnknownGeneratorError", "default_skeleton", "generator_names", "iter_corpus",
           "load_corpus", "make_clip"]
