"""Labelled motion corpus for text-to-motion (AvatarCLIP Sec. 3.4): procedural clips or a real one.

Clips are `CanonicalMotion`s (motion/canonical.py): 20 roles, world-axis rotations, skeleton-
independent; `to_motion(clip.motion, skeleton)` applies one to any rig with a role map.

    generator_names() -> list[str]
    make_clip(generator, skeleton=None, variation=None, seed=0, fps=30.0) -> LabelledClip
    iter_corpus(skeleton=None, clips_per_generator=50, seed=0, fps=30.0) -> Iterator[LabelledClip]
    load_corpus(path, skeleton=None, ...) -> Iterator[LabelledClip]   # None: procedural
    import_bvh(path, skeleton) / import_amass(path, skeleton) -> CanonicalMotion
"""
from avatarclip_core.motion.corpus.library import (
    LabelledClip,
    UnknownGeneratorError,
    default_skeleton,
    generator_names,
    iter_corpus,
    make_clip,
)
from avatarclip_core.motion.corpus.amass_import import import_amass
from avatarclip_core.motion.corpus.bvh_import import MotionFileError, import_bvh
from avatarclip_core.motion.corpus.loader import load_corpus

__all__ = ["LabelledClip", "MotionFileError", "UnknownGeneratorError", "default_skeleton", "generator_names",
           "import_amass", "import_bvh", "iter_corpus", "load_corpus", "make_clip"]
