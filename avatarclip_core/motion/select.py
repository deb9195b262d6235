"""One entry point for an avatar job's motion: a built-in procedural clip by name (idle, wave,
walk) or, for any other text, a motion generated from that text (AvatarCLIP's motion half:
pose code-book query -> motion-VAE latent optimisation, `motion.generate.text_to_motion`).

`motion.name` carries either; the job checks it before any work (`check_motion_request`) and builds
it once the avatar's skeleton exists (`build_motion`).
"""
from __future__ import annotations

from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import BUILTIN_MOTIONS, MotionConfig, UnknownMotionError, make_motion


def is_builtin(name: str) -> bool:
    return name in BUILTIN_MOTIONS


def check_motion_request(motion: MotionConfig, generate: MotionGenConfig) -> None:
    """Cheap checks at the job boundary: fails before the body model loads."""
    if not motion.name:
        return
    if is_builtin(motion.name):
        if motion.fps <= 0 or motion.cycles < 1 or motion.speed <= 0:
            raise UnknownMotionError("motion needs fps > 0, cycles >= 1 and speed > 0")
        return
    from avatarclip_core.motion.generate import check_motion_text

    check_motion_text(motion.name)
    if generate.top_k < 1 or generate.iterations < 0:
        raise UnknownMotionError("motion_gen needs top_k >= 1 and iterations >= 0")
    if motion.on_unknown == "fail":  # before the body loads or an appearance is sculpted
        from avatarclip_core.motion.matching import check_on_unknown, match_text

        check_on_unknown(match_text(motion.name, generate), motion.on_unknown)


def build_motion(skeleton: Skeleton, motion: MotionConfig, generate: MotionGenConfig, scorer=None,
                 progress=None) -> tuple[Motion | None, dict | None]:
    """The clip for `motion.name` on `skeleton` and, for a generated one, what produced it
    (method, reference poses, losses, vocabulary matches and `warnings` for the job's list); (None,
    None) when no motion is asked for. An out-of-vocabulary text with motion.on_unknown=fail raises
    matching.MotionOutOfVocabularyError.

    scorer: a CLIP ImageTextScorer, or None; generate.query_method "auto" uses it only when it is a
    real CLIP (the offline sentence-encoder query otherwise)."""
    if not motion.name:
        return None, None
    if is_builtin(motion.name):
        return make_motion(skeleton, motion), {"method": "builtin", "name": motion.name}
    from avatarclip_core.motion.generate import text_to_motion
    from avatarclip_core.motion.matching import check_on_unknown, match_text

    match = match_text(motion.name, generate)
    check_on_unknown(match, motion.on_unknown)
    return text_to_motion(motion.name, skeleton, generate, scorer=scorer, progress=progress, match=match)
