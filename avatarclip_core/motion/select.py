"""One entry point for an avatar job's motion: a built-in procedural clip by name (idle, wave,
walk) or, for any other text, a motion generated from that text (AvatarCLIP's motion half:
pose code-book query -> motion-VAE latent optimisation, `motion.generate.text_to_motion`).

`motion.name` carries either; the job checks it before any work (`check_motion_request`) and builds
it once the avatar's skeleton exists (`build_motion`), then shapes it for games (`game_clip.game_clip`:
motion.seconds, motion.loop, a name that says what it is).
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
    from avatarclip_core.motion.game_clip import feet_settler, game_clip

    settle = feet_settler(skeleton)  # as the clip was settled: the built-ins always, generated ones with ground_feet
    if is_builtin(motion.name):
        clip, info, generator = _builtin(skeleton, motion), {"method": "builtin", "name": motion.name}, motion.name
    else:
        from avatarclip_core.motion.generate import text_to_motion
        from avatarclip_core.motion.matching import check_on_unknown, match_text

        match = match_text(motion.name, generate)
        check_on_unknown(match, motion.on_unknown)
        clip, info = text_to_motion(motion.name, skeleton, generate, scorer=scorer, progress=progress, match=match)
        # named after what it is: the matched generator; an out-of-vocabulary text keeps its own words
        generator = match.best.generator if match.known else motion.name
        settle = settle if generate.ground_feet else None
    clip, info["clip"] = game_clip(clip, generator, motion.loop, motion.seconds, motion.loop_blend, settle)
    return clip, info


def _builtin(skeleton: Skeleton, motion: MotionConfig) -> Motion:
    """The built-in clip; with motion.seconds, as many of its cycles as come nearest that length (one
    more for a loop: closing it may drop the first frames, where a walk sets off)."""
    from dataclasses import replace

    from avatarclip_core.motion.game_clip import wants_loop

    clip = make_motion(skeleton, motion)
    if motion.seconds > 0 and clip.duration > 0:
        cycles = max(1, int(round(motion.cycles * motion.seconds / clip.duration)))
        cycles += int(wants_loop(motion.loop, motion.name))
        if cycles != motion.cycles:
            clip = make_motion(skeleton, replace(motion, cycles=cycles))
    return clip
